//! The connect flow: the authorization code grant with PKCE (RFC 7636)
//! and a resource indicator (RFC 8707), run by the gateway for one caller
//! and one server, ending on the gateway's own callback.
//!
//! - [`start`]: a fresh PKCE verifier, `state` and browser binding. The
//!   connect in flight is held in the store under the state's digest (the
//!   verifier sealed); the browser gets the binding as an `HttpOnly`
//!   cookie, and is sent to the authorization endpoint.
//! - [`finish`]: the callback's `state` is taken, once: a second use finds
//!   nothing, whoever presents it. It must come back from the browser that
//!   started it (its cookie), so a callback URL replayed by another caller
//!   is refused. An answer naming another issuer (RFC 9207 `iss`) is
//!   refused. The code is exchanged with the verifier; the tokens are
//!   stored sealed for the caller who started the flow.

use super::grants::Found;
use super::{
    callback, connection_event, grants, http_for, random_token, seal, seal_under, OAuthCache,
    Tokens,
};
use crate::config::credentials::OAuthClient;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::oauth::pkce_challenge;
use crate::identity::vault::{digest, pending_context};
use crate::observe::audit;
use crate::ports::{Clock, ConnectionRecord, Connections, PendingConnect, Platform};

/// How long a connect may take, from start to callback.
pub(crate) const CONNECT_TTL_MS: u64 = 10 * 60 * 1000;
/// The cookie binding a connect to the browser that started it.
pub(crate) const COOKIE: &str = "mcp-edge-connect";

/// Where to send the browser, and the binding cookie's value.
pub(crate) struct Started {
    pub authorize_url: String,
    pub browser: String,
}

/// Starts a connect of `owner` to `server`.
pub(crate) async fn start<P: Platform>(
    cache: &OAuthCache,
    p: &P,
    (server, oauth): (&Server, &OAuthClient),
    owner: &str,
    base: &str,
) -> Result<Started, GatewayError> {
    let found = cache.found(p, server, oauth, base).await?;
    let vault = cache.vault(p).await?;
    let (verifier, state, browser) = (random_token(p), random_token(p), random_token(p));
    let key = digest(&state);
    let pending = PendingConnect {
        owner: owner.to_string(),
        server: server.id.clone(),
        verifier: seal_under(p, &vault, verifier.as_bytes(), &pending_context(&key)),
        browser: digest(&browser),
        issuer: found.metadata.issuer.clone(),
        expires_ms: p.clock().now_ms() + CONNECT_TTL_MS,
    };
    p.connections().hold(&key, &pending).await?;
    Ok(Started {
        authorize_url: authorize_url(&found, &callback(base, &server.id), &state, &verifier),
        browser,
    })
}

/// The authorization request (RFC 6749 § 4.1.1 with PKCE and `resource`).
fn authorize_url(found: &Found, redirect: &str, state: &str, verifier: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", &found.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce_challenge(verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &found.resource);
    if !found.scopes.is_empty() {
        q.append_pair("scope", &found.scopes.join(" "));
    }
    // `offline_access` asks OpenID providers for a refresh token, which
    // they grant only after consent.
    if found.scopes.iter().any(|s| s == "offline_access") {
        q.append_pair("prompt", "consent");
    }
    let sep = if found.metadata.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{}{sep}{}",
        found.metadata.authorization_endpoint,
        q.finish()
    )
}

/// What the callback brought.
pub(crate) struct Callback<'a> {
    pub state: &'a str,
    pub code: Option<&'a str>,
    /// The authorization server's `error`, when it sent one instead.
    pub error: Option<&'a str>,
    /// The binding cookies the browser presented.
    pub browsers: &'a [String],
    /// The authorization server's `iss`, when it names itself (RFC 9207).
    pub issuer: Option<&'a str>,
    /// The server whose callback this came to.
    pub server: &'a str,
}

