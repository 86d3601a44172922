//! SECURITY.md, other callers and hostile pages: who a caller is cannot be
//! borrowed, widened or guessed, and what grants access is never skipped.
//! Issue 9, items 2 (fail closed), 5 (DNS rebinding), 6 (token audiences),
//! 7 (requests smuggled as notifications), 8 (identities), 9 (team limits),
//! 10 (session creation) and 11 (own request ids, `PUBLIC_URL` warning).

mod support;

use base64::Engine;
use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::jwt::{keys, now, public, sign};
use support::{initialize, Harness, Reply};

const ISS: &str = "https://id.test";

/// `alpha` (echo), one trusted issuer, an API key `alice` and a policy
/// (everyone allowed; `limits` as given).
fn harness(limits: Value) -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let alpha = h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
    let jwks = json!({"keys": [public("ec")]});
    h.p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": ISS, "jwks": jwks}).to_string(),
    );
    h.api_key("mk_alice", json!({"subject": "alice"}));
    let policy = json!({
        "rules": [
            {"name": "all", "effect": "allow", "subjects": {"everyone": true}},
            {"name": "no-echo-for-mallory", "effect": "deny", "subjects": {"service_accounts": ["mallory"]}}
        ],
        "limits": limits
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, alpha)
}

fn jwt(sub: &str, aud: &str) -> String {
    let claims = json!({"iss": ISS, "aud": aud, "sub": sub, "exp": now() + 600});
    format!("Bearer {}", sign("ec", Some("ec-1"), claims))
}

/// Initializes `path` with `credential` (a header pair) and calls `echo`.
async fn call_echo(h: &Harness, path: &str, credential: (&str, &str)) -> (Reply, String) {
    let r = h
        .post(path, &initialize(1, "2025-06-18"), &[credential])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sid = r.header("mcp-session-id").unwrap();
    let name = if path == "/mcp" {
        "alpha__echo"
    } else {
        "echo"
    };
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name": name,"arguments":{"text":"hi"}}});
    (
        h.post(path, &call, &[credential, ("mcp-session-id", &sid)])
            .await,
        sid,
    )
}

#[tokio::test]
async fn what_grants_access_cannot_be_loaded_so_the_request_is_refused() {
    for prefix in ["policy", "servers/", "auth/apikeys/"] {
        let (h, alpha) = harness(json!([]));
        h.p.kv.fail_reads(Some(prefix));
        let r = h.post("/mcp", &initialize(1, "2025-06-18"), &[]).await;
        let (code, message) = r.error(503);
        assert_eq!(code, -32603);
        assert!(
            message.contains("Service unavailable"),
            "{prefix}: {message}"
        );
        assert_eq!(alpha.seen().len(), 0);
    }
    let (h, _) = harness(json!([]));
    h.p.kv.fail_reads(Some("auth/issuers/"));
    let bearer = jwt("alice", "http://gw.test/mcp");
    let r = h
        .post(
            "/mcp",
            &initialize(1, "2025-06-18"),
            &[("authorization", &bearer)],
        )
        .await;
    r.error(503);
}

#[tokio::test]
async fn a_warm_instance_keeps_the_policy_it_read_when_kv_fails() {
    let (h, _) = harness(json!([]));
    h.api_key("mk_mallory", json!({"subject": "mallory"}));
    let refused = |r: &Reply| {
        r.response()["error"]["message"]
            .as_str()
            .map(str::to_string)
    };
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_mallory")).await;
    assert!(refused(&r).unwrap().contains("Unknown tool"), "{}", r.text);
    h.p.kv.fail_reads(Some("policy"));
    h.gw.reload_config();
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_mallory")).await;
    assert!(
        refused(&r).unwrap().contains("Unknown tool"),
        "still governed: {}",
        r.text
    );
}

