//! Modern (2026-07-28) requests on the memory adapter: stateless on both
//! endpoints, the envelope's rules with the revision's own errors, bridged
//! to legacy upstreams whose sessions are reused, and legacy clients beside
//! them unchanged.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{modern_body, modern_request, Harness, Reply, MODERN};

async fn modern(h: &Harness, path: &str, method: &str, params: Value) -> Reply {
    h.send(modern_request(path, 7, method, params, &[])).await
}

/// The result of an answer that asks for input first.
fn question(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.response();
    // `modern` sends id 7, `asked_call` id 11 (an id of the gateway's
    // would be a string).
    assert!(
        v["id"] == 7 || v["id"] == 11,
        "asked of the client's own request: {}",
        r.text
    );
    assert_eq!(v["result"]["resultType"], "input_required", "{}", r.text);
    v["result"].clone()
}

fn result(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("mcp-session-id").is_none(), "no session is minted");
    let v = r.response();
    assert!(v.get("error").is_none(), "{}", r.text);
    assert_eq!(v["result"]["resultType"], "complete", "{}", r.text);
    v["result"].clone()
}

#[tokio::test]
async fn a_modern_client_lists_and_calls_on_both_endpoints_without_a_session() {
    let (h, a, _) = Harness::two_servers();
    let tools = result(&modern(&h, "/mcp", "tools/list", json!({})).await);
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"alpha__echo"), "{names:?}");
    assert_eq!(tools["cacheScope"], "private", "filtered per caller");
    assert_eq!(tools["ttlMs"], 0);
    let call = json!({"name": "alpha__echo", "arguments": {"text": "hi"}});
    let r = result(&modern(&h, "/mcp", "tools/call", call).await);
    assert_eq!(r["content"][0]["text"], "hi");
    let call = json!({"name": "echo", "arguments": {"text": "direct"}});
    for _ in 0..3 {
        let r = result(&modern(&h, "/servers/alpha/mcp", "tools/call", call.clone()).await);
        assert_eq!(r["content"][0]["text"], "direct");
    }
    // One upstream session per caller and endpoint, reused across requests.
    assert_eq!(
        a.count("initialize"),
        2,
        "one for /mcp, one for /servers/alpha/mcp"
    );
}

#[tokio::test]
async fn a_streamed_answer_says_its_result_type_and_keeps_its_progress() {
    let (h, _, _) = Harness::two_servers();
    let r = support::slow_call(&h, &[]).await;
    assert!(r.is_sse(), "{}", r.text);
    let events = r.events();
    let progress = events
        .iter()
        .filter(|e| e["method"] == "notifications/progress")
        .count();
    assert_eq!(progress, 2, "{}", r.text);
    let last = events.last().unwrap();
    assert_eq!(last["id"], 9);
    assert_eq!(last["result"]["resultType"], "complete", "{}", r.text);
    assert_eq!(last["result"]["content"][0]["text"], "counted to 2");
    assert!(events
        .iter()
        .filter(|e| e.get("method").is_some())
        .all(|e| e.get("resultType").is_none() && e.get("result").is_none()));
}

#[tokio::test]
async fn requests_that_reach_no_upstream_touch_no_store() {
    let (h, _, _) = Harness::two_servers();
    result(&modern(&h, "/mcp", "server/discover", json!({})).await);
    modern(&h, "/mcp", "ping", json!({})).await.error(404);
    modern(&h, "/servers/alpha/mcp", "initialize", json!({}))
        .await
        .error(404);
    assert!(h.p.sessions.is_empty(), "no bridge record was opened");
    assert_eq!(h.p.sessions.reads(), 0, "and none was read");
}

