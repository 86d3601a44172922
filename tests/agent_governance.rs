//! The agent API governed (memory adapter): the model is offered only the
//! tools the caller may call; models are governed by the policy like
//! servers; a call awaiting approval ends the loop with its link and runs
//! on the next request once approved; the provider gets its own key from
//! the model's secret, never the caller's credential, on either wire.

mod support;

use serde_json::{json, Value};
use support::model::*;
use support::{Harness, API_KEY};

const CAROL: &str = "mk_carol_approver";

fn policy(h: &Harness, extra_rules: Value, approval: Value) {
    let mut rules = vec![
        json!({"name": "all", "effect": "allow", "subjects": {"everyone": true}, "servers": ["*"]}),
        json!({"name": "no-add", "effect": "deny", "subjects": {"service_accounts": ["tester"]}, "servers": ["alpha"], "tools": ["add"]}),
        json!({"name": "models", "effect": "allow", "subjects": {"teams": ["qa"]}, "models": ["demo*"]}),
    ];
    rules.extend(extra_rules.as_array().cloned().unwrap_or_default());
    let mut doc = json!({"rules": rules});
    if !approval.is_null() {
        doc["approval"] = approval;
    }
    h.p.kv.put("policy", &doc.to_string());
    h.gw.reload_config();
}

#[tokio::test]
async fn a_tool_the_caller_may_not_use_is_never_offered_nor_run() {
    let (h, alpha, _) = Harness::two_servers();
    policy(&h, json!([]), Value::Null);
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(200, asks(&[("c1", "alpha__add", json!({"a": 1, "b": 2}))]))
        .then(200, says("ok"));
    let (status, v) = chat_as(&h, &ask_model("demo", "add"), API_KEY).await;
    assert_eq!(status, 200, "{v}");
    let offered = model.offered(0);
    assert!(!offered.contains(&"alpha__add".to_string()), "{offered:?}");
    assert!(offered.contains(&"alpha__echo".to_string()), "{offered:?}");
    // Asked anyway (a model may guess), it is not run.
    assert_eq!(alpha.count("tools/call"), 0);
    assert_eq!(v["mcp_edge"]["tool_calls"][0]["is_error"], true);
}

#[tokio::test]
async fn the_extension_narrows_the_tools_and_the_cap_cuts_them() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({"max_tools": 2}));
    model.then(200, says("a")).then(200, says("b"));
    let mut body = ask_model("demo", "hi");
    body["mcp_edge"] = json!({"servers": ["beta"]});
    assert_eq!(chat_as(&h, &body, API_KEY).await.0, 200);
    assert_eq!(model.offered(0), ["beta__echo", "beta__search"]);
    let (_, v) = chat_as(&h, &ask_model("demo", "hi"), API_KEY).await;
    assert_eq!(model.offered(1).len(), 2);
    assert_eq!(v["mcp_edge"]["tools_left_out"], 3, "{v}");
}

#[tokio::test]
async fn models_are_governed_like_servers() {
    let (h, _, _) = Harness::two_servers();
    policy(&h, json!([]), Value::Null);
    let demo = add_model(&h, "demo", &["us"], json!({"description": "the demo"}));
    add_model(&h, "gpt-big", &["us"], json!({}));
    h.api_key(
        "mk_outsider",
        json!({"subject": "olga", "teams": ["sales"]}),
    );
    let list = |key: &'static str| {
        let h = &h;
        async move {
            let req = http::Request::get("http://gw.test/v1/models")
                .header("x-api-key", key)
                .body(Vec::new())
                .unwrap();
            let r = h.send(req).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let v: Value = serde_json::from_str(&r.text).unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(API_KEY).await, ["demo"]);
    // One of them, as the SDKs' `models.retrieve` asks; another is unknown.
    let one = |name: &str| {
        http::Request::get(format!("http://gw.test/v1/models/{name}"))
            .header("x-api-key", API_KEY)
            .body(Vec::new())
            .unwrap()
    };
    let r = h.send(one("demo")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        serde_json::from_str::<Value>(&r.text).unwrap()["description"],
        "the demo"
    );
    assert_eq!(h.send(one("gpt-big")).await.status, 404);
    assert!(list("mk_outsider").await.is_empty());
    let (status, v) = chat_as(&h, &ask_model("gpt-big", "hi"), API_KEY).await;
    assert_eq!(
        status, 404,
        "a model the caller may not use is unknown: {v}"
    );
    let (status, _) = chat_as(&h, &ask_model("demo", "hi"), "mk_outsider").await;
    assert_eq!(status, 404);
    assert!(
        demo.bodies().is_empty(),
        "no refused request reached the provider"
    );
    // Anonymous callers only where the model says so.
    let anon = chat_request(&ask_model("demo", "hi"), &[("x-no-credential", "1")]);
    assert_eq!(h.send(anon).await.status, 401);
}

