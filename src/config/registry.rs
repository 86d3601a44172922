//! The server registry: which upstream MCP servers exist, where they run, and how
//! the gateway talks to them.
//!
//! Each server is one KV entry under `servers/{id}` holding a [`ServerSpec`] as
//! JSON. Entries are parsed independently: a bad entry is left out with a clear
//! message (logged and listed in [`Registry::problems`]) and never takes the
//! other servers down with it.

use super::credentials::{CredentialSpec, Credentials};
use super::glob::Globs;
use crate::protocol::names;
use serde::Deserialize;
use std::rc::Rc;

/// The KV key prefix of server entries.
pub(crate) const KEY_PREFIX: &str = "servers/";

/// Default time an upstream has to answer (response headers, or a whole list).
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 300_000;

/// A server entry as stored in KV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSpec {
    /// Defaults to the id in the KV key; when given, it must match it.
    pub id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Server group, such as an environment (dev, staging, prod).
    #[serde(default)]
    pub group: Option<String>,
    /// Regional endpoints, in fallback order.
    pub endpoints: Vec<EndpointSpec>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub tools: Option<ToolFilterSpec>,
    /// Whether callers without credentials may use this server (off by default).
    #[serde(default)]
    pub anonymous: bool,
    /// What the gateway presents upstream (never the caller's own token).
    #[serde(default)]
    pub credentials: CredentialSpec,
    /// The protocol era the server speaks, when the operator knows it; left
    /// out, the gateway learns it with `server/discover`.
    #[serde(default)]
    pub era: Option<Era>,
}

/// The era an operator declares for a server (`"era"` in its entry).
///
/// Declared, it is never probed: a modern client reaches a `dual` or
/// `modern` server without a session from its very first request, also
/// where nothing outlives a request (Spin) and learning would otherwise be
/// kept in the caller's bridge record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Sessions only (2025-11-25 and before).
    Legacy,
    /// Both: sessions for legacy clients, stateless 2026-07-28 requests.
    Dual,
    /// 2026-07-28 only (`initialize` is refused).
    Modern,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointSpec {
    pub region: String,
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolFilterSpec {
    /// When present, only tools matching one of these patterns are exposed.
    pub include: Option<Vec<String>>,
    /// Tools matching any of these are never exposed (wins over include).
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// A checked server.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    pub id: String,
    pub description: String,
    pub group: String,
    pub endpoints: Vec<Endpoint>,
    pub timeout_ms: u64,
    pub tools: ToolFilter,
    pub anonymous: bool,
    pub credentials: Credentials,
    /// Declared by the operator, else learned (see [`Era`]).
    pub era: Option<Era>,
}

/// One regional deployment of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub region: String,
    pub url: String,
}

/// Which of a server's tools the gateway exposes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolFilter {
    include: Option<Globs>,
    exclude: Globs,
}

impl ToolFilter {
    pub(crate) fn allows(&self, tool: &str) -> bool {
        let included = self.include.as_ref().is_none_or(|inc| inc.lists(tool));
        included && !self.exclude.lists(tool)
    }

    /// Whether the filter lets everything through (lists can then pass unparsed).
    pub(crate) fn is_open(&self) -> bool {
        self.include.is_none() && self.exclude.is_empty()
    }
}

impl Server {
    /// Parses one KV entry. `key_id` is the id from the key (`servers/{id}`).
    pub fn parse(key_id: &str, json: &str) -> Result<Server, String> {
        let spec: ServerSpec =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
        Server::try_from_spec(key_id, spec)
    }

    fn try_from_spec(key_id: &str, spec: ServerSpec) -> Result<Server, String> {
        let id = spec.id.unwrap_or_else(|| key_id.to_string());
        if id != key_id {
            return Err(format!(
                "id '{id}' does not match its key '{KEY_PREFIX}{key_id}'"
            ));
        }
        if !names::valid_server_id(&id) {
            return Err(format!(
                "id '{id}' must be 1-48 characters of [A-Za-z0-9_-], without '__' and without a leading or trailing '_'"
            ));
        }
        let endpoints = parse_endpoints(spec.endpoints)?;
        let timeout_ms = spec.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(format!(
                "timeout_ms must be 1..={MAX_TIMEOUT_MS}, got {timeout_ms}"
            ));
        }
        let filter = spec.tools.unwrap_or_default();
        let tools = ToolFilter {
            include: filter
                .include
                .map(|l| Globs::parse(&l, "tools.include"))
                .transpose()?,
            exclude: Globs::parse(&filter.exclude, "tools.exclude")?,
        };
        let credentials = Credentials::from_spec(&id, spec.credentials)?;
        Ok(Server {
            id,
            description: spec.description,
            group: spec.group.unwrap_or_else(|| "default".into()),
            endpoints,
            timeout_ms,
            tools,
            anonymous: spec.anonymous,
            credentials,
            era: spec.era,
        })
    }
}

