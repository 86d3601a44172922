//! `/mcp`'s merged GET stream resumes: each event's id says where every
//! upstream stream stands, and a reconnect with `Last-Event-ID` has each
//! upstream replay from there; an id that is not the stream's, or a place
//! an upstream cannot replay from, starts afresh rather than failing.

mod support;

use base64::Engine;
use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{initialize, Harness};

fn notes(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": format!("note {i}")}})
        })
        .collect()
}

async fn session(h: &Harness) -> String {
    let r = h.post("/mcp", &initialize(1, "2025-06-18"), &[]).await;
    r.header("mcp-session-id").unwrap()
}

/// (event id, the note's data) of every event on one GET.
async fn listen(h: &Harness, sid: &str, last: Option<&str>) -> Vec<(Option<String>, String)> {
    let extra: Vec<(&str, &str)> = last.map(|id| ("last-event-id", id)).into_iter().collect();
    let reply = h.listen_mcp(sid, &extra).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
        .text
        .split("\n\n")
        .filter(|e| e.contains("data: "))
        .map(|e| {
            let id = e
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .map(String::from);
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let data: Value = serde_json::from_str(data).unwrap();
            (
                id,
                data["params"]["data"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn data(events: &[(Option<String>, String)]) -> Vec<&str> {
    events.iter().map(|(_, d)| d.as_str()).collect()
}

#[tokio::test]
async fn a_reconnect_resumes_every_server_where_it_stood() {
    let h = Harness::new();
    h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).notices(notes(3)),
        &["us"],
    );
    let sid = session(&h).await;
    let first = listen(&h, &sid, None).await;
    assert_eq!(data(&first), ["note 0", "note 1", "note 2"]);
    let after_second = first[1].0.clone().expect("events carry ids");
    assert!(after_second.starts_with("mcp-edge-m1."), "{after_second}");
    let again = listen(&h, &sid, Some(&after_second)).await;
    assert_eq!(data(&again), ["note 2"], "only what came after");
}

#[tokio::test]
async fn an_id_of_no_stream_of_ours_starts_afresh() {
    let h = Harness::new();
    h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).notices(notes(2)),
        &["us"],
    );
    let sid = session(&h).await;
    listen(&h, &sid, None).await;
    let again = listen(&h, &sid, Some("42")).await;
    assert_eq!(data(&again), ["note 0", "note 1"]);
}

#[tokio::test]
async fn a_place_the_upstream_cannot_replay_from_starts_that_server_afresh() {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).notices(notes(2)),
        &["us"],
    );
    let sid = session(&h).await;
    listen(&h, &sid, None).await;
    let place = json!({"alpha": "not-a-place"}).to_string();
    let id = format!(
        "mcp-edge-m1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(place)
    );
    let again = listen(&h, &sid, Some(&id)).await;
    assert_eq!(data(&again), ["note 0", "note 1"]);
    let asked: Vec<_> = alpha
        .seen()
        .into_iter()
        .filter(|s| s.http_method == "GET")
        .map(|s| {
            s.headers
                .get("last-event-id")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        asked,
        [None, Some("not-a-place".to_string()), None],
        "asked to resume, refused, heard afresh"
    );
}