#[tokio::test]
async fn a_rebinding_page_is_refused_and_only_configured_origins_pass() {
    let (h, _) = harness(json!([]));
    let rebound = [
        ("host", "evil.test:8787"),
        ("origin", "http://evil.test:8787"),
    ];
    let mut req = Harness::post_request(
        "/mcp",
        initialize(1, "2025-06-18").to_string().into_bytes(),
        &[],
    );
    for (k, v) in rebound {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    let (_, message) = h.send(req).await.error(403);
    assert!(message.contains("evil.test"), "{message}");
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "PUBLIC_URL",
            "https://mcp.corp.example",
        ))),
        ..h
    };
    let own = [("origin", "https://mcp.corp.example")];
    assert_eq!(
        h.post("/mcp", &initialize(1, "2025-06-18"), &own)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_token_for_one_server_does_not_open_another_after_being_cached() {
    let (h, _) = harness(json!([]));
    let bearer = jwt("alice", "http://gw.test/servers/alpha/mcp");
    let init = initialize(1, "2025-06-18");
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(h.post("/servers/alpha/mcp", &init, &auth).await.status, 200);
    let r = h.post("/mcp", &init, &auth).await;
    let (_, message) = r.error(401);
    assert!(message.contains("audience"), "{message}");
    assert_eq!(h.post("/servers/alpha/mcp", &init, &auth).await.status, 200);
}

#[tokio::test]
async fn a_request_without_an_id_is_not_forwarded_as_a_notification() {
    let (h, alpha) = harness(json!([]));
    for (path, name) in [("/servers/alpha/mcp", "echo"), ("/mcp", "alpha__echo")] {
        let c = h.connect(path).await;
        let smuggled =
            json!({"jsonrpc":"2.0","method":"tools/call","params":{"name": name,"arguments":{}}});
        let headers = [("mcp-session-id", c.session.as_str())];
        let (code, message) = h.post(path, &smuggled, &headers).await.error(400);
        assert_eq!(code, -32600);
        assert!(message.contains("needs an id"), "{message}");
    }
    assert_eq!(alpha.count("tools/call"), 0);
}

fn minted_claims(alpha: &MockServer) -> Vec<Value> {
    alpha
        .seen()
        .iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .map(|s| {
            let token = s.headers["authorization"]
                .to_str()
                .unwrap()
                .trim_start_matches("Bearer ");
            let payload = token.split('.').nth(1).unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        })
        .collect()
}

fn minting(h: &Harness) {
    let mut entry = h.raw_entry("alpha");
    entry["credentials"] = json!({"type": "jwt"});
    h.register("alpha", entry);
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        keys()["ec_gateway"].to_string(),
    );
}

#[tokio::test]
async fn an_api_key_and_a_jwt_with_one_subject_are_two_callers() {
    let one = json!([{"name": "one-each", "per": "principal", "requests": 1, "window_secs": 60}]);
    let (h, alpha) = harness(one);
    minting(&h);
    let bearer = jwt("alice", "http://gw.test/mcp");
    let (r, key_session) = call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    assert!(r.response().get("result").is_some(), "{}", r.text);
    let (r, _) = call_echo(&h, "/mcp", ("authorization", &bearer)).await;
    assert!(
        r.response().get("result").is_some(),
        "their own limit: {}",
        r.text
    );
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    assert_eq!(r.status, 429);
    let list = json!({"jsonrpc":"2.0","id":3,"method":"tools/list"});
    let borrowed = [
        ("authorization", bearer.as_str()),
        ("mcp-session-id", key_session.as_str()),
    ];
    assert_eq!(h.post("/mcp", &list, &borrowed).await.status, 404);
    let claims = minted_claims(&alpha);
    assert_eq!(claims[0]["sub"], "alice");
    assert_eq!(
        claims[0]["sub_id"],
        json!({"format": "opaque", "id": "apikey|alice"})
    );
    assert_eq!(
        claims[1]["sub_id"],
        json!({"format": "iss_sub", "iss": ISS, "sub": "alice"})
    );
}

#[tokio::test]
async fn anonymous_callers_are_told_apart_by_their_address() {
    let one = json!([{"name": "one-each", "per": "principal", "requests": 1, "window_secs": 60}]);
    let (h, _) = harness(one);
    let mut entry = h.raw_entry("alpha");
    entry["anonymous"] = json!(true);
    h.register("alpha", entry);
    let from = |addr: &'static str| [("x-no-credential", "1"), ("x-test-client-addr", addr)];
    let init = initialize(1, "2025-06-18");
    let r = h.post("/mcp", &init, &from("203.0.113.1")).await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{}}});
    let with = |addr: &'static str| {
        let mut h = from(addr).to_vec();
        h.push(("mcp-session-id", sid.as_str()));
        h
    };
    assert_eq!(
        h.post("/mcp", &call, &with("198.51.100.2")).await.status,
        404,
        "not their session"
    );
    assert!(h
        .post("/mcp", &call, &with("203.0.113.1"))
        .await
        .response()
        .get("result")
        .is_some());
    assert_eq!(
        h.post("/mcp", &call, &with("203.0.113.1")).await.status,
        429
    );
    let r = h.post("/mcp", &init, &from("198.51.100.2")).await;
    let other = r.header("mcp-session-id").unwrap();
    let mut headers = from("198.51.100.2").to_vec();
    headers.push(("mcp-session-id", other.as_str()));
    let r = h.post("/mcp", &call, &headers).await;
    assert!(
        r.response().get("result").is_some(),
        "a limit of their own: {}",
        r.text
    );
}