#[tokio::test]
async fn server_discover_describes_the_gateway_or_the_server() {
    let (h, _, _) = Harness::two_servers();
    let own = result(&modern(&h, "/mcp", "server/discover", json!({})).await);
    assert_eq!(own["supportedVersions"], json!([MODERN]));
    assert!(own["capabilities"]["tools"].is_object());
    assert!(own["instructions"].as_str().unwrap().contains("aggregates"));
    assert_eq!(own["cacheScope"], "private");
    assert!(
        own["capabilities"].get("logging").is_none(),
        "no logging/setLevel to offer"
    );
    assert_eq!(
        own["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-edge"
    );
    let beta = result(&modern(&h, "/servers/beta/mcp", "server/discover", json!({})).await);
    assert_eq!(beta["capabilities"], json!({"tools": {}}));
}

#[tokio::test]
async fn discovering_a_server_again_and_again_is_bounded_like_opening_sessions() {
    let h = Harness::with_var("SESSIONS_PER_MINUTE", "2");
    let a = h.add(
        "alpha",
        mcp_edge::adapters::memory::MockServer::new("alpha").tools(&["echo"]),
        &["us"],
    );
    for _ in 0..2 {
        result(&modern(&h, "/servers/alpha/mcp", "server/discover", json!({})).await);
    }
    let r = modern(&h, "/servers/alpha/mcp", "server/discover", json!({})).await;
    let (code, message) = r.error(429);
    assert_eq!(code, -31429);
    assert!(message.contains("sessions-per-minute"), "{message}");
    assert_eq!(
        a.count("initialize"),
        2,
        "the refused discover never met the upstream"
    );
}

#[tokio::test]
async fn the_envelope_rules_answer_with_the_revisions_errors() {
    let (h, _, _) = Harness::two_servers();
    let list = |id| modern_body(id, "tools/list", json!({}));
    let version = ("mcp-protocol-version", MODERN);
    let method = ("mcp-method", "tools/list");

    let mut bare = list(1);
    bare["params"] = json!({});
    let r = h.post("/mcp", &bare, &[version, method]).await;
    let (code, message) = r.error(400);
    assert_eq!(code, -32602);
    assert!(message.contains("clientCapabilities"), "{message}");

    let r = h.post("/mcp", &list(2), &[version]).await;
    assert_eq!(r.error(400).0, -32020, "Mcp-Method missing");
    let r = h
        .post("/mcp", &list(3), &[version, ("mcp-method", "prompts/list")])
        .await;
    assert_eq!(r.error(400).0, -32020, "Mcp-Method differs");
    let call = modern_body(4, "tools/call", json!({"name": "alpha__echo"}));
    let r = h
        .post(
            "/mcp",
            &call,
            &[
                version,
                ("mcp-method", "tools/call"),
                ("mcp-name", "beta__echo"),
            ],
        )
        .await;
    assert_eq!(r.error(400).0, -32020, "Mcp-Name differs");

    let mut future = list(5);
    future["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let r = h
        .post(
            "/mcp",
            &future,
            &[("mcp-protocol-version", "2099-01-01"), method],
        )
        .await;
    assert_eq!(r.error(400).0, -32022);
    let data = &r.response()["error"]["data"];
    assert_eq!(data["supported"], json!([MODERN]));
    assert_eq!(data["requested"], "2099-01-01");

    // Unknown, and removed by the revision, on either endpoint.
    for method in [
        "no/such",
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
    ] {
        for path in ["/mcp", "/servers/alpha/mcp"] {
            let r = modern(&h, path, method, json!({})).await;
            assert_eq!(r.error(404).0, -32601, "{method} on {path}");
        }
    }
}

#[tokio::test]
async fn modern_requests_have_no_session_to_get_or_delete() {
    let (h, _, _) = Harness::two_servers();
    for method in ["GET", "DELETE"] {
        let req = http::Request::builder()
            .method(method)
            .uri("http://gw.test/mcp")
            .header("host", "gw.test")
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", MODERN)
            .body(Vec::new())
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, 405, "{method}: {}", r.text);
        assert_eq!(r.header("allow").as_deref(), Some("POST"));
    }
    // A notification is acknowledged and goes nowhere.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}});
    let r = h
        .post("/mcp", &note, &[("mcp-protocol-version", MODERN)])
        .await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn a_modern_caller_is_limited_with_a_code_the_revision_leaves_to_implementations() {
    let (h, _, _) = Harness::two_servers();
    h.p.kv.put(
        "policy",
        &json!({
            "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
            "limits": [{"name": "one", "per": "principal", "requests": 1, "window_secs": 60}]
        })
        .to_string(),
    );
    h.gw.reload_config();
    let call = json!({"name": "alpha__echo", "arguments": {"text": "hi"}});
    result(&modern(&h, "/mcp", "tools/call", call.clone()).await);
    let r = modern(&h, "/mcp", "tools/call", call).await;
    let (code, message) = r.error(429);
    assert_eq!(code, -31429, "{message}");
    assert!(
        !(-32768..=-32000).contains(&code),
        "outside the JSON-RPC and MCP ranges"
    );
}

#[tokio::test]
async fn a_legacy_client_beside_a_modern_one_is_unchanged() {
    let (h, _, _) = Harness::two_servers();
    result(&modern(&h, "/mcp", "tools/list", json!({})).await);
    let mut c = h.connect("/mcp").await;
    let r = c
        .result(
            "tools/call",
            json!({"name": "alpha__echo", "arguments": {"text": "old"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "old");
    assert!(
        r.get("resultType").is_none(),
        "legacy results stay as they were"
    );
    // A legacy request without a session is still a 400 of its own era.
    let r = h
        .post(
            "/mcp",
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            &[],
        )
        .await;
    assert_eq!(r.error(400).0, -32000);
}

/// Alpha's `archive` needs the user's own confirmation; `drop_all` an
/// approver's decision.
fn with_approvals() -> (Harness, std::rc::Rc<mcp_edge::adapters::memory::MockServer>) {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        mcp_edge::adapters::memory::MockServer::new("alpha")
            .tools(&["echo", "archive", "drop_all"]),
        &["us"],
    );
    h.api_key("mk_other", json!({"subject": "mallory"}));
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "approvers": {"roles": ["approver"]},
            "tools": [
                {"servers": ["alpha"], "tools": ["archive"], "decided_by": "user"},
                {"servers": ["alpha"], "tools": ["drop_*"]}
            ],
            "ttl_secs": 60,
            "elicitation_timeout_secs": 30
        }
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, alpha)
}

/// A modern `tools/call` on `path` declaring form elicitation, with extra
/// params (a retry's state and answer) and headers.
async fn asked_call(
    h: &Harness,
    path: &str,
    tool: &str,
    extra: Value,
    headers: &[(&str, &str)],
) -> Reply {
    let mut params = json!({"name": tool, "arguments": {"text": "files"}});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    let mut body = modern_body(11, "tools/call", params);
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
        json!({"elicitation": {"form": {}}});
    let mut all = vec![
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    all.extend_from_slice(headers);
    h.post(path, &body, &all).await
}

fn answer(state: &str, action: &str) -> Value {
    json!({"requestState": state,
           "inputResponses": {"mcp-edge/approval": {"action": action, "content": {}}}})
}

#[tokio::test]
async fn a_modern_client_is_asked_with_input_required_and_answers_on_its_retry() {
    let (h, alpha) = with_approvals();
    for path in ["/mcp", "/servers/alpha/mcp"] {
        let tool = if path == "/mcp" {
            "alpha__archive"
        } else {
            "archive"
        };
        let asked = question(&asked_call(&h, path, tool, json!({}), &[]).await);
        let question = &asked["inputRequests"]["mcp-edge/approval"];
        assert_eq!(question["method"], "elicitation/create");
        assert!(question["params"]["message"]
            .as_str()
            .unwrap()
            .contains("archive"));
        assert!(asked.get("ttlMs").is_none(), "a question is not cacheable");
        let state = asked["requestState"].as_str().unwrap().to_string();
        let before = alpha.count("tools/call");

        // Someone else's retry with the state, or a changed call, is refused.
        let r = asked_call(
            &h,
            path,
            tool,
            answer(&state, "accept"),
            &[("x-api-key", "mk_other")],
        )
        .await;
        assert_eq!(r.error(400).0, -32602, "another caller");
        let forged = format!("{}.AAAAAAAAAAAAAAAA", state.split('.').next().unwrap());
        let r = asked_call(&h, path, tool, answer(&forged, "accept"), &[]).await;
        assert_eq!(r.error(400).0, -32602, "a forged nonce");

        assert_eq!(
            alpha.count("tools/call"),
            before,
            "nothing ran while asking"
        );
        // The accepted retry runs the call once, without the answer upstream.
        let ran = result(&asked_call(&h, path, tool, answer(&state, "accept"), &[]).await);
        assert_eq!(ran["content"][0]["text"], "alpha:archive", "{ran}");
        assert_eq!(alpha.count("tools/call"), before + 1);
        let sent = alpha.seen().last().unwrap().body.clone();
        assert!(sent["params"].get("requestState").is_none(), "{sent}");
        assert!(sent["params"].get("inputResponses").is_none(), "{sent}");

        // Used once: the same state again is refused and nothing runs.
        let r = asked_call(&h, path, tool, answer(&state, "accept"), &[]).await;
        assert_eq!(r.error(400).0, -32602);
        assert_eq!(alpha.count("tools/call"), before + 1);
    }
}

#[tokio::test]
async fn a_declined_question_runs_nothing_and_approvers_are_never_asked() {
    let (h, alpha) = with_approvals();
    let asked = question(&asked_call(&h, "/mcp", "alpha__archive", json!({}), &[]).await);
    let state = asked["requestState"].as_str().unwrap().to_string();
    let declined =
        result(&asked_call(&h, "/mcp", "alpha__archive", answer(&state, "decline"), &[]).await);
    assert_eq!(declined["isError"], true);
    assert!(declined["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("declined"));
    assert_eq!(alpha.count("tools/call"), 0);
    // A call approvers decide is never put to the requester, elicitation or not.
    let held = result(&asked_call(&h, "/mcp", "alpha__drop_all", json!({}), &[]).await);
    assert_eq!(held["resultType"], "complete");
    assert_eq!(held["isError"], true);
    assert_eq!(held["_meta"]["mcp-edge/approval"]["decider"], "approvers");
    assert_eq!(alpha.count("tools/call"), 0);
}

#[tokio::test]
async fn a_question_stops_counting_once_the_policy_gives_the_call_to_approvers() {
    let (h, alpha) = with_approvals();
    let asked = question(&asked_call(&h, "/mcp", "alpha__archive", json!({}), &[]).await);
    let state = asked["requestState"].as_str().unwrap().to_string();
    let stricter = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "approval": {
            "approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["alpha"], "tools": ["archive", "drop_*"]}],
            "ttl_secs": 60, "elicitation_timeout_secs": 30
        }
    });
    h.p.kv.put("policy", &stricter.to_string());
    h.gw.reload_config();
    let r = asked_call(&h, "/mcp", "alpha__archive", answer(&state, "accept"), &[]).await;
    assert_eq!(r.error(400).0, -32602, "{}", r.text);
    assert_eq!(alpha.count("tools/call"), 0);
    // States that are not the gateway's question ids never reach the store.
    for forged in ["ap_0123.x", "el_short.x", "no-dot"] {
        let r = asked_call(&h, "/mcp", "alpha__drop_all", answer(forged, "accept"), &[]).await;
        let (code, message) = r.error(400);
        assert_eq!(code, -32602);
        assert!(message.contains("not valid for this call"), "{message}");
    }
}

/// A harness whose `up` server speaks 2026-07-28 (and 2025), beside the
/// legacy `alpha`; the gateway holds a signing key, so it can seal states.
fn with_a_modern_upstream() -> (Harness, std::rc::Rc<MockServer>) {
    let (h, _, _) = Harness::two_servers();
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["echo", "ask"]).modern(),
        &["us"],
    );
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        "a signing secret for the tests".into(),
    );
    (h, up)
}

