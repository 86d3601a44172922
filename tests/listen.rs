//! `subscriptions/listen` (2026-07-28) on the memory adapter: the gateway's
//! acknowledgment first, then exactly the notifications the client asked
//! for, tagged with its subscription id, from modern upstreams (their own
//! listen streams) and legacy ones (their GET streams), merged on `/mcp`.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{modern_request, Harness, Reply};

const SUB: &str = "io.modelcontextprotocol/subscriptionId";

/// What every mock listener sends: two list changes, two resource updates
/// (one the client asked for), a request for the client, a log message.
fn notices(server: &str) -> Vec<Value> {
    vec![
        json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"}),
        json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
            "params": {"uri": format!("{server}://doc")}}),
        json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
            "params": {"uri": format!("{server}://other for ops@corp.example")}}),
        json!({"jsonrpc": "2.0", "id": 99, "method": "roots/list"}),
        json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "error", "data": "noise"}}),
    ]
}

/// A modern `subscriptions/listen` request, id 41.
fn listen_request(path: &str, notifications: Value) -> http::Request<Vec<u8>> {
    let params = json!({"notifications": notifications});
    modern_request(path, 41, "subscriptions/listen", params, &[])
}

async fn listen(h: &Harness, path: &str, notifications: Value) -> Reply {
    h.send(listen_request(path, notifications)).await
}

/// The acknowledgment, checked to come first and to carry the id.
fn acknowledged(events: &[Value]) -> Value {
    let ack = &events[0];
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUB], 41);
    ack["params"]["notifications"].clone()
}

fn methods(events: &[Value]) -> Vec<String> {
    events[1..]
        .iter()
        .map(|e| {
            assert_eq!(e["params"]["_meta"][SUB], 41, "tagged: {e}");
            let uri = e["params"]["uri"].as_str().map(|u| format!(" {u}"));
            format!(
                "{}{}",
                e["method"].as_str().unwrap(),
                uri.unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn a_modern_upstream_is_heard_on_its_own_listen_stream_as_far_as_the_client_asked() {
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .notices(notices("up")),
        &["us"],
    );
    let asked = json!({"toolsListChanged": true, "promptsListChanged": true,
        "resourceSubscriptions": ["up://doc"]});
    let r = listen(&h, "/servers/up/mcp", asked.clone()).await;
    assert!(r.is_sse(), "{}", r.text);
    assert!(r.header("mcp-session-id").is_none());
    let events = r.events();
    let honored = json!({"toolsListChanged": true, "resourceSubscriptions": ["up://doc"]});
    assert_eq!(
        acknowledged(&events),
        honored,
        "what the upstream agreed to, though it declares prompt list changes"
    );
    let last = events.last().unwrap();
    assert_eq!(
        last["id"], 41,
        "the upstream closed gracefully, so does the gateway"
    );
    assert_eq!(last["result"]["_meta"][SUB], 41);
    assert_eq!(
        methods(&events[..events.len() - 1]),
        [
            "notifications/tools/list_changed",
            "notifications/resources/updated up://doc"
        ],
        "nothing else"
    );
    let listens: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("subscriptions/listen"))
        .collect();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].headers["mcp-method"], "subscriptions/listen");
    assert!(listens[0].headers.get("mcp-session-id").is_none());
    assert_eq!(listens[0].body["params"]["notifications"], asked);
    let r = listen(&h, "/servers/up/mcp", json!({"promptsListChanged": true})).await;
    let events = r.events();
    assert_eq!(acknowledged(&events), json!({}));
    assert_eq!(events.len(), 2, "nothing to hear: closed: {}", r.text);
    assert!(listens[0].headers.get("x-api-key").is_none());
}

