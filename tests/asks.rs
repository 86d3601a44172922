//! An upstream asking its client something mid-call through `/mcp` (legacy
//! clients): the capabilities it is offered, its request relayed on the
//! call's stream under an id of the gateway's, the client's answer routed
//! back to the upstream session that asked under the upstream's own id, and
//! two upstreams asking at once with the same ids.

mod support;

use futures_util::StreamExt;
use mcp_edge::adapters::memory::MockServer;
use mcp_edge::Body;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{initialize_with, Harness};

/// A session on `/mcp` for a client declaring `capabilities`: its id.
async fn session(h: &Harness, capabilities: Value) -> String {
    let r = h
        .post("/mcp", &initialize_with(1, "2025-06-18", capabilities), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.header("mcp-session-id").unwrap();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    h.post("/mcp", &note, &headers(&id)).await;
    id
}

fn headers(session: &str) -> Vec<(&str, &str)> {
    vec![
        ("mcp-session-id", session),
        ("mcp-protocol-version", "2025-06-18"),
    ]
}

/// Posts `body` on the session and leaves the answer's stream open.
async fn open(
    h: &Harness,
    session: &str,
    body: Value,
) -> futures_util::stream::LocalBoxStream<'static, Result<Vec<u8>, String>> {
    let req = Harness::post_request("/mcp", body.to_string().into_bytes(), &headers(session));
    let response = h.open(req).await;
    assert_eq!(response.status(), 200);
    match response.into_body() {
        Body::Stream(s) => s,
        other => futures_util::stream::once(async move {
            Ok(match other {
                Body::Full(b) => b,
                _ => Vec::new(),
            })
        })
        .boxed_local(),
    }
}

/// The next JSON-RPC message on a stream.
async fn next_message(
    stream: &mut futures_util::stream::LocalBoxStream<'static, Result<Vec<u8>, String>>,
) -> Value {
    loop {
        let chunk = stream.next().await.expect("more on the stream").unwrap();
        let text = String::from_utf8(chunk).unwrap();
        if let Some(data) = text.lines().find_map(|l| l.strip_prefix("data: ")) {
            if !data.trim().is_empty() {
                return serde_json::from_str(data).unwrap();
            }
        }
    }
}

fn call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
}

fn answer(id: &Value, name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id,
        "result": {"action": "accept", "content": {"name": name}}})
}

fn askers(h: &Harness) -> (Rc<MockServer>, Rc<MockServer>) {
    let tools = ["ask_user", "ask_model", "list_roots"];
    (
        h.add("alpha", MockServer::new("alpha").tools(&tools), &["us"]),
        h.add("beta", MockServer::new("beta").tools(&tools), &["us"]),
    )
}

#[tokio::test]
async fn upstreams_are_offered_what_the_client_can_be_asked_and_no_more() {
    let h = Harness::new();
    let (alpha, _) = askers(&h);
    let declared = json!({"elicitation": {"form": {}}, "sampling": {}, "roots": {"listChanged": true},
        "experimental": {"x": {}}});
    let id = session(&h, declared).await;
    let mut stream = open(&h, &id, call(2, "alpha__list_roots")).await;
    next_message(&mut stream).await;
    let init = alpha
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("initialize"))
        .unwrap();
    assert_eq!(
        init.body["params"]["capabilities"],
        json!({"elicitation": {"form": {}}, "sampling": {}, "roots": {"listChanged": true}})
    );
    // A client that declares nothing offers nothing.
    let h = Harness::new();
    let (alpha, _) = askers(&h);
    let id = session(&h, json!({})).await;
    let r = h
        .post("/mcp", &call(2, "alpha__nothing"), &headers(&id))
        .await;
    assert_eq!(r.status, 200);
    let init = alpha
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("initialize"))
        .unwrap();
    assert_eq!(init.body["params"]["capabilities"], json!({}));
}

#[tokio::test]
async fn an_upstreams_question_mid_call_is_relayed_and_its_answer_routed_back() {
    let h = Harness::new();
    let (alpha, beta) = askers(&h);
    let id = session(&h, json!({"elicitation": {}, "sampling": {}, "roots": {}})).await;
    for (tool, method) in [
        ("ask_user", "elicitation/create"),
        ("ask_model", "sampling/createMessage"),
        ("list_roots", "roots/list"),
    ] {
        let mut stream = open(&h, &id, call(7, &format!("alpha__{tool}"))).await;
        let asked = next_message(&mut stream).await;
        assert_eq!(asked["method"], method, "{asked}");
        let tagged = asked["id"].clone();
        assert!(
            tagged.as_str().unwrap().starts_with("mcp-edge-asks:alpha:"),
            "an id of the gateway's: {tagged}"
        );
        if method == "elicitation/create" {
            // Never passed off as the gateway's own question.
            assert_eq!(
                asked["params"]["message"], "[server 'alpha' asks] Your name?",
                "{asked}"
            );
        }
        let r = h.post("/mcp", &answer(&tagged, "ada"), &headers(&id)).await;
        assert_eq!(r.status, 202, "{}", r.text);
        let done = next_message(&mut stream).await;
        assert_eq!(done["id"], 7, "{done}");
        let text = done["result"]["content"][0]["text"].as_str().unwrap();
        assert!(
            text.starts_with("alpha heard") && text.contains("ada"),
            "{text}"
        );
        let got = alpha.answers().last().cloned().unwrap();
        assert!(got["id"].is_i64(), "the upstream's own id back: {got}");
    }
    assert!(
        beta.answers().is_empty(),
        "nothing reached the other server"
    );
}

