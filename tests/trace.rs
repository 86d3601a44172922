//! W3C trace context through the gateway: the caller's `traceparent` (from
//! `params._meta` first, else the header) is carried upstream on the HTTP
//! header and in `params._meta` under the gateway's own span, a request
//! without one starts a trace, and the client gets the trace back in
//! `traceresponse`.

mod support;

use mcp_edge::adapters::memory::{MockServer, Seen};
use serde_json::{json, Value};
use support::{modern_request, Harness};

const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn call(extra_meta: Value, headers: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let params = json!({"name": "up__echo", "arguments": {"text": "x"}, "_meta": extra_meta});
    modern_request("/mcp", 1, "tools/call", params, headers)
}

/// (trace id, parent span id) of a `traceparent`.
fn parts(traceparent: &str) -> (String, String) {
    let p: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(p.len(), 4, "{traceparent}");
    (p[1].to_string(), p[2].to_string())
}

fn the_call(up: &MockServer) -> Seen {
    up.seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .expect("the call went upstream")
}

#[tokio::test]
async fn the_callers_trace_goes_upstream_under_the_gateways_span_and_comes_back() {
    let h = Harness::new();
    let up = h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    let r = h
        .send(call(
            json!({}),
            &[("traceparent", CALLER), ("tracestate", "congo=t61rcWkgMzE")],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let back = r.header("traceresponse").expect("the trace comes back");
    let (trace, span) = parts(&back);
    assert_eq!(trace, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(span, "b7ad6b7169203331", "the gateway's own span");
    let seen = the_call(&up);
    let header = seen.headers.get("traceparent").unwrap().to_str().unwrap();
    assert_eq!(header, back, "upstream, the gateway's span is the parent");
    assert_eq!(seen.headers.get("tracestate").unwrap(), "congo=t61rcWkgMzE");
    assert_eq!(seen.body["params"]["_meta"]["traceparent"], back);
    assert_eq!(
        seen.body["params"]["_meta"]["tracestate"],
        "congo=t61rcWkgMzE"
    );
    // Meeting the upstream is part of the same trace.
    let init = up
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("initialize"))
        .unwrap();
    assert_eq!(
        init.headers.get("traceparent").unwrap().to_str().unwrap(),
        back
    );
}

#[tokio::test]
async fn the_trace_in_meta_comes_before_the_header() {
    let h = Harness::new();
    let up = h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    let in_meta = "00-11111111111111111111111111111111-2222222222222222-00";
    let r = h
        .send(call(
            json!({"traceparent": in_meta}),
            &[("traceparent", CALLER)],
        ))
        .await;
    let (trace, _) = parts(&r.header("traceresponse").unwrap());
    assert_eq!(trace, "11111111111111111111111111111111");
    let seen = the_call(&up);
    let sent = seen.body["params"]["_meta"]["traceparent"]
        .as_str()
        .unwrap();
    assert!(
        sent.starts_with("00-11111111111111111111111111111111-"),
        "{sent}"
    );
    assert!(
        sent.ends_with("-00"),
        "the caller's flags (not sampled) stay: {sent}"
    );
    assert!(seen.body["params"]["_meta"].get("tracestate").is_none());
}

#[tokio::test]
async fn a_request_without_a_valid_trace_starts_one() {
    let h = Harness::new();
    let up = h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    let mut traces = Vec::new();
    for headers in [vec![], vec![("traceparent", "00-zz-not-a-trace")]] {
        let r = h.send(call(json!({}), &headers)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let back = r.header("traceresponse").unwrap();
        let (trace, _) = parts(&back);
        assert_eq!(trace.len(), 32);
        assert_ne!(trace, "0".repeat(32));
        traces.push(trace);
    }
    assert_ne!(traces[0], traces[1], "a trace per request");
    let sent: Vec<String> = up
        .seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| {
            s.headers
                .get("traceparent")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(parts(&sent[0]).0, traces[0]);
    // Errors are answered in the trace too.
    let r = h
        .send(modern_request(
            "/mcp",
            1,
            "nope/nope",
            json!({}),
            &[("traceparent", CALLER)],
        ))
        .await;
    assert_eq!(
        parts(&r.header("traceresponse").unwrap()).0,
        "0af7651916cd43dd8448eb211c80319c"
    );
}
