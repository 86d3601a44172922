//! Each user's own OAuth token for a third-party server (registry
//! `credentials: {"type": "oauth"}`): what a call to such a server carries,
//! how a token is refreshed, and the connect prompt when there is none.
//!
//! - A user connects once (`/connect/{server}`, [`flow`]); the tokens are
//!   stored per principal and server ([`crate::ports::Connections`]), sealed
//!   ([`crate::identity::vault`]).
//! - A call carries that user's access token and nobody else's. Shortly
//!   before it expires it is refreshed, one refresh per token at a time: the
//!   refresher holds the record (a generation-checked write), the others
//!   wait for its result. A refused refresh removes the connection and the
//!   user is asked to connect again; an unreachable authorization server
//!   fails the call and keeps the connection.
//! - With no usable token the call is not forwarded: the caller gets
//!   [`GatewayError::ConnectRequired`] with a connect URL bound to them.
//!
//! [`discovery`] finds the authorization server and client, [`grants`]
//! talks to it.

pub(crate) mod discovery;
pub(crate) mod flow;
pub(crate) mod grants;

use crate::cache::Bounded;
use crate::config::credentials::OAuthClient;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::vault::{self, Ticket, Vault, KEY_SECRET, TICKET_TTL_MS};
use crate::observe::audit::{self, Audit};
use crate::ports::{Clock, ConnectionRecord, Connections, Platform};
use grants::Found;
use grants::{Http, Refusal};
use serde::{Deserialize, Serialize};
use std::cell::OnceCell;
use std::rc::Rc;

/// How many times one call reads a record that changed under it.
const MAX_ROUNDS: usize = 64;
/// How often a call waiting for another's refresh looks again.
const WAIT_STEP_MS: u64 = 100;
/// A token is refreshed this long before it expires (at most; a quarter of
/// its lifetime when that is shorter).
const REFRESH_BEFORE_MS: u64 = 30_000;

/// What one isolate keeps for connections: the vault, once read, and the
/// servers' discovered endpoints.
#[derive(Default)]
pub(crate) struct OAuthCache {
    vault: OnceCell<Option<Rc<Vault>>>,
    found: Bounded<String, Rc<Found>>,
}

/// A connection's tokens, as sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct Tokens {
    #[serde(rename = "a")]
    pub access: String,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

/// This gateway's redirect URI for `server`: one per server, so an answer
/// meant for one authorization server is never taken for another's
/// (RFC 9700 § 4.4.2).
pub(crate) fn callback(base: &str, server: &str) -> String {
    format!("{base}/connect/{server}/callback")
}

impl OAuthCache {
    /// The vault of `CONNECTIONS_KEY`; without it no connection can be made
    /// or used (fail closed).
    pub(crate) async fn vault<P: Platform>(&self, p: &P) -> Result<Rc<Vault>, GatewayError> {
        if self.vault.get().is_none() {
            let vault = match p.secret(KEY_SECRET).await {
                Some(secret) => match Vault::from_secret(&secret) {
                    Ok(v) => Some(Rc::new(v)),
                    Err(e) => {
                        tracing::error!("{e}");
                        None
                    }
                },
                None => None,
            };
            let _ = self.vault.set(vault);
        }
        self.vault.get().cloned().flatten().ok_or_else(|| {
            GatewayError::Unavailable(format!(
                "connections to OAuth servers need the {KEY_SECRET} secret (32 bytes or more)"
            ))
        })
    }

    /// `server`'s authorization server and client.
    pub(crate) async fn found<P: Platform>(
        &self,
        p: &P,
        server: &Server,
        oauth: &OAuthClient,
        base: &str,
    ) -> Result<Rc<Found>, GatewayError> {
        let vault = self.vault(p).await?;
        let http = http_for(p, server);
        discovery::find(
            p,
            &http,
            &self.found,
            (server, oauth),
            &vault,
            &callback(base, &server.id),
        )
        .await
    }

