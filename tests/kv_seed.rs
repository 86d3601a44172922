//! The demo configuration in kv-seed/ must pass the gateway's own checks:
//! `make dev` and `make seed` load it as is, so a typo there would only
//! show up at run time. Every document, through the same check the admin
//! API and `mcp-edge-seed` use.

use mcp_edge::config::Registry;
use mcp_edge::gateway::check_document;
use std::path::{Path, PathBuf};

fn documents(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            documents(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let key = path.strip_prefix(root).unwrap().with_extension("");
            out.push((key.to_str().unwrap().replace('\\', "/"), path));
        }
    }
}

#[test]
fn every_seeded_document_passes_the_gateways_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kv-seed");
    let mut found = Vec::new();
    documents(&root, &root, &mut found);
    found.sort();
    let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "auth/issuers/demo-as",
            "groups/dev",
            "models/demo",
            "policy",
            "servers/everything",
            "servers/notes"
        ],
        "the whole demo: servers, the demo model, the group, the issuer, the policy"
    );
    for (key, path) in &found {
        let text = std::fs::read_to_string(path).unwrap();
        if let Err((doc, why)) = check_document(key, &text) {
            panic!("{}: {doc}: {why}", path.display());
        }
    }
    let servers = found
        .iter()
        .filter(|(k, _)| k.starts_with("servers/"))
        .map(|(k, p)| (k.clone(), std::fs::read_to_string(p).unwrap()));
    let registry = Registry::from_entries(servers);
    assert!(registry.problems.is_empty(), "{:?}", registry.problems);
    assert_eq!(registry.servers.len(), 2);
}
