//! The authentication phase: credential -> verified [`Principal`], or a 401.
//!
//! Isolate-lived state keeps it cheap: the trusted issuers (reloaded from KV
//! like the registry), fetched JWKS, verified tokens by hash until they expire
//! (a hot client pays one signature check, not one per request), and API-key
//! lookups for a short time (`APIKEY_CACHE_MS`, which bounds how long a revoked
//! key keeps working in an isolate that had just seen it).

use super::config::{ApiKeyRecord, TrustConfig, APIKEY_PREFIX, ISSUER_PREFIX};
use super::credential::{self, Credential};
use super::jwks::{JwksCache, KeySet};
use super::jwt::{self, Failure, Verified};
use super::mint::{MintCache, Signer};
use super::{sha256_hex, Principal};
use crate::error::GatewayError;
use crate::ports::{Clock, Kv, Platform, PortError, Upstream};
use crate::upstream::client::with_timeout;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// How long an API-key lookup (hit or miss) is reused.
pub const APIKEY_CACHE_MS: u64 = 30_000;
/// Time a JWKS fetch may take.
const JWKS_TIMEOUT_MS: u64 = 5_000;
/// Name of the secret holding the upstream signing key (a private JWK).
pub const SIGNING_KEY_SECRET: &str = "UPSTREAM_SIGNING_KEY";

/// Identity state for one isolate.
pub struct AuthState {
    ttl_ms: u64,
    trust: RefCell<Option<(Rc<TrustConfig>, u64)>>,
    pub jwks: JwksCache,
    /// Verified tokens by hash, with the audiences their issuer pins (empty:
    /// the endpoint's own, which differ from endpoint to endpoint).
    verified: RefCell<HashMap<String, (Verified, Vec<String>)>>,
    apikeys: RefCell<HashMap<String, (Option<Principal>, u64)>>,
    signer: RefCell<Option<Option<Rc<Signer>>>>,
    pub minted: MintCache,
}

impl AuthState {
    pub fn new(ttl_ms: u64) -> Self {
        AuthState {
            ttl_ms,
            trust: RefCell::default(),
            jwks: JwksCache::default(),
            verified: RefCell::default(),
            apikeys: RefCell::default(),
            signer: RefCell::default(),
            minted: MintCache::default(),
        }
    }

    /// Forgets the trusted issuers and API-key lookups (tests, admin reloads).
    pub fn invalidate(&self) {
        *self.trust.borrow_mut() = None;
        self.apikeys.borrow_mut().clear();
    }

    /// Trusted issuers, reloaded from KV after the TTL (the last good set
    /// stays in force if KV fails).
    pub async fn trust<P: Platform>(&self, p: &P) -> Result<Rc<TrustConfig>, GatewayError> {
        let now = p.clock().now_ms();
        let cached = self.trust.borrow().clone();
        if let Some((cfg, at)) = &cached {
            if now.saturating_sub(*at) < self.ttl_ms {
                return Ok(cfg.clone());
            }
        }
        match load_trust(p.kv()).await {
            Ok(cfg) => {
                for problem in &cfg.problems {
                    tracing::error!("issuer entry skipped: {problem}");
                }
                let cfg = Rc::new(cfg);
                *self.trust.borrow_mut() = Some((cfg.clone(), now));
                Ok(cfg)
            }
            Err(e) => match cached {
                Some((cfg, _)) => {
                    tracing::warn!("issuer reload failed, keeping the previous set: {e}");
                    Ok(cfg)
                }
                None => Err(GatewayError::Unavailable(format!(
                    "trusted issuers could not be loaded: {e}"
                ))),
            },
        }
    }

    /// The upstream signing key, read once per isolate from its secret.
    pub async fn signer<P: Platform>(&self, p: &P) -> Option<Rc<Signer>> {
        if let Some(s) = self.signer.borrow().clone() {
            return s;
        }
        let signer = match p.secret(SIGNING_KEY_SECRET).await {
            Some(jwk) => match Signer::from_jwk(&jwk) {
                Ok(s) => Some(Rc::new(s)),
                Err(e) => {
                    tracing::error!("{SIGNING_KEY_SECRET} is not usable: {e}");
                    None
                }
            },
            None => None,
        };
        *self.signer.borrow_mut() = Some(signer.clone());
        signer
    }

    /// Authenticates a request. `Ok(None)` means no credential was presented;
    /// a presented credential that fails is always an error, never anonymous.
    /// `audiences` are the `aud` values this endpoint accepts by default.
    pub async fn authenticate<P: Platform>(
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
        let cached = self.apikeys.borrow().get(&hash).cloned();
        let found = match cached {
            Some((found, at)) if now.saturating_sub(at) < APIKEY_CACHE_MS => found,
            _ => {
                let raw = p
                    .kv()
                    .get(&format!("{APIKEY_PREFIX}{hash}"))
                    .await
                    .map_err(port)?;
                let found = raw
                    .and_then(|r| serde_json::from_str::<ApiKeyRecord>(&r).ok())
                    .filter(|r| !r.revoked)
                    .map(|r| r.principal());
                let mut keys = self.apikeys.borrow_mut();
                if keys.len() >= 10_000 {
                    keys.clear();
                }
                keys.insert(hash, (found.clone(), now));
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
        if let Some((v, pinned)) = self.verified.borrow().get(&hash) {
            // The token's own `aud` against this endpoint, on every use: a
            // token for one server must not open another because it was
            // seen there first.
            let accepted = if pinned.is_empty() { audiences } else { pinned };
            if now < v.expires_ms && v.is_for(accepted) {
                return Ok(v.principal.clone());
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
        let mut cache = self.verified.borrow_mut();
        if cache.len() >= 10_000 {
            cache.retain(|_, (v, _)| now < v.expires_ms);
        }
        cache.insert(hash, (verified.clone(), issuer.audiences.clone()));
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

async fn load_trust<K: Kv>(kv: &K) -> Result<TrustConfig, PortError> {
    let keys = kv.list(ISSUER_PREFIX).await?;
    let values = futures_util::future::join_all(keys.iter().map(|k| kv.get(k))).await;
    let mut entries = Vec::new();
    for (key, value) in keys.into_iter().zip(values) {
        if let Some(v) = value? {
            entries.push((key, v));
        }
    }
    Ok(TrustConfig::from_entries(entries))
}

async fn fetch_jwks<P: Platform>(p: &P, uri: &str) -> Result<KeySet, String> {
    let req = http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let resp = with_timeout(p.clock(), JWKS_TIMEOUT_MS, p.upstream().send(req))
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
