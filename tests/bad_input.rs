//! Bad input on the memory adapter: every case gets an HTTP status and a
//! JSON-RPC error with a useful message, never a panic or a lost response.

mod support;

use serde_json::json;
use support::Harness;

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let (h, _, _) = Harness::two_servers();
    for body in [
        &b"{"[..],
        b"not json",
        b"",
        b"{\"jsonrpc\":\"2.0\",",
        &[0xff, 0xfe, 0x00],
    ] {
        let r = h.post_raw("/mcp", body.to_vec(), &[]).await;
        let (code, msg) = r.error(400);
        assert_eq!(code, -32700, "{body:?}");
        assert!(msg.starts_with("Parse error: "), "{msg}");
        assert!(r.json()["id"].is_null());
    }
}

#[tokio::test]
async fn wrong_jsonrpc_shapes_are_invalid_requests() {
    let (h, _, _) = Harness::two_servers();
    let c = h.connect("/mcp").await;
    let s = [("mcp-session-id", c.session.as_str())];
    let cases = [
        (
            json!({"id": 1, "method": "ping"}),
            "\"jsonrpc\" must be \"2.0\"",
        ),
        (
            json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
            "\"jsonrpc\" must be \"2.0\"",
        ),
        (
            json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}),
            "id must be a string or an integer",
        ),
        (
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            "id must be a string or an integer",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": 42}),
            "not a JSON-RPC message object",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "x"}),
            "params must be an object or an array",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "result": {}}),
            "also has result or error",
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1}),
            "exactly one of result and error",
        ),
        (json!({"jsonrpc": "2.0"}), "missing method"),
        (json!("just a string"), "not a JSON-RPC message object"),
        (json!(42), "not a JSON-RPC message object"),
    ];
    for (body, want) in cases {
        let r = h.post("/mcp", &body, &s).await;
        let (code, msg) = r.error(400);
        assert_eq!(code, -32600, "{body}");
        assert!(msg.contains(want), "{body}: {msg}");
    }
    // The id is echoed when it can be read.
    let r = h
        .post(
            "/mcp",
            &json!({"jsonrpc": "1.0", "id": "keep-me", "method": "ping"}),
            &s,
        )
        .await;
    assert_eq!(r.json()["id"], "keep-me");
}

#[tokio::test]
async fn batches_are_refused_clearly() {
    let (h, _, _) = Harness::two_servers();
    let r = h
        .post(
            "/mcp",
            &json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]),
            &[],
        )
        .await;
    let (code, msg) = r.error(400);
    assert_eq!(code, -32600);
    assert!(msg.contains("batches are not supported"), "{msg}");
}

#[tokio::test]
async fn unknown_methods_are_method_not_found() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    for method in ["tools/delete", "sampling/createMessage", "x"] {
        let resp = c.call(method, json!({})).await;
        assert_eq!(resp["error"]["code"], -32601, "{method}");
        assert_eq!(
            resp["error"]["message"],
            format!("Method not found: {method}")
        );
    }
}

#[tokio::test]
async fn wrong_params_are_invalid_params() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let cases = [
        ("tools/call", json!({"name": 5})),
        ("tools/list", json!({"cursor": 5})),
        ("resources/read", json!({})),
        ("prompts/get", json!([])),
    ];
    for (method, params) in cases {
        let resp = c.call(method, params.clone()).await;
        assert_eq!(resp["error"]["code"], -32602, "{method} {params}: {resp}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let h = Harness::with_var("MAX_BODY_BYTES", "1024");
    let big = json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"x".repeat(2000)}});
    let (code, msg) = h.post("/mcp", &big, &[]).await.error(413);
    assert_eq!(
        (code, msg.as_str()),
        (-32000, "Request body exceeds the limit of 1024 bytes")
    );
}

#[tokio::test]
async fn transport_rules_are_enforced() {
    let (h, _, _) = Harness::two_servers();
    let init = support::initialize(1, "2025-06-18")
        .to_string()
        .into_bytes();
    let post = |ct: &'static str, accept: &'static str| {
        http::Request::post("http://gw.test/mcp")
            .header("content-type", ct)
            .header("accept", accept)
            .body(init.clone())
            .unwrap()
    };
    assert_eq!(
        h.send(post("text/plain", support::ACCEPT_BOTH))
            .await
            .error(415)
            .0,
        -32000
    );
    assert_eq!(
        h.send(post("application/json", "application/json"))
            .await
            .error(406)
            .0,
        -32000
    );
    assert_eq!(
        h.send(post("application/json", "text/event-stream"))
            .await
            .status,
        406
    );
    let put = http::Request::put("http://gw.test/mcp")
        .body(Vec::new())
        .unwrap();
    let r = h.send(put).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, POST, DELETE"));
    let get = http::Request::get("http://gw.test/mcp")
        .body(Vec::new())
        .unwrap();
    let r = h.send(get).await;
    let (_, message) = r.error(400);
    assert!(
        message.to_lowercase().contains("session"),
        "/mcp's stream belongs to a session: {message}"
    );
    let nowhere = http::Request::get("http://gw.test/admin")
        .body(Vec::new())
        .unwrap();
    assert_eq!(h.send(nowhere).await.error(404).0, -32000);
    let unknown = h
        .post(
            "/servers/nope/mcp",
            &support::initialize(1, "2025-06-18"),
            &[],
        )
        .await;
    assert_eq!(unknown.error(404).1, "Unknown server 'nope'");
}

#[tokio::test]
async fn foreign_origins_are_403_and_allowed_ones_get_cors() {
    let (h, _, _) = Harness::two_servers();
    let init = support::initialize(1, "2025-06-18");
    let r = h
        .post("/mcp", &init, &[("origin", "http://evil.example")])
        .await;
    assert_eq!(
        r.error(403).1,
        "Forbidden: Origin 'http://evil.example' is not allowed"
    );
    let h2 = Harness::with_var("ALLOWED_ORIGINS", "http://localhost:6274");
    let r = h2
        .post("/mcp", &init, &[("origin", "http://localhost:6274")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:6274")
    );
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("Mcp-Session-Id"));
    let pre = http::Request::options("http://gw.test/mcp")
        .header("origin", "http://localhost:6274")
        .body(Vec::new())
        .unwrap();
    let r = h2.send(pre).await;
    assert_eq!(r.status, 204);
    assert!(r
        .header("access-control-allow-headers")
        .unwrap()
        .contains("Mcp-Session-Id"));
}

#[tokio::test]
async fn a_broken_registry_entry_does_not_take_the_others_down() {
    let (h, _, _) = Harness::two_servers();
    h.register("broken", json!({"endpoints": "nope"}));
    let mut c = h.connect("/mcp").await;
    let names = c.all_names("tools/list", "tools").await;
    assert_eq!(names.len(), 5, "{names:?}");
}

#[tokio::test]
async fn health_answers_without_a_session() {
    let h = Harness::new();
    let r = h
        .send(
            http::Request::get("http://gw.test/healthz")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, "{\"status\":\"ok\"}"));
}