#[tokio::test]
async fn a_call_awaiting_approval_ends_the_loop_with_its_link_and_runs_once_approved() {
    let (h, alpha, _) = Harness::two_servers();
    h.api_key(CAROL, json!({"subject": "carol", "roles": ["approver"]}));
    policy(
        &h,
        json!([]),
        json!({"approvers": {"roles": ["approver"]},
               "tools": [{"servers": ["alpha"], "tools": ["echo"], "decided_by": "approvers"}]}),
    );
    let model = add_model(&h, "demo", &["us"], json!({}));
    let wipe = asks(&[("c1", "alpha__echo", json!({"text": "wipe"}))]);
    model.then(200, wipe.clone());
    let (status, v) = chat_as(&h, &ask_model("demo", "wipe it"), API_KEY).await;
    assert_eq!(status, 200, "{v}");
    let approval = &v["mcp_edge"]["approvals"][0];
    let url = approval["url"].as_str().expect("the approval's address");
    assert!(url.contains("/approvals/"), "{v}");
    assert_eq!(v["mcp_edge"]["stopped"], "approval");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains(url) && content.contains(approval["id"].as_str().unwrap()),
        "{content}"
    );
    assert_eq!(alpha.count("tools/call"), 0, "not run");
    assert_eq!(
        model.bodies().len(),
        1,
        "the loop ended without asking the model again"
    );

    let path = url.split_once("/approvals/").unwrap().1;
    let decide = http::Request::post(format!("http://gw.test/approvals/{path}"))
        .header("x-api-key", CAROL)
        .header("content-type", "application/json")
        .body(json!({"decision": "approve"}).to_string().into_bytes())
        .unwrap();
    assert_eq!(h.send(decide).await.status, 200);

    // The conversation goes on; the model makes the same call, which runs.
    model.then(200, wipe).then(200, says("wiped"));
    let mut again = ask_model("demo", "wipe it");
    again["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": content}),
        json!({"role": "user", "content": "approved, go on"}),
    ]);
    let (status, v) = chat_as(&h, &again, API_KEY).await;
    assert_eq!(
        (status, v["choices"][0]["message"]["content"].as_str()),
        (200, Some("wiped")),
        "{v}"
    );
    assert_eq!(alpha.count("tools/call"), 1, "run once approved");
}

#[tokio::test]
async fn the_provider_gets_its_key_from_the_secret_never_the_callers_credential() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({"secret": "DEMO_PROVIDER_KEY"}));
    // Fail closed: named but not set, the provider is not called.
    let (status, v) = chat_as(&h, &ask_model("demo", "hi"), API_KEY).await;
    assert_eq!(status, 502, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("DEMO_PROVIDER_KEY"));
    assert!(model.bodies().is_empty());

    h.p.runtime
        .secrets
        .borrow_mut()
        .insert("DEMO_PROVIDER_KEY".into(), "sk-provider".into());
    model.then(200, says("hello"));
    let (status, _) = chat_as(&h, &ask_model("demo", "hi"), API_KEY).await;
    assert_eq!(status, 200);
    let sent = model.sent.borrow()[0].headers.clone();
    assert_eq!(sent["authorization"], "Bearer sk-provider");
    let all = format!("{sent:?}{}", model.bodies()[0]);
    assert!(
        !all.contains(API_KEY),
        "the caller's credential reached the provider: {all}"
    );
}

#[tokio::test]
async fn the_anthropic_wire_runs_the_same_loop() {
    let (h, alpha, _) = Harness::two_servers();
    h.p.runtime
        .secrets
        .borrow_mut()
        .insert("ANTHROPIC_KEY".into(), "sk-ant".into());
    let script = ScriptedModel::default();
    script.mount(&h, "http://claude.us.test/v1/messages");
    h.p.kv.put(
        "models/claude",
        &json!({"provider": "anthropic", "model": "claude-x", "secret": "ANTHROPIC_KEY",
        "endpoints": [{"region": "us", "url": "http://claude.us.test"}]})
        .to_string(),
    );
    h.gw.reload_config();
    script
        .then(
            200,
            json!({"content": [{"type": "text", "text": "adding"},
            {"type": "tool_use", "id": "tu1", "name": "alpha__add", "input": {"a": 20, "b": 22}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 7, "output_tokens": 3}}),
        )
        .then(
            200,
            json!({"content": [{"type": "text", "text": "42 it is"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 9, "output_tokens": 2}}),
        );
    let mut body = ask_model("claude", "add");
    body["messages"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"role": "system", "content": "be exact"}));
    let (status, v) = chat_as(&h, &body, API_KEY).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "42 it is");
    assert_eq!(v["usage"]["prompt_tokens"], 16);
    assert_eq!(alpha.count("tools/call"), 1);
    let sent = script.sent.borrow().clone();
    assert_eq!(sent[0].headers["x-api-key"], "sk-ant");
    assert_eq!(sent[0].headers["anthropic-version"], "2023-06-01");
    assert_eq!(sent[0].body["system"], "be exact");
    assert!(sent[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "alpha__add"));
    let turns = sent[1].body["messages"].as_array().unwrap();
    assert_eq!(turns[1]["content"][1]["type"], "tool_use");
    assert_eq!(
        turns[2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "tu1", "content": "42"})
    );
}

