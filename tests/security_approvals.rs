//! SECURITY.md, approval: who decides a held call is the policy's to say,
//! and nobody else's. Issue 9, items 1 (approvers bypassed through
//! elicitation; self-approval; what the question shows), 10 (open
//! questions per caller) and 11 (argument hashes over the exact text).

mod support;

use futures_util::StreamExt;
use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{Harness, Reply};

const ALICE: &str = "mk_alice";
const CAROL: &str = "mk_carol";
const DAVE: &str = "mk_dave";

/// `notes` with `delete` (destructive: approvers decide) and `archive` (the
/// user confirms); carol and dave are approvers.
fn harness(extra: Value) -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let notes = h.add(
        "notes",
        MockServer::new("notes").tools(&["delete", "archive", "echo"]),
        &["us"],
    );
    h.api_key(ALICE, json!({"subject": "alice"}));
    h.api_key(CAROL, json!({"subject": "carol", "roles": ["approver"]}));
    h.api_key(DAVE, json!({"subject": "dave", "roles": ["approver"]}));
    let mut approval = json!({
        "approvers": {"roles": ["approver"]},
        "tools": [{"servers": ["notes"], "tools": ["archive"], "decided_by": "user"}],
        "destructive_hint": true,
        "ttl_secs": 60,
        "elicitation_timeout_secs": 5
    });
    for (k, v) in extra.as_object().unwrap() {
        approval[k] = v.clone();
    }
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": approval
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, notes)
}

