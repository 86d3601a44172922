//! spin.toml must let the component reach every upstream in the seeded
//! registry, every seeded issuer's JWKS and every seeded model of the agent
//! API: Spin refuses outbound requests
//! to hosts not listed in `allowed_outbound_hosts`, and the failure would
//! only show at run time.

use mcp_edge::config::Registry;
use std::path::Path;

const COMPONENT: &str = "mcp-edge";

/// `allowed_outbound_hosts` of the gateway component.
fn allowed_hosts(manifest: &str) -> Vec<String> {
    let doc: toml::Table = toml::from_str(manifest).expect("spin.toml is TOML");
    doc["component"][COMPONENT]["allowed_outbound_hosts"]
        .as_array()
        .expect("allowed_outbound_hosts is a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// Whether a Spin `allowed_outbound_hosts` entry (`scheme://host[:port]`, with
/// `*` for any scheme, host, port, or `*.` for subdomains) admits `url`.
fn allows(pattern: &str, url: &http::Uri) -> bool {
    let Some((scheme, rest)) = pattern.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest.trim_end_matches('/'), None),
    };
    let url_scheme = url.scheme_str().unwrap_or("");
    let url_host = url.host().unwrap_or("");
    let url_port = url
        .port_u16()
        .unwrap_or(if url_scheme == "https" { 443 } else { 80 });
    let scheme_ok = scheme == "*" || scheme == url_scheme;
    let host_ok = host == "*"
        || host == url_host
        || host
            .strip_prefix("*.")
            .is_some_and(|d| url_host.ends_with(&format!(".{d}")));
    let port_ok = match port {
        None => url.port_u16().is_none(),
        Some("*") => true,
        Some(p) => p.parse::<u16>() == Ok(url_port),
    };
    scheme_ok && host_ok && port_ok
}

/// Every seeded endpoint, issuer JWKS URL and model endpoint that no
/// allowed host admits.
fn missing(manifest: &str, registry: &Registry) -> Vec<String> {
    let allowed = allowed_hosts(manifest);
    registry
        .servers
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|ep| ep.url.clone())
        .chain(seeded_jwks())
        .chain(seeded_models())
        .filter(|url| {
            let uri: http::Uri = url.parse().unwrap();
            !allowed.iter().any(|a| allows(a, &uri))
        })
        .collect()
}

/// Every JSON document in `kv-seed/{folder}`.
fn seed_json(folder: &str) -> Vec<serde_json::Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kv-seed")
        .join(folder);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|f| {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

/// The `jwks_uri` of every seeded issuer.
fn seeded_jwks() -> Vec<String> {
    seed_json("auth/issuers")
        .iter()
        .filter_map(|issuer| issuer["jwks_uri"].as_str().map(str::to_string))
        .collect()
}

/// The endpoint URLs of every seeded model of the agent API.
fn seeded_models() -> Vec<String> {
    seed_json("models")
        .iter()
        .flat_map(|model| {
            model["endpoints"]
                .as_array()
                .expect("a seeded model lists its endpoints")
                .iter()
                .map(|ep| ep["url"].as_str().expect("an endpoint url").to_string())
        })
        .collect()
}

fn seeded() -> Registry {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kv-seed/servers");
    let entries = std::fs::read_dir(dir).unwrap().map(|f| {
        let path = f.unwrap().path();
        let id = path.file_stem().unwrap().to_str().unwrap().to_string();
        (
            format!("servers/{id}"),
            std::fs::read_to_string(&path).unwrap(),
        )
    });
    Registry::from_entries(entries)
}

fn manifest() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("spin.toml")).unwrap()
}

#[test]
fn spin_toml_allows_every_seeded_upstream() {
    let registry = seeded();
    assert!(!registry.servers.is_empty());
    assert_eq!(missing(&manifest(), &registry), Vec::<String>::new());
}

#[test]
fn the_check_fails_when_a_seeded_host_is_removed() {
    let registry = seeded();
    for host in allowed_hosts(&manifest()) {
        let without = manifest()
            .replace(&format!("\"{host}\","), "")
            .replace(&format!("\"{host}\""), "");
        assert!(
            allowed_hosts(&without).len() < allowed_hosts(&manifest()).len(),
            "{host} was removed"
        );
        let gone = missing(&without, &registry);
        assert!(!gone.is_empty(), "removing {host} must be caught");
        assert!(
            gone.iter().all(|url| url.starts_with(&host)),
            "{gone:?} vs {host}"
        );
    }
}

#[test]
fn spin_patterns() {
    let u = |s: &str| s.parse::<http::Uri>().unwrap();
    assert!(allows(
        "http://127.0.0.1:3001",
        &u("http://127.0.0.1:3001/mcp")
    ));
    assert!(!allows(
        "http://127.0.0.1:3001",
        &u("http://127.0.0.1:3002/mcp")
    ));
    assert!(!allows(
        "https://127.0.0.1:3001",
        &u("http://127.0.0.1:3001/mcp")
    ));
    assert!(allows(
        "https://*.example.com",
        &u("https://eu.example.com/mcp")
    ));
    assert!(!allows(
        "https://*.example.com",
        &u("https://example.org/mcp")
    ));
    assert!(allows("http://localhost:*", &u("http://localhost:9/mcp")));
    assert!(allows("*://*:*", &u("https://x.y:8443/mcp")));
    assert!(allows(
        "https://api.example.com",
        &u("https://api.example.com/mcp")
    ));
}

#[test]
fn spin_toml_declares_and_passes_every_setting() {
    let manifest: toml::Value = toml::from_str(&manifest()).unwrap();
    let declared = manifest["variables"].as_table().unwrap();
    let passed = manifest["component"]["mcp-edge"]["variables"]
        .as_table()
        .unwrap();
    for name in mcp_edge::config::Settings::VARIABLES {
        let lower = name.to_ascii_lowercase();
        assert!(
            declared.contains_key(&lower),
            "spin.toml [variables] lacks {lower}"
        );
        assert!(
            passed.contains_key(&lower),
            "spin.toml does not pass {lower} to the component"
        );
    }
}
