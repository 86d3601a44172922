//! Governance on the memory adapter: access policies at the gateway (what a
//! caller may not use is invisible), and policy reloads.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{initialize, Harness};

/// `dev` server `notes` (echo, drop_table), `prod` server `db` (query), and
/// callers: alice (team eng), bob (role sre), the harness key (tester, team qa).
fn harness(policy: Value) -> Harness {
    let h = Harness::new();
    h.add(
        "notes",
        MockServer::new("notes").tools(&["echo", "drop_table"]),
        &["us"],
    );
    h.add("db", MockServer::new("db").tools(&["query"]), &["us"]);
    let mut db = h.raw_entry("db");
    db["group"] = json!("prod");
    h.register("db", db);
    let mut notes = h.raw_entry("notes");
    notes["group"] = json!("dev");
    h.register("notes", notes);
    h.api_key("mk_alice", json!({"subject": "alice", "teams": ["eng"]}));
    h.api_key("mk_bob", json!({"subject": "bob", "roles": ["sre"]}));
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    h
}

fn policy() -> Value {
    json!({"rules": [
        {"name": "eng-dev", "effect": "allow", "subjects": {"teams": ["eng"]}, "groups": ["dev"]},
        {"name": "sre-all", "effect": "allow", "subjects": {"roles": ["sre"]}},
        {"name": "no-drops", "effect": "deny", "subjects": {"everyone": true}, "tools": ["drop_*"]}
    ]})
}

/// Tool names `key` sees on `path`.
async fn tools(h: &Harness, path: &str, key: &str) -> Result<Vec<String>, u16> {
    let r = h
        .post(path, &initialize(1, "2025-06-18"), &[("x-api-key", key)])
        .await;
    if r.status != 200 {
        return Err(r.status);
    }
    let sid = r.header("mcp-session-id").unwrap();
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let r = h
        .post(path, &list, &[("x-api-key", key), ("mcp-session-id", &sid)])
        .await;
    Ok(r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect())
}

async fn call(h: &Harness, path: &str, key: &str, tool: &str) -> Value {
    let r = h
        .post(path, &initialize(1, "2025-06-18"), &[("x-api-key", key)])
        .await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name": tool, "arguments": {}}});
    h.post(path, &call, &[("x-api-key", key), ("mcp-session-id", &sid)])
        .await
        .response()
}

#[tokio::test]
async fn what_a_caller_may_not_use_is_invisible_in_lists() {
    let h = harness(policy());
    assert_eq!(
        tools(&h, "/mcp", "mk_alice").await.unwrap(),
        ["notes__echo"],
        "dev only, no drops"
    );
    assert_eq!(
        tools(&h, "/mcp", "mk_bob").await.unwrap(),
        ["db__query", "notes__echo"]
    );
    assert_eq!(
        tools(&h, "/mcp", support::API_KEY).await.unwrap(),
        Vec::<String>::new(),
        "default deny"
    );
    assert_eq!(
        tools(&h, "/servers/notes/mcp", "mk_alice").await.unwrap(),
        ["echo"]
    );
}

#[tokio::test]
async fn what_a_caller_may_not_use_is_unknown_when_called() {
    let h = harness(policy());
    let resp = call(&h, "/mcp", "mk_alice", "notes__drop_table").await;
    assert_eq!(resp["error"]["code"], -32602);
    assert_eq!(
        resp["error"]["message"],
        "Invalid params: Unknown tool: notes__drop_table"
    );
    let resp = call(&h, "/mcp", "mk_alice", "db__query").await;
    assert_eq!(
        resp["error"]["message"], "Invalid params: Unknown tool: db__query",
        "a hidden server's tools are unknown"
    );
    let resp = call(&h, "/servers/notes/mcp", "mk_alice", "drop_table").await;
    assert_eq!(
        resp["error"]["message"],
        "Invalid params: Unknown tool: drop_table"
    );
    assert_eq!(
        call(&h, "/mcp", "mk_alice", "notes__echo").await["result"]["content"][0]["text"],
        ""
    );
    // A server the caller may not see does not exist for it.
    let r = h
        .post(
            "/servers/db/mcp",
            &initialize(1, "2025-06-18"),
            &[("x-api-key", "mk_alice")],
        )
        .await;
    assert_eq!(r.error(404).1, "Unknown server 'db'");
}

