// The sign-in page of the test authorization servers (oidc-provider): any
// login name is an account whose `sub` is that name, and consent is given
// at once for everything the authorization request asked (its scopes, and
// the resources it named or that `resources` adds). Used by
// user_oauth_server.mjs (the third-party server users connect to) and
// oidc_server.mjs (the demo AS's browser sign-in, for the playground).
//
//   GET  /interaction/UID          an HTML form: <input name="login">, POST to
//   POST /interaction/UID/login    login=NAME (form) -> logged in as NAME
//   an interaction that only needs consent (an AS session exists) is granted
//   on GET /interaction/UID at once.

export const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grants everything the authorization request asked for: its scopes, OIDC
// claims, and each resource (requested, defaulted or added) with those scopes.
async function grantAll(provider, resources, details, accountId) {
    const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: details.params.client_id });
    const scope = details.params.scope ?? '';
    if (scope) grant.addOIDCScope(scope);
    const missing = details.prompt?.details ?? {};
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const r of new Set([...resources, ...[details.params.resource ?? []].flat()])) grant.addResourceScope(r, scope);
    return grant.save();
}

/**
 * The interaction routes as an oidc-provider middleware; `resources` are
 * granted besides the requested ones, `log` writes one line per sign-in.
 */
export function loginRoutes(provider, resources, log) {
    return async (ctx, next) => {
        const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(ctx.path);
        if (!m) return next();
        await interaction(provider, resources, log, ctx, m[2] === '/login');
    };
}

async function interaction(provider, resources, log, ctx, isLogin) {
    let details;
    try {
        details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (e) {
        ctx.status = 400;
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>Error</title><p>No such login in progress: ${escapeHtml(e.message)}</p>`;
        return;
    }
    const { uid, prompt, params, session } = details;
    if (isLogin) {
        if (ctx.method !== 'POST') {
            ctx.status = 405;
            return;
        }
        const login = (await readForm(ctx.req)).get('login')?.trim();
        if (!login) {
            ctx.status = 400;
            ctx.type = 'html';
            ctx.body = '<!doctype html><title>Error</title><p>login is required</p>';
            return;
        }
        const grantId = await grantAll(provider, resources, { ...details, grantId: undefined }, login);
        log(`login uid=${uid} login=${login} client=${params.client_id} scope=${JSON.stringify(params.scope ?? null)} granted`);
        ctx.respond = false;
        await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: login }, consent: { grantId } },
            { mergeWithLastSubmission: false });
        return;
    }
    if (prompt.name === 'login') {
        ctx.type = 'html';
        ctx.body = `<!doctype html>
<html><head><title>Sign in</title></head><body>
<h1>Sign in</h1>
<p>Client <code>${escapeHtml(params.client_id)}</code> asks for <code>${escapeHtml(params.scope ?? '')}</code>.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="login">Login (any name)</label>
<input id="login" name="login" placeholder="any name" autofocus>
<button type="submit">Sign in</button>
</form></body></html>`;
        return;
    }
    // Consent only (the AS session exists): given at once.
    const grantId = await grantAll(provider, resources, details, session.accountId);
    log(`consent uid=${uid} account=${session.accountId} client=${params.client_id} granted automatically`);
    ctx.respond = false;
    await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
