//! Identity: who is calling, known for certain, and what upstreams learn of it.
//! Pure checks over presented credentials and parsed configuration; reading
//! KV, fetching JWKS and caching live in the gateway's
//! [`Authenticator`](crate::gateway::authenticator::Authenticator).
//!
//! - [`credential`]: reading the bearer token or API key off a request.
//! - [`config`]: trusted issuers and API keys from KV, parsed into checked types.
//! - [`jwks`]: JSON Web Key Sets parsed into keys, and the record of fetched
//!   sets (refreshed on an unknown `kid` at most once per interval).
//! - [`jwt`]: verifying an inbound JWT (RS256, ES256, EdDSA; HS256 only when
//!   configured) and mapping its claims to a [`Principal`].
//! - [`resource`]: the OAuth protected-resource metadata (RFC 9728) and the
//!   `WWW-Authenticate` challenges.
//! - [`mint`]: the short-lived JWTs the gateway signs for each upstream.
//! - [`sealed`]: an upstream's `requestState`, bound to the caller and the
//!   request it was given for before a client holds it.
//! - [`oauth`]: the gateway as an OAuth client of third-party authorization
//!   servers on a user's behalf (PKCE, metadata, token answers, challenges).
//! - [`vault`]: users' tokens sealed at rest, and connect tickets.

pub mod config;
pub mod credential;
pub mod jwks;
pub mod jwt;
pub(crate) mod mint;
pub(crate) mod oauth;
pub(crate) mod resource;
pub(crate) mod sealed;
pub(crate) mod vault;

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
    /// Anonymous callers only: the client address they are told apart by
    /// (`CF-Connecting-IP` on Workers, the peer address on Spin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl Principal {
    /// The caller of a server the registry opens to anonymous use, from an
    /// unknown address.
    pub fn anonymous() -> Principal {
        Principal {
            subject: "anonymous".into(),
            teams: Vec::new(),
            roles: Vec::new(),
            scopes: Vec::new(),
            via: "anonymous".into(),
            client: None,
        }
    }

    /// An anonymous caller known by its client address. An IPv6 address
    /// counts by its /64 (one host gets a whole /64 to pick from, so
    /// telling its addresses apart would make every request a new caller).
    pub(crate) fn anonymous_from(client: Option<&str>) -> Principal {
        Principal {
            client: client.map(network_of),
            ..Principal::anonymous()
        }
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        self.via == "anonymous"
    }

    /// Who this is, qualified by where the identity comes from: the issuer
    /// of a JWT (`jwt:{issuer}|{subject}`), an API key (`apikey|{subject}`),
    /// or an anonymous caller's address (`anonymous@{address}|anonymous`).
    /// An API key `alice` and a JWT `alice` from some issuer are two callers.
    /// Everything kept per caller (sessions, limits, approvals, minted
    /// credentials) is keyed by this.
    pub(crate) fn key(&self) -> String {
        if self.is_anonymous() {
            let from = self.client.as_deref().unwrap_or("unknown");
            format!("anonymous@{from}|{}", self.subject)
        } else {
            format!("{}|{}", self.via, self.subject)
        }
    }

    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// The network an address identifies a caller by: an IPv4 address itself,
/// the /64 of an IPv6 address (written `prefix::/64`); anything else as is.
fn network_of(addr: &str) -> String {
    match addr.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
        Ok(std::net::IpAddr::V6(v6)) => v6.to_ipv4_mapped().expect("mapped").to_string(),
        Ok(ip) => ip.to_string(),
        Err(_) => addr.trim().to_string(),
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
    fn keys_qualify_subjects_by_their_source() {
        let key = Principal {
            subject: "alice".into(),
            via: "apikey".into(),
            ..Principal::anonymous()
        };
        let jwt = Principal {
            via: "jwt:https://idp.example".into(),
            ..key.clone()
        };
        assert_eq!(key.key(), "apikey|alice");
        assert_eq!(jwt.key(), "jwt:https://idp.example|alice");
        let a = Principal::anonymous_from(Some("203.0.113.9"));
        let b = Principal::anonymous_from(Some("198.51.100.7"));
        assert_ne!(a.key(), b.key(), "anonymous callers are told apart");
        assert_eq!(a.key(), "anonymous@203.0.113.9|anonymous");
        let v6 = |a: &str| Principal::anonymous_from(Some(a)).key();
        assert_eq!(
            v6("2001:db8:1:2:aaaa::1"),
            v6("2001:db8:1:2:ffff::9"),
            "one /64 is one caller"
        );
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:203.0.113.9"), a.key(), "v4-mapped is v4");
        assert_eq!(Principal::anonymous().key(), "anonymous@unknown|anonymous");
    }

    #[test]
    fn sha256_matches_the_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