#[tokio::test]
async fn a_modern_upstream_is_spoken_to_in_its_era_after_one_discover() {
    let (h, up) = with_a_modern_upstream();
    let call = json!({"name": "echo", "arguments": {"text": "hi"}});
    for _ in 0..3 {
        let r = result(&modern(&h, "/servers/up/mcp", "tools/call", call.clone()).await);
        assert_eq!(r["content"][0]["text"], "hi");
    }
    assert_eq!(
        up.count("server/discover"),
        1,
        "the era is asked once per endpoint"
    );
    assert_eq!(
        up.count("initialize"),
        0,
        "a modern upstream is never initialized"
    );
    let seen = up.seen();
    let calls: Vec<_> = seen
        .iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .collect();
    assert_eq!(calls.len(), 3, "one upstream request per call");
    for c in calls {
        assert!(c.headers.get("mcp-session-id").is_none());
        assert_eq!(c.headers["mcp-protocol-version"], MODERN);
        assert_eq!(c.headers["mcp-method"], "tools/call");
        assert_eq!(c.headers["mcp-name"], "echo");
        assert!(
            c.headers.get("authorization").is_none(),
            "the caller's key stays at the gateway"
        );
    }
}

#[tokio::test]
async fn a_legacy_client_reaches_a_modern_only_upstream_with_the_envelope_added() {
    let (h, _, _) = Harness::two_servers();
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["echo"]).modern_only(),
        &["us"],
    );
    let mut c = h.connect("/mcp").await;
    let r = c
        .result(
            "tools/call",
            json!({"name": "up__echo", "arguments": {"text": "old"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "old");
    let seen = up.seen();
    let call = seen
        .iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .expect("the call reached the upstream");
    assert_eq!(
        call.body["params"]["name"], "echo",
        "the upstream's own name"
    );
    assert_eq!(
        call.headers["mcp-name"], "echo",
        "the header follows the body"
    );
    assert_eq!(
        call.body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
        MODERN
    );
    assert_eq!(
        up.count("initialize"),
        1,
        "refused once, then the modern era"
    );
    let r = c
        .result(
            "tools/call",
            json!({"name": "up__echo", "arguments": {"text": "again"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "again");
    assert_eq!(up.count("initialize"), 1, "remembered in the session");
    assert_eq!(up.count("server/discover"), 1);
}

#[tokio::test]
async fn a_legacy_client_keeps_its_era_with_a_dual_era_upstream() {
    let (h, up) = with_a_modern_upstream();
    // A modern client first: the gateway learns the upstream speaks the
    // modern era, which says nothing about sessions.
    let call = json!({"name": "echo", "arguments": {"text": "new"}});
    result(&modern(&h, "/servers/up/mcp", "tools/call", call).await);
    assert_eq!(up.count("server/discover"), 1);
    let mut c = h.connect("/servers/up/mcp").await;
    let r = c
        .result(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "old"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "old");
    assert_eq!(up.count("initialize"), 1, "met in the legacy era");
    assert_eq!(
        up.count("server/discover"),
        1,
        "a legacy client never asks which era"
    );
    let seen = up.seen();
    let last = seen
        .iter()
        .rev()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .unwrap();
    assert!(
        last.headers.get("mcp-session-id").is_some(),
        "on its upstream session"
    );
}

#[tokio::test]
async fn an_upstreams_question_passes_with_its_state_sealed_for_the_caller() {
    let (h, up) = with_a_modern_upstream();
    for path in ["/servers/up/mcp", "/mcp"] {
        let name = if path == "/mcp" { "up__ask" } else { "ask" };
        let asked = question(
            &modern(
                &h,
                path,
                "tools/call",
                json!({"name": name, "arguments": {}}),
            )
            .await,
        );
        assert!(
            asked["inputRequests"]["who"].is_object(),
            "the upstream's question"
        );
        let state = asked["requestState"].as_str().unwrap().to_string();
        assert_ne!(
            state, "up-state",
            "the client never holds the upstream's own state"
        );
        let answer = json!({"who": {"action": "accept", "content": {"name": "ada"}}});
        let retry =
            json!({"name": name, "arguments": {}, "requestState": state, "inputResponses": answer});
        let done = result(&modern(&h, path, "tools/call", retry.clone()).await);
        assert_eq!(done["content"][0]["text"], "hello \"ada\"", "{path}");
        let last = up
            .seen()
            .into_iter()
            .rev()
            .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
            .unwrap();
        assert_eq!(
            last.body["params"]["requestState"], "up-state",
            "the upstream gets its own state back"
        );
        // Another caller with the same state; other arguments; a state from
        // the other endpoint; an altered state: refused before the upstream.
        let before = up.count("tools/call");
        let mut other_args = retry.clone();
        other_args["arguments"] = json!({"x": 1});
        let mut tampered = retry.clone();
        tampered["requestState"] = json!(format!("{state}-TAMPERED"));
        let mut elsewhere = retry.clone();
        elsewhere["name"] = json!(if path == "/mcp" { "ask" } else { "up__ask" });
        for bad in [other_args, tampered] {
            let r = modern(&h, path, "tools/call", bad).await;
            let (code, message) = r.error(400);
            assert_eq!(code, -32602);
            assert!(message.contains("requestState"), "{message}");
        }
        let other_path = if path == "/mcp" {
            "/servers/up/mcp"
        } else {
            "/mcp"
        };
        let r = modern(&h, other_path, "tools/call", elsewhere).await;
        assert_eq!(r.error(400).0, -32602, "a state is bound to its endpoint");
        if path == "/servers/up/mcp" {
            // An unsealed state on a method that is not the gateway's
            // question would reach the upstream unbound: refused.
            let forged = json!({"name": "p", "requestState": "up-state", "inputResponses": {}});
            let r = modern(&h, path, "prompts/get", forged).await;
            assert_eq!(r.error(400).0, -32602);
        }
        let stranger = modern_as_stranger(&h, path, retry).await;
        assert_eq!(
            stranger.error(400).0,
            -32602,
            "a state is bound to its caller"
        );
        assert_eq!(
            up.count("tools/call"),
            before,
            "nothing refused reached the upstream"
        );
    }
}

/// A modern call by a caller other than the harness's (an anonymous one on
/// an anonymous server is not possible here, so another API key).
async fn modern_as_stranger(h: &Harness, path: &str, params: Value) -> Reply {
    h.api_key("mk_stranger", json!({"subject": "stranger"}));
    let name = params["name"].as_str().unwrap().to_string();
    let body = modern_body(9, "tools/call", params);
    h.post(
        path,
        &body,
        &[
            ("mcp-protocol-version", MODERN),
            ("mcp-method", "tools/call"),
            ("mcp-name", &name),
            ("authorization", "Bearer mk_stranger"),
        ],
    )
    .await
}

#[tokio::test]
async fn without_a_key_an_upstreams_state_is_not_relayed() {
    let (h, _, _) = Harness::two_servers();
    h.add(
        "up",
        MockServer::new("up").tools(&["ask"]).modern(),
        &["us"],
    );
    let r = modern(
        &h,
        "/servers/up/mcp",
        "tools/call",
        json!({"name": "ask", "arguments": {}}),
    )
    .await;
    let v = r.response();
    assert!(v.get("result").is_none(), "{}", r.text);
    assert!(
        !r.text.contains("up-state"),
        "the upstream's state goes nowhere"
    );
}

#[tokio::test]
async fn on_collision_naming_shows_a_one_server_caller_the_servers_own_names() {
    let h = Harness::with_settings(support::setting("NAMES_ON_MCP", "on_collision"));
    h.add("solo", MockServer::new("solo").tools(&["echo"]), &["us"]);
    let mut c = h.connect("/mcp").await;
    assert_eq!(c.all_names("tools/list", "tools").await, vec!["echo"]);
    let r = c
        .result(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "mine"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "mine");
    // Two servers that both offer `echo`: that name collides, so prefixed.
    h.add("duo", MockServer::new("duo").tools(&["echo"]), &["us"]);
    let h2 = Harness::with_settings(support::setting("NAMES_ON_MCP", "on_collision"));
    h2.add("solo", MockServer::new("solo").tools(&["echo"]), &["us"]);
    h2.add("duo", MockServer::new("duo").tools(&["echo"]), &["us"]);
    let mut c2 = h2.connect("/mcp").await;
    let mut names = c2.all_names("tools/list", "tools").await;
    names.sort();
    assert_eq!(names, vec!["duo__echo", "solo__echo"]);
}

#[tokio::test]
async fn a_log_level_must_be_one_the_revision_names() {
    let (h, _, _) = Harness::two_servers();
    let levels = |min: &str| {
        let mut b = modern_body(1, "tools/list", json!({}));
        b["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = json!(min);
        b
    };
    let bad = h
        .post(
            "/mcp",
            &levels("loud"),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
        )
        .await;
    assert_eq!(bad.error(400).0, -32602, "an unknown level is refused");
    let ok = h
        .post(
            "/mcp",
            &levels("warning"),
            &[
                ("mcp-protocol-version", MODERN),
                ("mcp-method", "tools/list"),
            ],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

/// One modern server behind the gateway, nothing else.
fn only_a_modern_upstream() -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::new();
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["echo"]).modern(),
        &["us"],
    );
    (h, up)
}

async fn echo_on_both_endpoints(h: &Harness) {
    for (path, name) in [("/servers/up/mcp", "echo"), ("/mcp", "up__echo")] {
        let call = json!({"name": name, "arguments": {"text": "hi"}});
        let r = result(&modern(h, path, "tools/call", call).await);
        assert_eq!(r["content"][0]["text"], "hi");
    }
}

#[tokio::test]
async fn once_the_era_is_learned_a_modern_call_reads_no_session_record() {
    let (h, up) = only_a_modern_upstream();
    echo_on_both_endpoints(&h).await;
    let reads = h.p.sessions.reads();
    for _ in 0..3 {
        echo_on_both_endpoints(&h).await;
    }
    assert_eq!(
        h.p.sessions.reads(),
        reads,
        "the steady state has no store round trip"
    );
    assert_eq!(
        up.count("server/discover"),
        1,
        "learned once for the isolate"
    );
    assert_eq!(up.count("tools/call"), 8, "one upstream request per call");
}

#[tokio::test]
async fn a_declared_era_is_never_probed_and_needs_no_record_even_in_a_fresh_instance() {
    let (mut h, up) = only_a_modern_upstream();
    let mut entry = h.raw_entry("up");
    entry["era"] = json!("dual");
    h.register("up", entry);
    for _ in 0..3 {
        // Like Spin: nothing the last request learned is left.
        h.gw = std::rc::Rc::new(mcp_edge::gateway::Gateway::new(
            mcp_edge::config::Settings::default(),
        ));
        echo_on_both_endpoints(&h).await;
    }
    assert_eq!(up.count("server/discover"), 0);
    assert_eq!(up.count("initialize"), 0);
    assert_eq!(h.p.sessions.reads(), 0);
    assert!(h.p.sessions.is_empty(), "no bridge record was opened");
    // Without the declaration, each fresh instance keeps the learned era
    // in the caller's bridge record.
    let mut entry = h.raw_entry("up");
    entry.as_object_mut().unwrap().remove("era");
    h.register("up", entry);
    h.gw = std::rc::Rc::new(mcp_edge::gateway::Gateway::new(
        mcp_edge::config::Settings::default(),
    ));
    echo_on_both_endpoints(&h).await;
    assert!(h.p.sessions.reads() > 0);
}

#[tokio::test]
async fn on_a_shared_upstream_session_requests_go_under_ids_of_the_gateways() {
    let (h, a, _) = Harness::two_servers();
    // Two clients of one caller that both number from 7 share the bridged
    // upstream session: upstream, their ids must not meet.
    for _ in 0..2 {
        let call = json!({"name": "echo", "arguments": {"text": "hi"}});
        let r = modern(&h, "/servers/alpha/mcp", "tools/call", call).await;
        assert_eq!(r.json()["id"], 7, "the client's own id comes back");
    }
    let bad = json!({"name": "nope", "arguments": {}});
    let r = modern(&h, "/servers/alpha/mcp", "tools/call", bad).await;
    assert_eq!(r.json()["id"], 7, "on an upstream's error too: {}", r.text);
    let ids: Vec<String> = a
        .seen()
        .iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| s.body["id"].as_str().unwrap_or("a client's id").to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i.starts_with("mcp-edge-")), "{ids:?}");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 3, "{ids:?}");
}

#[tokio::test]
async fn on_mcp_a_call_to_a_modern_server_needs_no_record_whatever_the_others_speak() {
    let (h, up) = with_a_modern_upstream();
    let call = json!({"name": "up__echo", "arguments": {"text": "hi"}});
    result(&modern(&h, "/mcp", "tools/call", call.clone()).await);
    let reads = h.p.sessions.reads();
    for _ in 0..3 {
        let r = result(&modern(&h, "/mcp", "tools/call", call.clone()).await);
        assert_eq!(r["content"][0]["text"], "hi");
    }
    assert_eq!(
        h.p.sessions.reads(),
        reads,
        "alpha and beta speak only the legacy era, but the call is up's"
    );
    assert_eq!(up.count("tools/call"), 4);
}

#[tokio::test]
async fn a_legacy_client_asked_for_input_by_a_modern_upstream_gets_an_error_not_an_empty_result() {
    let (h, _, _) = Harness::two_servers();
    h.add(
        "up",
        MockServer::new("up").tools(&["echo", "ask"]).modern_only(),
        &["us"],
    );
    for (path, name) in [("/mcp", "up__ask"), ("/servers/up/mcp", "ask")] {
        let mut c = h.connect(path).await;
        let r = c
            .call("tools/call", json!({"name": name, "arguments": {}}))
            .await;
        assert!(r.get("result").is_none(), "{path}: {r}");
        assert_eq!(r["error"]["code"], -32001, "{path}: {r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains("input_required"), "{path}: {message}");
        let r = c
            .result(
                "tools/call",
                json!({"name": name.replace("ask", "echo"), "arguments": {"text": "t"}}),
            )
            .await;
        assert_eq!(
            r["content"][0]["text"], "t",
            "other answers pass as they are"
        );
    }
}
