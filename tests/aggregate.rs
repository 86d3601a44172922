//! The aggregated endpoint on the memory adapter: merge, namespacing, routing,
//! pagination, fail-open listing, failover, SSE relay.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{golden, Harness};

#[tokio::test]
async fn tools_from_every_server_are_merged_under_prefixes() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let page = c.result("tools/list", json!({})).await;
    golden("aggregate_tools_list", &page);
    let names: Vec<&str> = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alpha__echo",
            "alpha__add",
            "alpha__slow",
            "beta__echo",
            "beta__search"
        ]
    );
    assert!(page.get("nextCursor").is_none());
    let prompts = c.result("prompts/list", json!({})).await;
    assert_eq!(prompts["prompts"][0]["name"], "alpha__greet");
    let resources = c.result("resources/list", json!({})).await;
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["alpha://doc", "beta://doc"],
        "resource URIs are not renamed"
    );
    let templates = c.result("resources/templates/list", json!({})).await;
    assert_eq!(templates["resourceTemplates"], json!([]));
}

#[tokio::test]
async fn calls_are_routed_to_the_owner_with_the_original_name() {
    let (h, a, b) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let r = c
        .result(
            "tools/call",
            json!({"name": "beta__echo", "arguments": {"text": "hi b"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "hi b");
    let r = c
        .result(
            "tools/call",
            json!({"name": "alpha__add", "arguments": {"a": 2, "b": 40}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "42");
    let call = b
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(call.body["params"]["name"], "echo");
    assert_eq!(call.body["params"]["arguments"], json!({"text": "hi b"}));
    assert_eq!(a.count("tools/call"), 1);
    let g = c
        .result(
            "prompts/get",
            json!({"name": "alpha__greet", "arguments": {}}),
        )
        .await;
    assert_eq!(
        g["messages"][0]["content"]["text"],
        "alpha prompt \"greet\""
    );
}

#[tokio::test]
async fn unknown_or_unprefixed_names_are_invalid_params() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    for name in ["echo", "gamma__echo", "alpha__", "beta__nope_but_prefix_ok"] {
        let resp = c
            .call("tools/call", json!({"name": name, "arguments": {}}))
            .await;
        let code = resp["error"]["code"].as_i64();
        if name == "beta__nope_but_prefix_ok" {
            // The gateway routes it; the upstream's own error is relayed as is.
            assert_eq!(code, Some(-32602), "{resp}");
            assert_eq!(resp["error"]["message"], "Unknown tool: nope_but_prefix_ok");
        } else {
            assert_eq!(code, Some(-32602), "{name}: {resp}");
            assert_eq!(
                resp["error"]["message"],
                format!("Invalid params: Unknown tool: {name}")
            );
        }
    }
    let resp = c.call("tools/call", json!({"arguments": {}})).await;
    assert_eq!(
        resp["error"]["message"],
        "Invalid params: tools/call: 'name' must be a string"
    );
}

#[tokio::test]
async fn excluded_tools_are_neither_listed_nor_callable() {
    let h = Harness::new();
    let s = std::rc::Rc::new(MockServer::new("ops").tools(&["read_log", "drop_table", "restart"]));
    h.p.http.mount("http://ops.test/mcp", s.clone());
    h.register(
        "ops",
        json!({"endpoints": [{"region": "us", "url": "http://ops.test/mcp"}], "tools": {"exclude": ["drop_*"]}}),
    );
    let mut c = h.connect("/mcp").await;
    assert_eq!(
        c.all_names("tools/list", "tools").await,
        ["ops__read_log", "ops__restart"]
    );
    let resp = c
        .call("tools/call", json!({"name": "ops__drop_table"}))
        .await;
    assert_eq!(resp["error"]["code"], -32602);
    assert_eq!(
        s.count("tools/call"),
        0,
        "the upstream never sees an excluded tool call"
    );
}

#[tokio::test]
async fn pagination_walks_every_server_to_the_end() {
    let h = Harness::new();
    h.add(
        "alpha",
        MockServer::new("alpha")
            .tools(&["a1", "a2", "a3", "a4", "a5"])
            .page_size(2),
        &["us"],
    );
    h.add(
        "beta",
        MockServer::new("beta")
            .tools(&["b1", "b2", "b3"])
            .page_size(2),
        &["us"],
    );
    h.add("gamma", MockServer::new("gamma").tools(&["g1"]), &["us"]);
    let mut c = h.connect("/mcp").await;
    let first = c.result("tools/list", json!({})).await;
    assert_eq!(
        first["tools"].as_array().unwrap().len(),
        5,
        "first page: 2 + 2 + 1"
    );
    assert!(first["nextCursor"].is_string());
    let mut names = c.all_names("tools/list", "tools").await;
    names.sort();
    assert_eq!(
        names,
        [
            "alpha__a1",
            "alpha__a2",
            "alpha__a3",
            "alpha__a4",
            "alpha__a5",
            "beta__b1",
            "beta__b2",
            "beta__b3",
            "gamma__g1"
        ]
    );
}

#[tokio::test]
async fn a_bad_cursor_is_invalid_params() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    for cursor in ["garbage", "eyJtIjoicHJvbXB0cy9saXN0IiwicCI6eyJhIjoiMSJ9fQ"] {
        let resp = c.call("tools/list", json!({"cursor": cursor})).await;
        assert_eq!(resp["error"]["code"], -32602, "{cursor}: {resp}");
        assert_eq!(
            resp["error"]["message"],
            "Invalid params: invalid cursor for tools/list"
        );
    }
}

#[tokio::test]
async fn a_down_server_leaves_the_others_listed_and_its_calls_fail_clearly() {
    let (h, _, _) = Harness::two_servers();
    h.p.http.unmount("http://beta.us.test/mcp");
    let mut c = h.connect("/mcp").await;
    let page = c.result("tools/list", json!({})).await;
    let names: Vec<&str> = page["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha__echo", "alpha__add", "alpha__slow"]);
    assert_eq!(page["_meta"]["mcp-edge/unavailable"], json!(["beta"]));
    let resp = c
        .call(
            "tools/call",
            json!({"name": "beta__echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(resp["error"]["code"], -32001);
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Upstream server 'beta' failed: us: unreachable: connection refused"),
        "{msg}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_server_times_out_without_holding_the_list() {
    let h = Harness::new();
    h.add("fast", MockServer::new("fast").tools(&["t"]), &["us"]);
    h.add(
        "slow",
        MockServer::new("slow").tools(&["t"]).delay_ms(5_000),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    let started = tokio::time::Instant::now();
    let page = c.result("tools/list", json!({})).await;
    assert_eq!(page["tools"][0]["name"], "fast__t");
    assert_eq!(page["tools"].as_array().unwrap().len(), 1);
    assert_eq!(page["_meta"]["mcp-edge/unavailable"], json!(["slow"]));
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2_500),
        "bounded by the 1 s timeout"
    );
}

#[tokio::test]
async fn failover_to_the_next_region_when_one_is_down_or_failing() {
    let h = Harness::new();
    let s = h.add(
        "geo",
        MockServer::new("geo").tools(&["echo"]),
        &["eu", "us"],
    );
    h.p.http.unmount("http://geo.eu.test/mcp");
    let mut c = h.connect("/mcp").await;
    let r = c
        .result(
            "tools/call",
            json!({"name": "geo__echo", "arguments": {"text": "via us"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "via us");
    let sent = h.p.http.sent();
    assert!(
        sent.contains(&"POST http://geo.eu.test/mcp".to_string()),
        "eu tried first: {sent:?}"
    );
    // A 5xx region is skipped as well.
    h.p.http.mount("http://geo.eu.test/mcp", s.clone());
    let failing = std::rc::Rc::new(MockServer::new("geo-eu").tools(&["echo"]));
    failing.fail_with(Some(503));
    h.p.http.mount("http://geo.eu.test/mcp", failing);
    let mut c2 = h.connect("/mcp").await;
    let r = c2
        .result(
            "tools/call",
            json!({"name": "geo__echo", "arguments": {"text": "still us"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "still us");
}

#[tokio::test]
async fn the_callers_region_is_preferred() {
    let mut h = Harness::with_var("REGION_MAP", "EU=eu,NA=us");
    h.meta.continent = Some("NA".into());
    let s = h.add(
        "geo",
        MockServer::new("geo").tools(&["echo"]),
        &["eu", "us"],
    );
    let mut c = h.connect("/mcp").await;
    c.result(
        "tools/call",
        json!({"name": "geo__echo", "arguments": {"text": "x"}}),
    )
    .await;
    let sent = h.p.http.sent();
    assert!(
        sent.iter().all(|u| u.contains("geo.us.test")),
        "only the us endpoint used: {sent:?}"
    );
    assert_eq!(s.count("tools/call"), 1);
}

#[tokio::test]
async fn steady_state_calls_cost_exactly_one_upstream_request() {
    let (h, a, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "warm"}}),
    )
    .await;
    let before = a.seen().len();
    for i in 0..5 {
        c.result(
            "tools/call",
            json!({"name": "alpha__echo", "arguments": {"text": format!("{i}")}}),
        )
        .await;
    }
    assert_eq!(a.seen().len() - before, 5);
    assert_eq!(a.count("initialize"), 1, "the upstream session is reused");
}

#[tokio::test(start_paused = true)]
async fn progress_is_relayed_as_it_happens() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let r = c
        .request(
            "tools/call",
            json!({"name": "alpha__slow", "arguments": {"steps": 3, "interval_ms": 50}, "_meta": {"progressToken": "p1"}}),
        )
        .await;
    assert!(r.is_sse());
    let events = r.events();
    assert_eq!(events.len(), 4);
    for (i, e) in events[..3].iter().enumerate() {
        assert_eq!(e["method"], "notifications/progress");
        assert_eq!(e["params"]["progressToken"], "p1");
        assert_eq!(e["params"]["progress"], i as u64 + 1);
    }
    assert_eq!(events[3]["result"]["content"][0]["text"], "counted to 3");
    assert!(
        r.chunks.len() >= 4,
        "each event is flushed on its own, not buffered: {:?}",
        r.chunks
    );
}

#[tokio::test]
async fn resources_are_read_from_whichever_server_holds_them() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let r = c
        .result("resources/read", json!({"uri": "beta://doc"}))
        .await;
    assert_eq!(r["contents"][0]["text"], "beta holds beta://doc");
    let resp = c
        .call("resources/read", json!({"uri": "nowhere://x"}))
        .await;
    assert_eq!(resp["error"]["code"], -32002);
    assert_eq!(resp["error"]["message"], "Resource not found: nowhere://x");
    assert_eq!(resp["error"]["data"]["uri"], "nowhere://x", "which one");
}

#[tokio::test]
async fn sse_upstreams_are_merged_too() {
    let h = Harness::new();
    h.add(
        "streamy",
        MockServer::new("streamy").tools(&["echo"]).sse(),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    assert_eq!(c.all_names("tools/list", "tools").await, ["streamy__echo"]);
    let r = c
        .call(
            "tools/call",
            json!({"name": "streamy__echo", "arguments": {"text": "s"}}),
        )
        .await;
    assert_eq!(r["result"]["content"][0]["text"], "s");
}

#[tokio::test]
async fn ping_and_set_level_are_answered() {
    let (h, a, b) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    assert_eq!(c.result("ping", json!({})).await, json!({}));
    assert_eq!(
        c.result("logging/setLevel", json!({"level": "debug"}))
            .await,
        json!({})
    );
    assert_eq!(
        (a.count("logging/setLevel"), b.count("logging/setLevel")),
        (1, 1)
    );
}

#[tokio::test]
async fn the_clients_credentials_never_reach_an_upstream() {
    let (h, a, _) = Harness::two_servers();
    h.api_key("client-secret-token", json!({"subject": "svc"}));
    let r = h
        .post(
            "/mcp",
            &support::initialize(1, "2025-06-18"),
            &[("authorization", "Bearer client-secret-token")],
        )
        .await;
    let session = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"text":"x"}}});
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("authorization", "Bearer client-secret-token"),
        ("cookie", "c=1"),
    ];
    let r = h.post("/mcp", &call, &headers).await;
    assert_eq!(r.response()["result"]["content"][0]["text"], "x");
    for seen in a.seen() {
        assert!(
            seen.headers.get("authorization").is_none() && seen.headers.get("cookie").is_none()
        );
    }
}

#[tokio::test]
async fn the_initialize_result_describes_the_gateway() {
    let (h, _, _) = Harness::two_servers();
    let r = h
        .post("/mcp", &support::initialize(1, "2025-11-25"), &[])
        .await;
    let mut v: Value = r.json();
    v["result"]["serverInfo"]["version"] = json!("<version>");
    golden("aggregate_initialize", &v);
}

#[tokio::test]
async fn completions_go_to_the_prompts_server_under_its_own_name() {
    let (h, a, b) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let r = c
        .result(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "alpha__greet"},
                   "argument": {"name": "who", "value": "p"}}),
        )
        .await;
    assert!(r["completion"]["values"].is_array(), "{r}");
    let seen = a.seen();
    let sent = seen
        .iter()
        .find(|s| s.rpc_method.as_deref() == Some("completion/complete"))
        .expect("alpha was asked");
    assert_eq!(sent.body["params"]["ref"]["name"], "greet");
    assert_eq!(
        b.count("completion/complete"),
        0,
        "only the prompt's server"
    );
}
