//! Telemetry export over OTLP/HTTP JSON: each request's spans (the server
//! span in the caller's trace, and a child per phase: authentication,
//! policy, each limit, argument validation, the approval, each upstream
//! attempt), its audit events as log records in the trace, and its
//! metrics, posted after the response to `OTEL_EXPORTER_OTLP_ENDPOINT`
//! with the headers of the `OTEL_EXPORTER_OTLP_HEADERS` secret.
//! Installs the collector as the process's subscriber: `tracing` caches per
//! call site whether anyone listens, so this binary holds only tests that
//! want it installed.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use support::otel::*;
use support::{modern_request, Harness};

const KEY: &str = "mk_alice_secret_key";
const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn call(tool: &str, id: i64) -> http::Request<Vec<u8>> {
    let arguments = if tool.ends_with("add") {
        json!({"a": 40, "b": 2})
    } else {
        json!({"text": "hush-argument-value"})
    };
    let params = json!({"name": tool, "arguments": arguments});
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    modern_request(
        "/mcp",
        id,
        "tools/call",
        params,
        &[("x-api-key", KEY), ("traceparent", &caller)],
    )
}

fn root(spans: &[Value]) -> &Value {
    let roots: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 2).collect();
    assert_eq!(roots.len(), 1, "{spans:#?}");
    roots[0]
}

fn log_events(posts: &[Post]) -> Vec<Value> {
    let Some(l) = signal(posts, "logs") else {
        return Vec::new();
    };
    l["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["traceId"], CALLER_TRACE);
            serde_json::from_str(r["body"]["stringValue"].as_str().unwrap()).unwrap()
        })
        .collect()
}

fn metric<'a>(posts: &'a [Post], name: &str) -> Option<&'a Value> {
    signal(posts, "metrics")?["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
}

