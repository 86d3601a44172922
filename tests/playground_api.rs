//! What the gateway gives the playground beyond MCP itself: a compact
//! summary of a call's trace when asked (`mcp-edge-trace: summary`), in a
//! header on a whole answer and as the last event of a stream; and the
//! JSON pointer of an argument that does not fit the tool's schema, as
//! the error's `data.path`, so the page shows the message at that field.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{modern_request, Harness};

fn harness() -> Harness {
    support::otel::install();
    Harness::new()
}

fn summary_of(header: &http::HeaderValue) -> Value {
    serde_json::from_str(header.to_str().unwrap()).unwrap()
}

fn names(summary: &Value) -> Vec<String> {
    summary["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_whole_answer_carries_its_trace_summary_only_when_asked() {
    let h = harness();
    h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    let params = json!({"name": "up__echo", "arguments": {"text": "x"}});
    let plain = h
        .send(modern_request("/mcp", 1, "tools/call", params.clone(), &[]))
        .await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(plain.headers.get("mcp-edge-trace-summary").is_none());
    let asked = h
        .send(modern_request(
            "/mcp",
            2,
            "tools/call",
            params,
            &[("mcp-edge-trace", "summary")],
        ))
        .await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    let s = summary_of(&asked.headers["mcp-edge-trace-summary"]);
    let names = names(&s);
    for phase in ["authenticate", "policy", "validate_arguments"] {
        assert!(names.iter().any(|n| n == phase), "{phase} in {names:?}");
    }
    let policy = s["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "policy")
        .unwrap();
    assert_eq!(policy["attrs"]["mcp_edge.policy.decision"], "allow");
    assert_eq!(
        s["trace_id"].as_str().unwrap().len(),
        32,
        "the trace id, as traceresponse names it"
    );
    assert!(asked.headers["traceresponse"]
        .to_str()
        .unwrap()
        .contains(s["trace_id"].as_str().unwrap()));
    // Who called, and where the upstream lives, are not in it.
    let text = asked.headers["mcp-edge-trace-summary"].to_str().unwrap();
    assert!(
        !text.contains("enduser") && !text.contains("server.address"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stream_ends_with_its_trace_summary_event_after_the_result() {
    let (h, _, _) = Harness::two_servers();
    support::otel::install();
    let r = support::slow_call(&h, &[("mcp-edge-trace", "summary")]).await;
    assert!(r.is_sse(), "{}", r.text);
    let result_at = r.text.find("counted to 2").expect("the result");
    let event_at = r
        .text
        .find("event: mcp-edge-trace\n")
        .expect("the summary event");
    assert!(event_at > result_at, "{}", r.text);
    let data = r.text[event_at..]
        .lines()
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap();
    let s: Value = serde_json::from_str(data).unwrap();
    assert!(names(&s).iter().any(|n| n == "policy"), "{s}");
    // The JSON-RPC messages are unchanged, the result the last of them.
    let messages: Vec<Value> = r
        .events()
        .into_iter()
        .filter(|e| e.get("jsonrpc").is_some())
        .collect();
    assert_eq!(messages.len(), 3, "{}", r.text);
    assert_eq!(messages[2]["id"], 9, "{}", r.text);
}

#[tokio::test]
async fn arguments_that_do_not_fit_name_their_field_in_both_eras() {
    let h = harness();
    h.add("up", MockServer::new("up").tools(&["sum"]), &["us"]);
    let bad = json!({"name": "up__sum", "arguments": {"values": [1, "two"]}});
    let r = h
        .send(modern_request("/mcp", 1, "tools/call", bad.clone(), &[]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = &r.json()["error"];
    assert_eq!(e["code"], -32602);
    assert_eq!(e["data"]["path"], "/values/1", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid params: Invalid arguments for tool up__sum: at '/values/1': "),
        "{e}"
    );
    let mut c = h.connect("/mcp").await;
    let legacy = c.call("tools/call", bad).await;
    assert_eq!(legacy["error"]["data"]["path"], "/values/1", "{legacy}");
    let missing = c
        .call("tools/call", json!({"name": "up__sum", "arguments": {}}))
        .await;
    assert_eq!(missing["error"]["data"]["path"], "/", "{missing}");
}