#[tokio::test]
async fn two_upstreams_asking_at_once_with_the_same_ids_get_their_own_answers() {
    let h = Harness::new();
    let (alpha, beta) = askers(&h);
    let id = session(&h, json!({"elicitation": {}})).await;
    let mut a = open(&h, &id, call(1, "alpha__ask_user")).await;
    let mut b = open(&h, &id, call(2, "beta__ask_user")).await;
    let (qa, qb) = (next_message(&mut a).await, next_message(&mut b).await);
    assert_ne!(qa["id"], qb["id"], "{qa} {qb}");
    // Answered in the other order, each with its own name.
    h.post("/mcp", &answer(&qb["id"], "bob"), &headers(&id))
        .await;
    h.post("/mcp", &answer(&qa["id"], "ann"), &headers(&id))
        .await;
    let (da, db) = (next_message(&mut a).await, next_message(&mut b).await);
    let text = |v: &Value| {
        v["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        text(&da).starts_with("alpha heard") && text(&da).contains("ann"),
        "{da}"
    );
    assert!(
        text(&db).starts_with("beta heard") && text(&db).contains("bob"),
        "{db}"
    );
    assert_eq!(
        alpha.answers()[0]["id"],
        beta.answers()[0]["id"],
        "the ids clashed upstream"
    );
}

#[tokio::test]
async fn answers_for_nobody_go_nowhere() {
    let h = Harness::new();
    let (alpha, beta) = askers(&h);
    let id = session(&h, json!({"elicitation": {}})).await;
    // No session with beta yet, an unknown server, a malformed tag, a
    // plain id: accepted and dropped, no upstream session opened.
    for bad in [
        json!("mcp-edge-asks:beta:1"),
        json!("mcp-edge-asks:nobody:1"),
        json!("mcp-edge-asks:alpha"),
        json!(5),
    ] {
        let r = h.post("/mcp", &answer(&bad, "x"), &headers(&id)).await;
        assert_eq!(r.status, 202, "{}", r.text);
    }
    assert!(alpha.answers().is_empty() && beta.answers().is_empty());
    assert_eq!(beta.count("initialize"), 0, "no session opened for it");
}

#[tokio::test]
async fn the_mcp_get_stream_merges_every_servers_stream_and_tags_their_requests() {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo"]).notices(vec![
            json!({"jsonrpc": "2.0", "id": 1, "method": "roots/list"}),
            json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        ]),
        &["us"],
    );
    let beta = h.add(
        "beta",
        MockServer::new("beta").tools(&["echo"]).get_stream(),
        &["us"],
    );
    // gamma offers no stream (405): left out.
    h.add("gamma", MockServer::new("gamma").tools(&["echo"]), &["us"]);
    let id = session(&h, json!({"roots": {}})).await;
    let req = support::mcp_stream_request(&id, &[]);
    let reply = support::Reply::read(h.open(req).await).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = reply.events();
    let asked = events
        .iter()
        .find(|e| e["method"] == "roots/list")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(asked["id"], "mcp-edge-asks:alpha:1");
    assert!(events
        .iter()
        .any(|e| e["method"] == "notifications/tools/list_changed"));
    assert!(
        events
            .iter()
            .any(|e| e["method"] == "notifications/message"),
        "beta's stream is in it: {events:?}"
    );
    // No upstream's own event ids: the merged stream's, which hold them.
    assert!(
        reply
            .text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .all(|id| id.starts_with("mcp-edge-m1.")),
        "{}",
        reply.text
    );
    assert_eq!(alpha.count("initialize"), 1, "met by the stream");
    assert_eq!(beta.count("initialize"), 1);
    // Listened to before being told the client is initialized, so what a
    // server sends right after (a grown tool list, a roots/list) is heard.
    for server in [&alpha, &beta] {
        let seen = server.seen();
        let at = |f: &dyn Fn(&mcp_edge::adapters::memory::Seen) -> bool| {
            seen.iter()
                .position(f)
                .unwrap_or_else(|| panic!("{seen:?}"))
        };
        let get = at(&|s| s.http_method == "GET");
        let ready = at(&|s| s.rpc_method.as_deref() == Some("notifications/initialized"));
        assert!(get < ready, "GET at {get}, initialized at {ready}");
        assert_eq!(
            seen.iter().filter(|s| s.http_method == "GET").count(),
            1,
            "one stream per server"
        );
    }
    // The answer goes back to alpha under its own id.
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"roots": []}});
    let r = h.post("/mcp", &answer, &headers(&id)).await;
    assert_eq!(r.status, 202);
    assert_eq!(alpha.answers()[0]["id"], 1);
}

