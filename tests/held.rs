//! A legacy upstream asking a modern (2026-07-28) client something in the
//! middle of a call, on `/mcp` and on the server's own endpoint: the
//! question reaches the client as an `input_required` result, the upstream
//! is offered the capabilities the client declared, the retry's answer goes
//! to the upstream session that asked under the upstream's own id, and the
//! call's stream is resumed (not the call sent again) to bring the result.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{Harness, Reply};

/// Everything a client can be asked.
fn askable() -> Value {
    json!({"elicitation": {"form": {}}, "sampling": {}, "roots": {}})
}

/// A legacy mock with the asking tools; states are sealed (a signing
/// secret is set).
fn with_an_asking_server() -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let tools = ["ask_user", "ask_model", "list_roots"];
    let alpha = h.add("alpha", MockServer::new("alpha").tools(&tools), &["us"]);
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        "a signing secret for the tests".into(),
    );
    (h, alpha)
}

/// A modern `tools/call` of `name` on `path` by a client declaring
/// `capabilities`, with `extra` params.
async fn call(h: &Harness, path: &str, name: &str, capabilities: Value, extra: Value) -> Reply {
    support::modern_call(h, (path, 9, name), capabilities, extra).await
}

fn result_of(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.response();
    assert_eq!(v["id"], 9, "the client's own id: {}", r.text);
    assert!(v.get("error").is_none(), "{}", r.text);
    v["result"].clone()
}

#[tokio::test]
async fn a_legacy_upstreams_question_is_put_to_a_modern_client_and_its_answer_resumes_the_call() {
    for (path, name, label) in [
        ("/mcp", "alpha__ask_user", true),
        ("/servers/alpha/mcp", "ask_user", false),
    ] {
        let (h, alpha) = with_an_asking_server();
        // 1. The upstream asks mid-call: the client gets the question.
        let first = call(&h, path, name, askable(), json!({})).await;
        let asked = result_of(&first);
        assert_eq!(asked["resultType"], "input_required", "{asked}");
        // The upstream's event ids stay with the gateway.
        assert!(
            !first.text.lines().any(|l| l.starts_with("id:")),
            "{}",
            first.text
        );
        let requests = asked["inputRequests"].as_object().unwrap();
        assert_eq!(requests.len(), 1, "{asked}");
        let (key, question) = requests.iter().next().unwrap();
        assert_eq!(question["method"], "elicitation/create");
        let message = question["params"]["message"].as_str().unwrap();
        // On /mcp the client sees one server: the question says whose it is.
        assert_eq!(
            message.starts_with("[server 'alpha' asks] "),
            label,
            "{message}"
        );
        // The upstream was offered what the client can be asked.
        let init = alpha
            .seen()
            .into_iter()
            .find(|s| s.rpc_method.as_deref() == Some("initialize"))
            .unwrap();
        assert_eq!(init.body["params"]["capabilities"], askable());
        // 2. The answer: handed to the upstream under its own id, and the
        // call's stream resumed for the result; the call is not sent again.
        let answer = json!({"requestState": asked["requestState"],
            "inputResponses": {key: {"action": "accept", "content": {"name": "ada"}}}});
        let done = result_of(&call(&h, path, name, askable(), answer).await);
        assert_eq!(done["resultType"], "complete", "{done}");
        let text = done["content"][0]["text"].as_str().unwrap();
        assert!(
            text.starts_with("alpha heard") && text.contains("ada"),
            "{text}"
        );
        assert_eq!(alpha.count("tools/call"), 1, "{path}");
        let answers = alpha.answers();
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["id"], 1, "the upstream's own id");
        // Held, not cancelled, while the client answered; and answered on
        // the upstream session the call went on.
        assert_eq!(alpha.count("notifications/cancelled"), 0);
        let seen = alpha.seen();
        let session_of = |s: &mcp_edge::adapters::memory::Seen| {
            s.headers
                .get("mcp-session-id")
                .map(|v| v.to_str().unwrap().to_string())
        };
        let call = seen
            .iter()
            .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
            .unwrap();
        let answer = seen
            .iter()
            .find(|s| s.rpc_method.is_none() && s.body.get("result").is_some());
        assert!(session_of(call).is_some());
        assert_eq!(session_of(answer.unwrap()), session_of(call));
        // (A GET without Last-Event-ID listened aside for roots: refused.)
        let resumed = seen
            .iter()
            .find(|s| s.http_method == "GET" && s.headers.contains_key("last-event-id"))
            .unwrap();
        assert_eq!(session_of(resumed), session_of(call));
        assert_eq!(resumed.headers.get("last-event-id").unwrap(), "ask-1");
    }
}

