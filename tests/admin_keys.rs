//! The admin API's API keys (shown once, revoked at once, never rewritten),
//! the policy (dry run, a change hiding a tool), usage, and what the API
//! refuses to do.

mod support;

use serde_json::json;
use support::admin::*;

#[tokio::test]
async fn api_keys_are_shown_once_listed_by_hash_prefix_and_revoked_at_once() {
    let (h, _) = setup();
    let body = json!({"subject": "ci-bot", "teams": ["platform"], "scopes": ["mcp:tools"]});
    let created = call(&h, "POST", "/admin/apikeys", Some(&body), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let answer = created.json();
    let key = answer["key"].as_str().unwrap().to_string();
    let id = answer["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("mk_") && key.len() > 40);
    assert_eq!(id.len(), 16);
    let hash = mcp_edge::identity::sha256_hex(key.as_bytes());
    assert!(hash.starts_with(&id));
    let stored = h.p.kv.value(&format!("auth/apikeys/{hash}")).unwrap();
    assert!(!stored.contains(&key), "the key itself is never stored");

    // It works, and the listing never shows it again.
    let registry = h.send(request("GET", "/registry", &key, None, &[])).await;
    assert_eq!(registry.status, 200, "{}", registry.text);
    let listed = call(&h, "GET", "/admin/apikeys", None, &[]).await;
    assert!(!listed.text.contains(&key) && !listed.text.contains(&hash));
    let mine = listed.json()["apikeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(mine["subject"], "ci-bot");

    let short = call(&h, "DELETE", "/admin/apikeys/abc", None, &[]).await;
    assert_eq!(short.status, 400, "a short prefix names nothing");
    let revoked = call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.json()["document"]["revoked"], true);
    let refused = h.send(request("GET", "/registry", &key, None, &[])).await;
    assert_eq!(
        refused.status, 401,
        "revoked at once on this instance: {}",
        refused.text
    );
    let versions = get(&h, &format!("/admin/apikeys/{id}/versions")).await;
    assert_eq!(versions["versions"][0]["action"], "revoke");
    assert_eq!(
        call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[])
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn a_policy_change_hides_a_tool_and_its_dry_run_said_so() {
    let (h, _) = setup();
    assert_eq!(tool_names(&h, ALICE).await, ["alpha__add", "alpha__echo"]);
    let tighter = json!({"rules": [
        {"name": "all", "effect": "allow", "subjects": {"everyone": true}},
        {"name": "no-add-for-eng", "effect": "deny", "subjects": {"teams": ["eng"]}, "tools": ["add"]}]});
    let dry = call(&h, "POST", "/admin/policy/dry-run", Some(&tighter), &[]).await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let dry = dry.json();
    let alice = dry["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == "apikey|alice")
        .cloned();
    assert_eq!(alice.unwrap()["loses"], json!(["alpha__add"]), "{dry}");
    assert_eq!(
        dry["teams"],
        json!([{"team": "eng", "gains": [], "loses": ["alpha__add"]}])
    );
    assert_eq!(dry["tools"][0]["tool"], "alpha__add");
    assert!(dry["principals"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["principal"] != "apikey|root"));
    assert_eq!(
        tool_names(&h, ALICE).await,
        ["alpha__add", "alpha__echo"],
        "a dry run changes nothing"
    );

    let bad_dry = call(
        &h,
        "POST",
        "/admin/policy/dry-run",
        Some(&json!({"rules": 1})),
        &[],
    )
    .await;
    assert_eq!(bad(&bad_dry).0, "policy");

    let current = get(&h, "/admin/policy").await;
    assert_eq!(current["version"], 0);
    let put = call(
        &h,
        "PUT",
        "/admin/policy",
        Some(&tighter),
        &[("if-match", "0")],
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(
        tool_names(&h, ALICE).await,
        ["alpha__echo"],
        "hidden at once"
    );
    let found = h
        .send(request("GET", "/registry/alpha", ALICE, None, &[]))
        .await
        .json();
    assert_eq!(found["tools"].as_array().unwrap().len(), 1);

    let back = call(
        &h,
        "POST",
        "/admin/policy/rollback",
        Some(&json!({"version": 0})),
        &[("if-match", "1")],
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(tool_names(&h, ALICE).await, ["alpha__add", "alpha__echo"]);
}

#[tokio::test]
async fn usage_is_summed_by_team_principal_server_or_tool_over_days() {
    use mcp_edge::ports::{Usage, UsageCount, UsageKey};
    let (h, _) = setup();
    let row = |team: &str, principal: &str, server: &str, tool: &str| UsageKey {
        team: team.into(),
        principal: principal.into(),
        server: server.into(),
        tool: tool.into(),
    };
    let n = |calls, errors| UsageCount {
        calls,
        errors,
        upstream_ms: calls * 10,
        ..Default::default()
    };
    let rows_added = [
        (
            "2026-01-01",
            row("eng,ops", "apikey|alice", "alpha", "echo"),
            n(3, 1),
        ),
        (
            "2026-01-02",
            row("eng", "apikey|bob", "alpha", "add"),
            n(2, 0),
        ),
        (
            "2026-01-02",
            row("", "jwt:x|carol", "beta", "echo"),
            n(1, 0),
        ),
        (
            "2026-01-05",
            row("eng", "apikey|bob", "alpha", "add"),
            n(50, 0),
        ),
    ];
    for (day, key, count) in &rows_added {
        h.p.usage.add(day, key, count).await.unwrap();
    }
    let rows = |query: &str| {
        let h = &h;
        let query = query.to_string();
        async move {
            let reply = call(h, "GET", &format!("/admin/usage?{query}"), None, &[]).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.json()["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["key"].as_str().unwrap().to_string(),
                        r["calls"].as_u64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let days = "from=2026-01-01&to=2026-01-02";
    let s = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(k, c)| (k.to_string(), *c))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rows(&format!("{days}&by=team")).await,
        s(&[("eng", 5), ("ops", 3), ("(none)", 1)])
    );
    assert_eq!(
        rows(&format!("{days}&by=principal")).await,
        s(&[("apikey|alice", 3), ("apikey|bob", 2), ("jwt:x|carol", 1)])
    );
    assert_eq!(
        rows(&format!("{days}&by=server")).await,
        s(&[("alpha", 5), ("beta", 1)])
    );
    assert_eq!(
        rows(&format!("{days}&by=tool")).await,
        s(&[("alpha__echo", 3), ("alpha__add", 2), ("beta__echo", 1)])
    );
    assert_eq!(
        rows("from=2026-01-05&to=2026-01-05").await,
        s(&[("alpha", 50)])
    );
    let full = get(&h, &format!("/admin/usage?{days}")).await;
    assert_eq!(
        full["rows"][0],
        json!({"key": "alpha", "calls": 5, "errors": 1, "upstream_ms": 50})
    );
    assert_eq!(
        (
            full["from"].as_str(),
            full["to"].as_str(),
            full["by"].as_str()
        ),
        (Some("2026-01-01"), Some("2026-01-02"), Some("server"))
    );
    for bad in [
        "by=colour",
        "from=yesterday",
        "from=2026-01-03&to=2026-01-01",
        "from=2026-01-01&to=2026-03-01",
        "limit=3",
    ] {
        let reply = call(&h, "GET", &format!("/admin/usage?{bad}"), None, &[]).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
    let alice = h
        .send(request("GET", "/admin/usage", ALICE, None, &[]))
        .await;
    assert_eq!(alice.status, 403);
}

#[tokio::test]
async fn what_the_api_refuses_to_do() {
    let (h, _) = setup();
    // No document may send the gateway's own secrets anywhere.
    let mut leak = server_doc("http://evil.test/mcp");
    leak["credentials"] =
        json!({"type": "header", "header": "x-leak", "secret": "upstream_signing_key"});
    let (_, why) = bad(&call(&h, "PUT", "/admin/servers/evil", Some(&leak), &[]).await);
    assert!(why.contains("gateway's own"), "{why}");
    let issuer = json!({"issuer": "https://i.test", "algorithms": ["HS256"], "hs256_secret": "OTEL_EXPORTER_OTLP_HEADERS"});
    let (_, why) = bad(&call(&h, "PUT", "/admin/issuers/i", Some(&issuer), &[]).await);
    assert!(why.contains("gateway's own"), "{why}");

    // The policy is never deleted (that would open everything).
    let current = get(&h, "/admin/policy").await;
    let gone = call(&h, "DELETE", "/admin/policy", None, &[("if-match", "0")]).await;
    assert_eq!(gone.status, 409, "{}", gone.text);
    assert_eq!(get(&h, "/admin/policy").await, current);

    // An API key's record is not rewritten, nor rolled back past its revocation.
    let body = json!({"subject": "bot"});
    let id = call(&h, "POST", "/admin/apikeys", Some(&body), &[])
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let unrevoke = json!({"subject": "bot", "roles": ["platform-admin"]});
    let put = call(
        &h,
        "PUT",
        &format!("/admin/apikeys/{id}"),
        Some(&unrevoke),
        &[],
    )
    .await;
    assert_eq!(put.status, 405);
    assert_eq!(
        call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[])
            .await
            .status,
        200
    );
    let back = call(
        &h,
        "POST",
        &format!("/admin/apikeys/{id}/rollback"),
        Some(&json!({"version": 1})),
        &[("if-match", "2")],
    )
    .await;
    assert_eq!(back.status, 409, "{}", back.text);
    let versions = call(
        &h,
        "GET",
        &format!("/admin/apikeys/{id}/versions"),
        None,
        &[],
    )
    .await;
    assert_eq!(
        versions.json()["id"],
        id.as_str(),
        "only the hash's first digits are shown"
    );
}