#[tokio::test]
async fn a_bad_policy_document_is_rejected_and_the_last_good_one_stays() {
    let h = harness(policy());
    assert_eq!(
        tools(&h, "/mcp", "mk_alice").await.unwrap(),
        ["notes__echo"]
    );
    // An edit with a typo: rejected as a whole; alice keeps exactly what she had.
    let mut bad = policy();
    bad["rules"][0]["effect"] = json!("permit");
    bad["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"effect": "allow", "subjects": {"everyone": true}}));
    h.p.kv.put("policy", &bad.to_string());
    h.gw.reload_config();
    assert_eq!(
        tools(&h, "/mcp", "mk_alice").await.unwrap(),
        ["notes__echo"]
    );
    // A good edit takes effect.
    let mut good = policy();
    good["rules"][0]["groups"] = json!(["dev", "prod"]);
    h.p.kv.put("policy", &good.to_string());
    h.gw.reload_config();
    assert_eq!(
        tools(&h, "/mcp", "mk_alice").await.unwrap(),
        ["db__query", "notes__echo"]
    );
}

#[tokio::test]
async fn a_first_policy_that_does_not_parse_opens_nothing() {
    let h = harness(json!({"rules": [{"effect": "allow", "subjects": {}}]}));
    assert_eq!(
        tools(&h, "/mcp", "mk_bob").await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn without_a_policy_every_authenticated_caller_sees_everything() {
    let h = harness(policy());
    h.p.kv.delete("policy");
    h.gw.reload_config();
    let mut all = tools(&h, "/mcp", support::API_KEY).await.unwrap();
    all.sort();
    assert_eq!(all, ["db__query", "notes__drop_table", "notes__echo"]);
}

/// A policy that lets everyone use everything, plus `limits`.
fn limited(limits: Value) -> Harness {
    let everyone =
        json!({"rules": [{"effect": "allow", "subjects": {"everyone": true}}], "limits": limits});
    harness(everyone)
}

/// Calls `tool` `n` times on one session of `key`; returns the HTTP statuses.
async fn burst(h: &Harness, key: &str, tool: &str, n: usize) -> Vec<support::Reply> {
    let r = h
        .post("/mcp", &initialize(1, "2025-06-18"), &[("x-api-key", key)])
        .await;
    let sid = r.header("mcp-session-id").unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let call = json!({"jsonrpc":"2.0","id": 10 + i,"method":"tools/call","params":{"name": tool, "arguments": {}}});
        out.push(
            h.post(
                "/mcp",
                &call,
                &[("x-api-key", key), ("mcp-session-id", &sid)],
            )
            .await,
        );
    }
    out
}

fn statuses(replies: &[support::Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

#[tokio::test(start_paused = true)]
async fn a_tool_limit_allows_exactly_n_per_window_then_429() {
    let h = limited(
        json!([{"name": "echo-burst", "per": "tool", "tools": ["echo"], "requests": 3, "window_secs": 60}]),
    );
    let replies = burst(&h, "mk_alice", "notes__echo", 5).await;
    assert_eq!(statuses(&replies), [200, 200, 200, 429, 429]);
    let (code, msg) = replies[3].error(429);
    assert_eq!(code, -32029);
    assert_eq!(msg, "Rate limit 'echo-burst' exceeded; retry after 20 s");
    assert_eq!(replies[3].header("retry-after").as_deref(), Some("20"));
    // Per tool: bob shares the counter; another tool does not.
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "notes__echo", 1).await),
        [429]
    );
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "db__query", 2).await),
        [200, 200]
    );
    // Capacity comes back at the rate.
    tokio::time::advance(std::time::Duration::from_secs(20)).await;
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "notes__echo", 2).await),
        [200, 429]
    );
}

#[tokio::test(start_paused = true)]
async fn principal_and_team_limits_count_per_caller() {
    let h = limited(json!([
        {"name": "per-user", "per": "principal", "requests": 2, "window_secs": 10},
        {"name": "eng-team", "per": "team", "requests": 3, "window_secs": 10}
    ]));
    h.api_key("mk_carol", json!({"subject": "carol", "teams": ["eng"]}));
    assert_eq!(
        statuses(&burst(&h, "mk_alice", "notes__echo", 3).await),
        [200, 200, 429]
    );
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "notes__echo", 2).await),
        [200, 200],
        "bob has his own counter"
    );
    // carol is in eng too: the team has one call left of its 3.
    let r = burst(&h, "mk_carol", "notes__echo", 2).await;
    assert_eq!(statuses(&r), [200, 429]);
    assert!(r[1].error(429).1.contains("'eng-team'"));
}