#[tokio::test]
async fn model_calls_and_tokens_are_limited_per_caller_and_team() {
    let (h, _, _) = Harness::two_servers();
    h.api_key("mk_bob", json!({"subject": "bob", "teams": ["qa"]}));
    let doc = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}, "models": ["*"]}],
        "limits": [
            {"name": "two-calls", "per": "principal", "requests": 2, "window_secs": 600, "models": ["demo"]},
            {"name": "qa-tokens", "per": "team", "daily": 20, "models": ["metered"], "unit": "tokens"}
        ]
    });
    h.p.kv.put("policy", &doc.to_string());
    let demo = add_model(&h, "demo", &["us"], json!({}));
    let metered = add_model(&h, "metered", &["eu"], json!({}));
    for _ in 0..3 {
        demo.then(200, says("ok"));
        metered.then(200, says("ok")); // 15 tokens each
    }
    for _ in 0..2 {
        assert_eq!(chat_as(&h, &ask_model("demo", "hi"), API_KEY).await.0, 200);
    }
    let r = h
        .send(chat_request(
            &ask_model("demo", "hi"),
            &[("x-api-key", API_KEY)],
        ))
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(
        r.text.contains("two-calls") && r.header("retry-after").is_some(),
        "{}",
        r.text
    );
    assert_eq!(
        demo.bodies().len(),
        2,
        "the refused call never reached the provider"
    );
    // Another caller has calls of their own.
    assert_eq!(chat_as(&h, &ask_model("demo", "hi"), "mk_bob").await.0, 200);

    // Tokens: 15 a call against 20 a day for the team; the call that finds
    // the budget spent is refused, for everyone in the team.
    assert_eq!(
        chat_as(&h, &ask_model("metered", "hi"), API_KEY).await.0,
        200
    );
    assert_eq!(
        chat_as(&h, &ask_model("metered", "hi"), "mk_bob").await.0,
        200
    );
    let (status, v) = chat_as(&h, &ask_model("metered", "hi"), API_KEY).await;
    assert_eq!(status, 429, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("qa-tokens"));
    assert_eq!(metered.bodies().len(), 2);
}

#[tokio::test]
async fn an_upstream_cannot_pass_for_the_gateways_approval() {
    let h = Harness::new();
    let evil = h.add(
        "evil",
        mcp_edge::adapters::memory::MockServer::new("evil").tools(&["fake_approval"]),
        &["us"],
    );
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(200, asks(&[("c1", "evil__fake_approval", json!({}))]))
        .then(200, says("went on"));
    let (status, v) = chat_as(&h, &ask_model("demo", "go"), API_KEY).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(evil.count("tools/call"), 1);
    assert_eq!(
        v["choices"][0]["message"]["content"], "went on",
        "the loop was not stopped: {v}"
    );
    assert!(v["mcp_edge"].get("approvals").is_none(), "{v}");
    assert!(v["mcp_edge"]["tool_calls"][0].get("approval").is_none());
}

#[tokio::test]
async fn a_foreign_web_page_is_refused_and_a_failed_run_is_not_retried() {
    let (h, alpha, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    let page = chat_request(
        &ask_model("demo", "hi"),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(h.send(page).await.status, 403);
    assert!(model.bodies().is_empty());
    // The provider fails after a tool ran: the SDKs are told not to retry.
    model
        .then(200, asks(&[("c1", "alpha__echo", json!({"text": "once"}))]))
        .then(500, json!({"error": {"message": "down"}}));
    let r = h.send(chat_request(&ask_model("demo", "hi"), &[])).await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(r.header("x-should-retry").as_deref(), Some("false"));
    assert_eq!(alpha.count("tools/call"), 1);
    // Before any tool ran, a retry repeats nothing: left to the SDK.
    model.then(500, json!({"error": {"message": "down"}}));
    let r = h.send(chat_request(&ask_model("demo", "hi"), &[])).await;
    assert_eq!(
        (r.status, r.header("x-should-retry")),
        (502, None),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn an_answer_too_large_to_read_is_said_to_have_run() {
    let h = Harness::new();
    let big = h.add(
        "big",
        mcp_edge::adapters::memory::MockServer::new("big").tools(&["big"]),
        &["us"],
    );
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(200, asks(&[("c1", "big__big", json!({}))]))
        .then(200, says("ok"));
    let (status, v) = chat_as(&h, &ask_model("demo", "go"), API_KEY).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(big.count("tools/call"), 1);
    let told = model.bodies()[1]["messages"][2]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        told.contains("big__big ran, but its answer is larger than the 1048576 bytes"),
        "{told}"
    );
}
