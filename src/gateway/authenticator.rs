//! Turning a presented credential into a verified [`Principal`], or a 401.
//!
//! The checks themselves are pure ([`identity`](crate::identity)); this is
//! the part that reads KV, fetches JWKS and remembers, so a hot isolate stays
//! cheap: the trusted issuers (reloaded from KV like the registry), fetched
//! JWKS, verified tokens by hash until they expire (a hot client pays one
//! signature check, not one per request), and API-key lookups for a short
//! time (`APIKEY_CACHE_MS`, which bounds how long a revoked key keeps working
//! in an isolate that had just seen it).

use super::entry_sets::EntrySetCache;
use crate::cache::Bounded;
use crate::error::GatewayError;
use crate::identity::config::{ApiKeyRecord, TrustConfig, APIKEY_PREFIX};
use crate::identity::credential::{self, Credential};
use crate::identity::jwks::{JwksCache, KeySet};
use crate::identity::jwt::{self, Failure, Verified};
use crate::identity::{sha256_hex, Principal};
use crate::ports::{with_timeout, Clock, HttpClient, Kv, Platform, PortError};
use std::rc::Rc;

/// How long an API-key lookup (hit or miss) is reused.
pub(crate) const APIKEY_CACHE_MS: u64 = 30_000;
/// Time a JWKS fetch may take.
const JWKS_TIMEOUT_MS: u64 = 5_000;

/// What the authentication phase keeps for one isolate.
pub(crate) struct Authenticator {
    trust: EntrySetCache<TrustConfig>,
    jwks: JwksCache,
    /// Verified tokens by hash, with the audiences their issuer pins (empty:
    /// the endpoint's own, which differ from endpoint to endpoint).
    verified: Bounded<String, (Verified, Vec<String>)>,
    /// API-key lookups by hash: the principal, or `None` for an unknown or
    /// revoked key.
    apikeys: Bounded<String, Option<Principal>>,
}

