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
//! talks to it, `refresh` gives each call its token.

pub(crate) mod discovery;
pub(crate) mod flow;
pub(crate) mod grants;
mod refresh;

use crate::cache::Bounded;
use crate::config::credentials::OAuthClient;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::vault::{self, Ticket, Vault, KEY_SECRET, TICKET_TTL_MS};
use crate::observe::audit::{self, Audit};
use crate::ports::{Clock, ConnectionRecord, Connections, Platform};
use grants::Found;
use grants::Http;
use serde::{Deserialize, Serialize};
use std::cell::OnceCell;
use std::rc::Rc;

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
    let plain = serde_json::to_vec(tokens).expect("serializes");
    seal_under(p, vault, &plain, &vault::connection_context(owner, server))
}

/// `plain` sealed under `context` with a fresh random nonce: the one place
/// a nonce is drawn.
pub(crate) fn seal_under<P: Platform>(p: &P, vault: &Vault, plain: &[u8], context: &str) -> String {
    let mut nonce = [0u8; 24];
    p.random_bytes(&mut nonce);
    vault.seal(plain, context, nonce)
}

/// 32 random bytes, base64url: a PKCE verifier, a `state`, a browser
/// binding, a confirmation token.
pub(crate) fn random_token<P: Platform>(p: &P) -> String {
    let mut bytes = [0u8; 32];
    p.random_bytes(&mut bytes);
    crate::identity::oauth::random_token(bytes)
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
