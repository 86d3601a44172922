//! The demo registry in kv-seed/ must parse: `make dev` and users' `wrangler kv
//! bulk put` load it as is, so a typo there would only show up at run time.

use mcp_edge::config::Registry;

#[test]
fn every_seeded_server_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kv-seed/servers");
    let mut entries = Vec::new();
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let id = path.file_stem().unwrap().to_str().unwrap().to_string();
        entries.push((
            format!("servers/{id}"),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    assert!(
        entries.len() >= 2,
        "the demo registry has at least two servers"
    );
    let registry = Registry::from_entries(entries.clone());
    assert!(registry.problems.is_empty(), "{:?}", registry.problems);
    assert_eq!(registry.servers.len(), entries.len());
}