#[tokio::test]
async fn minted_tokens_are_reused_only_for_exactly_what_they_say() {
    let (h, alpha) = harness(json!([]));
    minting(&h);
    call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    h.api_key("mk_alice", json!({"subject": "alice", "teams": ["ops"]}));
    call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    // Another Host, no PUBLIC_URL: another issuer in the token.
    let r = h
        .post(
            "/mcp",
            &initialize(1, "2025-06-18"),
            &[("x-api-key", "mk_alice"), ("host", "127.0.0.1:8787")],
        )
        .await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha__echo","arguments":{}}});
    let headers = [
        ("x-api-key", "mk_alice"),
        ("host", "127.0.0.1:8787"),
        ("mcp-session-id", sid.as_str()),
    ];
    h.post("/mcp", &call, &headers).await;
    let claims = minted_claims(&alpha);
    assert_eq!(claims[0].get("teams"), None);
    assert_eq!(claims[1]["teams"], json!(["ops"]), "new teams, new token");
    assert_eq!(claims[1]["iss"], "http://gw.test");
    assert_eq!(
        claims[2]["iss"], "http://127.0.0.1:8787",
        "new issuer, new token"
    );
}

#[tokio::test]
async fn callers_without_teams_share_a_team_limit() {
    let team = json!([{"name": "team-daily", "per": "team", "daily": 1}]);
    let (h, _) = harness(team);
    h.api_key("mk_bob", json!({"subject": "bob"}));
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    assert!(r.response().get("result").is_some());
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    assert_eq!(r.status, 429, "no team is no exemption");
    let (r, _) = call_echo(&h, "/mcp", ("x-api-key", "mk_bob")).await;
    assert_eq!(r.status, 429, "team-less callers share one bucket");
    assert!(r.text.contains("team-daily"));
}

#[tokio::test]
async fn each_caller_opens_a_bounded_number_of_sessions() {
    let (h, _) = harness(json!([]));
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "SESSIONS_PER_MINUTE",
            "3",
        ))),
        ..h
    };
    let init = initialize(1, "2025-06-18");
    for _ in 0..3 {
        assert_eq!(h.post("/mcp", &init, &[]).await.status, 200);
    }
    let r = h.post("/mcp", &init, &[]).await;
    let (code, message) = r.error(429);
    assert_eq!(code, -32029);
    assert!(message.contains("sessions-per-minute"), "{message}");
    assert!(r.header("retry-after").is_some());
    let other = [("x-api-key", "mk_alice")];
    assert_eq!(
        h.post("/mcp", &init, &other).await.status,
        200,
        "per caller"
    );
}

#[tokio::test]
async fn the_gateways_own_upstream_requests_carry_unguessable_ids() {
    let (h, alpha) = harness(json!([]));
    for _ in 0..2 {
        call_echo(&h, "/mcp", ("x-api-key", "mk_alice")).await;
    }
    let ids: Vec<String> = alpha
        .seen()
        .iter()
        .filter(|s| s.rpc_method.as_deref() == Some("initialize"))
        .map(|s| s.body["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(
        ids.iter()
            .all(|i| i.starts_with("mcp-edge-") && i.len() > 40),
        "{ids:?}"
    );
}

#[tokio::test]
async fn serving_a_public_host_without_public_url_is_warned_about() {
    let (h, _) = harness(json!([]));
    let init = initialize(1, "2025-06-18");
    h.post("/mcp", &init, &[("host", "127.0.0.1:8787")]).await;
    assert!(!h.gw.warned_about_public_url(), "loopback is fine");
    h.post("/mcp", &init, &[("host", "mcp.corp.example")]).await;
    assert!(h.gw.warned_about_public_url());
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "PUBLIC_URL",
            "https://mcp.corp.example",
        ))),
        ..h
    };
    h.post("/mcp", &init, &[("host", "mcp.corp.example")]).await;
    assert!(!h.gw.warned_about_public_url());
}