    /// The prompt to connect `server`, with a URL only `owner` can use.
    pub(crate) async fn prompt<P: Platform>(
        &self,
        p: &P,
        base: &str,
        owner: &str,
        server: &str,
        reason: &str,
    ) -> GatewayError {
        let vault = match self.vault(p).await {
            Ok(v) => v,
            Err(e) => return e,
        };
        let ticket = vault.ticket(&Ticket {
            owner: owner.to_string(),
            server: server.to_string(),
            expires_ms: p.clock().now_ms() + TICKET_TTL_MS,
        });
        GatewayError::ConnectRequired {
            server: server.to_string(),
            url: format!("{base}/connect/{server}?ticket={ticket}"),
            reason: reason.to_string(),
        }
    }

    /// The `Authorization` value of a call by `owner` to `server`: their
    /// access token, refreshed if it is about to expire.
    pub(crate) async fn bearer<P: Platform>(
        &self,
        p: &P,
        (server, oauth): (&Server, &OAuthClient),
        owner: &str,
        base: &str,
    ) -> Result<String, GatewayError> {
        let vault = self.vault(p).await?;
        let store = p.connections();
        let mut record = store.get(owner, &server.id).await?;
        let deadline = p.clock().now_ms() + lease_ms(server) + 5_000;
        // Bounded: a record that keeps changing under this call (or a claim
        // a crashed instance left on Spin) ends in an error, never a spin.
        for _ in 0..MAX_ROUNDS {
            let Some(current) = record else {
                return Err(self
                    .prompt(p, base, owner, &server.id, "not connected")
                    .await);
            };
            let now = p.clock().now_ms();
            let Some(tokens) = open(&vault, &current) else {
                // Sealed under another key (CONNECTIONS_KEY changed, or two
                // deployments disagree): unusable here, but kept, so the
                // right key still opens it; connecting again replaces it.
                let why = "the stored connection cannot be opened with this gateway's key";
                return Err(self.prompt(p, base, owner, &server.id, why).await);
            };
            if !due(&current, now) {
                return Ok(format!("Bearer {}", tokens.access));
            }
            if current.refreshing_until_ms > now && now < deadline {
                // Another call is refreshing this token: wait for its result.
                p.clock().sleep(WAIT_STEP_MS).await;
                record = store.get(owner, &server.id).await?;
                continue;
            }
            match tokens.refresh {
                Some(refresh) => match self
                    .refresh(p, (server, oauth), current, &refresh, base)
                    .await?
                {
                    Refreshed::Token(access) => return Ok(format!("Bearer {access}")),
                    Refreshed::Lost => {
                        p.clock().sleep(WAIT_STEP_MS).await;
                        record = store.get(owner, &server.id).await?;
                    }
                },
                None if current.expires_ms > now => {
                    // Not refreshable but not expired yet: use it to the end.
                    return Ok(format!("Bearer {}", tokens.access));
                }
                None => {
                    let why = "the access token expired and cannot be refreshed";
                    return Err(self.prompt(p, base, owner, &server.id, why).await);
                }
            }
        }
        Err(GatewayError::Unavailable(format!(
            "the connection to '{}' kept changing while this call waited for it",
            server.id
        )))
    }

