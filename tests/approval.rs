//! Human approval and argument validation on the memory adapter: pending
//! approvals decided through `/approvals/{id}` (approve, reject, expiry,
//! argument mismatch, who may see and decide), approval asked through MCP
//! elicitation (accept, decline, timeout), and `tools/call` arguments checked
//! against the tool's `inputSchema` before the upstream is called.

mod support;

use futures_util::StreamExt;
use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{Harness, Reply};

const ALICE: &str = "mk_alice";
const CAROL: &str = "mk_carol";
const BOB: &str = "mk_bob";

/// Server `notes` (echo, sum, delete (destructive), drop_table, archive);
/// everyone may use it; carol (role approver) approves; `drop_*` and
/// destructive tools need an approver; `archive` needs the user's own
/// confirmation.
fn harness() -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let notes = h.add(
        "notes",
        MockServer::new("notes").tools(&["echo", "sum", "delete", "drop_table", "archive"]),
        &["us"],
    );
    h.api_key(ALICE, json!({"subject": "alice", "teams": ["eng"]}));
    h.api_key(BOB, json!({"subject": "bob", "roles": ["sre"]}));
    h.api_key(CAROL, json!({"subject": "carol", "roles": ["approver"]}));
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "approvers": {"roles": ["approver"]},
            "tools": [
                {"servers": ["notes"], "tools": ["drop_*"]},
                {"servers": ["notes"], "tools": ["archive"], "decided_by": "user"}
            ],
            "destructive_hint": true,
            "ttl_secs": 60,
            "elicitation_timeout_secs": 5
        }
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, notes)
}