#[tokio::test]
async fn without_any_server_stream_the_mcp_get_is_405() {
    let h = Harness::new();
    h.add("gamma", MockServer::new("gamma").tools(&["echo"]), &["us"]);
    let id = session(&h, json!({})).await;
    let req = support::mcp_stream_request(&id, &[]);
    let reply = support::Reply::read(h.open(req).await).await;
    assert_eq!(reply.status, 405, "{}", reply.text);
}

#[tokio::test]
async fn a_server_met_at_once_by_a_call_and_the_stream_keeps_one_session() {
    let h = Harness::new();
    let notices = vec![json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})];
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha")
            .tools(&["echo"])
            .notices(notices)
            .quiet_listener()
            .delay_ms(5),
        &["us"],
    );
    let id = session(&h, json!({})).await;
    let get = support::mcp_stream_request(&id, &[]);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    // The stream and a list meet alpha at the same time.
    let on_session = headers(&id);
    let (stream, listed) = tokio::join!(h.open(get), h.post("/mcp", &list, &on_session));
    assert_eq!(stream.status(), 200);
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(alpha.count("initialize"), 2, "both met it");
    let r = h.post("/mcp", &call(3, "alpha__echo"), &headers(&id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = alpha.seen();
    let session_of = |method: &str, rpc: Option<&str>| {
        seen.iter()
            .rev()
            .find(|s| s.http_method == method && s.rpc_method.as_deref() == rpc)
            .and_then(|s| s.headers.get("mcp-session-id").cloned())
            .unwrap()
    };
    assert_eq!(
        session_of("GET", None),
        session_of("POST", Some("tools/call")),
        "later calls use the session the stream hears"
    );
}

#[tokio::test]
async fn a_server_met_at_once_by_two_requests_keeps_one_session() {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha")
            .tools(&["echo", "ask_user"])
            .delay_ms(5),
        &["us"],
    );
    let id = session(&h, json!({"elicitation": {}})).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let on_session = headers(&id);
    let echo = call(3, "alpha__echo");
    // A list and a call meet alpha at the same time.
    let (listed, called) = tokio::join!(
        h.post("/mcp", &list, &on_session),
        h.post("/mcp", &echo, &on_session)
    );
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(called.status, 200, "{}", called.text);
    assert_eq!(alpha.count("initialize"), 2, "both met it");
    // Every request since uses the session recorded first, so an answer to
    // what the server asks mid-call goes back to the session that asked.
    let mut stream = open(&h, &id, call(4, "alpha__ask_user")).await;
    let asked = next_message(&mut stream).await;
    h.post("/mcp", &answer(&asked["id"], "ada"), &headers(&id))
        .await;
    let done = next_message(&mut stream).await;
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("ada"), "{done}");
    let sessions: std::collections::HashSet<String> = alpha
        .seen()
        .iter()
        .filter(|s| s.rpc_method.as_deref() != Some("initialize"))
        .filter(|s| s.rpc_method.as_deref() != Some("notifications/initialized"))
        .filter_map(|s| s.headers.get("mcp-session-id"))
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), 1, "one session used: {sessions:?}");
    // The other one is ended, not left to time out.
    h.p.run_deferred().await;
    let ended: Vec<String> = alpha
        .seen()
        .iter()
        .filter(|s| s.http_method == "DELETE")
        .filter_map(|s| s.headers.get("mcp-session-id"))
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(!sessions.contains(&ended[0]), "the unused one: {ended:?}");
}

#[tokio::test]
async fn an_answer_through_another_isolate_reaches_the_session_that_asked() {
    let h = Harness::new();
    h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo", "ask_user"]),
        &["us"],
    );
    let id = session(&h, json!({"elicitation": {}})).await;
    let other = h.another_isolate();
    // The other isolate caches the record before alpha is met.
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let r = other.post("/mcp", &ping, &headers(&id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // alpha is met, and asks, through this one.
    let mut stream = open(&h, &id, call(3, "alpha__ask_user")).await;
    let asked = next_message(&mut stream).await;
    assert_eq!(asked["method"], "elicitation/create", "{asked}");
    // The answer lands on the other isolate.
    let r = other
        .post("/mcp", &answer(&asked["id"], "grace"), &headers(&id))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let done = next_message(&mut stream).await;
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.contains("grace"), "{done}");
}