/// Checks regional endpoints (servers' and models'): at least one, each
/// region once, lower-cased, each URL http(s) with a host.
pub(crate) fn parse_endpoints(specs: Vec<EndpointSpec>) -> Result<Vec<Endpoint>, String> {
    if specs.is_empty() {
        return Err("needs at least one endpoint".into());
    }
    let mut endpoints: Vec<Endpoint> = Vec::with_capacity(specs.len());
    for (i, ep) in specs.into_iter().enumerate() {
        let region = ep.region.trim().to_ascii_lowercase();
        if region.is_empty() {
            return Err(format!("endpoints[{i}]: region is empty"));
        }
        if endpoints.iter().any(|e| e.region == region) {
            return Err(format!("endpoints[{i}]: region '{region}' appears twice"));
        }
        check_url(&ep.url).map_err(|e| format!("endpoints[{i}]: {e}"))?;
        endpoints.push(Endpoint {
            region,
            url: ep.url,
        });
    }
    Ok(endpoints)
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("url '{url}' is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("url '{url}' must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("url '{url}' has no host"));
    }
    Ok(())
}

/// The parsed registry: good servers in id order, and what was wrong with the rest.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub servers: Vec<Rc<Server>>,
    pub problems: Vec<String>,
}

impl Registry {
    /// Builds the registry from `(key, value)` KV entries.
    pub fn from_entries<I>(entries: I) -> Registry
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut reg = Registry::default();
        for (key, value) in entries {
            let key_id = key.strip_prefix(KEY_PREFIX).unwrap_or(&key);
            match Server::parse(key_id, &value) {
                Ok(server) => reg.servers.push(Rc::new(server)),
                Err(why) => reg.problems.push(format!("{key}: {why}")),
            }
        }
        reg.servers.sort_by(|a, b| a.id.cmp(&b.id));
        reg
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Rc<Server>> {
        self.servers.iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, json: &str) -> (String, String) {
        (format!("{KEY_PREFIX}{key}"), json.to_string())
    }

    #[test]
    fn parses_a_full_entry() {
        let s = Server::parse(
            "github",
            r#"{"description":"GitHub","group":"prod","timeout_ms":500,
                "endpoints":[{"region":"EU","url":"https://eu.example/mcp"},{"region":"us","url":"http://us.example:8080/mcp"}],
                "tools":{"include":["read_*","search"],"exclude":["read_secret"]}}"#,
        )
        .unwrap();
        assert_eq!(s.id, "github");
        assert_eq!(s.group, "prod");
        assert_eq!(s.endpoints[0].region, "eu");
        assert_eq!(s.timeout_ms, 500);
        assert!(s.tools.allows("read_file"));
        assert!(s.tools.allows("search"));
        assert!(!s.tools.allows("read_secret"));
        assert!(!s.tools.allows("delete_repo"));
        assert_eq!(s.era, None, "learned unless declared");
        let declared = r#"{"era":"dual","endpoints":[{"region":"us","url":"http://a/"}]}"#;
        assert_eq!(Server::parse("d", declared).unwrap().era, Some(Era::Dual));
        let wrong = r#"{"era":"2026","endpoints":[{"region":"us","url":"http://a/"}]}"#;
        assert!(Server::parse("d", wrong)
            .unwrap_err()
            .contains("unknown variant"));
    }

    #[test]
    fn bad_entries_are_reported_and_skipped() {
        let reg = Registry::from_entries(vec![
            entry(
                "ok",
                r#"{"endpoints":[{"region":"us","url":"http://127.0.0.1:1/mcp"}]}"#,
            ),
            entry("noeps", r#"{"endpoints":[]}"#),
            entry(
                "badurl",
                r#"{"endpoints":[{"region":"us","url":"ftp://x/mcp"}]}"#,
            ),
            entry(
                "dup",
                r#"{"endpoints":[{"region":"us","url":"http://a/"},{"region":"US","url":"http://b/"}]}"#,
            ),
            entry("typo", r#"{"endpoint":[]}"#),
            entry(
                "mismatch",
                r#"{"id":"other","endpoints":[{"region":"us","url":"http://a/"}]}"#,
            ),
            entry(
                "bad__id",
                r#"{"endpoints":[{"region":"us","url":"http://a/"}]}"#,
            ),
            entry(
                "slow",
                r#"{"timeout_ms":0,"endpoints":[{"region":"us","url":"http://a/"}]}"#,
            ),
            entry("notjson", "{"),
        ]);
        assert_eq!(reg.servers.len(), 1);
        assert_eq!(reg.servers[0].id, "ok");
        let all = reg.problems.join("\n");
        for want in [
            "servers/noeps: needs at least one endpoint",
            "servers/badurl: endpoints[0]: url 'ftp://x/mcp' must be http or https",
            "servers/dup: endpoints[1]: region 'us' appears twice",
            "servers/typo: invalid JSON: unknown field `endpoint`",
            "servers/mismatch: id 'other' does not match its key 'servers/mismatch'",
            "servers/bad__id: id 'bad__id' must be",
            "servers/slow: timeout_ms must be",
            "servers/notjson: invalid JSON",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
    }

    #[test]
    fn servers_are_ordered_by_id() {
        let ep = r#"{"endpoints":[{"region":"us","url":"http://a/"}]}"#;
        let reg = Registry::from_entries(vec![entry("zeta", ep), entry("alpha", ep)]);
        let ids: Vec<_> = reg.servers.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        assert!(reg.get("zeta").is_some() && reg.get("nope").is_none());
    }
}
