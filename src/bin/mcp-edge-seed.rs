//! `mcp-edge-seed DIR`: checks a configuration folder (such as `kv-seed/`)
//! with the gateway's own parsers and prints it as the key-value list
//! `wrangler kv bulk put` and `scripts/seed.py` load.
//!
//! Each `DIR/{key}.json` is the document KV holds under `{key}`:
//! `servers/{id}.json`, `models/{name}.json`, `groups/{name}.json`, `auth/issuers/{name}.json`,
//! `policy.json`, and API keys' records as `auth/apikeys/{sha256}.json`
//! (the hash only: a key itself is never stored). Other files (a README)
//! are left alone. Any document that does not parse is reported as
//! `FILE: PATH: REASON` and nothing is printed: exit status 1.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: mcp-edge-seed DIR  (prints DIR's documents, checked, as a KV bulk list)");
        std::process::exit(2);
    };
    let root = Path::new(dir);
    let mut paths = Vec::new();
    if let Err(e) = files(root, &mut paths) {
        eprintln!("{dir}: {e}");
        std::process::exit(2);
    }
    paths.sort();
    let mut items = Vec::new();
    let mut failed = false;
    for path in &paths {
        let relative = path.strip_prefix(root).unwrap_or(path).with_extension("");
        let key: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let key = key.join("/");
        let checked = std::fs::read_to_string(path)
            .map_err(|e| (key.clone(), e.to_string()))
            .and_then(|text| mcp_edge::gateway::check_document(&key, &text));
        match checked {
            Ok(value) => items.push(serde_json::json!({"key": key, "value": value})),
            Err((doc, reason)) => {
                eprintln!("{}: {doc}: {reason}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    println!("{}", serde_json::Value::Array(items));
}
