//! A tool call the user must approve, whose upstream then asks for input
//! itself (2026-07-28 multi round-trip): the gateway asks first, the
//! upstream's question follows, and the retry that answers it goes on
//! without the gateway asking again, exactly once.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{Harness, Reply};

/// `up` (modern) has `ask`, which the user must approve and which asks
/// `who` itself; states are sealed (a signing secret is set).
fn with_an_approved_asking_tool() -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["ask"]).modern(),
        &["us"],
    );
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        "a signing secret for the tests".into(),
    );
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["up"], "tools": ["ask"], "decided_by": "user"}],
            "ttl_secs": 60,
            "elicitation_timeout_secs": 30
        }
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, up)
}

/// A modern `tools/call` of `name` on `path` by a client that can be asked
/// (form elicitation), with `extra` params.
async fn call(h: &Harness, path: &str, name: &str, extra: Value) -> Reply {
    let can = json!({"elicitation": {"form": {}}});
    support::modern_call(h, (path, 5, name), can, extra).await
}

fn result_of(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.response();
    assert!(v.get("error").is_none(), "{}", r.text);
    v["result"].clone()
}

#[tokio::test]
async fn an_approved_call_whose_upstream_asks_goes_on_without_asking_again_once() {
    let (h, up) = with_an_approved_asking_tool();
    for (path, name) in [("/servers/up/mcp", "ask"), ("/mcp", "up__ask")] {
        let before = up.count("tools/call");
        // 1. The gateway asks for approval; nothing runs.
        let asked = result_of(&call(&h, path, name, json!({})).await);
        assert_eq!(asked["resultType"], "input_required");
        assert!(asked["inputRequests"]["mcp-edge/approval"].is_object());
        assert_eq!(up.count("tools/call"), before);
        // 2. Approved: the call runs, and the upstream asks its question.
        let approve = json!({"requestState": asked["requestState"],
            "inputResponses": {"mcp-edge/approval": {"action": "accept", "content": {}}}});
        let theirs = result_of(&call(&h, path, name, approve).await);
        assert_eq!(theirs["resultType"], "input_required", "{path}");
        assert!(theirs["inputRequests"]["who"].is_object(), "{theirs}");
        assert_eq!(up.count("tools/call"), before + 1);
        // 3. The answer to the upstream goes on under the same approval:
        // no second approval question, the upstream gets its own state.
        let answer = json!({"requestState": theirs["requestState"],
            "inputResponses": {"who": {"action": "accept", "content": {"name": "ada"}}}});
        let done = result_of(&call(&h, path, name, answer.clone()).await);
        assert_eq!(done["resultType"], "complete", "{path}: {done}");
        assert_eq!(done["content"][0]["text"], "hello \"ada\"");
        assert_eq!(up.count("tools/call"), before + 2);
        let sent = up.seen().last().unwrap().body.clone();
        assert_eq!(sent["params"]["requestState"], "up-state");
        // 4. The carried approval is used up: the same state again runs
        // nothing.
        let again = call(&h, path, name, answer).await;
        assert_eq!(again.error(400).0, -32602, "{}", again.text);
        assert_eq!(up.count("tools/call"), before + 2);
    }
}

#[tokio::test]
async fn a_call_that_needed_no_approval_carries_none() {
    let (h, up) = with_an_approved_asking_tool();
    // Approval off for this caller's call: the upstream's state comes back
    // sealed without a grant, and its retry runs the guard in full (and
    // again needs no approval).
    h.p.kv.put(
        "policy",
        &json!({"rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}]})
            .to_string(),
    );
    h.gw.reload_config();
    let theirs = result_of(&call(&h, "/servers/up/mcp", "ask", json!({})).await);
    assert!(theirs["inputRequests"]["who"].is_object(), "{theirs}");
    // Approval turned on between the rounds: the retry is asked first, not
    // let through on a state that never carried an approval.
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "tools": [{"servers": ["up"], "tools": ["ask"], "decided_by": "user"}],
            "ttl_secs": 60, "elicitation_timeout_secs": 30
        }
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    let answer = json!({"requestState": theirs["requestState"],
        "inputResponses": {"who": {"action": "accept", "content": {"name": "ada"}}}});
    let before = up.count("tools/call");
    let asked = result_of(&call(&h, "/servers/up/mcp", "ask", answer).await);
    assert!(
        asked["inputRequests"]["mcp-edge/approval"].is_object(),
        "{asked}"
    );
    assert_eq!(up.count("tools/call"), before, "nothing ran unapproved");
}

#[tokio::test]
async fn a_grant_the_user_gave_does_not_pass_a_rule_that_now_names_approvers() {
    let (h, up) = with_an_approved_asking_tool();
    let asked = result_of(&call(&h, "/servers/up/mcp", "ask", json!({})).await);
    let approve = json!({"requestState": asked["requestState"],
        "inputResponses": {"mcp-edge/approval": {"action": "accept", "content": {}}}});
    let theirs = result_of(&call(&h, "/servers/up/mcp", "ask", approve).await);
    assert!(theirs["inputRequests"]["who"].is_object(), "{theirs}");
    // The rule changes between the rounds: approvers decide now.
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["up"], "tools": ["ask"], "decided_by": "approvers"}],
            "ttl_secs": 60, "elicitation_timeout_secs": 30
        }
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    let before = up.count("tools/call");
    let answer = json!({"requestState": theirs["requestState"],
        "inputResponses": {"who": {"action": "accept", "content": {"name": "ada"}}}});
    let held = result_of(&call(&h, "/servers/up/mcp", "ask", answer).await);
    assert_eq!(
        held["_meta"]["mcp-edge/approval"]["decider"], "approvers",
        "{held}"
    );
    assert_eq!(up.count("tools/call"), before, "nothing ran");
}