/// Opens a session for `key`, declaring `capabilities`.
async fn session(h: &Harness, key: &str, capabilities: Value) -> String {
    let init = support::initialize_with(1, "2025-06-18", capabilities);
    let r = h.post("/mcp", &init, &[("x-api-key", key)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.header("mcp-session-id").unwrap();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = h
        .post(
            "/mcp",
            &note,
            &[("x-api-key", key), ("mcp-session-id", &sid)],
        )
        .await;
    assert_eq!(r.status, 202);
    sid
}

fn call_body(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

/// Calls `tool` as `key` in a fresh session; the JSON-RPC response.
async fn call(h: &Harness, key: &str, tool: &str, arguments: Value) -> Value {
    let sid = session(h, key, json!({})).await;
    let r = h
        .post(
            "/mcp",
            &call_body(tool, arguments),
            &[("x-api-key", key), ("mcp-session-id", &sid)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.response()
}

fn text(resp: &Value) -> String {
    resp["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {resp}"))
        .to_string()
}

/// The approval id a pending-approval tool error carries.
fn pending_id(resp: &Value) -> String {
    assert_eq!(resp["result"]["isError"], true, "{resp}");
    let meta = &resp["result"]["_meta"]["mcp-edge/approval"];
    assert_eq!(meta["status"], "pending", "{resp}");
    meta["id"].as_str().unwrap().to_string()
}

async fn approvals(h: &Harness, key: &str, id: &str, decision: Option<&str>) -> Reply {
    let path = format!("http://gw.test/approvals/{id}");
    let req = match decision {
        None => http::Request::get(path).body(Vec::new()),
        Some(d) => http::Request::post(path)
            .header("content-type", "application/json")
            .body(json!({"decision": d}).to_string().into_bytes()),
    };
    let mut req = req.unwrap();
    req.headers_mut().insert("x-api-key", key.parse().unwrap());
    h.send(req).await
}

#[tokio::test]
async fn arguments_violating_the_schema_are_refused_and_never_forwarded() {
    let (h, notes) = harness();
    let resp = call(&h, ALICE, "notes__sum", json!({"values": [1, "two"]})).await;
    assert_eq!(resp["error"]["code"], -32602, "{resp}");
    let message = resp["error"]["message"].as_str().unwrap();
    assert!(message.contains("notes__sum"), "{message}");
    assert!(message.contains("'/values/1'"), "names the path: {message}");
    let resp = call(&h, ALICE, "notes__sum", json!({})).await;
    let message = resp["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("values"),
        "names the missing field: {message}"
    );
    let resp = call(&h, ALICE, "notes__sum", json!({"values": [1], "x": 1})).await;
    assert_eq!(
        resp["error"]["code"], -32602,
        "additionalProperties: {resp}"
    );
    assert_eq!(
        notes.count("tools/call"),
        0,
        "the upstream was never called"
    );

    let resp = call(&h, ALICE, "notes__sum", json!({"values": [1, 2.5]})).await;
    assert_eq!(text(&resp), "3.5");
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn validation_can_be_switched_off() {
    let h = Harness::with_var("VALIDATE_ARGUMENTS", "false");
    let notes = h.add("notes", MockServer::new("notes").tools(&["sum"]), &["us"]);
    let mut client = h.connect("/mcp").await;
    let resp = client
        .call(
            "tools/call",
            json!({"name": "notes__sum", "arguments": {"values": ["x"]}}),
        )
        .await;
    assert!(resp.get("error").is_none(), "{resp}");
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn an_approved_call_runs_exactly_once() {
    let (h, notes) = harness();
    let resp = call(&h, ALICE, "notes__delete", json!({"id": "a"})).await;
    let id = pending_id(&resp);
    assert!(text(&resp).contains(&format!("/approvals/{id}")), "{resp}");
    assert_eq!(notes.count("tools/call"), 0);

    // Who may see and decide it.
    assert_eq!(approvals(&h, ALICE, &id, None).await.status, 200);
    assert_eq!(approvals(&h, CAROL, &id, None).await.status, 200);
    assert_eq!(approvals(&h, BOB, &id, None).await.status, 404);
    assert_eq!(
        approvals(&h, BOB, &id, Some("approve")).await.status,
        404,
        "a stranger cannot even learn the approval exists"
    );
    let (_, message) = approvals(&h, ALICE, &id, Some("approve")).await.error(403);
    assert!(
        message.contains("requester may not approve"),
        "requesters cannot self-approve: {message}"
    );
    assert_eq!(
        approvals(&h, CAROL, "ap_nope", Some("approve"))
            .await
            .status,
        404
    );

    // The same call again, still pending: the same record, not a new one.
    let again = call(&h, ALICE, "notes__delete", json!({"id": "a"})).await;
    assert_eq!(pending_id(&again), id);

    let r = approvals(&h, CAROL, &id, Some("approve")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(r.json()["decided_by"], "apikey|carol");
    let (_, message) = approvals(&h, CAROL, &id, Some("reject")).await.error(409);
    assert!(message.contains("already approved"), "{message}");

    // Other arguments are another call: not approved.
    let other = call(&h, ALICE, "notes__delete", json!({"id": "b"})).await;
    assert_ne!(pending_id(&other), id);
    // So is the same call by someone else.
    let bobs = call(&h, BOB, "notes__delete", json!({"id": "a"})).await;
    assert_ne!(pending_id(&bobs), id);
    assert_eq!(notes.count("tools/call"), 0);

    let resp = call(&h, ALICE, "notes__delete", json!({"id": "a"})).await;
    assert_eq!(text(&resp), "deleted a");
    assert_eq!(notes.count("tools/call"), 1);

    // Used up: the next identical call needs a new approval.
    let resp = call(&h, ALICE, "notes__delete", json!({"id": "a"})).await;
    pending_id(&resp);
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn a_rejected_call_is_not_made() {
    let (h, notes) = harness();
    let id = pending_id(&call(&h, ALICE, "notes__drop_table", json!({"t": 1})).await);
    let r = approvals(&h, CAROL, &id, Some("reject")).await;
    assert_eq!(r.json()["status"], "rejected");
    let resp = call(&h, ALICE, "notes__drop_table", json!({"t": 1})).await;
    assert_eq!(resp["result"]["isError"], true);
    assert!(text(&resp).contains("rejected by apikey|carol"), "{resp}");
    let (_, message) = approvals(&h, CAROL, &id, Some("approve")).await.error(409);
    assert!(message.contains("already rejected"), "{message}");
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test]
async fn only_tools_the_policy_names_need_approval() {
    let (h, notes) = harness();
    let resp = call(&h, ALICE, "notes__echo", json!({"text": "hi"})).await;
    assert_eq!(text(&resp), "hi");
    pending_id(&call(&h, ALICE, "notes__drop_table", json!({})).await);
    pending_id(&call(&h, ALICE, "notes__delete", json!({"id": "x"})).await);
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test(start_paused = true)]
async fn approvals_expire() {
    let (h, notes) = harness();
    // Pending past its TTL: gone.
    let id = pending_id(&call(&h, ALICE, "notes__delete", json!({"id": "a"})).await);
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    assert_eq!(approvals(&h, CAROL, &id, Some("approve")).await.status, 404);
    assert_eq!(approvals(&h, ALICE, &id, None).await.status, 404);

    // Approved, but not used within the TTL: the retry needs a new approval.
    let id = pending_id(&call(&h, ALICE, "notes__delete", json!({"id": "a"})).await);
    assert_eq!(approvals(&h, CAROL, &id, Some("approve")).await.status, 200);
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    pending_id(&call(&h, ALICE, "notes__delete", json!({"id": "a"})).await);
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test]
async fn the_approval_endpoint_needs_a_caller() {
    let (h, _) = harness();
    let req = http::Request::get("http://gw.test/approvals/ap_x")
        .header("x-no-credential", "1")
        .body(Vec::new())
        .unwrap();
    assert_eq!(h.send(req).await.status, 401);
    let r = h
        .send(
            http::Request::post("http://gw.test/approvals/ap_x")
                .header("x-api-key", CAROL)
                .body(b"{\"decision\":\"maybe\"}".to_vec())
                .unwrap(),
        )
        .await;
    let (code, _) = r.error(400);
    assert_eq!(code, -32600);
}

/// Starts a call the user confirms in an elicitation-capable session and
/// returns the session, the question the gateway asked, and the still-open
/// stream.
async fn asked(h: &Harness) -> (String, Value, mcp_edge::body::ByteStream) {
    let sid = session(h, ALICE, json!({"elicitation": {}})).await;
    let req = Harness::post_request(
        "/mcp",
        call_body("notes__archive", json!({"id": "a"}))
            .to_string()
            .into_bytes(),
        &[("x-api-key", ALICE), ("mcp-session-id", &sid)],
    );
    let resp = h.open(req).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.into_body().into_stream();
    let first = stream.next().await.unwrap().unwrap();
    let mut decoder = mcp_edge::protocol::sse::Decoder::new();
    let events = decoder.feed(&first);
    let question: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    let message = question["params"]["message"].as_str().unwrap();
    assert!(message.contains("'archive'"), "{message}");
    assert!(
        message.contains(r#"{"id":"a"}"#),
        "the whole arguments: {message}"
    );
    (sid, question, stream)
}

async fn answer(h: &Harness, sid: &str, key: &str, question: &Value, action: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": action, "content": {}}});
    h.post(
        "/mcp",
        &body,
        &[("x-api-key", key), ("mcp-session-id", sid)],
    )
    .await
    .status
}

/// The final JSON-RPC response on the rest of the stream.
async fn rest(stream: mcp_edge::body::ByteStream) -> Value {
    let chunks: Vec<Vec<u8>> = stream.map(|c| c.unwrap()).collect().await;
    let mut decoder = mcp_edge::protocol::sse::Decoder::new();
    let events = decoder.feed(&chunks.concat());
    serde_json::from_str(&events.last().expect("a response").data).unwrap()
}

#[tokio::test]
async fn elicitation_accepted_runs_the_call_once() {
    let (h, notes) = harness();
    let (sid, question, stream) = asked(&h).await;
    assert_eq!(
        notes.count("tools/call"),
        0,
        "nothing runs before the answer"
    );
    assert_eq!(answer(&h, &sid, ALICE, &question, "accept").await, 202);
    let resp = rest(stream).await;
    assert_eq!(resp["id"], 7);
    assert_eq!(text(&resp), "notes:archive");
    assert_eq!(notes.count("tools/call"), 1);
    // A second answer changes nothing.
    assert_eq!(answer(&h, &sid, ALICE, &question, "accept").await, 202);
    assert_eq!(notes.count("tools/call"), 1);
}

#[tokio::test]
async fn elicitation_declined_or_cancelled_never_reaches_the_upstream() {
    let (h, notes) = harness();
    for action in ["decline", "cancel"] {
        let (sid, question, stream) = asked(&h).await;
        assert_eq!(answer(&h, &sid, ALICE, &question, action).await, 202);
        let resp = rest(stream).await;
        assert_eq!(resp["result"]["isError"], true, "{resp}");
        assert!(text(&resp).contains("declined"), "{resp}");
    }
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test]
async fn only_the_requester_can_answer_an_elicitation() {
    let (h, notes) = harness();
    let (sid, question, stream) = asked(&h).await;
    // Bob answers in his own session with the id he somehow learned.
    let bobs = session(&h, BOB, json!({"elicitation": {}})).await;
    assert_eq!(answer(&h, &bobs, BOB, &question, "accept").await, 202);
    assert_eq!(answer(&h, &sid, ALICE, &question, "decline").await, 202);
    let resp = rest(stream).await;
    assert!(text(&resp).contains("declined"), "{resp}");
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_elicitation_times_out() {
    let (h, notes) = harness();
    let (_, _, stream) = asked(&h).await;
    // Paused time advances on its own while the gateway waits.
    let resp = rest(stream).await;
    assert!(
        text(&resp).contains("No answer from the user within 5 s"),
        "{resp}"
    );
    assert_eq!(notes.count("tools/call"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stale_tool_catalog_is_refreshed_after_the_response() {
    let (h, notes) = harness();
    let sum = json!({"values": [1, 2]});
    assert_eq!(text(&call(&h, ALICE, "notes__sum", sum.clone()).await), "3");
    assert_eq!(
        notes.count("tools/list"),
        1,
        "the first call lists the server"
    );
    assert_eq!(text(&call(&h, ALICE, "notes__sum", sum.clone()).await), "3");
    assert_eq!(notes.count("tools/list"), 1, "a fresh catalog answers");

    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    assert_eq!(text(&call(&h, ALICE, "notes__sum", sum.clone()).await), "3");
    assert_eq!(
        notes.count("tools/list"),
        1,
        "a stale catalog still answers"
    );
    h.p.run_deferred().await;
    assert_eq!(
        notes.count("tools/list"),
        2,
        "and is listed again after the response"
    );
    // Still validated with the refreshed definitions.
    let resp = call(&h, ALICE, "notes__sum", json!({"values": ["x"]})).await;
    assert_eq!(resp["error"]["code"], -32602);
    assert_eq!(notes.count("tools/call"), 3);
}

#[tokio::test]
async fn a_fresh_instance_reads_the_catalog_from_the_shared_cache() {
    let (h, notes) = harness();
    let sum = json!({"values": [1, 2]});
    assert_eq!(text(&call(&h, ALICE, "notes__sum", sum.clone()).await), "3");
    assert_eq!(notes.count("tools/list"), 1);
    assert!(h.p.runtime.shared.borrow().contains_key("catalog/notes"));

    // Another instance (a Spin request, a new isolate) on the same platform.
    let other = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(Default::default())),
        p: h.p.clone(),
        meta: Default::default(),
    };
    let resp = call(&other, ALICE, "notes__sum", json!({"values": ["x"]})).await;
    assert_eq!(
        resp["error"]["code"], -32602,
        "validated from the shared listing"
    );
    assert_eq!(text(&call(&other, ALICE, "notes__sum", sum).await), "3");
    assert_eq!(
        notes.count("tools/list"),
        1,
        "without listing the server again"
    );
}
