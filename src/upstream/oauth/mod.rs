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

/// How long a refresher holds a record before another may try.
const LEASE_MS: u64 = 15_000;
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

/// This gateway's redirect URI.
pub(crate) fn callback(base: &str) -> String {
    format!("{base}/connect/callback")
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
            &callback(base),
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
        let deadline = p.clock().now_ms() + LEASE_MS + 5_000;
        loop {
            let Some(current) = record else {
                return Err(self
                    .prompt(p, base, owner, &server.id, "not connected")
                    .await);
            };
            let now = p.clock().now_ms();
            let Some(tokens) = open(&vault, &current) else {
                // Sealed under another key (CONNECTIONS_KEY changed): unusable.
                store.remove(owner, &server.id).await?;
                let why = "the stored connection cannot be opened";
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
                Some(refresh) => {
                    match self
                        .refresh(p, (server, oauth), current, &refresh, base)
                        .await?
                    {
                        Refreshed::Token(access) => return Ok(format!("Bearer {access}")),
                        Refreshed::Lost => record = store.get(owner, &server.id).await?,
                    }
                }
                None if current.expires_ms > now => {
                    // Not refreshable but not expired yet: use it to the end.
                    return Ok(format!("Bearer {}", tokens.access));
                }
                None => {
                    store.remove(owner, &server.id).await?;
                    let why = "the access token expired and cannot be refreshed";
                    return Err(self.prompt(p, base, owner, &server.id, why).await);
                }
            }
        }
    }

    /// One refresh of `current`, if this call wins the record.
    async fn refresh<P: Platform>(
        &self,
        p: &P,
        (server, oauth): (&Server, &OAuthClient),
        current: ConnectionRecord,
        refresh_token: &str,
        base: &str,
    ) -> Result<Refreshed, GatewayError> {
        let store = p.connections();
        let now = p.clock().now_ms();
        let held = ConnectionRecord {
            generation: current.generation + 1,
            refreshing_until_ms: now + LEASE_MS,
            ..current.clone()
        };
        if !store.replace(&held, current.generation).await? {
            return Ok(Refreshed::Lost);
        }
        let owner = current.owner.as_str();
        let release = |generation: u64| ConnectionRecord {
            generation,
            refreshing_until_ms: 0,
            ..current.clone()
        };
        let found = match self.found(p, server, oauth, base).await {
            Ok(f) => f,
            Err(e) => {
                store
                    .replace(&release(held.generation + 1), held.generation)
                    .await?;
                return Err(e);
            }
        };
        let http = http_for(p, server);
        match grants::refresh(&http, &found, refresh_token).await {
            Ok(t) => {
                let vault = self.vault(p).await?;
                let tokens = Tokens {
                    access: t.access_token.clone(),
                    // Rotated, or the same one again (RFC 6749 § 6).
                    refresh: t.refresh_token.clone().or(Some(refresh_token.to_string())),
                };
                let now = p.clock().now_ms();
                let fresh = ConnectionRecord {
                    generation: held.generation + 1,
                    sealed: seal(p, &vault, owner, &server.id, &tokens),
                    expires_ms: t.expires_in.map_or(0, |s| now + s * 1000),
                    refreshable: true,
                    scope: t.scope.clone().unwrap_or(current.scope.clone()),
                    refreshed_ms: now,
                    refreshing_until_ms: 0,
                    ..current.clone()
                };
                if !store.replace(&fresh, held.generation).await? {
                    // Revoked (or connected anew) meanwhile: that stands.
                    return Ok(Refreshed::Lost);
                }
                audit::record(&connection_event("refreshed", owner, &server.id, None));
                Ok(Refreshed::Token(t.access_token))
            }
            Err(Refusal::Refused(code)) => {
                store.remove(owner, &server.id).await?;
                audit::record(&connection_event(
                    "refresh_failed",
                    owner,
                    &server.id,
                    Some(&code),
                ));
                let why = format!("the authorization server refused the refresh ({code})");
                Err(self.prompt(p, base, owner, &server.id, &why).await)
            }
            Err(Refusal::Failed(message)) => {
                store
                    .replace(&release(held.generation + 1), held.generation)
                    .await?;
                audit::record(&connection_event(
                    "refresh_failed",
                    owner,
                    &server.id,
                    Some("unreachable"),
                ));
                Err(http.fail(format!("refreshing the token failed: {message}")))
            }
        }
    }

    /// Marks `owner`'s token for `server` expired (the server refused it):
    /// the next use refreshes it, or asks to connect again.
    pub(crate) async fn expire<P: Platform>(
        &self,
        p: &P,
        owner: &str,
        server: &str,
    ) -> Result<(), GatewayError> {
        let store = p.connections();
        if let Some(current) = store.get(owner, server).await? {
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