fn setup() -> (Harness, Rc<RefCell<Vec<Post>>>, Rc<MockServer>) {
    let (h, posts) = harness(&[]);
    let up = h.add(
        "up",
        MockServer::new("up").tools(&["echo", "purge", "delete", "add"]),
        &["eu", "us"],
    );
    h.api_key(KEY, json!({"subject": "alice", "teams": ["eng", "data"]}));
    let policy = json!({
        "rules": [
            {"name": "everyone", "effect": "allow", "subjects": {"everyone": true}},
            {"name": "no-purge", "effect": "deny", "subjects": {"everyone": true}, "tools": ["purge"]}
        ],
        "limits": [
            {"name": "team-burst", "per": "team", "requests": 100, "window_secs": 60},
            {"name": "one-echo", "per": "tool", "tools": ["echo"], "requests": 1, "window_secs": 60}
        ],
        "approval": {"approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["up"], "tools": ["delete"], "decided_by": "user"}],
            "ttl_secs": 60, "elicitation_timeout_secs": 30}
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, posts, up)
}

#[tokio::test]
async fn an_allowed_call_is_one_trace_under_the_callers_span_with_a_span_per_phase() {
    let (h, posts, up) = setup();
    let (status, got) = exported(&h, &posts, call("up__echo", 7)).await;
    assert_eq!(status, 200);
    let spans = spans_of(&got);
    let root = root(&spans);
    assert_eq!(root["traceId"], CALLER_TRACE);
    assert_eq!(root["parentSpanId"], CALLER_SPAN);
    assert_eq!(root["name"], "tools/call up__echo");
    assert_eq!(attr(root, "mcp.method.name"), s("tools/call"));
    assert_eq!(attr(root, "gen_ai.tool.name"), s("up__echo"));
    assert_eq!(attr(root, "gen_ai.operation.name"), s("execute_tool"));
    assert_eq!(attr(root, "jsonrpc.request.id"), s("7"));
    assert_eq!(attr(root, "mcp.protocol.version"), s("2026-07-28"));
    assert_eq!(attr(root, "enduser.id"), s("alice"));
    assert_eq!(attr(root, "mcp_edge.teams"), s("data,eng"));
    assert_eq!(attr(root, "mcp_edge.server.id"), s("up"));
    assert_eq!(attr(root, "http.response.status_code")["intValue"], "200");
    assert!(root["status"].get("code").is_none(), "{root}");
    let root_id = root["spanId"].as_str().unwrap();
    for child in spans.iter().filter(|s| s["kind"] != 2) {
        assert_eq!(child["traceId"], CALLER_TRACE);
        assert_eq!(child["parentSpanId"], root_id, "{child}");
    }
    assert_eq!(named(&spans, "authenticate").len(), 1);
    let policy = named(&spans, "policy");
    assert_eq!(attr(policy[0], "mcp_edge.policy.rule"), s("everyone"));
    assert_eq!(attr(policy[0], "mcp_edge.policy.decision"), s("allow"));
    assert_eq!(named(&spans, "validate_arguments").len(), 1);
    let limits: Vec<Value> = named(&spans, "rate_limit")
        .iter()
        .map(|l| attr(l, "mcp_edge.limit"))
        .collect();
    // One span per home (subject): each of alice's teams is one, the tool another.
    assert_eq!(limits, [s("team-burst"), s("team-burst"), s("one-echo")]);
    // The upstream attempt is a client span, and the upstream was called
    // under it.
    let names: Vec<&Value> = spans.iter().map(|s| &s["name"]).collect();
    // The catalog's listing (for the argument schema), then the call;
    // upstream, the tool has its own name.
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    let attempt_names: Vec<&Value> = attempts.iter().map(|s| &s["name"]).collect();
    assert_eq!(
        attempt_names,
        ["tools/list", "tools/call echo"],
        "{names:?}"
    );
    let attempt = attempts[1];
    assert_eq!(attr(attempt, "mcp_edge.region"), s("eu"));
    assert_eq!(attr(attempt, "mcp_edge.server.id"), s("up"));
    let seen = up
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .unwrap();
    let under = format!(
        "00-{CALLER_TRACE}-{}-01",
        attempt["spanId"].as_str().unwrap()
    );
    assert_eq!(seen.headers["traceparent"], under.as_str());
    assert_eq!(seen.body["params"]["_meta"]["traceparent"], under);
    let (_, headers, _) = got.iter().find(|(s, _, _)| s == "traces").unwrap();
    assert_eq!(headers["x-otlp-key"], EXPORT_KEY);
    assert_eq!(headers["content-type"], "application/json");

    // Metrics: the semantic conventions' duration, and the counts.
    let duration = metric(&got, "mcp.server.operation.duration").expect("duration");
    assert_eq!(duration["unit"], "s");
    let point = &duration["histogram"]["dataPoints"][0];
    assert_eq!(point["count"], "1");
    // Metrics name the tool as the server does (bounded by what it lists).
    assert_eq!(attr(point, "gen_ai.tool.name"), s("echo"));
    assert_eq!(attr(point, "mcp_edge.teams"), s("data,eng"));
    assert_eq!(duration["histogram"]["aggregationTemporality"], 1);
    let calls = metric(&got, "mcp_edge.calls").expect("calls");
    assert_eq!(
        attr(&calls["sum"]["dataPoints"][0], "mcp_edge.outcome"),
        s("ok")
    );
    let upstream = metric(&got, "mcp_edge.upstream.duration").expect("attempts");
    assert_eq!(
        attr(&upstream["histogram"]["dataPoints"][0], "mcp_edge.region"),
        s("eu")
    );
    let client = metric(&got, "mcp.client.operation.duration").expect("the client metric");
    let methods: Vec<Value> = client["histogram"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| attr(p, "mcp.method.name"))
        .collect();
    assert_eq!(methods, [s("tools/list"), s("tools/call")]);
    assert!(metric(&got, "mcp_edge.errors").is_none());
    let events = log_events(&got);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["authenticated", "policy"]);
    nothing_secret(&got);
}