/// Finishes a connect; the server connected and its owner.
pub(crate) async fn finish<P: Platform>(
    cache: &OAuthCache,
    p: &P,
    servers: impl Fn(&str) -> Option<(Server, Box<OAuthClient>)>,
    back: &Callback<'_>,
    base: &str,
) -> Result<(String, String), GatewayError> {
    let now = p.clock().now_ms();
    let key = digest(back.state);
    let pending = p.connections().take(&key, now).await?.ok_or_else(|| {
        GatewayError::Conflict("this connect link was used already or expired; start again".into())
    })?;
    let (owner, server_id) = (pending.owner.as_str(), pending.server.as_str());
    let failed = |why: &str| {
        audit::record(&connection_event(
            "connect_failed",
            owner,
            server_id,
            Some(why),
        ));
    };
    if back.server != pending.server {
        // An answer for one server's flow brought to another's callback:
        // a mix-up, whoever arranged it.
        failed("wrong_callback");
        return Err(GatewayError::Conflict(
            "this answer came back to another server's address; start again".into(),
        ));
    }
    if !back.browsers.iter().any(|b| digest(b) == pending.browser) {
        failed("other_browser");
        return Err(GatewayError::Forbidden {
            message: "this connect was started in another browser; start it again from your own"
                .into(),
            challenge: None,
        });
    }
    // RFC 9207 § 2.4: an answer naming another issuer than the one the
    // flow went to is a mix-up; never exchange its code.
    if back
        .issuer
        .is_some_and(|iss| iss.trim_end_matches('/') != pending.issuer.trim_end_matches('/'))
    {
        failed("issuer_mismatch");
        return Err(GatewayError::Conflict(
            "the answer names another authorization server than the one this connect went to"
                .into(),
        ));
    }
    if let Some(error) = back.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(64)
            .collect();
        failed(&error);
        return Err(GatewayError::Conflict(format!(
            "the authorization server did not grant access ({error})"
        )));
    }
    let code = back
        .code
        .ok_or_else(|| GatewayError::InvalidRequest("the callback carries no code".into()))?;
    let Some((server, oauth)) = servers(server_id) else {
        failed("unknown_server");
        return Err(GatewayError::UnknownServer(server_id.to_string()));
    };
    let found = cache.found(p, &server, &oauth, base).await?;
    if found.metadata.issuer != pending.issuer {
        failed("issuer_changed");
        return Err(GatewayError::Conflict(
            "the server's authorization server changed; start again".into(),
        ));
    }
    // RFC 9207 § 2.4: a server that says it names itself must have.
    if found
        .metadata
        .authorization_response_iss_parameter_supported
        == Some(true)
        && back.issuer.is_none()
    {
        failed("issuer_missing");
        return Err(GatewayError::Conflict(
            "the answer does not name its authorization server, which says it always does; start again".into(),
        ));
    }
    let vault = cache.vault(p).await?;
    let verifier = vault
        .open(&pending.verifier, &pending_context(&key))
        .and_then(|v| String::from_utf8(v).ok())
        .ok_or_else(|| {
            GatewayError::Conflict("this connect cannot be finished; start again".into())
        })?;
    let http = http_for(p, &server);
    let redirect = callback(base, server_id);
    let t = match grants::exchange(&http, &found, code, &verifier, &redirect).await {
        Ok(t) => t,
        Err(grants::Refusal::Refused(code)) => {
            failed(&code);
            return Err(GatewayError::Conflict(format!(
                "the authorization server refused the code ({code}); start again"
            )));
        }
        Err(grants::Refusal::Failed(message)) => {
            failed("unreachable");
            return Err(http.fail(format!("exchanging the code failed: {message}")));
        }
    };
    let now = p.clock().now_ms();
    let tokens = Tokens {
        access: t.access_token,
        refresh: t.refresh_token,
    };
    let mut generation = [0u8; 8];
    p.random_bytes(&mut generation);
    let record = ConnectionRecord {
        owner: owner.to_string(),
        server: server_id.to_string(),
        // Random, so each connect's generations are its own (Spin claims them).
        generation: u64::from_le_bytes(generation) >> 16,
        sealed: seal(p, &vault, owner, server_id, &tokens),
        expires_ms: super::refresh::expiry(now, t.expires_in),
        refreshable: tokens.refresh.is_some(),
        scope: t.scope.unwrap_or_default(),
        connected_ms: now,
        refreshed_ms: 0,
        refreshing_until_ms: 0,
    };
    p.connections().put(&record).await?;
    audit::record(&connection_event("connected", owner, server_id, None));
    Ok((owner.to_string(), server_id.to_string()))
}
