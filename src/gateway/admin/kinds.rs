//! What the admin API manages: each kind of configuration document, where
//! it lives in KV, how its id is spelled, and the check every write passes.
//!
//! The checks are the gateway's own parsers (`Server::parse`,
//! `Model::parse`, `Issuer::parse`, `Policy::parse`, the API-key record), so a document the
//! admin API stores is one the gateway serves; what fails is answered 400
//! with the document's path and the parser's reason, and nothing is stored.

use crate::config::models::{self, Model};
use crate::config::registry::{self, Server};
use crate::error::GatewayError;
use crate::governance::policy::{Policy, POLICY_KEY};
use crate::identity::config::{ApiKeyRecord, Issuer, APIKEY_PREFIX, ISSUER_PREFIX};
use serde::Deserialize;

/// A document's text at most (a policy of some hundred rules fits).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// Server groups' descriptions live under this prefix (`groups/{name}`).
pub(crate) const GROUP_PREFIX: &str = "groups/";

/// One kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Servers,
    Models,
    Groups,
    Issuers,
    ApiKeys,
    Policy,
}

/// A server group as stored: what it is for. Servers name their group in
/// their own entry (`"group"`); a group in use cannot be deleted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    #[allow(dead_code)]
    description: String,
}

impl Kind {
    /// The kind a path segment names (`/admin/{kind}`).
    pub(crate) fn from_segment(segment: &str) -> Option<Kind> {
        Some(match segment {
            "servers" => Kind::Servers,
            "models" => Kind::Models,
            "groups" => Kind::Groups,
            "issuers" => Kind::Issuers,
            "apikeys" => Kind::ApiKeys,
            "policy" => Kind::Policy,
            _ => return None,
        })
    }

    /// The path segment, also the document path's first part.
    pub(crate) fn segment(self) -> &'static str {
        match self {
            Kind::Servers => "servers",
            Kind::Models => "models",
            Kind::Groups => "groups",
            Kind::Issuers => "issuers",
            Kind::ApiKeys => "apikeys",
            Kind::Policy => "policy",
        }
    }

    /// The KV prefix of its documents (the policy is one key).
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Servers => registry::KEY_PREFIX,
            Kind::Models => models::KEY_PREFIX,
            Kind::Groups => GROUP_PREFIX,
            Kind::Issuers => ISSUER_PREFIX,
            Kind::ApiKeys => APIKEY_PREFIX,
            Kind::Policy => POLICY_KEY,
        }
    }

    /// The kind and id of KV key `key` (`None`: not a document the admin
    /// API or `make seed` manages).
    pub(crate) fn of_key(key: &str) -> Option<(Kind, Option<&str>)> {
        if key == POLICY_KEY {
            return Some((Kind::Policy, None));
        }
        [
            Kind::Servers,
            Kind::Models,
            Kind::Groups,
            Kind::Issuers,
            Kind::ApiKeys,
        ]
        .into_iter()
        .find_map(|kind| {
            let id = key.strip_prefix(kind.prefix())?;
            kind.valid_id(id).then_some((kind, Some(id)))
        })
    }

    /// The KV key of document `id` (`None` for the policy).
    pub(crate) fn key(self, id: Option<&str>) -> String {
        match id {
            Some(id) => format!("{}{id}", self.prefix()),
            None => self.prefix().to_string(),
        }
    }

    /// Whether `id` is a valid id of this kind (server ids as the registry
    /// takes them; names of groups and issuers; API keys' SHA-256, hex).
    pub(crate) fn valid_id(self, id: &str) -> bool {
        match self {
            Kind::Servers => crate::protocol::names::valid_server_id(id),
            Kind::Models => models::valid_name(id),
            Kind::ApiKeys => id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            Kind::Groups | Kind::Issuers => {
                !id.is_empty()
                    && !id.starts_with('.')
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            }
            Kind::Policy => false,
        }
    }

    /// Checks a document with the gateway's own parser; the text stored is
    /// the JSON re-serialized compactly (the same content).
    pub(crate) fn check(self, id: Option<&str>, text: &str) -> Result<String, GatewayError> {
        let path = self.path(id);
        let bad = |reason: String| GatewayError::BadDocument {
            path: path.clone(),
            reason,
        };
        let too_big = |n: usize| {
            bad(format!(
                "the document is {n} bytes; at most {MAX_DOCUMENT_BYTES}"
            ))
        };
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(too_big(text.len()));
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        if !value.is_object() {
            return Err(bad("must be a JSON object".into()));
        }
        // What is stored, which can be longer than what was sent (`1e9`
        // becomes `1000000000.0`).
        let compact = value.to_string();
        if compact.len() > MAX_DOCUMENT_BYTES {
            return Err(too_big(compact.len()));
        }
        let id = id.unwrap_or_default();
        match self {
            Kind::Servers => Server::parse(id, &compact).map(drop),
            Kind::Models => Model::parse(id, &compact).map(drop),
            Kind::Groups => serde_json::from_str::<GroupSpec>(&compact)
                .map(drop)
                .map_err(|e| e.to_string()),
            Kind::Issuers => Issuer::parse(id, &compact).map(drop),
            Kind::ApiKeys => serde_json::from_str::<ApiKeyRecord>(&compact)
                .map_err(|e| e.to_string())
                .and_then(|r| match r.subject.trim().is_empty() {
                    true => Err("subject is empty".into()),
                    false => Ok(()),
                }),
            Kind::Policy => Policy::parse(&compact).map(drop),
        }
        .map_err(|reason| bad(strip_invalid_json(reason)))?;
        Ok(compact)
    }

    /// How the admin API and the audit trail name a document: `servers/x`,
    /// `policy`; an API key by the first 16 digits of its hash.
    pub(crate) fn path(self, id: Option<&str>) -> String {
        match self.shown_id(id) {
            Some(id) => format!("{}/{id}", self.segment()),
            None => self.segment().to_string(),
        }
    }

    /// A document's id as answers show it: an API key's hash only by its
    /// first 16 digits (the whole hash of a weak key could be cracked).
    pub(crate) fn shown_id(self, id: Option<&str>) -> Option<String> {
        match (self, id) {
            (Kind::ApiKeys, Some(id)) => Some(id.chars().take(16).collect()),
            (_, id) => id.map(str::to_string),
        }
    }
}