/// Issue 14: a call's counters are checked at once (one Durable Object
/// round trip on Workers, not one per limit), and a call refused by one
/// limit, even the last in policy order, leaves the others as they were.
#[tokio::test(start_paused = true)]
async fn all_limits_are_checked_at_once_and_a_refusal_gives_the_others_back() {
    let h = limited(json!([
        {"name": "per-user", "per": "principal", "requests": 5, "window_secs": 60},
        {"name": "eng-team", "per": "team", "requests": 5, "window_secs": 60},
        {"name": "echo-once", "per": "tool", "tools": ["echo"], "requests": 1, "window_secs": 60}
    ]));
    let r = burst(&h, "mk_alice", "notes__echo", 3).await;
    assert_eq!(statuses(&r), [200, 429, 429]);
    assert!(r[1].error(429).1.contains("'echo-once'"));
    assert_eq!(h.p.limiter.most_at_once(), 3, "three limits, one round");
    // Only the allowed echo counted against alice and her team: 4 of 5 left.
    let r = burst(&h, "mk_alice", "db__query", 5).await;
    assert_eq!(statuses(&r), [200, 200, 200, 200, 429]);
    assert!(r[4].error(429).1.contains("'per-user'"));
}

/// Issue 14: the limits a call has on one subject share a home, so however
/// many there are, the call asks them in one round trip (one Durable Object
/// on Workers), and one refusing takes nothing from the others.
#[tokio::test(start_paused = true)]
async fn limits_on_one_subject_are_one_round_trip_that_takes_all_or_nothing() {
    let h = limited(json!([
        {"name": "per-minute", "per": "principal", "requests": 3, "window_secs": 60},
        {"name": "per-day", "per": "principal", "daily": 100},
        {"name": "echo-twice", "per": "principal", "tools": ["echo"], "requests": 2, "window_secs": 60}
    ]));
    let asked = h.p.limiter.checks();
    let r = burst(&h, "mk_alice", "notes__echo", 3).await;
    assert_eq!(statuses(&r), [200, 200, 429]);
    assert!(r[2].error(429).1.contains("'echo-twice'"));
    // The session's opening (its own counter), then one round trip a call.
    assert_eq!(
        h.p.limiter.checks(),
        asked + 1 + 3,
        "one round trip per call"
    );
    assert_eq!(h.p.limiter.most_at_once(), 1);
    // The refused echo took nothing from per-minute: one call of 3 is left.
    let r = burst(&h, "mk_alice", "db__query", 2).await;
    assert_eq!(statuses(&r), [200, 429]);
    assert!(r[1].error(429).1.contains("'per-minute'"));
}

/// A counter that refused is not asked again until its Retry-After: calls
/// meanwhile are refused without a round trip, counting nothing.
#[tokio::test(start_paused = true)]
async fn a_refusing_limit_is_remembered_until_its_retry_after() {
    let h = limited(json!([
        {"name": "per-user", "per": "principal", "requests": 2, "window_secs": 10}
    ]));
    assert_eq!(
        statuses(&burst(&h, "mk_alice", "notes__echo", 3).await),
        [200, 200, 429]
    );
    let asked = h.p.limiter.checks();
    let r = burst(&h, "mk_alice", "notes__echo", 4).await;
    assert_eq!(statuses(&r), [429, 429, 429, 429]);
    // One check: the session's opening (its own limit, initialize.rs).
    assert_eq!(h.p.limiter.checks(), asked + 1, "no call's counter asked");
    assert!(r[3].error(429).1.contains("'per-user'"));
    assert_eq!(r[3].header("retry-after").as_deref(), Some("5"));
    // Others are not refused for alice's limit.
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "notes__echo", 1).await),
        [200]
    );
    // Past the Retry-After, the counter decides again.
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    assert_eq!(
        statuses(&burst(&h, "mk_alice", "notes__echo", 2).await),
        [200, 429]
    );
    // Bob's opening and call, alice's opening and two calls.
    assert_eq!(h.p.limiter.checks(), asked + 1 + 2 + 3);
}

