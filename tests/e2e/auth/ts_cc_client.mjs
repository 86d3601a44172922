#!/usr/bin/env node
// OAuth client-credentials runner for mcp-edge, driven by the official MCP
// TypeScript SDK (`@modelcontextprotocol/sdk` 1.32.2, resolved from the repo's
// node_modules). Given only the MCP endpoint URL and a client id/secret, the
// SDK itself does the whole discovery and token dance:
//   POST URL (no token) -> 401 + WWW-Authenticate resource_metadata=..., scope=...
//   GET  resource_metadata URL (RFC 9728)   -> authorization_servers[0]
//   GET  AS metadata (RFC 8414, then OIDC)  -> token_endpoint
//   POST token_endpoint grant_type=client_credentials&resource=...[&scope=...]
//        (HTTP Basic client auth when the AS lists client_secret_basic)
//   POST URL again with Authorization: Bearer <token>
//
// Usage:  node tests/e2e/auth/ts_cc_client.mjs URL CLIENT_ID CLIENT_SECRET [SCOPE]
//
//   SCOPE   space-separated scopes for the token request. The SDK's
//           ClientCredentialsProvider sends only this (never the scope from
//           WWW-Authenticate or PRM scopes_supported); without it the token
//           request has no `scope` parameter.
//   env MCP_EXPECTED_ISSUER  pass the AS issuer as `expectedIssuer` (the SDK warns on
//           stderr when it is omitted, and then trusts whatever AS the server names).
//   env MCP_TOKEN_AUTH  client_secret_basic | client_secret_post. Unset: the SDK picks
//           (client_secret_basic whenever the AS metadata lists it). Set: the client
//           information carries `token_endpoint_auth_method`, which the SDK honours when
//           the AS lists that method.
//
// Output (stdout, one line): {"tools": [names...], "sub_seen": <text of tools/call
// whoami, or null when no whoami tool is listed>}. Exit 0 on success; 1 with
// `error: ...` on stderr on any failure; 2 on usage errors.
// stderr also gets one `http: ...` line per HTTP exchange the SDK makes (method,
// URL, the headers and form fields that matter, status, WWW-Authenticate), with
// secrets masked, so a test can see exactly what the client sent.
//
// Auth API used: `ClientCredentialsProvider` from
// `@modelcontextprotocol/sdk/client/auth-extensions.js` as the transport's
// `authProvider`; the transport calls the SDK's `auth()` on 401 (and on 403
// insufficient_scope, once per distinct challenge).
// Runs on Node >= 20.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const DEADLINE_MS = 30_000;

function usage(msg) {
    console.error(`usage: node ts_cc_client.mjs URL CLIENT_ID CLIENT_SECRET [SCOPE]\nerror: ${msg}`);
    process.exit(2);
}

function errText(e) {
    if (!(e instanceof Error)) return String(e);
    const cause = e.cause ? ` (cause: ${e.cause.code ?? e.cause.message ?? e.cause})` : '';
    return `${e.name}: ${e.message}${cause}`;
}

const [url, clientId, clientSecret, scope] = process.argv.slice(2);
if (!url || !clientId || !clientSecret) usage('URL, CLIENT_ID and CLIENT_SECRET are required');
if (!URL.canParse(url)) usage(`not a URL: ${url}`);

// ---------------------------------------------------------------- HTTP trace

const SHOWN_HEADERS = ['mcp-protocol-version', 'accept', 'content-type', 'mcp-session-id'];

function describeAuth(value) {
    if (!value) return undefined;
    const [scheme, cred] = value.split(' ');
    if (scheme.toLowerCase() === 'basic') {
        const user = Buffer.from(cred ?? '', 'base64').toString('utf8').split(':')[0];
        return `Basic(${user}:***)`;
    }
    return `${scheme} ***`;
}

function describeBody(body) {
    if (body instanceof URLSearchParams) {
        const p = new URLSearchParams(body);
        if (p.has('client_secret')) p.set('client_secret', '***');
        return `form{${[...p].map(([k, v]) => `${k}=${v}`).join('&')}}`;
    }
    if (typeof body === 'string') {
        try {
            const m = JSON.parse(body);
            return `jsonrpc{${m.method ?? 'response'}}`;
        } catch {
            return `${body.length} bytes`;
        }
    }
    return body ? typeof body : undefined;
}

async function tracingFetch(input, init = {}) {
    const method = init.method ?? 'GET';
    const headers = new Headers(init.headers);
    const parts = SHOWN_HEADERS.filter((h) => headers.has(h)).map((h) => `${h}=${headers.get(h)}`);
    const auth = describeAuth(headers.get('authorization'));
    if (auth) parts.push(`authorization=${auth}`);
    const body = describeBody(init.body);
    if (body) parts.push(body);
    const res = await fetch(input, init);
    const www = res.headers.get('www-authenticate');
    console.error(`http: ${method} ${String(input)} [${parts.join(' ')}] -> ${res.status}${www ? ` www-authenticate: ${www}` : ''}`);
    return res;
}

// ---------------------------------------------------------------- run

// ClientCredentialsProvider has no option for the client auth method; the SDK's
// selectClientAuthMethod() takes it from the client information, as after DCR.
class MethodPinnedProvider extends ClientCredentialsProvider {
    constructor(options, method) {
        super(options);
        this.method = method;
    }

    clientInformation() {
        const info = super.clientInformation();
        return info && { ...info, token_endpoint_auth_method: this.method };
    }
}

async function run() {
    const method = process.env.MCP_TOKEN_AUTH;
    if (method && !['client_secret_basic', 'client_secret_post'].includes(method)) {
        usage('MCP_TOKEN_AUTH must be client_secret_basic or client_secret_post');
    }
    const Provider = method ? MethodPinnedProvider : ClientCredentialsProvider;
    const authProvider = new Provider({
        clientId,
        clientSecret,
        ...(scope ? { scope } : {}),
        ...(process.env.MCP_EXPECTED_ISSUER ? { expectedIssuer: process.env.MCP_EXPECTED_ISSUER } : {}),
    }, method);
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider, fetch: tracingFetch });
    const client = new Client({ name: 'mcp-edge-ts-cc-client', version: '0.0.0' });
    await client.connect(transport);
    try {
        const tools = [];
        let cursor;
        do {
            const page = await client.listTools(cursor ? { cursor } : {});
            tools.push(...page.tools.map((t) => t.name));
            cursor = page.nextCursor;
        } while (cursor);
        let subSeen = null;
        if (tools.includes('whoami')) {
            const result = await client.callTool({ name: 'whoami', arguments: {} });
            if (result.isError) throw new Error(`whoami returned isError: ${JSON.stringify(result.content)}`);
            subSeen = result.content?.find((c) => c.type === 'text')?.text ?? null;
        }
        const tokens = authProvider.tokens();
        if (tokens?.scope !== undefined) console.error(`info: granted scope ${JSON.stringify(tokens.scope)}`);
        console.log(JSON.stringify({ tools, sub_seen: subSeen }));
    } finally {
        await client.close().catch(() => {});
    }
}

const timer = setTimeout(() => {
    console.error(`error: deadline of ${DEADLINE_MS} ms exceeded`);
    process.exit(1);
}, DEADLINE_MS);

run().then(
    () => {
        clearTimeout(timer);
        process.exit(0);
    },
    (e) => {
        console.error(`error: ${errText(e)}`);
        process.exit(1);
    },
);
