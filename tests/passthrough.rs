//! The per-server endpoint on the memory adapter: one server, names unchanged,
//! its own initialize result, the tool filter still applied.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::json;
use support::Harness;

#[tokio::test]
async fn one_server_with_names_unchanged() {
    let (h, a, b) = Harness::two_servers();
    let mut c = h.connect("/servers/beta/mcp").await;
    assert_eq!(c.all_names("tools/list", "tools").await, ["echo", "search"]);
    let r = c
        .result(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "direct"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "direct");
    assert_eq!(a.seen().len(), 0, "alpha is never contacted");
    assert_eq!(b.count("initialize"), 1, "initialized eagerly, once");
    assert_eq!(c.delete().await.status, 200);
    assert_eq!(c.request("tools/list", json!({})).await.status, 404);
}

#[tokio::test]
async fn initialize_answers_with_the_upstreams_result_and_forwards_the_client() {
    let (h, a, _) = Harness::two_servers();
    let r = h
        .post(
            "/servers/alpha/mcp",
            &support::initialize(1, "2025-03-26"),
            &[],
        )
        .await;
    let v = r.json();
    assert_eq!(v["result"]["serverInfo"]["name"], "alpha");
    assert_eq!(v["result"]["protocolVersion"], "2025-03-26");
    let init = &a.seen()[0];
    assert_eq!(
        init.body["params"]["clientInfo"]["name"], "test",
        "the client's own info is passed on"
    );
    assert_eq!(a.count("notifications/initialized"), 1);
}

#[tokio::test]
async fn everything_else_passes_through_byte_for_byte() {
    let (h, a, _) = Harness::two_servers();
    let mut c = h.connect("/servers/alpha/mcp").await;
    let r = c
        .result("resources/read", json!({"uri": "alpha://doc"}))
        .await;
    assert_eq!(r["contents"][0]["text"], "alpha holds alpha://doc");
    let resp = c
        .call("vendor/extension", json!({"ref": {"name": "greet"}}))
        .await;
    assert_eq!(
        resp["error"]["message"], "Method not found: vendor/extension",
        "the upstream's own answer"
    );
    let raw = br#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"echo","arguments":{"text":"1.50","n":1.50}}}"#;
    let headers = [("mcp-session-id", c.session.as_str())];
    h.post_raw("/servers/alpha/mcp", raw.to_vec(), &headers)
        .await;
    // As sent, but for the trace it joins in `params._meta`: every other
    // value keeps its bytes (1.50 stays 1.50).
    let got = String::from_utf8(a.seen().last().unwrap().raw.clone()).unwrap();
    let expected = r#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"echo","arguments":{"text":"1.50","n":1.50},"_meta":{"traceparent":"00-"#;
    assert!(got.starts_with(expected), "{got}");
    assert!(got.ends_with("-01\"}}}"), "{got}");
    // A client notification reaches the upstream; its replies to server requests do too.
    assert_eq!(
        c.notify("notifications/roots/list_changed", json!({}))
            .await
            .status,
        202
    );
    assert_eq!(a.count("notifications/roots/list_changed"), 1);
    assert_eq!(
        a.count("notifications/initialized"),
        1,
        "the client's initialized is not sent twice"
    );
}

#[tokio::test]
async fn the_tool_filter_applies_on_the_per_server_endpoint() {
    let h = Harness::new();
    let s = std::rc::Rc::new(MockServer::new("ops").tools(&["read_log", "drop_table"]));
    h.p.http.mount("http://ops.test/mcp", s.clone());
    h.register("ops", json!({"endpoints": [{"region": "us", "url": "http://ops.test/mcp"}], "tools": {"include": ["read_*"]}}));
    let mut c = h.connect("/servers/ops/mcp").await;
    assert_eq!(c.all_names("tools/list", "tools").await, ["read_log"]);
    let resp = c.call("tools/call", json!({"name": "drop_table"})).await;
    assert_eq!(
        resp["error"]["message"],
        "Invalid params: Unknown tool: drop_table"
    );
    assert_eq!(s.count("tools/call"), 0);
}

#[tokio::test]
async fn a_down_server_fails_initialize_with_a_clear_error() {
    let (h, _, _) = Harness::two_servers();
    h.p.http.unmount("http://alpha.us.test/mcp");
    let r = h
        .post(
            "/servers/alpha/mcp",
            &support::initialize(1, "2025-06-18"),
            &[],
        )
        .await;
    let (code, msg) = r.error(200);
    assert_eq!(code, -32001);
    assert!(
        msg.contains("Upstream server 'alpha' failed: us: unreachable"),
        "{msg}"
    );
    assert!(h.p.sessions.is_empty(), "no session is opened");
}

#[tokio::test]
async fn get_relays_the_upstreams_stream_or_405() {
    let (h, _, _) = Harness::two_servers();
    let c = h.connect("/servers/alpha/mcp").await;
    let get = http::Request::get("http://gw.test/servers/alpha/mcp")
        .header("mcp-session-id", &c.session)
        .header("accept", "text/event-stream")
        .body(Vec::new())
        .unwrap();
    // The mock offers no GET stream (405), so neither does the gateway.
    assert_eq!(h.send(get).await.status, 405);
}
