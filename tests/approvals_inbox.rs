//! The approvals inbox, `GET /approvals`: the pending approvals an approver
//! may decide and a requester's own, newest first; decided and expired ones
//! leave it; nobody else sees them.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::Harness;

const ALICE: &str = "mk_alice";
const DAVE: &str = "mk_dave";
const CAROL: &str = "mk_carol";

/// `notes` with a destructive `delete` and `drop_table`, both held for
/// approvers (carol); alice and dave call, each in a session of their own.
fn harness() -> Harness {
    let h = Harness::new();
    h.add(
        "notes",
        MockServer::new("notes").tools(&["echo", "delete", "drop_table"]),
        &["us"],
    );
    h.api_key(ALICE, json!({"subject": "alice"}));
    h.api_key(DAVE, json!({"subject": "dave"}));
    h.api_key(CAROL, json!({"subject": "carol", "roles": ["approver"]}));
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {"approvers": {"roles": ["approver"]}, "destructive_hint": true,
                     "tools": [{"servers": ["notes"], "tools": ["drop_*"]}], "ttl_secs": 60}
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    h
}

/// Calls `tool` as `key` (no elicitation: the call is left pending); the
/// approval's id.
async fn held(h: &Harness, key: &str, tool: &str, arguments: Value) -> String {
    let init = support::initialize(1, "2025-06-18");
    let r = h.post("/mcp", &init, &[("x-api-key", key)]).await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}});
    let r = h
        .post(
            "/mcp",
            &call,
            &[("x-api-key", key), ("mcp-session-id", &sid)],
        )
        .await;
    let resp = r.response();
    let meta = &resp["result"]["_meta"]["mcp-edge/approval"];
    assert_eq!(meta["status"], "pending", "{resp}");
    meta["id"].as_str().unwrap().to_string()
}

async fn inbox(h: &Harness, key: &str) -> (u16, Value) {
    let req = http::Request::get("http://gw.test/approvals")
        .header("x-api-key", key)
        .body(Vec::new())
        .unwrap();
    let r = h.send(req).await;
    (
        r.status,
        serde_json::from_str(&r.text).unwrap_or(Value::Null),
    )
}

fn ids(doc: &Value) -> Vec<String> {
    doc["approvals"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_approver_sees_what_awaits_them_newest_first_requesters_their_own() {
    let h = harness();
    let first = held(&h, ALICE, "notes__delete", json!({"id": "1"})).await;
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    let second = held(&h, DAVE, "notes__drop_table", json!({"table": "t"})).await;

    let (status, carol) = inbox(&h, CAROL).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&carol), [second.clone(), first.clone()], "newest first");
    let item = &carol["approvals"][1];
    assert_eq!(item["requester"], "alice");
    assert_eq!(item["server"], "notes");
    assert_eq!(item["tool"], "delete");
    assert_eq!(item["url"], format!("http://gw.test/approvals/{first}"));
    assert_eq!(item["you_may_decide"], true);
    assert_eq!(item["yours"], false);
    assert_eq!(
        item["arguments_sha256"].as_str().map(str::len),
        Some(64),
        "{item}"
    );
    assert!(
        item.get("arguments").is_none(),
        "the digest, not the arguments"
    );
    assert!(item["expires_ms"].as_u64() > item["created_ms"].as_u64());

    let (_, alice) = inbox(&h, ALICE).await;
    assert_eq!(ids(&alice), [first], "her own only");
    assert_eq!(alice["approvals"][0]["yours"], true);
    assert_eq!(alice["approvals"][0]["you_may_decide"], false);
    let (_, dave) = inbox(&h, DAVE).await;
    assert_eq!(ids(&dave), [second]);
}

#[tokio::test(start_paused = true)]
async fn decided_and_expired_approvals_leave_the_inbox() {
    let h = harness();
    let first = held(&h, ALICE, "notes__delete", json!({"id": "1"})).await;
    let second = held(&h, ALICE, "notes__delete", json!({"id": "2"})).await;
    let decide = http::Request::post(format!("http://gw.test/approvals/{first}"))
        .header("x-api-key", CAROL)
        .header("content-type", "application/json")
        .body(json!({"decision": "approve"}).to_string().into_bytes())
        .unwrap();
    assert_eq!(h.send(decide).await.status, 200);
    assert_eq!(ids(&inbox(&h, CAROL).await.1), [second]);
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    assert!(ids(&inbox(&h, CAROL).await.1).is_empty(), "expired");
}

#[tokio::test]
async fn nobody_else_sees_an_approval_and_the_inbox_needs_a_credential() {
    let h = harness();
    held(&h, ALICE, "notes__delete", json!({"id": "1"})).await;
    let (status, other) = inbox(&h, support::API_KEY).await;
    assert_eq!(status, 200);
    assert!(ids(&other).is_empty(), "{other}");
    let anonymous = http::Request::get("http://gw.test/approvals")
        .header("x-no-credential", "1")
        .body(Vec::new())
        .unwrap();
    assert_eq!(h.send(anonymous).await.status, 401);
    let post = http::Request::post("http://gw.test/approvals")
        .header("x-api-key", CAROL)
        .body(b"{}".to_vec())
        .unwrap();
    assert_eq!(h.send(post).await.status, 405);
}

#[tokio::test]
async fn an_approver_never_sees_their_own_call_as_theirs_to_decide() {
    let h = harness();
    let own = held(&h, CAROL, "notes__delete", json!({"id": "1"})).await;
    let (_, carol) = inbox(&h, CAROL).await;
    assert_eq!(ids(&carol), [own]);
    assert_eq!(carol["approvals"][0]["yours"], true);
    assert_eq!(carol["approvals"][0]["you_may_decide"], false);
}
