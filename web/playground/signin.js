// Signing in: with an API key, or with OAuth (authorization code + PKCE
// S256, RFC 7636) against the authorization server the gateway's RFC 9728
// metadata names, with the resource indicator (RFC 8707). The access token
// is kept in memory only. What must survive the redirect to the
// authorization server (the PKCE verifier, `state`, the client id) waits in
// sessionStorage, this tab's own, and is removed when the answer comes back.

import { auth, rest } from "./api.js";

const PENDING = "mcp-edge-playground-oauth";

/** Signs in with an API key; checks it by reading /registry. */
export async function withKey(key) {
  auth.current = { header: "X-API-Key", value: key, label: "an API key" };
  try {
    await rest("/registry");
  } catch (e) {
    auth.current = null;
    throw new Error(e.status === 401 || e.status === 403 ? "The gateway refused this API key." : e.message);
  }
}

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(n = 32) {
  return b64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function json(url, init) {
  const r = await fetch(url, init);
  const body = await r.json().catch(() => null);
  if (!r.ok || !body) throw new Error(`${url}: ${r.status} ${(body && (body.error_description || body.error)) || ""}`);
  return body;
}

/**
 * `url` when it is https, or http to this machine (a local authorization
 * server); anything else would carry the sign-in in the clear, or be no
 * web address at all (RFC 8414 §2: endpoints use TLS).
 */
function endpoint(url, what) {
  let u;
  try { u = new URL(url); } catch { throw new Error(`the authorization server's ${what} is no URL`); }
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new Error(`the authorization server's ${what} is not https: ${u.origin}`);
  }
  return u.toString();
}

/** RFC 8414 metadata of `issuer` (then OpenID discovery). */
async function asMetadata(issuer) {
  const u = new URL(issuer);
  const path = u.pathname === "/" ? "" : u.pathname;
  for (const well of ["oauth-authorization-server", "openid-configuration"]) {
    try {
      const m = await json(`${u.origin}/.well-known/${well}${path}`);
      if (m.issuer === issuer || m.issuer === issuer.replace(/\/$/, "")) return m;
    } catch { /* next */ }
  }
  throw new Error(`no authorization server metadata for ${issuer}`);
}

/** Starts the OAuth sign-in: leaves the page for the authorization server. */
export async function startOAuth(clientId) {
  // The gateway's own metadata (not one endpoint's): its resource is the
  // gateway, an audience every endpoint accepts (README, Identity).
  const resource = await json("/.well-known/oauth-protected-resource");
  const issuer = (resource.authorization_servers || [])[0];
  if (!issuer) throw new Error("the gateway names no authorization server (RFC 9728 metadata)");
  const meta = await asMetadata(issuer);
  if (!(meta.code_challenge_methods_supported || []).includes("S256")) {
    throw new Error(`${issuer} does not offer PKCE with S256`);
  }
  const redirect = `${location.origin}/playground/`;
  let client = clientId;
  if (!client && meta.registration_endpoint) {
    const reg = await json(endpoint(meta.registration_endpoint, "registration endpoint"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_name: "mcp-edge playground", redirect_uris: [redirect],
        grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "none" }),
    });
    client = reg.client_id;
  }
  if (!client) throw new Error(`${issuer} offers no client registration: enter a client id`);
  const verifier = random(48);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = random(24);
  sessionStorage.setItem(PENDING, JSON.stringify({
    // The metadata's own issuer: what RFC 9207's `iss` must equal.
    state, verifier, client, issuer: meta.issuer, token: endpoint(meta.token_endpoint, "token endpoint"), resource: resource.resource,
    redirect, iss: meta.authorization_response_iss_parameter_supported === true,
  }));
  const url = new URL(endpoint(meta.authorization_endpoint, "authorization endpoint"));
  const scope = (resource.scopes_supported || []).join(" ");
  const params = { response_type: "code", client_id: client, redirect_uri: redirect, state,
    code_challenge: b64url(digest), code_challenge_method: "S256", resource: resource.resource };
  if (scope) params.scope = scope;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

/**
 * Finishes a sign-in the authorization server sent back here (`code` and
 * `state` in the URL): false when this page load is no such answer.
 */
export async function finishOAuth() {
  const q = new URLSearchParams(location.search);
  if (!q.has("state") || !(q.has("code") || q.has("error"))) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, "", location.pathname);
  if (!pending || pending.state !== q.get("state")) throw new Error("this sign-in answer was not started here (state)");
  if (q.has("error")) throw new Error(`the authorization server refused: ${q.get("error_description") || q.get("error")}`);
  // RFC 9207: an answer naming another issuer is a mix-up, and one from a
  // server that says it names itself must.
  if ((q.has("iss") || pending.iss) && q.get("iss") !== pending.issuer) {
    throw new Error("the answer came from another authorization server (iss)");
  }
  const token = await json(pending.token, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: q.get("code"), redirect_uri: pending.redirect,
      client_id: pending.client, code_verifier: pending.verifier, resource: pending.resource }),
  });
  if (!token.access_token) throw new Error("the authorization server answered without an access token");
  auth.current = { header: "Authorization", value: `Bearer ${token.access_token}`, label: `OAuth (${pending.issuer})` };
  return true;
}
