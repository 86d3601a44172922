//! `NAMES_ON_MCP=on_collision` on `/mcp`: only names that collide between
//! the servers a caller sees are prefixed; every other name is the server's
//! own and routes to it, in both eras; the prefixed form always routes.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{modern_request, Harness};

fn on_collision() -> Harness {
    Harness::with_settings(support::setting("NAMES_ON_MCP", "on_collision"))
}

/// `solo` and `duo` both offer `echo` and the `greet` prompt; each has a
/// tool and a prompt of its own.
fn pair(h: &Harness) -> (Rc<MockServer>, Rc<MockServer>) {
    let solo = h.add(
        "solo",
        MockServer::new("solo")
            .tools(&["echo", "add"])
            .prompts(&["greet", "solo_brief"]),
        &["us"],
    );
    let duo = h.add(
        "duo",
        MockServer::new("duo")
            .tools(&["echo", "search"])
            .prompts(&["greet", "duo_brief"]),
        &["us"],
    );
    (solo, duo)
}

/// The params of the last `method` a server received.
fn last(server: &MockServer, method: &str) -> Option<Value> {
    server
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.rpc_method.as_deref() == Some(method))
        .map(|s| s.body["params"].clone())
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[tokio::test]
async fn only_colliding_names_are_prefixed_and_own_names_route_to_their_server() {
    let h = on_collision();
    let (solo, duo) = pair(&h);
    let mut c = h.connect("/mcp").await;
    assert_eq!(
        sorted(c.all_names("tools/list", "tools").await),
        ["add", "duo__echo", "search", "solo__echo"]
    );
    assert_eq!(
        sorted(c.all_names("prompts/list", "prompts").await),
        ["duo__greet", "duo_brief", "solo__greet", "solo_brief"]
    );
    let r = c
        .result(
            "tools/call",
            json!({"name": "add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "5");
    assert_eq!(last(&solo, "tools/call").unwrap()["name"], "add");
    c.result("tools/call", json!({"name": "search", "arguments": {}}))
        .await;
    assert_eq!(last(&duo, "tools/call").unwrap()["name"], "search");
    let r = c
        .result(
            "tools/call",
            json!({"name": "duo__echo", "arguments": {"text": "to duo"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "to duo");
    assert_eq!(last(&duo, "tools/call").unwrap()["name"], "echo");
    // The prefixed form of a name shown bare routes too.
    c.result("tools/call", json!({"name": "solo__add", "arguments": {}}))
        .await;
    c.result("prompts/get", json!({"name": "duo_brief"})).await;
    assert_eq!(last(&duo, "prompts/get").unwrap()["name"], "duo_brief");
    c.result("prompts/get", json!({"name": "solo__greet"}))
        .await;
    assert_eq!(last(&solo, "prompts/get").unwrap()["name"], "greet");
    let r = c
        .call(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "solo_brief"},
                   "argument": {"name": "to", "value": "o"}}),
        )
        .await;
    assert!(r.get("result").is_some(), "{r}");
    assert_eq!(
        last(&solo, "completion/complete").unwrap()["ref"]["name"],
        "solo_brief"
    );
}

#[tokio::test]
async fn a_name_several_servers_offer_is_refused_bare_with_the_names_to_use() {
    let h = on_collision();
    let (solo, duo) = pair(&h);
    let mut c = h.connect("/mcp").await;
    let before = (solo.count("tools/call"), duo.count("tools/call"));
    let r = c
        .call(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        )
        .await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        message.contains("solo__echo") && message.contains("duo__echo"),
        "{message}"
    );
    assert_eq!(
        (solo.count("tools/call"), duo.count("tools/call")),
        before,
        "neither server gets an ambiguous call"
    );
    let r = c.call("prompts/get", json!({"name": "greet"})).await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c
        .call("tools/call", json!({"name": "nowhere", "arguments": {}}))
        .await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.ends_with("Unknown tool: nowhere"), "{message}");
}

#[tokio::test]
async fn a_name_that_reads_as_another_servers_prefix_is_prefixed_with_its_own() {
    let h = on_collision();
    let solo = h.add(
        "solo",
        MockServer::new("solo").tools(&["duo__echo"]),
        &["us"],
    );
    h.add("duo", MockServer::new("duo").tools(&["echo"]), &["us"]);
    let mut c = h.connect("/mcp").await;
    assert_eq!(
        sorted(c.all_names("tools/list", "tools").await),
        ["echo", "solo__duo__echo"]
    );
    c.call(
        "tools/call",
        json!({"name": "solo__duo__echo", "arguments": {}}),
    )
    .await;
    assert_eq!(last(&solo, "tools/call").unwrap()["name"], "duo__echo");
}

#[tokio::test]
async fn collisions_count_every_page_and_only_tools_the_caller_may_call() {
    let h = on_collision();
    // duo's `echo` is on its second page: the first page of the merged
    // list must already show solo's `echo` prefixed.
    h.add(
        "solo",
        MockServer::new("solo").tools(&["echo", "add"]),
        &["us"],
    );
    h.add(
        "duo",
        MockServer::new("duo")
            .tools(&["search", "echo"])
            .page_size(1),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    let first = c.result("tools/list", json!({})).await;
    let names: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"solo__echo"), "{names:?}");
    assert_eq!(
        sorted(c.all_names("tools/list", "tools").await),
        ["add", "duo__echo", "search", "solo__echo"]
    );
    // A server's tool filter hides duo's `echo`: solo's is the only one.
    let mut entry = h.raw_entry("duo");
    entry["tools"] = json!({"exclude": ["echo"]});
    h.register("duo", entry);
    let mut c = h.connect("/mcp").await;
    assert_eq!(
        sorted(c.all_names("tools/list", "tools").await),
        ["add", "echo", "search"]
    );
    let r = c
        .result(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "s"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "s");
}