/// Checks the document KV would hold under `key` with the gateway's own
/// parsers, as the admin API does before it stores one: the compact text
/// to store, or the document's path and why it is refused (`make seed`).
pub fn check_document(key: &str, text: &str) -> Result<String, (String, String)> {
    let (kind, id) = Kind::of_key(key).ok_or_else(|| {
        (
            key.to_string(),
            "not a key the gateway reads (servers/{id}, groups/{name}, auth/issuers/{name}, \
             auth/apikeys/{sha256}, policy)"
                .to_string(),
        )
    })?;
    kind.check(id, text).map_err(|e| match e {
        GatewayError::BadDocument { path, reason } => (path, reason),
        other => (key.to_string(), other.to_string()),
    })
}

/// The parsers say "invalid JSON: ..." for what is a schema problem here
/// (the text was JSON): keep their reason.
fn strip_invalid_json(reason: String) -> String {
    match reason.strip_prefix("invalid JSON: ") {
        Some(rest) => rest.to_string(),
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(kind: Kind, id: Option<&str>, text: &str) -> (String, String) {
        match kind.check(id, text) {
            Err(GatewayError::BadDocument { path, reason }) => (path, reason),
            other => panic!("expected a bad document, got {other:?}"),
        }
    }

    #[test]
    fn each_kind_is_checked_by_the_gateways_own_parser() {
        let server = r#"{"endpoints":[{"region":"us","url":"https://a.example/mcp"}]}"#;
        assert!(Kind::Servers.check(Some("a"), server).is_ok());
        let (path, why) = reason(Kind::Servers, Some("a"), r#"{"endpoints":[]}"#);
        assert_eq!(path, "servers/a");
        assert!(why.contains("at least one endpoint"), "{why}");
        let (_, why) = reason(
            Kind::Servers,
            Some("a"),
            r#"{"endpoints":[{"region":"us","url":"ftp://x"}]}"#,
        );
        assert!(why.starts_with("endpoints[0]"), "{why}");
        let (_, why) = reason(Kind::Servers, Some("a"), r#"{"endpoint":[]}"#);
        assert!(why.contains("unknown field `endpoint`"), "{why}");
        let (_, why) = reason(Kind::Policy, None, r#"{"rules":[{"effect":"maybe"}]}"#);
        assert!(!why.is_empty());
        let (path, why) = reason(Kind::Issuers, Some("idp"), r#"{"issuer":"https://i"}"#);
        assert_eq!(
            (path.as_str(), why.as_str()),
            ("issuers/idp", "needs jwks_uri, jwks or hs256_secret")
        );
        let (_, why) = reason(Kind::ApiKeys, Some(&"a".repeat(64)), r#"{"subject":" "}"#);
        assert_eq!(why, "subject is empty");
        assert!(Kind::Groups
            .check(Some("prod"), r#"{"description":"production"}"#)
            .is_ok());
        let (_, why) = reason(Kind::Groups, Some("prod"), "[1]");
        assert_eq!(why, "must be a JSON object");
        let big = format!(r#"{{"description":"{}"}}"#, "x".repeat(MAX_DOCUMENT_BYTES));
        assert!(reason(Kind::Groups, Some("g"), &big).1.contains("at most"));
    }

    #[test]
    fn keys_name_their_kind() {
        assert_eq!(Kind::of_key("policy"), Some((Kind::Policy, None)));
        assert_eq!(Kind::of_key("servers/a"), Some((Kind::Servers, Some("a"))));
        assert_eq!(
            Kind::of_key("auth/issuers/idp"),
            Some((Kind::Issuers, Some("idp")))
        );
        assert_eq!(Kind::of_key("servers/a/b"), None);
        assert_eq!(Kind::of_key("cache/snapshot"), None);
        let (path, why) = check_document("servers/a", "{}").unwrap_err();
        assert_eq!(path, "servers/a");
        assert!(why.contains("endpoints"), "{why}");
        assert!(check_document("nonsense", "{}").is_err());
    }

    #[test]
    fn ids_and_paths() {
        assert!(Kind::Servers.valid_id("notes"));
        assert!(!Kind::Servers.valid_id("a__b"));
        assert!(!Kind::Groups.valid_id("../x"));
        assert!(!Kind::Groups.valid_id(".."));
        assert!(!Kind::ApiKeys.valid_id("abc"));
        let hash = "0123456789abcdef".repeat(4);
        assert_eq!(Kind::ApiKeys.path(Some(&hash)), "apikeys/0123456789abcdef");
        assert_eq!(Kind::Servers.key(Some("x")), "servers/x");
        assert_eq!(Kind::Policy.key(None), "policy");
    }
}