#[tokio::test]
async fn denied_limited_failed_over_and_approved_calls_each_show_their_phase() {
    let (h, posts, _) = setup();
    // Denied by a rule.
    let (status, got) = exported(&h, &posts, call("up__purge", 1)).await;
    assert_eq!(status, 400);
    let spans = spans_of(&got);
    let policy = named(&spans, "policy");
    assert_eq!(attr(policy[0], "mcp_edge.policy.rule"), s("no-purge"));
    assert_eq!(attr(policy[0], "error.type"), s("denied"));
    assert_eq!(policy[0]["status"]["code"], 2);
    let root = root(&spans);
    assert_eq!(attr(root, "error.type"), s("-32602"));
    assert_eq!(attr(root, "rpc.response.status_code"), s("-32602"));
    assert_eq!(root["status"]["code"], 2);
    assert!(named(&spans, "rate_limit").is_empty());
    let errors = metric(&got, "mcp_edge.errors").expect("an error counted");
    assert_eq!(
        attr(&errors["sum"]["dataPoints"][0], "error.type"),
        s("-32602")
    );

    // Rate limited: the first echo passes, the second is refused by one-echo.
    exported(&h, &posts, call("up__echo", 2)).await;
    let (status, got) = exported(&h, &posts, call("up__echo", 3)).await;
    assert_eq!(status, 429);
    let spans = spans_of(&got);
    let limits = named(&spans, "rate_limit");
    assert_eq!(limits.len(), 3);
    assert_eq!(attr(limits[0], "mcp_edge.limit.decision"), s("allow"));
    assert_eq!(attr(limits[2], "mcp_edge.limit.decision"), s("deny"));
    assert_eq!(attr(limits[2], "error.type"), s("rate_limited"));
    assert_eq!(attr(limits[2], "mcp_edge.limit.refused"), s("one-echo"));
    let refusals = metric(&got, "mcp_edge.limit.refusals").expect("a refusal counted");
    assert_eq!(
        attr(&refusals["sum"]["dataPoints"][0], "mcp_edge.limit"),
        s("one-echo")
    );
    assert!(log_events(&got).iter().any(|e| e["event"] == "limited"));

    // A failover: eu does not answer, us does.
    h.p.http.unmount("http://up.eu.test/mcp");
    let mut eu_first = h.meta.clone();
    eu_first.continent = Some("EU".into());
    let h = Harness {
        meta: eu_first,
        ..h
    };
    let (status, got) = exported(&h, &posts, call("up__add", 4)).await;
    assert_eq!(status, 200);
    let spans = spans_of(&got);
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    let regions: Vec<Value> = attempts
        .iter()
        .map(|a| attr(a, "mcp_edge.region"))
        .collect();
    assert!(regions.len() >= 2, "{spans:#?}");
    assert_eq!(regions[0], s("eu"));
    assert_eq!(attr(attempts[0], "error.type"), s("unreachable"));
    assert!(log_events(&got).iter().any(|e| e["event"] == "failover"));
    nothing_secret(&got);
}

#[tokio::test]
async fn an_approval_asked_and_given_is_a_span_and_audit_records() {
    let (h, posts, _) = setup();
    let approve = |extra: Value| {
        let mut body = support::modern_body(
            1,
            "tools/call",
            json!({"name": "up__delete", "arguments": {"id": "n-1"}}),
        );
        body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
            json!({"elicitation": {"form": {}}});
        for (k, v) in extra.as_object().unwrap() {
            body["params"][k] = v.clone();
        }
        let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
        Harness::post_request(
            "/mcp",
            body.to_string().into_bytes(),
            &[
                ("mcp-protocol-version", support::MODERN),
                ("mcp-method", "tools/call"),
                ("mcp-name", "up__delete"),
                ("x-api-key", KEY),
                ("traceparent", &caller),
            ],
        )
    };
    posts.borrow_mut().clear();
    let asked = h.send(approve(json!({}))).await.response();
    h.p.run_deferred().await;
    let got = posts.borrow().clone();
    let spans = spans_of(&got);
    let approval = named(&spans, "approval");
    assert_eq!(approval.len(), 1, "{spans:#?}");
    assert_eq!(attr(approval[0], "mcp_edge.approval.outcome"), s("asked"));
    assert!(log_events(&got)
        .iter()
        .any(|e| e["event"] == "approval_requested"));
    let yes = json!({"requestState": asked["result"]["requestState"],
        "inputResponses": {"mcp-edge/approval": {"action": "accept", "content": {}}}});
    let (status, got) = exported(&h, &posts, approve(yes)).await;
    assert_eq!(status, 200);
    let spans = spans_of(&got);
    assert_eq!(
        attr(named(&spans, "approval")[0], "mcp_edge.approval.outcome"),
        s("approved")
    );
    let events = log_events(&got);
    for kind in ["approval_decided", "approval_used"] {
        assert!(events.iter().any(|e| e["event"] == kind), "{events:?}");
    }
    let approvals = metric(&got, "mcp_edge.approvals").expect("approvals counted");
    let counted: Vec<Value> = approvals["sum"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| attr(p, "mcp_edge.approval.event"))
        .collect();
    assert!(counted.contains(&s("decided")) && counted.contains(&s("used")));
    nothing_secret(&got);
}

