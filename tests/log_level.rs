//! The log level a client sets on `/mcp` (`logging/setLevel`): kept with
//! the session, told to every server (also one met later), and enforced by
//! the gateway on call streams and on the merged GET stream, whatever an
//! upstream does with it.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{initialize, Harness};

fn levels_in(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["method"] == "notifications/message")
        .map(|e| e["params"]["level"].as_str().unwrap_or("?").to_string())
        .collect()
}

async fn session(h: &Harness) -> String {
    let r = h.post("/mcp", &initialize(1, "2025-06-18"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.header("mcp-session-id").unwrap()
}

fn on(sid: &str) -> Vec<(&str, &str)> {
    vec![
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-06-18"),
    ]
}

async fn set_level(h: &Harness, sid: &str, level: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel",
        "params": {"level": level}});
    h.post("/mcp", &body, &on(sid)).await.response()
}

async fn call_levels(h: &Harness, sid: &str, tool: &str) -> Vec<String> {
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}});
    let r = h.post("/mcp", &body, &on(sid)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    levels_in(&r.events())
}

#[tokio::test]
async fn without_a_level_every_log_message_passes() {
    let h = Harness::new();
    h.add(
        "alpha",
        MockServer::new("alpha").tools(&["log_levels"]),
        &["us"],
    );
    let sid = session(&h).await;
    assert_eq!(
        call_levels(&h, &sid, "alpha__log_levels").await,
        ["debug", "info", "warning", "error"]
    );
}

#[tokio::test]
async fn a_level_is_told_to_every_server_and_enforced_on_calls() {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["log_levels"]),
        &["us"],
    );
    let sid = session(&h).await;
    let r = set_level(&h, &sid, "warning").await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(alpha.count("logging/setLevel"), 1);
    // alpha ignores it; the gateway does not.
    assert_eq!(
        call_levels(&h, &sid, "alpha__log_levels").await,
        ["warning", "error"]
    );
    // A server registered since is told the level when it is met, and its
    // messages are held to it too.
    let beta = h.add(
        "beta",
        MockServer::new("beta").tools(&["log_levels"]),
        &["us"],
    );
    assert_eq!(
        call_levels(&h, &sid, "beta__log_levels").await,
        ["warning", "error"]
    );
    let told = beta
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("logging/setLevel"))
        .expect("beta told the level");
    assert_eq!(told.body["params"]["level"], "warning");
}

#[tokio::test]
async fn the_merged_stream_holds_to_the_level() {
    let h = Harness::new();
    let notes = ["debug", "error"]
        .into_iter()
        .map(|level| {
            json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": level, "data": level}})
        })
        .collect();
    h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).notices(notes),
        &["us"],
    );
    let sid = session(&h).await;
    set_level(&h, &sid, "notice").await;
    let reply = h.listen_mcp(&sid, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(levels_in(&reply.events()), ["error"], "{}", reply.text);
}

#[tokio::test]
async fn an_unknown_level_is_refused_and_nothing_changes() {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["log_levels"]),
        &["us"],
    );
    let sid = session(&h).await;
    let r = set_level(&h, &sid, "loud").await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("debug, info"),
        "{r}"
    );
    assert_eq!(alpha.count("logging/setLevel"), 0);
    assert_eq!(call_levels(&h, &sid, "alpha__log_levels").await.len(), 4);
}