    /// One refresh of `current`, if this call wins the record. The
    /// authorization server is found before the record is held, and the
    /// hold outlasts every request the refresh makes.
    async fn refresh<P: Platform>(
        &self,
        p: &P,
        (server, oauth): (&Server, &OAuthClient),
        current: ConnectionRecord,
        refresh_token: &str,
        base: &str,
    ) -> Result<Refreshed, GatewayError> {
        let found = self.found(p, server, oauth, base).await?;
        let store = p.connections();
        let now = p.clock().now_ms();
        let held = ConnectionRecord {
            generation: current.generation + 1,
            refreshing_until_ms: now + lease_ms(server),
            ..current.clone()
        };
        if !store.replace(&held, current.generation).await? {
            return Ok(Refreshed::Lost);
        }
        let owner = current.owner.as_str();
        let http = http_for(p, server);
        match grants::refresh(&http, &found, refresh_token).await {
            Ok(t) => {
                let vault = self.vault(p).await?;
                let rotated = t.refresh_token.clone();
                let tokens = Tokens {
                    access: t.access_token.clone(),
                    // Rotated, or the same one again (RFC 6749 § 6).
                    refresh: rotated.clone().or(Some(refresh_token.to_string())),
                };
                let now = p.clock().now_ms();
                let fresh = ConnectionRecord {
                    generation: held.generation + 1,
                    sealed: seal(p, &vault, owner, &server.id, &tokens),
                    expires_ms: expiry(now, t.expires_in),
                    refreshable: true,
                    scope: t.scope.clone().unwrap_or(current.scope.clone()),
                    refreshed_ms: now,
                    refreshing_until_ms: 0,
                    ..current.clone()
                };
                if !store.replace(&fresh, held.generation).await? {
                    // Disconnected (or connected anew) meanwhile: that
                    // stands, and the token just issued must not outlive it.
                    if let Some(rotated) = rotated {
                        if let Err(e) =
                            grants::revoke(&http, &found, &rotated, "refresh_token").await
                        {
                            tracing::warn!(server = %server.id, "revoking an orphaned token failed: {e}");
                        }
                    }
                    return Ok(Refreshed::Lost);
                }
                audit::record(&connection_event("refreshed", owner, &server.id, None));
                Ok(Refreshed::Token(t.access_token))
            }
            // Only a refused grant is final (RFC 6749 § 5.2): the refresh
            // token will never work again, so the user must connect again.
            Err(Refusal::Refused(code)) if code == "invalid_grant" => {
                if store.replace(&release(&held), held.generation).await? {
                    store.remove(owner, &server.id).await?;
                }
                audit::record(&connection_event(
                    "refresh_failed",
                    owner,
                    &server.id,
                    Some(&code),
                ));
                let why = format!("the authorization server refused the refresh ({code})");
                Err(self.prompt(p, base, owner, &server.id, &why).await)
            }
            // Anything else (throttled, a client misconfigured, unreachable)
            // may pass: the connection stays, the call fails.
            Err(other) => {
                store.replace(&release(&held), held.generation).await?;
                let why = match &other {
                    Refusal::Refused(code) => code.as_str(),
                    Refusal::Failed(_) => "unreachable",
                };
                audit::record(&connection_event(
                    "refresh_failed",
                    owner,
                    &server.id,
                    Some(why),
                ));
                Err(http.fail(format!("refreshing the token failed: {other}")))
            }
        }
    }

    /// Marks `owner`'s token for `server` expired because the server
    /// refused it (`sent`: the `Authorization` value the refused request
    /// carried), so the next use refreshes it. Only that very token: one
    /// refreshed meanwhile, or held by a refresh in progress, is left alone.
    pub(crate) async fn expire<P: Platform>(
        &self,
        p: &P,
        (owner, server): (&str, &str),
        sent: Option<&str>,
    ) -> Result<(), GatewayError> {
        let store = p.connections();
        let vault = self.vault(p).await?;
        let Some(current) = store.get(owner, server).await? else {
            return Ok(());
        };
        let now = p.clock().now_ms();
        let same = open(&vault, &current)
            .is_some_and(|t| sent == Some(format!("Bearer {}", t.access).as_str()));
        if same && current.refreshing_until_ms <= now {
            let expired = ConnectionRecord {
                generation: current.generation + 1,
                expires_ms: 1,
                ..current.clone()
            };
            store.replace(&expired, current.generation).await?;
        }
        Ok(())
    }

