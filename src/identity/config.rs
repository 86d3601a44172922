//! Who the gateway trusts, as stored in KV and parsed into checked types.
//!
//! - `auth/issuers/{name}`: an [`IssuerSpec`], one per trusted token issuer.
//! - `auth/apikeys/{sha256 of the key, hex}`: an [`ApiKeyRecord`], one per
//!   service-account key; the key itself is never stored.

use super::jwks::{Alg, KeySet};
use super::Principal;
use serde::Deserialize;

pub(crate) const ISSUER_PREFIX: &str = "auth/issuers/";
pub(crate) const APIKEY_PREFIX: &str = "auth/apikeys/";

/// A trusted issuer as stored in KV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerSpec {
    /// The `iss` value tokens must carry.
    pub issuer: String,
    /// `aud` values accepted; default: this gateway's resource URLs (see README).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where to fetch the JWKS (refreshed on an unknown `kid`).
    pub jwks_uri: Option<String>,
    /// Keys given inline, used alone or before the fetched ones.
    pub jwks: Option<serde_json::Value>,
    /// Algorithms accepted; default RS256, ES256, EdDSA.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Name of a secret holding an HS256 key; enables HS256 (development only).
    pub hs256_secret: Option<String>,
    #[serde(default)]
    pub claims: ClaimNames,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway_secs: Option<u64>,
    /// Least time between two JWKS fetches caused by unknown `kid`s.
    pub jwks_refresh_secs: Option<u64>,
    /// Authorization server advertised in the protected-resource metadata
    /// (default: the issuer).
    pub authorization_server: Option<String>,
}

/// Which claims carry the principal's attributes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimNames {
    pub subject: String,
    pub teams: String,
    pub roles: String,
    pub scopes: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            subject: "sub".into(),
            teams: "groups".into(),
            roles: "roles".into(),
            scopes: "scope".into(),
        }
    }
}

/// A checked issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub jwks_uri: Option<String>,
    pub static_keys: KeySet,
    pub algorithms: Vec<Alg>,
    pub hs256_secret: Option<String>,
    pub claims: ClaimNames,
    pub leeway_secs: u64,
    pub jwks_refresh_ms: u64,
    pub authorization_server: String,
}

impl Issuer {
    pub fn parse(name: &str, json: &str) -> Result<Issuer, String> {
        let spec: IssuerSpec =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
        if spec.issuer.trim().is_empty() {
            return Err("issuer is empty".into());
        }
        let mut algorithms = Vec::new();
        for a in &spec.algorithms {
            algorithms
                .push(Alg::parse(a).ok_or_else(|| format!("algorithm '{a}' is not supported"))?);
        }
        if algorithms.is_empty() {
            algorithms = vec![Alg::Rs256, Alg::Es256, Alg::EdDsa];
        }
        if let Some(own) = spec
            .hs256_secret
            .as_deref()
            .filter(|n| crate::config::Settings::is_own(n))
        {
            return Err(format!(
                "hs256_secret '{own}' is one of the gateway's own settings or secrets"
            ));
        }
        if algorithms.contains(&Alg::Hs256) != spec.hs256_secret.is_some() {
            return Err("HS256 needs both \"HS256\" in algorithms and hs256_secret".into());
        }
        let static_keys = match &spec.jwks {
            Some(v) => KeySet::parse(&v.to_string()).map_err(|e| format!("jwks: {e}"))?,
            None => KeySet::default(),
        };
        if spec.jwks_uri.is_none() && static_keys.is_empty() && spec.hs256_secret.is_none() {
            return Err("needs jwks_uri, jwks or hs256_secret".into());
        }
        Ok(Issuer {
            name: name.to_string(),
            authorization_server: spec
                .authorization_server
                .unwrap_or_else(|| spec.issuer.clone()),
            issuer: spec.issuer,
            audiences: spec.audiences,
            jwks_uri: spec.jwks_uri,
            static_keys,
            algorithms,
            hs256_secret: spec.hs256_secret,
            claims: spec.claims,
            leeway_secs: spec.leeway_secs.unwrap_or(60).min(600),
            jwks_refresh_ms: spec.jwks_refresh_secs.unwrap_or(60).max(1) * 1000,
        })
    }
}

/// A service-account API key as stored in KV (under the key's SHA-256).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiKeyRecord {
    pub subject: String,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A revoked key is refused like an unknown one.
    #[serde(default)]
    pub revoked: bool,
}

impl ApiKeyRecord {
    pub(crate) fn principal(&self) -> Principal {
        Principal {
            subject: self.subject.clone(),
            teams: self.teams.clone(),
            roles: self.roles.clone(),
            scopes: self.scopes.clone(),
            via: "apikey".into(),
            client: None,
        }
    }
}

/// Every trusted issuer, and what was wrong with the entries left out.
#[derive(Debug, Clone, Default)]
pub struct TrustConfig {
    pub issuers: Vec<Issuer>,
    pub problems: Vec<String>,
}

impl TrustConfig {
    pub fn from_entries<I: IntoIterator<Item = (String, String)>>(entries: I) -> TrustConfig {
        let mut cfg = TrustConfig::default();
        for (key, value) in entries {
            let name = key.strip_prefix(ISSUER_PREFIX).unwrap_or(&key);
            match Issuer::parse(name, &value) {
                Ok(i) => cfg.issuers.push(i),
                Err(why) => cfg.problems.push(format!("{key}: {why}")),
            }
        }
        cfg
    }

    pub(crate) fn by_issuer(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_defaults() {
        let i = Issuer::parse(
            "corp",
            r#"{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks"}"#,
        )
        .unwrap();
        assert_eq!(i.algorithms, [Alg::Rs256, Alg::Es256, Alg::EdDsa]);
        assert_eq!(i.claims, ClaimNames::default());
        assert_eq!(i.authorization_server, "https://id.example");
        assert_eq!(i.leeway_secs, 60);
    }

    #[test]
    fn bad_issuers_are_reported_and_skipped() {
        let cfg = TrustConfig::from_entries(vec![
            (
                "auth/issuers/ok".to_string(),
                r#"{"issuer":"a","jwks_uri":"http://a/jwks"}"#.to_string(),
            ),
            (
                "auth/issuers/nokeys".to_string(),
                r#"{"issuer":"b"}"#.to_string(),
            ),
            (
                "auth/issuers/none".to_string(),
                r#"{"issuer":"c","jwks_uri":"x","algorithms":["none"]}"#.to_string(),
            ),
            (
                "auth/issuers/hs".to_string(),
                r#"{"issuer":"d","jwks_uri":"x","algorithms":["HS256"]}"#.to_string(),
            ),
            (
                "auth/issuers/typo".to_string(),
                r#"{"issuer":"e","jwks_url":"x"}"#.to_string(),
            ),
        ]);
        assert_eq!(cfg.issuers.len(), 1);
        let all = cfg.problems.join("\n");
        for want in [
            "auth/issuers/nokeys: needs jwks_uri, jwks or hs256_secret",
            "auth/issuers/none: algorithm 'none' is not supported",
            "auth/issuers/hs: HS256 needs both",
            "auth/issuers/typo: invalid JSON: unknown field `jwks_url`",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }
}