/// Reads a listen stream until its first keep-alive comment (with every
/// upstream quiet by then, all they said has been relayed).
async fn until_quiet(h: &Harness, path: &str, notifications: Value) -> Vec<Value> {
    use futures_util::StreamExt;
    let req = listen_request(path, notifications);
    let mut stream = h.open(req).await.into_body().into_stream();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if text.contains(": keep-alive") {
            break;
        }
    }
    assert!(
        text.contains(": keep-alive"),
        "the stream stayed open: {text}"
    );
    let mut d = mcp_edge::protocol::sse::Decoder::new();
    d.feed(text.as_bytes())
        .into_iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

/// A legacy server `old` and a modern one `new`, both sending `notices`
/// and then keeping their streams open; `old` is returned.
fn quiet_old_and_new() -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::new();
    let old = h.add(
        "old",
        MockServer::new("old")
            .tools(&["echo"])
            .notices(notices("old"))
            .quiet_listener(),
        &["us"],
    );
    h.add(
        "new",
        MockServer::new("new")
            .tools(&["echo"])
            .modern()
            .notices(notices("new"))
            .quiet_listener(),
        &["us"],
    );
    (h, old)
}

#[tokio::test(start_paused = true)]
async fn on_mcp_legacy_and_modern_upstreams_are_merged_into_one_stream() {
    let (h, legacy) = quiet_old_and_new();
    let asked = json!({"promptsListChanged": true, "resourcesListChanged": true,
        "resourceSubscriptions": ["old://doc", "new://doc"]});
    let events = until_quiet(&h, "/mcp", asked).await;
    assert_eq!(
        acknowledged(&events),
        json!({"promptsListChanged": true, "resourceSubscriptions": ["old://doc", "new://doc"]}),
        "no upstream declares resource list changes"
    );
    let mut heard = methods(&events);
    heard.sort();
    assert_eq!(
        heard,
        [
            "notifications/prompts/list_changed",
            "notifications/resources/updated new://doc",
            "notifications/resources/updated old://doc",
        ],
        "each server's own, nothing else (new did not agree to prompt changes)"
    );
    let subscribed: Vec<Value> = legacy
        .seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("resources/subscribe"))
        .map(|s| s.body["params"]["uri"].clone())
        .collect();
    assert_eq!(
        subscribed,
        [json!("old://doc"), json!("new://doc")],
        "URIs name no server on /mcp: each one is subscribed to everywhere"
    );
    assert!(legacy
        .seen()
        .iter()
        .any(|s| s.http_method == "GET" && s.headers.get("mcp-session-id").is_some()));
}