#[tokio::test]
async fn sampling_and_roots_are_asked_the_same_way() {
    let (h, alpha) = with_an_asking_server();
    for (tool, method, answer) in [
        (
            "alpha__ask_model",
            "sampling/createMessage",
            json!({"role": "assistant", "model": "m",
                "content": {"type": "text", "text": "sampled"}}),
        ),
        (
            "alpha__list_roots",
            "roots/list",
            json!({"roots": [{"uri": "file:///r"}]}),
        ),
    ] {
        let asked = result_of(&call(&h, "/mcp", tool, askable(), json!({})).await);
        let (key, question) = asked["inputRequests"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        assert_eq!(question["method"], method);
        let retry = json!({"requestState": asked["requestState"],
            "inputResponses": {key: answer}});
        let done = result_of(&call(&h, "/mcp", tool, askable(), retry).await);
        let text = done["content"][0]["text"].as_str().unwrap();
        let expected = answer.to_string();
        assert!(text.contains(&expected[1..expected.len() - 1]), "{text}");
    }
    assert_eq!(alpha.answers().len(), 2);
}

#[tokio::test]
async fn a_retry_must_answer_every_question_and_only_its_caller_can_answer() {
    let (h, alpha) = with_an_asking_server();
    let asked = result_of(&call(&h, "/mcp", "alpha__ask_user", askable(), json!({})).await);
    // No answer for the question: refused, nothing reaches the upstream.
    let silent = json!({"requestState": asked["requestState"], "inputResponses": {}});
    let r = call(&h, "/mcp", "alpha__ask_user", askable(), silent).await;
    let error = r.response();
    assert_eq!(error["error"]["code"], -32602, "{}", r.text);
    assert!(alpha.answers().is_empty());
    // The state answers this call only: another tool's retry is refused.
    let key = asked["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let elsewhere = json!({"requestState": asked["requestState"],
        "inputResponses": {key: {"action": "accept", "content": {}}}});
    let r = call(&h, "/mcp", "alpha__ask_model", askable(), elsewhere.clone()).await;
    assert_eq!(r.response()["error"]["code"], -32602, "{}", r.text);
    // Nor can another caller answer it.
    h.api_key("mk_mallory", json!({"subject": "mallory"}));
    let mut body = support::modern_body(
        9,
        "tools/call",
        json!({"name": "alpha__ask_user",
        "arguments": {}, "requestState": asked["requestState"],
        "inputResponses": elsewhere["inputResponses"]}),
    );
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = askable();
    let headers = [
        ("mcp-protocol-version", support::MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "alpha__ask_user"),
        ("x-api-key", "mk_mallory"),
    ];
    let r = h.post("/mcp", &body, &headers).await;
    assert_eq!(r.response()["error"]["code"], -32602, "{}", r.text);
    assert!(alpha.answers().is_empty());
}

#[tokio::test]
async fn a_client_is_not_asked_what_it_did_not_declare() {
    let (h, alpha) = with_an_asking_server();
    // It declared elicitation only; the upstream asks for sampling anyway.
    let only = json!({"elicitation": {"form": {}}});
    let r = call(&h, "/mcp", "alpha__ask_model", only, json!({})).await;
    let error = r.response();
    let message = error["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.text));
    assert!(message.contains("sampling/createMessage"), "{message}");
    // The call cannot go on: it is cancelled upstream.
    h.p.run_deferred().await;
    assert_eq!(alpha.count("notifications/cancelled"), 1);
}

#[tokio::test]
async fn a_client_that_can_be_asked_nothing_is_offered_nothing() {
    let (h, alpha) = with_an_asking_server();
    // Its own bridge: the upstream session opened for a client that
    // declared the capabilities is not this one's.
    result_of(&call(&h, "/mcp", "alpha__ask_user", askable(), json!({})).await);
    let r = call(&h, "/mcp", "alpha__ask_user", json!({}), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let offered: Vec<Value> = alpha
        .seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("initialize"))
        .map(|s| s.body["params"]["capabilities"].clone())
        .collect();
    assert_eq!(offered, vec![askable(), json!({})]);
}
