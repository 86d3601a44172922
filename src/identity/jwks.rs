//! JSON Web Key Sets: an issuer's public keys, parsed into the key types the
//! verifier needs, and the isolate-local cache of fetched sets.
//!
//! Each key's type fixes the one algorithm it may verify (RSA -> RS256, EC
//! P-256 -> ES256, OKP Ed25519 -> EdDSA), which is what makes algorithm
//! confusion impossible: a token's `alg` must match the key it names.

use jwt_compact::alg::{RsaPublicKey, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::HashMap;

/// Signature algorithms the gateway verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
    /// Shared-secret HMAC: development only, never taken from a JWKS.
    Hs256,
}

impl Alg {
    pub(crate) fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::Rs256,
            "ES256" => Alg::Es256,
            "EdDSA" => Alg::EdDsa,
            "HS256" => Alg::Hs256,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
        }
    }
}

/// Public key material, by algorithm.
#[derive(Clone)]
pub enum Material {
    Rsa(Box<StrongKey<RsaPublicKey>>),
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_compact::PublicKey),
}

impl Material {
    pub(crate) fn alg(&self) -> Alg {
        match self {
            Material::Rsa(_) => Alg::Rs256,
            Material::Es256(_) => Alg::Es256,
            Material::EdDsa(_) => Alg::EdDsa,
        }
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Material::{}", self.alg().name())
    }
}

/// One usable key.
#[derive(Debug, Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub material: Material,
}

/// A parsed key set. Keys the gateway cannot use (other curves, encryption
/// keys, RSA under 2048 bits) are skipped, not errors: an issuer may publish
/// more than the gateway needs.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    pub skipped: usize,
}

#[derive(Deserialize)]
struct Raw {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    pub fn parse(json: &str) -> Result<KeySet, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut set = KeySet::default();
        for v in raw.keys {
            match parse_key(&v) {
                Some(k) => set.keys.push(k),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token: by `kid` when the token names one, else the only
    /// key of the token's algorithm.
    pub(crate) fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut of_alg = self.keys.iter().filter(|k| k.material.alg() == alg);
                let first = of_alg.next();
                of_alg.next().is_none().then_some(first).flatten()
            }
        }
    }
}

fn parse_key(v: &serde_json::Value) -> Option<Key> {
    if v.get("use")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let kid = v.get("kid").and_then(|k| k.as_str()).map(str::to_string);
    let jwk: JsonWebKey<'_> = serde_json::from_value(v.clone()).ok()?;
    let material = match &jwk {
        JsonWebKey::Rsa { .. } => {
            let key = RsaPublicKey::try_from(&jwk).ok()?;
            Material::Rsa(Box::new(StrongKey::try_from(key).ok()?))
        }
        JsonWebKey::EllipticCurve { curve, .. } if curve == "P-256" => {
            Material::Es256(p256::ecdsa::VerifyingKey::try_from(&jwk).ok()?)
        }
        JsonWebKey::KeyPair { curve, .. } if curve == "Ed25519" => {
            Material::EdDsa(ed25519_compact::PublicKey::try_from(&jwk).ok()?)
        }
        _ => return None,
    };
    Some(Key { kid, material })
}

/// Fetched key sets by JWKS URL, for one isolate.
#[derive(Default)]
pub(crate) struct JwksCache {
    sets: RefCell<HashMap<String, Fetched>>,
}

#[derive(Clone)]
struct Fetched {
    set: KeySet,
    /// When the last refresh (a fetch caused by an unknown `kid`) was
    /// attempted, successful or not; 0 before the first one.
    refreshed_ms: u64,
}

impl JwksCache {
    /// The cached set for `uri`, if any.
    pub(crate) fn get(&self, uri: &str) -> Option<KeySet> {
        self.sets.borrow().get(uri).map(|f| f.set.clone())
    }

    /// Whether a refresh of `uri` may happen now: none yet, or the last one is
    /// older than `min_interval_ms` (so a flood of unknown `kid`s cannot turn
    /// into a flood of JWKS requests).
    pub(crate) fn may_refresh(&self, uri: &str, now_ms: u64, min_interval_ms: u64) -> bool {
        self.sets.borrow().get(uri).is_none_or(|f| {
            f.refreshed_ms == 0 || now_ms.saturating_sub(f.refreshed_ms) >= min_interval_ms
        })
    }

    /// Records a fetch (`refresh` when an unknown `kid` caused it); a failed
    /// one keeps the previous keys.
    pub(crate) fn record(&self, uri: &str, now_ms: u64, set: Option<KeySet>, refresh: bool) {
        let mut sets = self.sets.borrow_mut();
        let entry = sets.entry(uri.to_string()).or_insert_with(|| Fetched {
            set: KeySet::default(),
            refreshed_ms: 0,
        });
        if refresh {
            entry.refreshed_ms = now_ms.max(1);
        }
        if let Some(set) = set {
            entry.set = set;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","kid":"ec1","use":"sig",
        "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    const ED: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"ed1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    #[test]
    fn parses_usable_keys_and_skips_the_rest() {
        let json = format!(
            r#"{{"keys":[{EC},{ED},{{"kty":"EC","crv":"P-384","x":"a","y":"b"}},{{"kty":"oct","k":"c2VjcmV0"}},{{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}}]}}"#
        );
        let set = KeySet::parse(&json).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert_eq!(
            set.skipped, 3,
            "P-384, a symmetric key and an encryption key are skipped"
        );
        assert_eq!(
            set.find(Some("ec1"), Alg::Es256).unwrap().material.alg(),
            Alg::Es256
        );
        assert_eq!(
            set.find(None, Alg::EdDsa).unwrap().kid.as_deref(),
            Some("ed1")
        );
        assert!(set.find(Some("nope"), Alg::Es256).is_none());
        assert!(KeySet::parse("{}").is_err());
    }

    #[test]
    fn weak_rsa_keys_are_skipped() {
        // A 512-bit modulus: parses as RSA but is below the 2048-bit floor.
        let weak = r#"{"keys":[{"kty":"RSA","n":"vN4O2dRWiGN0K2nF_YMuPWIbljMHo3AwgUUW6f2gyZxmdn0p_oBS8hz2E8Pdet2XEYXmnMk9Iq9NuLpDaFDdkw","e":"AQAB"}]}"#;
        let set = KeySet::parse(weak).unwrap();
        assert!(set.is_empty());
        assert_eq!(set.skipped, 1);
    }

    #[test]
    fn refreshes_are_rate_limited() {
        let cache = JwksCache::default();
        cache.record("u", 1000, Some(KeySet::default()), false);
        assert!(
            cache.may_refresh("u", 1500, 60_000),
            "the first load is not a refresh"
        );
        cache.record("u", 2000, None, true);
        assert!(!cache.may_refresh("u", 30_000, 60_000));
        assert!(cache.may_refresh("u", 62_000, 60_000));
    }
}