#[tokio::test]
async fn nothing_is_exported_without_an_endpoint_and_spans_follow_the_sampling_ratio() {
    install();
    let h = Harness::new();
    h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    h.api_key(KEY, json!({"subject": "alice"}));
    assert_eq!(h.send(call("up__echo", 1)).await.status, 200);
    h.p.run_deferred().await;
    assert!(
        h.p.http.sent().iter().all(|s| !s.contains("/v1/")),
        "{:?}",
        h.p.http.sent()
    );

    // A trace the gateway starts is sampled by the ratio, and the decision
    // is its sampled flag (told upstream and back).
    let (h, posts) = harness(&[("OTEL_TRACES_SAMPLER_ARG", "0")]);
    let up = h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    h.api_key(KEY, json!({"subject": "alice"}));
    let untraced = modern_request(
        "/mcp",
        1,
        "tools/call",
        json!({"name": "up__echo", "arguments": {"text": "x"}}),
        &[("x-api-key", KEY)],
    );
    posts.borrow_mut().clear();
    let r = h.send(untraced).await;
    h.p.run_deferred().await;
    let got = posts.borrow().clone();
    assert_eq!(r.status, 200);
    assert!(r.header("traceresponse").unwrap().ends_with("-00"));
    let seen = up.seen();
    let upstream = seen.last().unwrap().headers["traceparent"]
        .to_str()
        .unwrap();
    assert!(upstream.ends_with("-00"), "{upstream}");
    assert!(
        signal(&got, "traces").is_none(),
        "no span of an unsampled trace"
    );
    assert!(
        signal(&got, "logs").is_some(),
        "audit records are not sampled"
    );
    assert!(signal(&got, "metrics").is_some(), "metrics are not sampled");
    // A caller's trace follows the caller's flag, whatever the ratio.
    let (_, got) = exported(&h, &posts, call("up__echo", 2)).await;
    assert!(
        signal(&got, "traces").is_some(),
        "the caller sampled its trace"
    );
    let (h, posts) = harness(&[]);
    h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    h.api_key(KEY, json!({"subject": "alice"}));
    let mut unsampled = call("up__echo", 3);
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-00");
    unsampled
        .headers_mut()
        .insert("traceparent", caller.parse().unwrap());
    let (_, got) = exported(&h, &posts, unsampled).await;
    assert!(
        signal(&got, "traces").is_none(),
        "the caller did not sample its trace"
    );
    assert!(signal(&got, "logs").is_some());
}

