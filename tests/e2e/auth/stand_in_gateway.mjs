#!/usr/bin/env node
// Stand-in OAuth 2.1 resource server for proving the auth fixtures
// (oidc_server.mjs + the SDK runners) before the real mcp-edge gateway exists.
// A test double only: the gateway replaces it; keep it small.
//
// Usage:
//   node tests/e2e/auth/stand_in_gateway.mjs --port N --issuer URL [--upstream-check]
//        [--host 127.0.0.1] [--scope mcp:tools] [--call-scope SCOPE]
//
//   --issuer URL      the authorization server's issuer, exactly as its metadata spells it;
//                     advertised in `authorization_servers` and required as the token `iss`
//   --upstream-check  fetch the AS metadata and JWKS at startup and exit 1 if that fails
//                     (without it they are fetched on the first request that needs them)
//   --scope           scope advertised in WWW-Authenticate and `scopes_supported`
//   --call-scope S    tools/call additionally needs scope S; a token without it gets
//                     403 `Bearer error="insufficient_scope", scope="S", resource_metadata=...`
//
// Serves (R = http://HOST:N/mcp is the resource identifier):
//   GET  /.well-known/oauth-protected-resource[/mcp]   RFC 9728 metadata for R
//   POST /mcp   MCP Streamable HTTP (stateless, JSON responses, no sessions):
//               initialize, notifications (202), ping, tools/list (`whoami`),
//               tools/call whoami -> text = the token's `sub`
//   GET/DELETE /mcp -> 405 (after the token check)
// Every /mcp request needs `Authorization: Bearer <JWT>` verified against the AS
// JWKS: signature (RS256/ES256/EdDSA), header typ at+jwt (RFC 9068), iss = --issuer,
// aud contains R, exp. Missing/invalid -> 401 with
//   WWW-Authenticate: Bearer resource_metadata="http://HOST:N/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"
// (plus error="invalid_token" when a token was sent).
//
// Output: `listening on http://HOST:N` on stdout once ready; one stderr line per
// request: `rs: METHOD PATH [mcp-method] auth=... -> STATUS`.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const log = (msg) => process.stderr.write(`rs: ${msg}\n`);
function die(msg) {
    process.stderr.write(`stand_in_gateway: ${msg}\n`);
    process.exit(1);
}

const { values: args } = (() => {
    try {
        return parseArgs({
            options: {
                port: { type: 'string', default: '0' },
                host: { type: 'string', default: '127.0.0.1' },
                issuer: { type: 'string' },
                'upstream-check': { type: 'boolean', default: false },
                scope: { type: 'string', default: 'mcp:tools' },
                'call-scope': { type: 'string' },
            },
            strict: true,
        });
    } catch (e) {
        return die(e.message);
    }
})();
if (!args.issuer || !URL.canParse(args.issuer)) die('--issuer URL is required');

// ---------------------------------------------------------------- authorization server

// Same candidate order as the SDK clients (RFC 8414 path insertion, then OIDC forms).
function metadataUrls(issuer) {
    const u = new URL(issuer);
    const path = u.pathname.replace(/\/+$/, '');
    if (!path) {
        return [`${u.origin}/.well-known/oauth-authorization-server`, `${u.origin}/.well-known/openid-configuration`];
    }
    return [
        `${u.origin}/.well-known/oauth-authorization-server${path}`,
        `${u.origin}/.well-known/openid-configuration${path}`,
        `${u.origin}${path}/.well-known/openid-configuration`,
    ];
}

let jwksPromise = null;
function jwks() {
    jwksPromise ??= (async () => {
        for (const url of metadataUrls(args.issuer)) {
            const res = await fetch(url, { headers: { accept: 'application/json' } });
            if (!res.ok) continue;
            const meta = await res.json();
            if (meta.issuer !== args.issuer) throw new Error(`AS metadata issuer ${meta.issuer} != ${args.issuer}`);
            if (!meta.jwks_uri) throw new Error(`AS metadata at ${url} has no jwks_uri`);
            const set = createRemoteJWKSet(new URL(meta.jwks_uri));
            return { set, jwksUri: meta.jwks_uri };
        }
        throw new Error(`no AS metadata found for ${args.issuer}`);
    })().catch((e) => {
        jwksPromise = null; // retry on the next request
        throw e;
    });
    return jwksPromise;
}

// ---------------------------------------------------------------- HTTP

let origin; // http://HOST:N, known once listening
const resource = () => `${origin}/mcp`;
const prmUrl = () => `${origin}/.well-known/oauth-protected-resource/mcp`;

function send(res, status, body, headers = {}) {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { ...(text ? { 'content-type': 'application/json' } : {}), ...headers });
    res.end(text);
}

function challenge(error, description, scope = args.scope) {
    const parts = [`resource_metadata="${prmUrl()}"`, `scope="${scope}"`];
    if (error) parts.push(`error="${error}"`, `error_description="${description.replace(/"/g, "'")}"`);
    return { 'www-authenticate': `Bearer ${parts.join(', ')}` };
}