impl Authenticator {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        Authenticator {
            trust: EntrySetCache::new(ttl_ms),
            jwks: JwksCache::default(),
            verified: Bounded::default(),
            apikeys: Bounded::default(),
        }
    }

    /// Forgets the API-key lookups and the trusted issuers (tests, admin
    /// reloads).
    pub(crate) fn invalidate(&self) {
        self.trust.invalidate();
        self.apikeys.clear();
        // A token verified under an issuer since deleted or changed is
        // verified again (or refused) from now on.
        self.verified.clear();
    }

    /// Trusted issuers, reloaded from KV after the TTL (the last good set
    /// stays in force if KV fails).
    pub(crate) async fn trust<P: Platform>(&self, p: &P) -> Result<Rc<TrustConfig>, GatewayError> {
        self.trust.get(p).await
    }

    /// Authenticates a request. `Ok(None)` means no credential was presented;
    /// a presented credential that fails is always an error, never anonymous.
    /// `audiences` are the `aud` values this endpoint accepts by default.
    pub(crate) async fn authenticate<P: Platform>(
        &self,
        p: &P,
        headers: &http::HeaderMap,
        audiences: &[String],
    ) -> Result<Option<Principal>, GatewayError> {
        match credential::from_headers(headers)? {
            Credential::None => Ok(None),
            Credential::ApiKey(key) => self.api_key(p, &key).await.map(Some),
            Credential::Jwt(token) => self.jwt(p, &token, audiences).await.map(Some),
        }
    }

    async fn api_key<P: Platform>(&self, p: &P, key: &str) -> Result<Principal, GatewayError> {
        let hash = sha256_hex(key.as_bytes());
        let now = p.clock().now_ms();
        let found = match self.apikeys.get(&hash, now) {
            Some(found) => found,
            None => {
                let raw = p
                    .kv()
                    .get(&format!("{APIKEY_PREFIX}{hash}"))
                    .await
                    .map_err(port)?;
                let found = raw
                    .and_then(|r| serde_json::from_str::<ApiKeyRecord>(&r).ok())
                    .filter(|r| !r.revoked)
                    .map(|r| r.principal());
                self.apikeys
                    .insert(hash, found.clone(), now + APIKEY_CACHE_MS, now);
                found
            }
        };
        found.ok_or_else(|| unauthorized("unknown or revoked API key"))
    }

    async fn jwt<P: Platform>(
        &self,
        p: &P,
        token: &str,
        audiences: &[String],
    ) -> Result<Principal, GatewayError> {
        let now = p.clock().now_ms();
        let hash = sha256_hex(token.as_bytes());
        if let Some((v, pinned)) = self.verified.get(&hash, now) {
            // The token's own `aud` against this endpoint, on every use: a
            // token for one server must not open another because it was
            // seen there first.
            let accepted = if pinned.is_empty() {
                audiences
            } else {
                &pinned
            };
            // And its issuer still trusted: removing an issuer cuts off the
            // tokens it issued within the registry TTL everywhere, not at
            // their expiry.
            let iss = v.principal.via.strip_prefix("jwt:").unwrap_or_default();
            let trusted = self.trust(p).await?.by_issuer(iss).is_some();
            if trusted && v.is_for(accepted) {
                return Ok(v.principal);
            }
        }
        let iss = jwt::claimed_issuer(token).map_err(|f| unauthorized(&f.message()))?;
        let trust = self.trust(p).await?;
        let issuer = trust
            .by_issuer(&iss)
            .ok_or_else(|| unauthorized(&format!("issuer '{iss}' is not trusted")))?;
        let accepted: &[String] = if issuer.audiences.is_empty() {
            audiences
        } else {
            &issuer.audiences
        };
        let hs256 = match &issuer.hs256_secret {
            Some(name) => p.secret(name).await.map(String::into_bytes),
            None => None,
        };
        let mut keys = self
            .keys(
                p,
                issuer.jwks_uri.as_deref(),
                &issuer.static_keys,
                now,
                false,
            )
            .await;
        let mut result = jwt::verify(token, issuer, &keys, hs256.as_deref(), accepted, now);
        if let (Err(Failure::UnknownKid(_)), Some(uri)) = (&result, &issuer.jwks_uri) {
            // A key rotation: refetch (rate-limited) and try once more.
            if self.jwks.may_refresh(uri, now, issuer.jwks_refresh_ms) {
                keys = self
                    .keys(p, Some(uri), &issuer.static_keys, now, true)
                    .await;
                result = jwt::verify(token, issuer, &keys, hs256.as_deref(), accepted, now);
            }
        }
        let verified = result.map_err(|f| unauthorized(&f.message()))?;
        let expires_ms = verified.expires_ms;
        self.verified.insert(
            hash,
            (verified.clone(), issuer.audiences.clone()),
            expires_ms,
            now,
        );
        Ok(verified.principal)
    }

    /// Inline keys plus the fetched set; fetches when nothing is cached yet,
    /// or when `refresh` (an unknown `kid`) asks for it.
    async fn keys<P: Platform>(
        &self,
        p: &P,
        uri: Option<&str>,
        inline: &KeySet,
        now: u64,
        refresh: bool,
    ) -> KeySet {
        let mut set = inline.clone();
        let Some(uri) = uri else { return set };
        let fetched = match self.jwks.get(uri) {
            Some(cached) if !refresh => Some(cached),
            _ => {
                let fresh = fetch_jwks(p, uri).await;
                if let Err(e) = &fresh {
                    tracing::warn!("JWKS fetch from {uri} failed: {e}");
                }
                self.jwks.record(uri, now, fresh.ok(), refresh);
                self.jwks.get(uri)
            }
        };
        if let Some(f) = fetched {
            set.keys.extend(f.keys);
        }
        set
    }
}

async fn fetch_jwks<P: Platform>(p: &P, uri: &str) -> Result<KeySet, String> {
    let req = http::Request::get(uri)
        .header(http::header::ACCEPT, crate::protocol::headers::JSON)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let resp = with_timeout(p.clock(), JWKS_TIMEOUT_MS, p.http().send(req))
        .await
        .ok_or("timed out")?
        .map_err(|e| e.0)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = resp.into_body().collect(256 * 1024).await?;
    KeySet::parse(&String::from_utf8_lossy(&body))
}

fn unauthorized(message: &str) -> GatewayError {
    GatewayError::Unauthorized {
        message: message.to_string(),
        challenge: None,
    }
}

fn port(e: PortError) -> GatewayError {
    GatewayError::Unavailable(format!("API keys could not be read: {}", e.0))
}