async fn session(h: &Harness, key: &str, capabilities: Value) -> String {
    let init = support::initialize_with(1, "2025-11-25", capabilities);
    let r = h.post("/mcp", &init, &[("x-api-key", key)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.header("mcp-session-id").unwrap()
}

fn call_body(tool: &str, arguments: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
    )
    .into_bytes()
}

async fn call(h: &Harness, key: &str, sid: &str, tool: &str, arguments: &str) -> Reply {
    let headers = [("x-api-key", key), ("mcp-session-id", sid)];
    h.post_raw("/mcp", call_body(tool, arguments), &headers)
        .await
}

/// Opens the call's stream and returns its first message and the rest.
async fn open(
    h: &Harness,
    key: &str,
    sid: &str,
    tool: &str,
    arguments: &str,
) -> (Value, mcp_edge::body::ByteStream) {
    let headers = [("x-api-key", key), ("mcp-session-id", sid)];
    let req = Harness::post_request("/mcp", call_body(tool, arguments), &headers);
    let resp = h.open(req).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.into_body().into_stream();
    let first = stream.next().await.unwrap().unwrap();
    let events = mcp_edge::protocol::sse::Decoder::new().feed(&first);
    (serde_json::from_str(&events[0].data).unwrap(), stream)
}

/// Alice's two archive calls, each answered with a question; the streams.
async fn ask_twice(h: &Harness, sid: &str) -> Vec<mcp_edge::body::ByteStream> {
    let mut streams = Vec::new();
    for i in 0..2 {
        let args = format!(r#"{{"i":{i}}}"#);
        let (q, s) = open(h, ALICE, sid, "notes__archive", &args).await;
        assert_eq!(q["method"], "elicitation/create");
        streams.push(s);
    }
    streams
}

async fn messages(stream: mcp_edge::body::ByteStream) -> Vec<Value> {
    let chunks: Vec<Vec<u8>> = stream.map(|c| c.unwrap()).collect().await;
    let events = mcp_edge::protocol::sse::Decoder::new().feed(&chunks.concat());
    events
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

async fn answer(h: &Harness, key: &str, sid: &str, id: &Value, action: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": id, "result": {"action": action}});
    let headers = [("x-api-key", key), ("mcp-session-id", sid)];
    h.post("/mcp", &body, &headers).await.status
}

async fn decide(h: &Harness, key: &str, id: &str, decision: &str) -> Reply {
    let req = http::Request::post(format!("http://gw.test/approvals/{id}"))
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(json!({"decision": decision}).to_string().into_bytes())
        .unwrap();
    h.send(req).await
}

fn pending(r: &Reply) -> String {
    let resp = r.response();
    let meta = &resp["result"]["_meta"]["mcp-edge/approval"];
    assert_eq!(meta["status"], "pending", "{resp}");
    meta["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_client_with_elicitation_cannot_approve_a_call_held_for_approvers() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, ALICE, json!({"elicitation": {}})).await;
    let r = call(&h, ALICE, &sid, "notes__delete", r#"{"id":"a"}"#).await;
    assert!(
        !r.is_sse(),
        "no question is put to the requester: {}",
        r.text
    );
    let id = pending(&r);
    // Even a forged answer naming the approval decides nothing.
    let forged = json!(format!("mcp-edge-approval:{id}"));
    assert_eq!(answer(&h, ALICE, &sid, &forged, "accept").await, 202);
    let again = call(&h, ALICE, &sid, "notes__delete", r#"{"id":"a"}"#).await;
    assert_eq!(pending(&again), id, "still pending");
    assert_eq!(notes.count("tools/call"), 0);
    assert_eq!(decide(&h, CAROL, &id, "approve").await.status, 200);
    let ran = call(&h, ALICE, &sid, "notes__delete", r#"{"id":"a"}"#).await;
    assert_eq!(ran.response()["result"]["content"][0]["text"], "deleted a");
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn a_url_elicitation_sends_the_user_to_the_approval_and_waits_for_an_approver() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, ALICE, json!({"elicitation": {"form": {}, "url": {}}})).await;
    let (question, stream) = open(&h, ALICE, &sid, "notes__delete", r#"{"id":"b"}"#).await;
    let params = &question["params"];
    assert_eq!(params["mode"], "url", "{question}");
    let url = params["url"].as_str().unwrap();
    let id = url.rsplit('/').next().unwrap().to_string();
    assert!(url.starts_with("http://gw.test/approvals/ap_"), "{url}");
    assert_eq!(params["elicitationId"], id.as_str());
    // The user's consent to open the address is not a decision.
    assert_eq!(
        answer(&h, ALICE, &sid, &question["id"], "accept").await,
        202
    );
    assert_eq!(notes.count("tools/call"), 0);
    assert_eq!(decide(&h, CAROL, &id, "approve").await.status, 200);
    let rest = messages(stream).await;
    assert_eq!(rest[0]["method"], "notifications/elicitation/complete");
    assert_eq!(rest[0]["params"]["elicitationId"], id.as_str());
    assert_eq!(rest[1]["result"]["content"][0]["text"], "deleted b");
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_url_question_left_undecided_ends_with_the_pending_approval() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, ALICE, json!({"elicitation": {"url": {}}})).await;
    let (question, stream) = open(&h, ALICE, &sid, "notes__delete", r#"{"id":"c"}"#).await;
    assert_eq!(question["params"]["mode"], "url");
    let rest = messages(stream).await;
    let meta = &rest[0]["result"]["_meta"]["mcp-edge/approval"];
    assert_eq!(meta["status"], "pending", "{rest:?}");
    assert_eq!(meta["decider"], "approvers");
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test]
async fn an_approver_may_not_approve_their_own_call() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, CAROL, json!({})).await;
    let id = pending(&call(&h, CAROL, &sid, "notes__delete", r#"{"id":"d"}"#).await);
    let (_, message) = decide(&h, CAROL, &id, "approve").await.error(403);
    assert!(message.contains("requester may not approve"), "{message}");
    assert_eq!(decide(&h, DAVE, &id, "approve").await.status, 200);
    let ran = call(&h, CAROL, &sid, "notes__delete", r#"{"id":"d"}"#).await;
    assert_eq!(ran.response()["result"]["content"][0]["text"], "deleted d");
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn where_the_user_decides_they_confirm_at_the_endpoint_without_elicitation() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, ALICE, json!({})).await;
    let r = call(&h, ALICE, &sid, "notes__archive", r#"{"id":"e"}"#).await;
    let id = pending(&r);
    assert_eq!(
        r.response()["result"]["_meta"]["mcp-edge/approval"]["decider"],
        "user"
    );
    assert_eq!(decide(&h, ALICE, &id, "approve").await.status, 200);
    call(&h, ALICE, &sid, "notes__archive", r#"{"id":"e"}"#).await;
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn the_question_shows_the_whole_arguments_or_where_to_read_them() {
    let (h, _) = harness(json!({}));
    let sid = session(&h, ALICE, json!({"elicitation": {}})).await;
    let long = format!(
        r#"{{"note":"{}","tail":"DROP-EVERYTHING"}}"#,
        "x".repeat(6000)
    );
    let (question, _stream) = open(&h, ALICE, &sid, "notes__archive", &long).await;
    let message = question["params"]["message"].as_str().unwrap();
    assert!(
        !message.contains("xxxx"),
        "no silently cut prefix: {message}"
    );
    let url = message
        .split_whitespace()
        .find(|w| w.starts_with("http://gw.test/approvals/el_"))
        .expect("where to read them")
        .to_string();
    assert!(message.contains("SHA-256"), "{message}");
    let req = http::Request::get(url)
        .header("x-api-key", ALICE)
        .body(Vec::new())
        .unwrap();
    let record = h.send(req).await.json();
    assert_eq!(
        record["arguments"]["tail"], "DROP-EVERYTHING",
        "read in full, as forwarded"
    );
}

#[tokio::test]
async fn one_caller_holds_a_bounded_number_of_questions_open() {
    let (h, notes) = harness(json!({}));
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "APPROVAL_WAITS_PER_CALLER",
            "2",
        ))),
        ..h
    };
    let sid = session(&h, ALICE, json!({"elicitation": {}})).await;
    let _open_streams = ask_twice(&h, &sid).await;
    let third = call(&h, ALICE, &sid, "notes__archive", r#"{"i":3}"#).await;
    assert!(!third.is_sse(), "no third open question: {}", third.text);
    pending(&third);
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test]
async fn arguments_that_differ_only_in_number_spelling_need_their_own_approval() {
    let (h, notes) = harness(json!({}));
    let sid = session(&h, ALICE, json!({})).await;
    let big = r#"{"id":"a","amount":100000000000000000001}"#;
    let near = r#"{"id":"a","amount":100000000000000000000}"#;
    let id = pending(&call(&h, ALICE, &sid, "notes__delete", big).await);
    assert_ne!(
        pending(&call(&h, ALICE, &sid, "notes__delete", near).await),
        id
    );
    let req = http::Request::get(format!("http://gw.test/approvals/{id}"))
        .header("x-api-key", CAROL)
        .body(Vec::new())
        .unwrap();
    let shown = h.send(req).await.text;
    assert!(
        shown.contains("100000000000000000001"),
        "the approver reads the exact number: {shown}"
    );
    assert_eq!(decide(&h, CAROL, &id, "approve").await.status, 200);
    // The approval is for the exact call: the near one is still held.
    pending(&call(&h, ALICE, &sid, "notes__delete", near).await);
    call(&h, ALICE, &sid, "notes__delete", big).await;
    assert_eq!(notes.count("tools/call"), 1);
    let dup = call(&h, ALICE, &sid, "notes__delete", r#"{"id":"a","id":"b"}"#).await;
    assert_eq!(dup.response()["error"]["code"], -32602, "duplicate keys");
}

#[tokio::test(start_paused = true)]
async fn the_question_budget_refills_with_time() {
    let (h, _) = harness(json!({}));
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "APPROVAL_WAITS_PER_CALLER",
            "2",
        ))),
        ..h
    };
    let sid = session(&h, ALICE, json!({"elicitation": {"form": {}, "url": {}}})).await;
    drop(ask_twice(&h, &sid).await);
    pending(&call(&h, ALICE, &sid, "notes__archive", r#"{"i":3}"#).await);
    tokio::time::advance(std::time::Duration::from_secs(60)).await;
    let (q, _s) = open(&h, ALICE, &sid, "notes__delete", r#"{"id":"z"}"#).await;
    assert_eq!(q["params"]["mode"], "url", "{q}");
}

#[tokio::test]
async fn a_second_credential_is_no_second_pair_of_eyes() {
    use support::jwt::{now, public, sign};
    let (h, notes) = harness(json!({}));
    h.p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": "https://id.test", "jwks": {"keys": [public("ec")]}}).to_string(),
    );
    h.gw.reload_config();
    let sid = session(&h, CAROL, json!({})).await;
    let id = pending(&call(&h, CAROL, &sid, "notes__delete", r#"{"id":"q"}"#).await);
    // Carol again, with a token from the identity provider instead of her key.
    let claims = json!({"iss": "https://id.test", "aud": "http://gw.test", "sub": "carol",
                        "roles": ["approver"], "exp": now() + 600});
    let bearer = format!("Bearer {}", sign("ec", Some("ec-1"), claims));
    let req = http::Request::post(format!("http://gw.test/approvals/{id}"))
        .header("content-type", "application/json")
        .header("authorization", &bearer)
        .body(json!({"decision": "approve"}).to_string().into_bytes())
        .unwrap();
    let (_, message) = h.send(req).await.error(403);
    assert!(message.contains("requester may not approve"), "{message}");
    assert_eq!(notes.count("tools/call"), 0);
}