#[tokio::test]
async fn a_modern_client_calls_by_the_servers_own_name() {
    let h = on_collision();
    pair(&h);
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["sum"]).modern(),
        &["us"],
    );
    let call = json!({"name": "sum", "arguments": {"values": [1, 2]}});
    let r = h
        .send(modern_request("/mcp", 3, "tools/call", call, &[]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.response()["result"]["content"][0]["text"], "3");
    let seen = up.seen();
    let call = seen
        .iter()
        .rev()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(call.body["params"]["name"], "sum");
    assert_eq!(
        call.headers["mcp-name"], "sum",
        "Mcp-Name goes with the body"
    );
}

#[tokio::test]
async fn an_upstreams_question_on_a_bare_name_continues_on_its_server() {
    let h = on_collision();
    pair(&h);
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["echo", "ask"]).modern(),
        &["us"],
    );
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        "a signing secret for the tests".into(),
    );
    let call = json!({"name": "ask", "arguments": {}});
    let r = h
        .send(modern_request("/mcp", 7, "tools/call", call, &[]))
        .await;
    let asked = r.response()["result"].clone();
    assert_eq!(asked["resultType"], "input_required", "{}", r.text);
    let state = asked["requestState"].as_str().unwrap().to_string();
    let answer = json!({"who": {"action": "accept", "content": {"name": "ada"}}});
    let retry =
        json!({"name": "ask", "arguments": {}, "requestState": state, "inputResponses": answer});
    let r = h
        .send(modern_request("/mcp", 8, "tools/call", retry, &[]))
        .await;
    assert_eq!(
        r.response()["result"]["content"][0]["text"],
        "hello \"ada\"",
        "{}",
        r.text
    );
    assert_eq!(last(&up, "tools/call").unwrap()["requestState"], "up-state");
}