    /// Removes a connection at once, then revokes its tokens at the
    /// authorization server where it can; whether it did. `by` names who
    /// asked (for the trail).
    pub(crate) async fn disconnect<P: Platform>(
        &self,
        p: &P,
        server: Option<(&Server, &OAuthClient)>,
        (owner, server_id): (&str, &str),
        (by, base): (&str, &str),
    ) -> Result<Option<bool>, GatewayError> {
        let Some(removed) = p.connections().remove(owner, server_id).await? else {
            return Ok(None);
        };
        let mut revoked = false;
        let vault = self.vault(p).await?;
        if let (Some((server, oauth)), Some(tokens)) = (server, open(&vault, &removed)) {
            match self.found(p, server, oauth, base).await {
                Ok(found) => {
                    let http = http_for(p, server);
                    let (token, hint) = match &tokens.refresh {
                        Some(r) => (r.as_str(), "refresh_token"),
                        None => (tokens.access.as_str(), "access_token"),
                    };
                    match grants::revoke(&http, &found, token, hint).await {
                        Ok(done) => revoked = done,
                        Err(e) => {
                            tracing::warn!(server = %server.id, "revoking a token failed: {e}")
                        }
                    }
                }
                Err(e) => tracing::warn!(server = %server.id, "revoking a token failed: {e}"),
            }
        }
        let why = if revoked {
            "revoked at the authorization server"
        } else {
            "removed"
        };
        audit::record(&Audit::Connection {
            event: "revoked",
            principal: owner,
            server: server_id,
            by: Some(by),
            why: Some(why),
        });
        Ok(Some(revoked))
    }
}

enum Refreshed {
    Token(String),
    /// Another call holds the record, or it changed: read it again.
    Lost,
}

/// How long a refresher holds a record before another may try: longer
/// than the token request can take (its timeout, twice over, and margin).
fn lease_ms(server: &Server) -> u64 {
    server.timeout_ms.saturating_mul(2).saturating_add(10_000)
}

/// `held` given back: not held any more, a new generation.
fn release(held: &ConnectionRecord) -> ConnectionRecord {
    ConnectionRecord {
        generation: held.generation + 1,
        refreshing_until_ms: 0,
        ..held.clone()
    }
}

/// When a token of `expires_in` seconds from `now` expires (0: not said);
/// absurd lifetimes are taken as a year.
pub(crate) fn expiry(now: u64, expires_in: Option<u64>) -> u64 {
    expires_in.map_or(0, |s| now.saturating_add(s.min(365 * 24 * 3600) * 1000))
}

/// Whether the record's access token should be refreshed now.
fn due(record: &ConnectionRecord, now: u64) -> bool {
    if record.expires_ms == 0 {
        return false;
    }
    let since = record.refreshed_ms.max(record.connected_ms);
    let lifetime = record.expires_ms.saturating_sub(since);
    now + REFRESH_BEFORE_MS.min(lifetime / 4) >= record.expires_ms
}

pub(crate) fn http_for<'a, P: Platform>(p: &'a P, server: &'a Server) -> Http<'a, P> {
    Http {
        p,
        server: &server.id,
        timeout_ms: server.timeout_ms,
    }
}

/// The record's tokens, if they open under this vault.
pub(crate) fn open(vault: &Vault, record: &ConnectionRecord) -> Option<Tokens> {
    let context = vault::connection_context(&record.owner, &record.server);
    let plain = vault.open(&record.sealed, &context)?;
    serde_json::from_slice(&plain).ok()
}

/// `tokens` sealed for `owner`'s record of `server`.
pub(crate) fn seal<P: Platform>(
    p: &P,
    vault: &Vault,
    owner: &str,
    server: &str,
    tokens: &Tokens,
) -> String {
    let mut nonce = [0u8; 24];
    p.random_bytes(&mut nonce);
    let plain = serde_json::to_vec(tokens).expect("serializes");
    vault.seal(&plain, &vault::connection_context(owner, server), nonce)
}

pub(crate) fn connection_event<'a>(
    event: &'a str,
    principal: &'a str,
    server: &'a str,
    why: Option<&'a str>,
) -> Audit<'a> {
    Audit::Connection {
        event,
        principal,
        server,
        by: None,
        why,
    }
}
