//! The log lines a request writes name its trace (`trace_id=`). Alone in
//! its test binary: `tracing` caches per call site whether anyone listens,
//! and tests on other threads without a subscriber would race this one.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::json;
use support::{modern_request, Harness};

const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// Log lines captured from the gateway (the current thread's subscriber).
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_log_lines_of_a_request_name_its_trace() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
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
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
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
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let dropped = text
        .lines()
        .find(|l| l.contains("response to another request"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        dropped.contains("trace_id=0af7651916cd43dd8448eb211c80319c"),
        "{dropped}"
    );
}
