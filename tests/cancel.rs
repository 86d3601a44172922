//! Cancellation by a modern (2026-07-28) client on the memory adapter:
//! going away before the answer (while the gateway waits for it, or while
//! it streams) cancels the call on the legacy upstream session it was
//! bridged to, under the id it went upstream with; an answer read in full
//! cancels nothing.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{modern_request, Harness};

fn modern_call(name: &str, arguments: Value) -> http::Request<Vec<u8>> {
    let params = json!({"name": name, "arguments": arguments, "_meta": {"progressToken": "p"}});
    modern_request("/servers/alpha/mcp", 7, "tools/call", params, &[])
}

/// A modern `tools/call` of `alpha`'s slow tool on its own endpoint, left
/// unread.
async fn open_slow_call(h: &Harness, steps: u64) -> mcp_edge::body::ByteStream {
    let req = modern_call("slow", json!({"steps": steps, "interval_ms": 50}));
    h.open(req).await.into_body().into_stream()
}

/// The id `up`'s first tools/call arrived with.
fn sent_as(up: &MockServer) -> Value {
    up.seen()
        .iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| s.body["id"].clone())
        .unwrap()
}

fn cancellations(up: &MockServer) -> Vec<Value> {
    up.seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("notifications/cancelled"))
        .map(|s| s.body["params"]["requestId"].clone())
        .collect()
}

#[tokio::test]
async fn closing_the_stream_cancels_the_call_on_a_legacy_upstream() {
    use futures_util::StreamExt;
    let (h, a, _) = Harness::two_servers();
    let mut stream = open_slow_call(&h, 20).await;
    let first = String::from_utf8(stream.next().await.unwrap().unwrap()).unwrap();
    assert!(first.contains("notifications/progress"), "{first}");
    drop(stream);
    h.p.run_deferred().await;
    let sent_as = a
        .seen()
        .iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| s.body["id"].clone())
        .unwrap();
    assert_eq!(
        cancellations(&a),
        [sent_as],
        "the id the call went upstream under, on its session"
    );
    let cancelled = a
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("notifications/cancelled"))
        .unwrap();
    assert!(cancelled.headers.get("mcp-session-id").is_some());

    // A call read to its answer cancels nothing.
    let (h, a, _) = Harness::two_servers();
    let whole: Vec<_> = open_slow_call(&h, 2).await.collect().await;
    let bytes: Vec<u8> = whole.into_iter().flat_map(Result::unwrap).collect();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("counted to 2"), "{text}");
    assert!(text.contains(r#""id":7"#), "the client's own id: {text}");
    h.p.run_deferred().await;
    assert!(cancellations(&a).is_empty());
}

#[tokio::test]
async fn going_away_while_the_gateway_waits_cancels_too() {
    let h = Harness::new();
    let a = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).delay_ms(500),
        &["us"],
    );
    // The first call opens the bridged session (and waits it out).
    h.open(modern_call("echo", json!({"text": "first"}))).await;
    let call = h.open(modern_call("echo", json!({"text": "hi"})));
    let waited = tokio::time::timeout(std::time::Duration::from_millis(100), call).await;
    assert!(waited.is_err(), "the client left before the answer");
    h.p.run_deferred().await;
    let calls: Vec<Value> = a
        .seen()
        .iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| s.body["id"].clone())
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        cancellations(&a),
        [calls[1].clone()],
        "the second call only"
    );
}

#[tokio::test]
async fn a_stream_the_upstream_cuts_off_before_its_answer_cancels_the_call() {
    let h = Harness::new();
    let a = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["cut_off"]),
        &["us"],
    );
    let r = h.send(modern_call("cut_off", json!({}))).await;
    let last = r.events().pop().unwrap();
    assert_eq!(last["id"], 7, "{}", r.text);
    assert!(
        last["error"].is_object(),
        "the gateway says the stream ended: {}",
        r.text
    );
    h.p.run_deferred().await;
    assert_eq!(
        cancellations(&a),
        [sent_as(&a)],
        "the upstream may still be running it"
    );
}