#[tokio::test(start_paused = true)]
async fn server_limits_and_daily_quotas() {
    let h = limited(json!([
        {"name": "db-rate", "per": "server", "servers": ["db"], "requests": 1, "window_secs": 1},
        {"name": "notes-daily", "per": "server", "servers": ["notes"], "daily": 2}
    ]));
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "db__query", 2).await),
        [200, 429]
    );
    let r = burst(&h, "mk_bob", "notes__echo", 3).await;
    assert_eq!(statuses(&r), [200, 200, 429]);
    let retry: u64 = r[2].header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400, "until midnight UTC: {retry}");
    tokio::time::advance(std::time::Duration::from_secs(retry)).await;
    assert_eq!(
        statuses(&burst(&h, "mk_bob", "notes__echo", 1).await),
        [200],
        "a new day"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_never_reaches_the_upstream() {
    let h = Harness::new();
    let s = h.add("notes", MockServer::new("notes").tools(&["echo"]), &["us"]);
    let policy = json!({"rules": [{"effect": "allow", "subjects": {"everyone": true}}],
        "limits": [{"name": "one", "per": "tool", "requests": 1, "window_secs": 60}]});
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    let r = burst(&h, support::API_KEY, "notes__echo", 3).await;
    assert_eq!(statuses(&r), [200, 429, 429]);
    assert_eq!(s.count("tools/call"), 1);
    // The per-server endpoint enforces the same limits.
    let r = h
        .post("/servers/notes/mcp", &initialize(1, "2025-06-18"), &[])
        .await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}});
    assert_eq!(
        h.post("/servers/notes/mcp", &call, &[("mcp-session-id", &sid)])
            .await
            .status,
        429
    );
    assert_eq!(s.count("tools/call"), 1);
}

fn redacting(sse: bool) -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::new();
    let mock = MockServer::new("hr")
        .tools(&["leak", "echo"])
        .resources(&["hr://pii", "hr://plain"]);
    let s = h.add("hr", if sse { mock.sse() } else { mock }, &["us"]);
    h.add("other", MockServer::new("other").tools(&["leak"]), &["us"]);
    let policy = json!({"rules": [{"effect": "allow", "subjects": {"everyone": true}}],
        "redact": [{"servers": ["hr"]}]});
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, s)
}

#[tokio::test]
async fn personal_data_is_redacted_from_results_field_by_field() {
    for sse in [false, true] {
        let (h, _) = redacting(sse);
        let mut c = h.connect("/mcp").await;
        let r = c
            .result("tools/call", json!({"name": "hr__leak", "arguments": {}}))
            .await;
        assert_eq!(
            r["content"][0]["text"], "mail [EMAIL], card [CARD]",
            "sse={sse}"
        );
        assert_eq!(
            r["structuredContent"],
            json!({"email": "[EMAIL]", "ssn": "[SSN]", "age": 41})
        );
        let other = c
            .result(
                "tools/call",
                json!({"name": "other__leak", "arguments": {}}),
            )
            .await;
        assert_eq!(
            other["structuredContent"]["email"], "bob@corp.example",
            "only where the policy asks"
        );
        let read = c.result("resources/read", json!({"uri": "hr://pii"})).await;
        assert_eq!(
            read["contents"][0]["text"],
            "hr holds hr://pii: call [PHONE]"
        );
        let mut direct = h.connect("/servers/hr/mcp").await;
        let r = direct
            .result("tools/call", json!({"name": "leak", "arguments": {}}))
            .await;
        assert_eq!(
            r["structuredContent"]["ssn"], "[SSN]",
            "the per-server endpoint redacts too"
        );
        let read = direct
            .result("resources/read", json!({"uri": "hr://pii"}))
            .await;
        assert_eq!(
            read["contents"][0]["text"],
            "hr holds hr://pii: call [PHONE]"
        );
    }
}