#[tokio::test]
async fn a_bare_name_goes_nowhere_while_a_server_that_may_offer_it_cannot_be_asked() {
    let h = on_collision();
    let solo = h.add(
        "solo",
        MockServer::new("solo").tools(&["echo", "add"]),
        &["us"],
    );
    let duo = h.add(
        "duo",
        MockServer::new("duo").tools(&["search", "add"]),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    // duo is down while listing: solo's `add` is shown bare.
    duo.fail_with(Some(500));
    let names = c.all_names("tools/list", "tools").await;
    assert!(names.contains(&"add".to_string()), "{names:?}");
    // duo is back and solo down: `add` is not sent to duo.
    duo.fail_with(None);
    solo.fail_with(Some(500));
    let r = c
        .call(
            "tools/call",
            json!({"name": "add", "arguments": {"a": 2, "b": 3}}),
        )
        .await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("solo could not be asked"), "{r}");
    assert_eq!(duo.count("tools/call"), 0, "never guessed");
    // The prefixed name still routes.
    let r = c
        .result(
            "tools/call",
            json!({"name": "duo__add", "arguments": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "2");
}

/// Mounts `id` with minted credentials: requests whose token names
/// `subject` reach `theirs`, the rest `others` (a server that lists
/// differently to different callers).
fn per_caller(
    h: &Harness,
    id: &str,
    subject: &'static str,
    (theirs, others): (MockServer, MockServer),
) -> (Rc<MockServer>, Rc<MockServer>) {
    use base64::Engine;
    let (theirs, others) = (Rc::new(theirs), Rc::new(others));
    let url = format!("http://{id}.us.test/mcp");
    let (t, o) = (theirs.clone(), others.clone());
    h.p.http.mount_fn(&url, move |req| {
        let sub = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| t.split('.').nth(1))
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["sub"].as_str().map(str::to_string));
        let server = if sub.as_deref() == Some(subject) {
            t.clone()
        } else {
            o.clone()
        };
        Box::pin(async move { server.handle(req).await })
    });
    h.register(
        id,
        json!({"endpoints": [{"region": "us", "url": url}], "timeout_ms": 1000,
            "credentials": {"type": "jwt"}}),
    );
    (theirs, others)
}

#[tokio::test]
async fn a_bare_name_is_placed_by_the_callers_own_listing_never_another_callers() {
    let h = on_collision();
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        support::jwt::keys()["ec_gateway"].to_string(),
    );
    h.api_key(
        "mk_mallory",
        json!({"subject": "mallory", "teams": [], "scopes": ["mcp:tools"]}),
    );
    // bank offers `transfer` to everyone but mallory; plugins offers it
    // to mallory only.
    let (_, bank) = per_caller(
        &h,
        "bank",
        "mallory",
        (
            MockServer::new("bank").tools(&["balance"]),
            MockServer::new("bank").tools(&["balance", "transfer"]),
        ),
    );
    let (plugins_mallory, plugins) = per_caller(
        &h,
        "plugins",
        "mallory",
        (
            MockServer::new("plugins").tools(&["weather", "transfer"]),
            MockServer::new("plugins").tools(&["weather"]),
        ),
    );
    let mut tester = h.connect("/mcp").await;
    assert_eq!(
        sorted(tester.all_names("tools/list", "tools").await),
        ["balance", "transfer", "weather"]
    );
    // mallory makes the gateway list every server under her token.
    let probe = json!({"name": "no-such-tool", "arguments": {}});
    h.send(modern_request(
        "/mcp",
        9,
        "tools/call",
        probe,
        &[("x-api-key", "mk_mallory")],
    ))
    .await;
    let r = tester
        .result(
            "tools/call",
            json!({"name": "transfer", "arguments": {"to": "acct-1", "amount": 100}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "bank:transfer", "{r}");
    assert_eq!(bank.count("tools/call"), 1);
    assert_eq!(
        plugins.count("tools/call") + plugins_mallory.count("tools/call"),
        0,
        "never sent to the other server"
    );
}

#[tokio::test]
async fn a_failing_server_is_listed_at_most_once_per_two_seconds_for_bare_names() {
    let h = on_collision();
    h.add("solo", MockServer::new("solo").tools(&["add"]), &["us"]);
    let broken = h.add(
        "broken",
        MockServer::new("broken")
            .tools(&["echo"])
            .list_error("listing is down"),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    for _ in 0..5 {
        c.call("tools/call", json!({"name": "add", "arguments": {}}))
            .await;
    }
    assert_eq!(
        broken.count("tools/list"),
        1,
        "a failure answers for a while"
    );
}
