//! The log lines a request writes name its trace (`trace_id=`). Alone in
//! its test binary: `tracing` caches per call site whether anyone listens,
//! and tests on other threads without a subscriber would race this one.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::json;
use support::{modern_request, Harness};

const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test]
async fn the_log_lines_of_a_request_name_its_trace() {
    let (lines, _guard) = support::logs::capture();
    let h = Harness::new();
    h.add(
        "up",
        MockServer::new("up").tools(&["echo", "forge"]),
        &["eu", "us"],
    );
    // A region down: the failover is logged, in the caller's trace.
    h.p.http.unmount("http://up.eu.test/mcp");
    let params = json!({"name": "up__echo", "arguments": {"text": "x"}});
    let call = modern_request("/mcp", 1, "tools/call", params, &[("traceparent", CALLER)]);
    let r = h.send(call).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = lines.text();
    let failover = text
        .lines()
        .find(|l| l.contains("upstream failover"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        failover.contains("trace_id=0af7651916cd43dd8448eb211c80319c"),
        "{failover}"
    );
    // What a streamed answer logs as it is read, after the handler
    // returned, is in the trace too.
    let params = json!({"name": "up__forge", "arguments": {}});
    let call = modern_request("/mcp", 2, "tools/call", params, &[("traceparent", CALLER)]);
    let r = h.send(call).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let text = lines.text();
    let dropped = text
        .lines()
        .find(|l| l.contains("response to another request"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        dropped.contains("trace_id=0af7651916cd43dd8448eb211c80319c"),
        "{dropped}"
    );
}