#[tokio::test(start_paused = true)]
async fn a_server_the_policy_hides_is_not_heard() {
    let (h, hidden) = quiet_old_and_new();
    h.p.kv.put(
        "policy",
        &json!({"rules": [{"name": "new-only", "effect": "allow",
            "subjects": {"everyone": true}, "servers": ["new"]}]})
        .to_string(),
    );
    h.gw.reload_config();
    let events = until_quiet(&h, "/mcp", json!({"toolsListChanged": true})).await;
    assert_eq!(methods(&events), ["notifications/tools/list_changed"]);
    assert!(hidden.seen().is_empty(), "never met");
    let r = listen(&h, "/servers/old/mcp", json!({"toolsListChanged": true})).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn with_nothing_to_hear_the_subscription_closes_after_its_acknowledgment() {
    let (h, _, _) = Harness::two_servers();
    let r = listen(&h, "/mcp", json!({"toolsListChanged": true})).await;
    let events = r.events();
    assert_eq!(events.len(), 2, "{}", r.text);
    assert_eq!(acknowledged(&events), json!({}));
    assert_eq!(events[1]["id"], 41);
    assert_eq!(events[1]["result"]["resultType"], "complete");
    assert_eq!(events[1]["result"]["_meta"][SUB], 41);
}

#[tokio::test]
async fn a_filter_of_the_wrong_shape_is_invalid_params() {
    let (h, _, _) = Harness::two_servers();
    let r = listen(&h, "/mcp", json!({"toolsListChanged": "yes"})).await;
    let (code, message) = r.error(400);
    assert_eq!(code, -32602, "{message}");
    let r = listen(&h, "/mcp", json!({"resourceSubscriptions": "a://b"})).await;
    assert_eq!(r.error(400).0, -32602);
    // Each URI costs work per upstream: a listen names a bounded number.
    let many: Vec<String> = (0..101).map(|i| format!("a://{i}")).collect();
    let r = listen(&h, "/mcp", json!({"resourceSubscriptions": many})).await;
    let (code, message) = r.error(400);
    assert_eq!(code, -32602);
    assert!(message.contains("at most 100"), "{message}");
    let mut twice: Vec<String> = (0..100).map(|i| format!("a://{i}")).collect();
    twice.extend(twice.clone());
    let r = listen(&h, "/mcp", json!({"resourceSubscriptions": twice})).await;
    assert_eq!(r.status, 200, "repeats count once: {}", r.text);
}

#[tokio::test]
async fn a_servers_notifications_are_redacted_as_its_content() {
    let h = Harness::new();
    h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .notices(notices("up")),
        &["us"],
    );
    h.p.kv.put(
        "policy",
        &json!({"rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
            "redact": [{"servers": ["up"]}]})
        .to_string(),
    );
    h.gw.reload_config();
    let uri = "up://other for ops@corp.example";
    let r = listen(
        &h,
        "/servers/up/mcp",
        json!({"resourceSubscriptions": [uri]}),
    )
    .await;
    // The acknowledgment repeats what the client sent; the upstream's
    // words are redacted.
    let events = r.events();
    assert_eq!(events.len(), 3, "{}", r.text);
    assert_eq!(events[1]["params"]["uri"], "up://other for [EMAIL]");
}

#[tokio::test]
async fn discover_promises_what_listen_delivers() {
    let h = Harness::new();
    h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .notices(vec![]),
        &["us"],
    );
    for path in ["/mcp", "/servers/up/mcp"] {
        let r = h
            .send(modern_request(path, 1, "server/discover", json!({}), &[]))
            .await;
        let caps = r.json()["result"]["capabilities"].clone();
        assert_eq!(caps["tools"]["listChanged"], true, "{path}: {caps}");
        assert_eq!(caps["resources"]["subscribe"], true, "{path}: {caps}");
        assert!(caps.get("logging").is_none(), "{path}: {caps}");
    }
}

#[tokio::test]
async fn a_legacy_client_has_no_listen_on_mcp() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    let r = c.call("subscriptions/listen", json!({})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
}

#[tokio::test(start_paused = true)]
async fn a_quiet_stream_says_keep_alive_until_its_time_is_up() {
    use futures_util::StreamExt;
    let h = Harness::new();
    h.add(
        "up",
        MockServer::new("up")
            .tools(&["echo"])
            .modern()
            .quiet_listener(),
        &["us"],
    );
    let req = listen_request("/servers/up/mcp", json!({"toolsListChanged": true}));
    let mut stream = h.open(req).await.into_body().into_stream();
    async fn next(s: &mut mcp_edge::body::ByteStream) -> String {
        String::from_utf8(s.next().await.unwrap().unwrap()).unwrap()
    }
    let first = next(&mut stream).await;
    assert!(
        first.contains("notifications/subscriptions/acknowledged"),
        "{first}"
    );
    let started = tokio::time::Instant::now();
    assert_eq!(next(&mut stream).await, ": keep-alive\n\n");
    let waited = started.elapsed().as_millis();
    assert!(
        (15_000..16_000).contains(&waited),
        "after 15 s: {waited} ms"
    );
    // What the caller may hear was decided for the policy and registry of
    // the moment: the stream ends when they would be reloaded
    // (REGISTRY_TTL_SECS, 30 s by default), without a response, so the
    // client listens again and is checked anew.
    assert!(stream.next().await.is_none());
    let waited = started.elapsed().as_millis();
    assert!(
        (30_000..31_000).contains(&waited),
        "after 30 s: {waited} ms"
    );
}
