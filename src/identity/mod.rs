//! Identity: who is calling, known for certain, and what upstreams learn of it.
//!
//! - [`credential`]: reading the bearer token or API key off a request.
//! - [`config`]: trusted issuers and API keys from KV, parsed into checked types.
//! - [`jwks`]: JSON Web Key Sets, fetched and cached, refreshed on an unknown
//!   `kid` at most once per interval.
//! - [`jwt`]: verifying an inbound JWT (RS256, ES256, EdDSA; HS256 only when
//!   configured) and mapping its claims to a [`Principal`].
//! - [`authenticate`]: the phase itself, with a cache of verified tokens.
//! - [`resource`]: the OAuth protected-resource metadata (RFC 9728) and the
//!   `WWW-Authenticate` challenges.
//! - [`mint`]: the short-lived JWTs the gateway signs for each upstream.

pub mod authenticate;
pub mod config;
pub mod credential;
pub mod jwks;
pub mod jwt;
pub mod mint;
pub mod resource;

use serde::{Deserialize, Serialize};

/// The caller, as every later phase sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub subject: String,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the caller proved who it is: `jwt:{issuer}`, `apikey` or `anonymous`.
    #[serde(default)]
    pub via: String,
}

impl Principal {
    /// The caller of a server the registry opens to anonymous use.
    pub fn anonymous() -> Principal {
        Principal {
            subject: "anonymous".into(),
            teams: Vec::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            via: "anonymous".into(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.via == "anonymous"
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// SHA-256 of `data` as lower-case hex (API key storage, token cache keys).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
