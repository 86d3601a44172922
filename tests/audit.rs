//! The audit trail: one JSON line per decision under the `audit` target,
//! in the request's trace: who was let in or refused and why, which policy
//! rule allowed or denied a call, which limit refused one, a failover, and
//! an approval asked, decided and used. No line carries the caller's key.
//! Alone in its test binary: `tracing` caches per call site whether anyone
//! listens, and tests on other threads without a subscriber would race it.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::logs::Lines;
use support::{modern_request, Harness};

/// The audit events written so far, with the line each came in.
fn events(lines: &Lines) -> Vec<(Value, String)> {
    lines
        .text()
        .lines()
        .filter(|l| l.contains(" audit: "))
        .map(|l| {
            let json = &l[l.find(" audit: ").unwrap() + 8..];
            (
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {l}")),
                l.to_string(),
            )
        })
        .collect()
}

const KEY: &str = "mk_alice_secret_key";
const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn call(tool: &str, key: &str) -> http::Request<Vec<u8>> {
    let params = json!({"name": tool, "arguments": {"text": "x"}});
    modern_request(
        "/mcp",
        1,
        "tools/call",
        params,
        &[("x-api-key", key), ("traceparent", CALLER)],
    )
}

#[tokio::test]
async fn every_decision_is_one_audit_event_in_the_trace() {
    let (lines, _guard) = support::logs::capture();
    let h = Harness::new();
    h.add(
        "up",
        MockServer::new("up").tools(&["echo", "purge", "delete"]),
        &["eu", "us"],
    );
    h.p.http.unmount("http://up.eu.test/mcp");
    h.api_key(KEY, json!({"subject": "alice", "teams": ["eng"]}));
    let policy = json!({
        "rules": [
            {"name": "everyone", "effect": "allow", "subjects": {"everyone": true}},
            {"name": "no-purge", "effect": "deny", "subjects": {"everyone": true}, "tools": ["purge"]}
        ],
        "limits": [{"name": "one-echo", "per": "tool", "tools": ["echo"], "requests": 1, "window_secs": 60}],
        "approval": {"approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["up"], "tools": ["delete"], "decided_by": "user"}],
            "ttl_secs": 60, "elicitation_timeout_secs": 30}
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();

    assert_eq!(h.send(call("up__echo", KEY)).await.status, 200);
    assert_eq!(h.send(call("up__echo", KEY)).await.status, 429);
    assert_eq!(h.send(call("up__purge", KEY)).await.status, 400);
    assert_eq!(h.send(call("up__echo", "mk_nobody")).await.status, 401);
    // An approval: asked (input_required), decided on the retry, used.
    let approve = |extra: Value| {
        let mut body = support::modern_body(
            1,
            "tools/call",
            json!({"name": "up__delete",
            "arguments": {"id": "n-1"}}),
        );
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
            json!({"elicitation": {"form": {}}});
        for (k, v) in extra.as_object().unwrap() {
            body["params"][k] = v.clone();
        }
        body
    };
    let headers = [
        ("mcp-protocol-version", support::MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "up__delete"),
        ("x-api-key", KEY),
        ("traceparent", CALLER),
    ];
    let asked = h
        .post("/mcp", &approve(json!({})), &headers)
        .await
        .response();
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let yes = json!({"requestState": asked["result"]["requestState"],
        "inputResponses": {"mcp-edge/approval": {"action": "accept", "content": {}}}});
    let done = h.post("/mcp", &approve(yes), &headers).await;
    assert_eq!(done.status, 200, "{}", done.text);

    let events = events(&lines);
    let of = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|(e, _)| e["event"] == kind)
            .map(|(e, _)| e)
            .collect()
    };
    let who = of("authenticated");
    assert_eq!(who.len(), 5, "{events:?}");
    assert_eq!(who[0]["subject"], "alice");
    assert!(of("policy")
        .iter()
        .all(|e| e["subject"] == "alice" && e["via"] == "apikey" && e["server"] == "up"));
    assert_eq!(who[0]["via"], "apikey");
    assert_eq!(who[0]["teams"], json!(["eng"]));
    let refused = of("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["status"], 401);
    assert_eq!(refused[0]["reason"], "unknown or revoked API key");
    let policy: Vec<(String, String, String)> = of("policy")
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("decision"), s("rule"), s("tool"))
        })
        .collect();
    let allow = ("allow".into(), "everyone".into(), "echo".into());
    let deny = ("deny".into(), "no-purge".into(), "purge".into());
    let delete = ("allow".into(), "everyone".into(), "delete".into());
    assert_eq!(policy, [allow.clone(), allow, deny, delete.clone(), delete]);
    let limited = of("limited");
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0]["limit"], "one-echo");
    assert_eq!(limited[0]["subject"], "alice");
    assert_eq!(limited[0]["server"], "up");
    assert_eq!(limited[0]["tool"], "echo");
    let failover = of("failover");
    assert_eq!(failover[0]["from"], "eu");
    assert_eq!(failover[0]["to"], "us");
    assert_eq!(failover[0]["server"], "up");
    assert_eq!(failover[0]["why"], "unreachable", "the kind, not the words");
    let requested = of("approval_requested");
    assert_eq!(requested.len(), 1, "{events:?}");
    assert_eq!(requested[0]["tool"], "delete");
    assert_eq!(requested[0]["decider"], "user");
    assert_eq!(requested[0]["requester"], "apikey|alice");
    let approval = requested[0]["approval"].clone();
    let decided = of("approval_decided");
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["approval"], approval);
    assert_eq!(decided[0]["by"], "apikey|alice");
    assert_eq!(decided[0]["server"], "up");
    assert_eq!(decided[0]["tool"], "delete");
    assert_eq!(
        (
            decided[0]["approved"].as_bool(),
            decided[0]["channel"].as_str()
        ),
        (Some(true), Some("input_required"))
    );
    let used = of("approval_used");
    assert_eq!(used.len(), 1);
    assert_eq!(
        (used[0]["approval"].clone(), used[0]["how"].as_str()),
        (approval, Some("forwarded"))
    );
    // Each in the request's trace; none with the caller's key in it.
    for (_, line) in &events {
        assert!(
            line.contains("trace_id=0af7651916cd43dd8448eb211c80319c"),
            "{line}"
        );
    }
    // Neither the key that got in nor the one refused, nor an argument value.
    let audit: String = events.iter().map(|(_, l)| l.as_str()).collect();
    for never in [KEY, "mk_nobody", "n-1"] {
        assert!(!audit.contains(never), "{never} in the audit trail");
    }
    assert!(!lines.text().contains(KEY), "the key is never logged");
}

#[tokio::test]
async fn an_admin_change_is_one_event_naming_the_document_version_and_author() {
    let (lines, _guard) = support::logs::capture();
    let h = Harness::with_var("ADMIN_ROLE", "admin");
    h.api_key(KEY, json!({"subject": "root", "roles": ["admin"]}));
    let doc = json!({"description": "secret-looking text", "endpoints": [{"region": "us", "url": "http://x.test/mcp"}]});
    let req = http::Request::put("/admin/servers/x")
        .header("host", "localhost")
        .header("x-api-key", KEY)
        .body(doc.to_string().into_bytes())
        .unwrap();
    assert_eq!(h.send(req).await.status, 201);
    let changed: Vec<Value> = events(&lines)
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| e["event"] == "config_changed")
        .collect();
    assert_eq!(
        changed,
        [
            json!({"event": "config_changed", "document": "servers/x", "version": 1,
                "action": "create", "subject": "root", "via": "apikey"})
        ]
    );
    assert!(
        !lines.text().contains("secret-looking"),
        "never the content"
    );
    assert!(!lines.text().contains(KEY));
}
