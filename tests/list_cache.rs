//! The edge cache of upstream list pages on `/mcp`: kept as long as the
//! upstream's `ttlMs` says, shared between callers only when its
//! `cacheScope` is `public`, and filtered by each caller's policy all the
//! same.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{modern_request, Harness};

async fn tool_names(h: &Harness, key: &str) -> Vec<String> {
    let req = modern_request("/mcp", 1, "tools/list", json!({}), &[("x-api-key", key)]);
    let r = h.send(req).await;
    let v = r.json();
    assert_eq!(v["result"]["ttlMs"], 0, "the gateway's own hints: {v}");
    let mut names: Vec<String> = v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn with_hints(hints: Value) -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo", "secret"])
            .modern()
            .list_hints(hints),
        &["us"],
    );
    h.api_key("mk_alice", json!({"subject": "alice", "teams": ["eng"]}));
    h.api_key("mk_bob", json!({"subject": "bob", "teams": ["ops"]}));
    h.p.kv.put(
        "policy",
        &json!({"rules": [
            {"name": "all", "effect": "allow", "subjects": {"everyone": true}},
            {"name": "no-secret-for-ops", "effect": "deny", "subjects": {"teams": ["ops"]},
             "tools": ["secret"]}]})
        .to_string(),
    );
    h.gw.reload_config();
    (h, up)
}

#[tokio::test]
async fn a_public_page_serves_every_caller_through_their_own_policy() {
    let (h, up) = with_hints(json!({"ttlMs": 60_000, "cacheScope": "public"}));
    assert_eq!(tool_names(&h, "mk_alice").await, ["up__echo", "up__secret"]);
    assert_eq!(
        tool_names(&h, "mk_bob").await,
        ["up__echo"],
        "the policy still hides it"
    );
    assert_eq!(tool_names(&h, "mk_alice").await, ["up__echo", "up__secret"]);
    assert_eq!(up.count("tools/list"), 1, "one page, kept for its ttlMs");
}

#[tokio::test]
async fn a_private_page_is_kept_for_its_caller_only() {
    let (h, up) = with_hints(json!({"ttlMs": 60_000, "cacheScope": "private"}));
    tool_names(&h, "mk_alice").await;
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), 1);
    tool_names(&h, "mk_bob").await;
    assert_eq!(up.count("tools/list"), 2, "bob's own page");
}

#[tokio::test]
async fn a_page_without_a_ttl_is_asked_for_every_time() {
    let (h, up) = with_hints(json!({"cacheScope": "public"}));
    tool_names(&h, "mk_alice").await;
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), 2);
}

#[tokio::test]
async fn a_private_page_is_kept_for_one_authorization_context() {
    let (h, up) = with_hints(json!({"ttlMs": 60_000, "cacheScope": "private"}));
    h.api_key(
        "mk_alice_admin",
        json!({"subject": "alice", "teams": ["eng"], "roles": ["admin"]}),
    );
    tool_names(&h, "mk_alice").await;
    tool_names(&h, "mk_alice_admin").await;
    assert_eq!(
        up.count("tools/list"),
        2,
        "the same subject with other roles is asked anew"
    );
}

#[tokio::test]
async fn a_list_change_heard_on_a_listen_stream_makes_the_page_stale() {
    use futures_util::StreamExt;
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .list_hints(json!({"ttlMs": 60_000, "cacheScope": "public"}))
            .notices(vec![
                json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
            ])
            .quiet_listener(),
        &["us"],
    );
    h.api_key("mk_alice", json!({"subject": "alice"}));
    tool_names(&h, "mk_alice").await;
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), 1, "kept");
    let params = json!({"notifications": {"toolsListChanged": true}});
    let req = modern_request(
        "/mcp",
        3,
        "subscriptions/listen",
        params,
        &[("x-api-key", "mk_alice")],
    );
    let mut stream = h.open(req).await.into_body().into_stream();
    let ack = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8(ack).unwrap().contains("acknowledged"));
    // The relay reads the upstream's change while waiting for more to say.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
    drop(stream);
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), 2, "asked anew after the change");
}

#[tokio::test]
async fn a_list_change_heard_on_a_listen_stream_makes_the_catalog_stale_too() {
    use futures_util::StreamExt;
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .notices(vec![
                json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
            ])
            .quiet_listener(),
        &["us"],
    );
    let call = || {
        let params = json!({"name": "up__echo", "arguments": {"text": "x"}});
        modern_request("/mcp", 2, "tools/call", params, &[])
    };
    for _ in 0..2 {
        assert_eq!(h.send(call()).await.status, 200);
    }
    assert_eq!(
        up.count("tools/list"),
        1,
        "the catalog (arguments are validated) lists once"
    );
    let params = json!({"notifications": {"toolsListChanged": true}});
    let req = modern_request("/mcp", 3, "subscriptions/listen", params, &[]);
    let mut stream = h.open(req).await.into_body().into_stream();
    let ack = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8(ack).unwrap().contains("acknowledged"));
    let _ = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
    drop(stream);
    h.p.run_deferred().await;
    assert_eq!(up.count("tools/list"), 1, "nothing listed yet");
    assert_eq!(h.send(call()).await.status, 200);
    h.p.run_deferred().await;
    assert_eq!(
        up.count("tools/list"),
        2,
        "the server is listed again after the change"
    );
}

#[tokio::test]
async fn a_list_change_announced_on_a_calls_stream_makes_the_page_stale() {
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo", "change_tools"])
            .modern()
            .list_hints(json!({"ttlMs": 60_000, "cacheScope": "public"})),
        &["us"],
    );
    h.api_key("mk_alice", json!({"subject": "alice"}));
    let call = |name: &str| {
        let params = json!({"name": name, "arguments": {}});
        modern_request(
            "/mcp",
            2,
            "tools/call",
            params,
            &[("x-api-key", "mk_alice")],
        )
    };
    tool_names(&h, "mk_alice").await;
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), 1, "kept");
    // The tool catalog (calls are placed and validated by it) lists once.
    assert_eq!(h.send(call("up__echo")).await.status, 200);
    let listed = up.count("tools/list");
    let r = h.send(call("up__change_tools")).await;
    assert!(
        r.text.contains("notifications/tools/list_changed"),
        "{}",
        r.text
    );
    assert_eq!(up.count("tools/list"), listed, "nothing listed by the call");
    tool_names(&h, "mk_alice").await;
    assert_eq!(up.count("tools/list"), listed + 1, "the page is asked anew");
    assert_eq!(h.send(call("up__echo")).await.status, 200);
    h.p.run_deferred().await;
    assert_eq!(up.count("tools/list"), listed + 2, "and so is the catalog");
}
