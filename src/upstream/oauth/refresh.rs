//! Using a connection: the caller's access token for each call, refreshed
//! shortly before it expires, one refresh per token at a time.
//!
//! The refresher holds the record (a generation-checked write, its hold
//! outlasting the refresh's own requests); other calls wait for its
//! result. A refused grant (`invalid_grant`) ends the connection and the
//! user is asked to connect again; anything else fails the call and keeps
//! it. An upstream's 401 expires only the token it refused.

use super::grants::{self, Refusal};
use super::{connection_event, http_for, open, seal, OAuthCache, Tokens};
use crate::config::credentials::OAuthClient;
use crate::config::Server;
use crate::error::GatewayError;
use crate::observe::audit;
use crate::ports::{Clock, ConnectionRecord, Connections, Platform};

/// How often a call waiting for another's refresh looks again.
const WAIT_STEP_MS: u64 = 100;
/// A token is refreshed this long before it expires (at most; a quarter of
/// its lifetime when that is shorter).
const REFRESH_BEFORE_MS: u64 = 30_000;
/// How many times one call loses a record to another's change.
const MAX_LOST: usize = 16;

impl OAuthCache {
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
        // Waiting is bounded by the deadline; losing the record to others by
        // a count: one that keeps changing under this call (or a claim a
        // crashed instance left on Spin) ends in an error, never a spin.
        let mut lost = 0;
        loop {
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
                    Refreshed::Lost if lost < MAX_LOST => {
                        lost += 1;
                        p.clock().sleep(WAIT_STEP_MS).await;
                        record = store.get(owner, &server.id).await?;
                    }
                    Refreshed::Lost => {
                        return Err(GatewayError::Unavailable(format!(
                            "the connection to '{}' kept changing while this call waited for it",
                            server.id
                        )))
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