#[tokio::test]
async fn a_failing_collector_neither_fails_nor_delays_the_call() {
    let (h, _) = harness(&[]);
    h.p.http.unmount("http://otel.test/v1/traces");
    h.p.http.unmount("http://otel.test/v1/logs");
    h.p.http.unmount("http://otel.test/v1/metrics");
    h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    h.api_key(KEY, json!({"subject": "alice"}));
    let r = h.send(call("up__echo", 1)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The export is work after the response: it failed there, quietly.
    tokio::time::timeout(std::time::Duration::from_secs(10), h.p.run_deferred())
        .await
        .expect("a failed export is not retried forever");
}

/// No exported attribute or body holds a key, a secret or an argument value.
fn nothing_secret(posts: &[Post]) {
    for (signal, _, body) in posts {
        let text = body.to_string();
        for secret in [KEY, EXPORT_KEY, "hush-argument-value", "n-1\""] {
            assert!(!text.contains(secret), "{signal} holds {secret}: {text}");
        }
    }
}

#[tokio::test]
async fn usage_is_recorded_per_day_team_principal_server_and_tool() {
    use mcp_edge::ports::{Usage, UsageKey};
    let (h, posts, _) = setup();
    exported(&h, &posts, call("up__echo", 1)).await;
    exported(&h, &posts, call("up__echo", 2)).await; // refused by one-echo
    exported(&h, &posts, call("up__purge", 3)).await; // denied
    exported(&h, &posts, call("up__add", 4)).await;
    let today = today();
    let rows = h.p.usage.day(&today).await.unwrap();
    let of = |tool: &str| {
        rows.iter()
            .find(|(k, _)| k.tool == tool)
            .map(|(k, c)| (k.clone(), *c))
            .unwrap_or_else(|| panic!("a row for {tool}: {rows:?}"))
    };
    let (key, echo) = of("echo");
    assert_eq!(
        key,
        UsageKey {
            team: "data,eng".into(),
            principal: "apikey|alice".into(),
            server: "up".into(),
            tool: "echo".into(),
        }
    );
    assert_eq!((echo.calls, echo.errors), (2, 1));
    // A denied call's tool is not the caller's to name in usage.
    let (_, purge) = of("_OTHER");
    assert_eq!((purge.calls, purge.errors, purge.upstream_ms), (1, 1, 0));
    let (_, add) = of("add");
    assert_eq!((add.calls, add.errors), (1, 0));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Another day holds nothing.
    assert!(h.p.usage.day("1999-01-01").await.unwrap().is_empty());
}

/// Today (UTC) as `YYYY-MM-DD`.

#[tokio::test]
async fn a_redaction_is_a_span_and_a_record_with_counts_per_kind_never_the_match() {
    let (h, posts) = harness(&[]);
    h.add("up", MockServer::new("up").tools(&["echo"]), &["us"]);
    h.api_key(KEY, json!({"subject": "alice"}));
    let policy = json!({
        "rules": [{"name": "everyone", "effect": "allow", "subjects": {"everyone": true}}],
        "redact": [{"servers": ["up"], "kinds": ["email", "card"]}]
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let params = json!({"name": "up__echo",
        "arguments": {"text": "mail gina@corp.example and hal@corp.example, card 4111 1111 1111 1111"}});
    let req = modern_request(
        "/mcp",
        1,
        "tools/call",
        params,
        &[("x-api-key", KEY), ("traceparent", &caller)],
    );
    let (status, got) = exported(&h, &posts, req).await;
    assert_eq!(status, 200);
    let spans = spans_of(&got);
    let redact = named(&spans, "redact");
    assert_eq!(redact.len(), 1, "{spans:#?}");
    assert_eq!(attr(redact[0], "mcp_edge.redacted.email")["intValue"], "2");
    assert_eq!(attr(redact[0], "mcp_edge.redacted.card")["intValue"], "1");
    let events = log_events(&got);
    let redacted: Vec<&Value> = events.iter().filter(|e| e["event"] == "redacted").collect();
    assert_eq!(redacted.len(), 1, "{events:?}");
    assert_eq!(redacted[0]["server"], "up");
    assert_eq!(redacted[0]["counts"], json!({"email": 2, "card": 1}));
    for (_, _, body) in &got {
        let text = body.to_string();
        assert!(!text.contains("gina@") && !text.contains("4111"), "{text}");
    }
}

#[tokio::test]
async fn a_legacy_clients_approval_wait_is_a_span_of_the_calls_trace() {
    use futures_util::StreamExt;
    let (h, posts, _) = setup();
    let init = support::initialize_with(1, "2025-06-18", json!({"elicitation": {}}));
    let r = h.post("/mcp", &init, &[("x-api-key", KEY)]).await;
    let sid = r.header("mcp-session-id").unwrap();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    h.post(
        "/mcp",
        &note,
        &[("x-api-key", KEY), ("mcp-session-id", &sid)],
    )
    .await;
    let caller = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "up__delete", "arguments": {"id": "n-1"}}});
    let req = Harness::post_request(
        "/mcp",
        call.to_string().into_bytes(),
        &[
            ("x-api-key", KEY),
            ("mcp-session-id", &sid),
            ("traceparent", &caller),
        ],
    );
    posts.borrow_mut().clear();
    let mut stream = h.open(req).await.into_body().into_stream();
    let first = stream.next().await.unwrap().unwrap();
    let mut decoder = mcp_edge::protocol::sse::Decoder::new();
    let question: Value = serde_json::from_str(&decoder.feed(&first)[0].data).unwrap();
    assert_eq!(question["method"], "elicitation/create", "{question}");
    let yes = json!({"jsonrpc": "2.0", "id": question["id"], "result": {"action": "accept", "content": {}}});
    let answered = h
        .post(
            "/mcp",
            &yes,
            &[("x-api-key", KEY), ("mcp-session-id", &sid)],
        )
        .await;
    assert_eq!(answered.status, 202);
    while stream.next().await.is_some() {}
    drop(stream);
    tokio::time::timeout(std::time::Duration::from_secs(10), h.p.run_deferred())
        .await
        .expect("the export finishes once the stream is read");
    let got = posts.borrow().clone();
    // Every post of the session's requests ran here; the call's trace is
    // one of them.
    let spans: Vec<Value> = got
        .iter()
        .filter(|(signal, _, _)| signal == "traces")
        .flat_map(|(_, _, body)| {
            body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|s| s["traceId"] == CALLER_TRACE)
        .collect();
    let root = root(&spans);
    let wait = named(&spans, "approval_wait");
    assert_eq!(wait.len(), 1, "{spans:#?}");
    assert_eq!(wait[0]["parentSpanId"], root["spanId"]);
    assert_eq!(attr(wait[0], "mcp_edge.approval.outcome"), s("approved"));
    assert_eq!(attr(wait[0], "mcp_edge.approval.channel"), s("elicitation"));
    // The call forwarded after the approval is an attempt in the same trace.
    assert!(spans
        .iter()
        .any(|s| s["kind"] == 3 && s["name"] == "tools/call delete"));
}