// -> { claims } or { status, headers, why }
async function authenticate(req) {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return { status: 401, headers: challenge(), why: 'no bearer token' };
    try {
        const { set } = await jwks();
        const { payload } = await jwtVerify(m[1], set, {
            issuer: args.issuer,
            audience: resource(),
            typ: 'at+jwt',
            algorithms: ['RS256', 'ES256', 'EdDSA', 'Ed25519'],
            requiredClaims: ['exp', 'sub'],
        });
        return { claims: payload };
    } catch (e) {
        const why = `${e.code ?? e.name}: ${e.message}`;
        return { status: 401, headers: challenge('invalid_token', why), why };
    }
}

const WHOAMI = {
    name: 'whoami',
    description: "Returns the `sub` claim of the caller's access token.",
    inputSchema: { type: 'object', properties: {} },
};
const VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'];

// One JSON-RPC message -> [status, body, headers]
function mcp(msg, claims) {
    const reply = (result) => [200, { jsonrpc: '2.0', id: msg.id, result }];
    const error = (code, message) => [200, { jsonrpc: '2.0', id: msg.id ?? null, error: { code, message } }];
    if (msg?.jsonrpc !== '2.0' || typeof msg.method !== 'string') {
        return msg && ('result' in msg || 'error' in msg) ? [202] : error(-32600, 'invalid request');
    }
    if (msg.id === undefined) return [202]; // notification
    const scopes = String(claims.scope ?? '').split(' ');
    switch (msg.method) {
        case 'initialize': {
            const asked = msg.params?.protocolVersion;
            return reply({
                protocolVersion: VERSIONS.includes(asked) ? asked : VERSIONS[0],
                capabilities: { tools: {} },
                serverInfo: { name: 'stand-in-gateway', version: '0.0.0' },
            });
        }
        case 'ping':
            return reply({});
        case 'tools/list':
            return reply({ tools: [WHOAMI] });
        case 'tools/call':
            if (msg.params?.name !== 'whoami') return error(-32602, `unknown tool ${msg.params?.name}`);
            if (args['call-scope'] && !scopes.includes(args['call-scope'])) {
                const scope = [...new Set([...scopes.filter(Boolean), args['call-scope']])].join(' ');
                return [403, undefined, challenge('insufficient_scope', `tools/call needs ${args['call-scope']}`, scope)];
            }
            return reply({ content: [{ type: 'text', text: String(claims.sub) }] });
        default:
            return error(-32601, `method not found: ${msg.method}`);
    }
}

async function readJson(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handle(req, res) {
    const { pathname } = new URL(req.url, origin);
    let note = '';
    res.on('finish', () => {
        const auth = req.headers.authorization ? req.headers.authorization.split(' ')[0] : 'none';
        log(`${req.method} ${req.url}${note} auth=${auth} -> ${res.statusCode}`);
    });

    if (pathname === '/.well-known/oauth-protected-resource' || pathname === '/.well-known/oauth-protected-resource/mcp') {
        if (req.method !== 'GET') return send(res, 405, { error: 'method not allowed' });
        return send(res, 200, {
            resource: resource(),
            authorization_servers: [args.issuer],
            scopes_supported: [args.scope],
            bearer_methods_supported: ['header'],
            resource_name: 'mcp-edge stand-in gateway',
        });
    }
    if (pathname !== '/mcp') return send(res, 404, { error: 'not found' });

    const auth = await authenticate(req);
    if (!auth.claims) {
        note = ` (${auth.why})`;
        return send(res, auth.status, { error: 'unauthorized', detail: auth.why }, auth.headers);
    }
    if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' }, { allow: 'POST' });

    let msg;
    try {
        msg = await readJson(req);
    } catch {
        return send(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    }
    note = ` [${msg?.method ?? 'response'}] sub=${auth.claims.sub}`;
    const [status, body, headers] = mcp(msg, auth.claims);
    return send(res, status, body, headers);
}

async function main() {
    if (args['upstream-check']) {
        try {
            const { jwksUri } = await jwks();
            const r = await fetch(jwksUri);
            if (!r.ok) throw new Error(`GET ${jwksUri} -> ${r.status}`);
            log(`upstream check ok: issuer ${args.issuer}, jwks ${jwksUri}`);
        } catch (e) {
            die(`upstream check failed: ${e.message}`);
        }
    }
    const server = http.createServer((req, res) => {
        handle(req, res).catch((e) => {
            log(`error: ${e.stack ?? e}`);
            if (!res.headersSent) send(res, 500, { error: String(e.message ?? e) });
        });
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number.parseInt(args.port, 10), args.host, resolve);
    });
    origin = `http://${args.host}:${server.address().port}`;
    log(`resource ${resource()} issuer ${args.issuer}`);
    console.log(`listening on ${origin}`);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
}

main().catch((e) => die(e.stack ?? String(e)));