/// Concurrent first calls to a server share one listing of its tools (the
/// catalog argument validation reads): the others wait their turn and take
/// the listing made meanwhile. They wait on their own timers (a request on
/// Workers must not wait on another's work, catalog/mod.rs), which slows
/// them by a few milliseconds at most: 16 at once take as long as one alone.
#[tokio::test(start_paused = true)]
async fn concurrent_first_calls_share_one_listing() {
    async fn first_calls(n: i64) -> (std::time::Duration, usize) {
        let h = Harness::new();
        let s = h.add(
            "slow",
            MockServer::new("slow")
                .tools(&["echo"])
                .modern()
                .delay_ms(200),
            &["us"],
        );
        let started = tokio::time::Instant::now();
        let calls = (0..n)
            .map(|i| support::modern_call(&h, ("/mcp", i, "slow__echo"), json!({}), json!({})));
        let replies = futures_util::future::join_all(calls).await;
        assert!(
            replies.iter().all(|r| r.status == 200),
            "every call answered"
        );
        assert_eq!(s.count("tools/call"), n as usize);
        (started.elapsed(), s.count("tools/list"))
    }
    let (alone, _) = first_calls(1).await;
    let (together, listings) = first_calls(16).await;
    assert_eq!(listings, 1, "one listing for all");
    assert!(
        together <= alone + std::time::Duration::from_millis(20),
        "16 at once: {together:?}, one alone: {alone:?}"
    );
}

/// A limiter that keeps counts by key and fails on one key: what
/// `ports::check_in_turn` (Spin's `check_together`) does around it.
#[derive(Default)]
struct FailingOn(
    std::cell::RefCell<std::collections::HashMap<String, u64>>,
    &'static str,
);

impl mcp_edge::ports::Limiter for FailingOn {
    async fn check(
        &self,
        key: &str,
        quota: mcp_edge::governance::gcra::Quota,
        cost: u64,
        _now: u64,
    ) -> Result<mcp_edge::governance::gcra::Decision, mcp_edge::ports::PortError> {
        use mcp_edge::governance::gcra::{Decision, Quota};
        if key == self.1 {
            return Err(mcp_edge::ports::PortError("down".into()));
        }
        let Quota::Daily(limit) = quota else {
            unreachable!()
        };
        let mut counts = self.0.borrow_mut();
        let n = counts.entry(key.to_string()).or_default();
        if *n + cost > limit {
            return Ok(Decision::Deny { retry_after_ms: 1 });
        }
        *n += cost;
        Ok(Decision::Allow)
    }
    async fn check_together(
        &self,
        home: &str,
        takes: &[mcp_edge::ports::Take<'_>],
        now: u64,
    ) -> Result<Vec<mcp_edge::governance::gcra::Decision>, mcp_edge::ports::PortError> {
        mcp_edge::ports::check_in_turn(self, home, takes, now).await
    }
    async fn charge(
        &self,
        _: &str,
        _: &mcp_edge::ports::Take<'_>,
        _: u64,
    ) -> Result<(), mcp_edge::ports::PortError> {
        unreachable!()
    }
    async fn release(
        &self,
        _: &str,
        t: &mcp_edge::ports::Take<'_>,
        _: u64,
    ) -> Result<(), mcp_edge::ports::PortError> {
        *self.0.borrow_mut().get_mut(t.key).unwrap() -= t.cost;
        Ok(())
    }
}

/// Limits checked one after another (Spin): a refusal or an error gives
/// back what the counters before it took, and the answers stop there.
#[tokio::test]
async fn counters_checked_in_turn_give_back_on_a_refusal_or_an_error() {
    use mcp_edge::governance::gcra::{Decision, Quota};
    use mcp_edge::ports::{Limiter, Take};
    let take = |key, limit| Take {
        key,
        quota: Quota::Daily(limit),
        cost: 1,
    };
    let l = FailingOn(Default::default(), "down");
    let takes = [take("a", 5), take("b", 1), take("c", 5)];
    let first = l.check_together("h", &takes, 0).await.unwrap();
    assert_eq!(first, [Decision::Allow; 3]);
    let second = l.check_together("h", &takes, 0).await.unwrap();
    assert_eq!(second.len(), 2, "stops at b's refusal: {second:?}");
    assert!(matches!(second[1], Decision::Deny { .. }));
    assert_eq!(l.0.borrow()["a"], 1, "a's unit given back");
    assert_eq!(l.0.borrow()["c"], 1, "c not asked");
    let failing = [take("a", 5), take("down", 5)];
    assert!(l.check_together("h", &failing, 0).await.is_err());
    assert_eq!(l.0.borrow()["a"], 1, "a's unit given back on an error");
}
