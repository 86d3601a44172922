//! The admin API (`/admin/...`) on the memory adapter: who may use it,
//! documents checked by the gateway's own parsers, versions, rollback,
//! `If-Match`, API keys, the policy and its dry run; and that what it
//! writes is what callers then get (discovery, `/mcp`).

mod support;

use mcp_edge::adapters::memory::MockServer;
use mcp_edge::gateway::{Gateway, RequestMeta};
use serde_json::{json, Value};
use support::{modern_request, setting, Harness, Reply};

const ADMIN: &str = "mk_admin";
const ALICE: &str = "mk_alice";

fn request(
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> http::Request<Vec<u8>> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("x-api-key", key);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    req.body(body).unwrap()
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> Reply {
    h.send(request(method, path, ADMIN, body, extra)).await
}

/// Alpha (echo, add) registered as seeded; an admin (role `platform-admin`)
/// and alice (team eng); a policy letting everyone use everything.
fn setup() -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::with_var("ADMIN_ROLE", "platform-admin");
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo", "add"]),
        &["us"],
    );
    h.api_key(
        ADMIN,
        json!({"subject": "root", "roles": ["platform-admin"]}),
    );
    h.api_key(ALICE, json!({"subject": "alice", "teams": ["eng"]}));
    h.p.kv.put(
        "policy",
        &json!({"rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}]})
            .to_string(),
    );
    h.gw.reload_config();
    (h, alpha)
}

fn server_doc(url: &str) -> Value {
    json!({"description": "gamma server", "group": "dev", "endpoints": [{"region": "us", "url": url}]})
}

fn bad(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    let error = &reply.json()["error"];
    (
        error["data"]["path"].as_str().unwrap().to_string(),
        error["data"]["reason"].as_str().unwrap().to_string(),
    )
}

async fn tool_names(h: &Harness, key: &str) -> Vec<String> {
    let reply = h
        .send(modern_request(
            "/mcp",
            1,
            "tools/list",
            json!({}),
            &[("x-api-key", key)],
        ))
        .await;
    let tools = reply.response()["result"]["tools"].clone();
    let mut names: Vec<String> = tools
        .as_array()
        .unwrap_or_else(|| panic!("{}", reply.text))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn only_holders_of_the_admin_role_get_in() {
    let (h, _) = setup();
    let alice = h
        .send(request("GET", "/admin/servers", ALICE, None, &[]))
        .await;
    assert_eq!(alice.status, 403, "{}", alice.text);
    assert!(
        alice.text.contains("needs the role 'platform-admin'"),
        "{}",
        alice.text
    );
    let write = h
        .send(request(
            "PUT",
            "/admin/servers/x",
            ALICE,
            Some(&server_doc("http://x.test/mcp")),
            &[],
        ))
        .await;
    assert_eq!(write.status, 403);
    assert!(
        h.p.kv.value("servers/x").is_none(),
        "nothing stored for a non-admin"
    );
    let anonymous = h
        .send(
            http::Request::get("/admin/servers")
                .header("host", "localhost")
                .header("x-no-credential", "1")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert!(anonymous.header("www-authenticate").is_some());
    assert_eq!(
        call(&h, "GET", "/admin/servers", None, &[]).await.status,
        200
    );

    // Without ADMIN_ROLE the API is off, for everyone.
    let off = Harness::new();
    off.api_key(
        ADMIN,
        json!({"subject": "root", "roles": ["platform-admin"]}),
    );
    let reply = off
        .send(request("GET", "/admin/servers", ADMIN, None, &[]))
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply.text.contains("admin API is off"), "{}", reply.text);
}

#[tokio::test]
async fn a_server_registered_through_the_api_is_discovered_and_called() {
    let (h, _) = setup();
    let gamma = std::rc::Rc::new(MockServer::new("gamma").tools(&["ping"]));
    h.p.http.mount("http://gamma.us.test/mcp", gamma.clone());
    let mut doc = server_doc("http://gamma.us.test/mcp");
    doc["id"] = json!("gamma");
    let created = call(&h, "POST", "/admin/servers", Some(&doc), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["version"], 1);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(
        created.header("cache-control").as_deref(),
        Some("private, no-store")
    );
    let again = call(&h, "POST", "/admin/servers", Some(&doc), &[]).await;
    assert_eq!(again.status, 409, "{}", again.text);

    let read = call(&h, "GET", "/admin/servers/gamma", None, &[]).await;
    assert_eq!(read.json()["document"]["description"], "gamma server");
    let listed = call(&h, "GET", "/admin/servers", None, &[]).await.json();
    let ids: Vec<&str> = listed["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "gamma"]);

    // Alice sees it at once (this instance wrote it) and calls it.
    let found = h
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json()["tools"][0]["name"], "ping");
    assert!(tool_names(&h, ALICE)
        .await
        .contains(&"gamma__ping".to_string()));
    let params = json!({"name": "gamma__ping", "arguments": {}});
    let called = h
        .send(modern_request(
            "/mcp",
            2,
            "tools/call",
            params,
            &[("x-api-key", ALICE)],
        ))
        .await;
    assert!(called.response()["result"].is_object(), "{}", called.text);
    assert_eq!(gamma.count("tools/call"), 1);

    // Deleted: gone for callers and the API alike.
    let deleted = call(
        &h,
        "DELETE",
        "/admin/servers/gamma",
        None,
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json()["version"], 2);
    assert_eq!(
        h.send(request("GET", "/registry/gamma", ALICE, None, &[]))
            .await
            .status,
        404
    );
    assert_eq!(
        call(&h, "GET", "/admin/servers/gamma", None, &[])
            .await
            .status,
        404
    );
    assert!(h.p.kv.value("servers/gamma").is_none());
}

#[tokio::test]
async fn a_broken_document_is_refused_with_its_path_and_reason_and_nothing_is_stored() {
    let (h, _) = setup();
    let cases = [
        (
            "/admin/servers/gamma",
            json!({"endpoints": []}),
            "servers/gamma",
            "needs at least one endpoint",
        ),
        (
            "/admin/servers/gamma",
            json!({"endpoints": [{"region": "us", "url": "ftp://x"}]}),
            "servers/gamma",
            "endpoints[0]",
        ),
        (
            "/admin/servers/gamma",
            json!({"endpoint": []}),
            "servers/gamma",
            "unknown field `endpoint`",
        ),
        (
            "/admin/issuers/idp",
            json!({"issuer": "https://idp.test"}),
            "issuers/idp",
            "needs jwks_uri, jwks or hs256_secret",
        ),
        (
            "/admin/policy",
            json!({"rules": [{"name": "x", "effect": "maybe", "subjects": {"everyone": true}}]}),
            "policy",
            "maybe",
        ),
        (
            "/admin/groups/dev",
            json!({"description": 3}),
            "groups/dev",
            "invalid type",
        ),
    ];
    for (path, doc, want_path, want_reason) in cases {
        let reply = call(&h, "PUT", path, Some(&doc), &[]).await;
        let (got_path, reason) = bad(&reply);
        assert_eq!(got_path, want_path);
        assert!(reason.contains(want_reason), "{path}: {reason}");
    }
    assert!(h.p.kv.value("servers/gamma").is_none());
    assert!(h.p.kv.value("issuers/idp").is_none());
    assert!(
        h.p.kv.value("policy").unwrap().contains("\"all\""),
        "the policy in force is untouched"
    );
    let versions = call(&h, "GET", "/admin/servers/gamma/versions", None, &[])
        .await
        .json();
    assert_eq!(versions["versions"], json!([]));
    // Not JSON, a bad id, an unknown kind.
    let reply = h
        .send(request("PUT", "/admin/groups/dev", ADMIN, None, &[]))
        .await;
    assert!(bad(&reply).1.contains("not JSON"));
    let reply = call(
        &h,
        "PUT",
        "/admin/servers/a__b",
        Some(&server_doc("http://x/")),
        &[],
    )
    .await;
    assert_eq!(bad(&reply).0, "servers/a__b");
    assert_eq!(
        call(&h, "GET", "/admin/widgets", None, &[]).await.status,
        404
    );
}

#[tokio::test]
async fn every_change_keeps_a_version_and_rollback_restores_one() {
    let (h, _) = setup();
    // Alpha was seeded: no history yet, version 0.
    let seeded = call(&h, "GET", "/admin/servers/alpha", None, &[]).await;
    assert_eq!(seeded.json()["version"], 0);
    let seeded_doc = seeded.json()["document"].clone();
    let mut changed = seeded_doc.clone();
    changed["description"] = json!("alpha, renamed");
    let put = call(
        &h,
        "PUT",
        "/admin/servers/alpha",
        Some(&changed),
        &[("if-match", "\"0\"")],
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["version"], 1);
    changed["description"] = json!("alpha, third");
    let put = call(
        &h,
        "PUT",
        "/admin/servers/alpha",
        Some(&changed),
        &[("if-match", "1")],
    )
    .await;
    assert_eq!(put.json()["version"], 2);

    let versions = call(&h, "GET", "/admin/servers/alpha/versions", None, &[])
        .await
        .json();
    assert_eq!(versions["current_version"], 2);
    let listed: Vec<(u64, String, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["action"].as_str().unwrap().into(),
                v["author"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, "replace".into(), "apikey|root".into()),
            (1, "replace".into(), "apikey|root".into()),
            (0, "found in KV".into(), "outside the admin API".into()),
        ]
    );
    let v0 = call(&h, "GET", "/admin/servers/alpha/versions/0", None, &[])
        .await
        .json();
    assert_eq!(v0["document"], seeded_doc);
    assert_eq!(
        call(&h, "GET", "/admin/servers/alpha/versions/9", None, &[])
            .await
            .status,
        404
    );

    let back = call(
        &h,
        "POST",
        "/admin/servers/alpha/rollback",
        Some(&json!({"version": 0})),
        &[("if-match", "2")],
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.json()["version"], 3);
    assert_eq!(back.json()["document"], seeded_doc);
    let stored: Value = serde_json::from_str(&h.p.kv.value("servers/alpha").unwrap()).unwrap();
    assert_eq!(stored, seeded_doc, "KV serves the rolled-back document");
    let newest = &call(&h, "GET", "/admin/servers/alpha/versions", None, &[])
        .await
        .json()["versions"][0];
    assert_eq!(newest["action"], "rollback to 0");
    let found = h
        .send(request("GET", "/registry/alpha", ALICE, None, &[]))
        .await
        .json();
    assert_eq!(found["description"], "alpha server");

    // A changed-by-hand KV document is reported as the next version and
    // recorded before the next change.
    h.p.kv.put(
        "servers/alpha",
        &server_doc("http://alpha.us.test/mcp").to_string(),
    );
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(70)).await;
    let outside = call(&h, "GET", "/admin/servers/alpha", None, &[])
        .await
        .json();
    assert_eq!(outside["version"], 4);
    assert_eq!(outside["document"]["description"], "gamma server");
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_of_two_racing_writers_one_wins() {
    let (h, _) = setup();
    let doc = json!({"description": "development"});
    let created = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let exists = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(exists.status, 412);
    let stale = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-match", "\"7\"")],
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.json()["error"]["data"]["current_version"], 1);
    let garbled = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-match", "latest")],
    )
    .await;
    assert_eq!(garbled.status, 400);

    // Two instances write at once, both against version 1: the history is
    // the referee (both pass the If-Match check on what they read), one
    // wins, the other is told it lost, and KV holds the winner's.
    let other = Harness {
        gw: Gateway::new(setting("ADMIN_ROLE", "platform-admin")),
        p: h.p.clone(),
        meta: RequestMeta::default(),
    };
    let (one, two) = (json!({"description": "one"}), json!({"description": "two"}));
    let (first, second) = tokio::join!(
        call(
            &h,
            "PUT",
            "/admin/groups/dev",
            Some(&one),
            &[("if-match", "1")]
        ),
        call(
            &other,
            "PUT",
            "/admin/groups/dev",
            Some(&two),
            &[("if-match", "1")]
        ),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", first.text, second.text);
    let winner = if first.status == 200 { "one" } else { "two" };
    assert!(h.p.kv.value("groups/dev").unwrap().contains(winner));
    let versions = call(&h, "GET", "/admin/groups/dev/versions", None, &[])
        .await
        .json();
    assert_eq!(versions["current_version"], 2);

    // A change without If-Match to a document that exists is refused (428).
    let blind = call(&h, "PUT", "/admin/groups/dev", Some(&doc), &[]).await;
    assert_eq!(blind.status, 428, "{}", blind.text);
    assert_eq!(
        call(&h, "DELETE", "/admin/groups/dev", None, &[])
            .await
            .status,
        428
    );

    // A group servers still use stays.
    let mut alpha = h.raw_entry("alpha");
    alpha["group"] = json!("dev");
    h.register("alpha", alpha);
    let refused = call(
        &h,
        "DELETE",
        "/admin/groups/dev",
        None,
        &[("if-match", "2")],
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("alpha"));
}

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
    let versions = call(
        &h,
        "GET",
        &format!("/admin/apikeys/{id}/versions"),
        None,
        &[],
    )
    .await
    .json();
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

    let current = call(&h, "GET", "/admin/policy", None, &[]).await.json();
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
async fn methods_and_paths_outside_the_api_are_refused_clearly() {
    let (h, _) = setup();
    let cases = [
        ("PATCH", "/admin/servers/alpha", 405),
        ("DELETE", "/admin/servers", 405),
        ("GET", "/admin/policy/dry-run", 405),
        ("GET", "/admin/servers/alpha/rollback", 405),
        ("GET", "/admin/servers/alpha/oops", 404),
        ("GET", "/admin/servers/alpha/versions/x", 404),
        ("GET", "/admin/", 404),
    ];
    for (method, path, status) in cases {
        let reply = call(&h, method, path, None, &[]).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
        assert_eq!(reply.json()["jsonrpc"], "2.0");
    }
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
    };
    let usage = &h.p.usage;
    usage
        .add(
            "2026-01-01",
            &row("eng,ops", "apikey|alice", "alpha", "echo"),
            &n(3, 1),
        )
        .await
        .unwrap();
    usage
        .add(
            "2026-01-02",
            &row("eng", "apikey|bob", "alpha", "add"),
            &n(2, 0),
        )
        .await
        .unwrap();
    usage
        .add(
            "2026-01-02",
            &row("", "jwt:x|carol", "beta", "echo"),
            &n(1, 0),
        )
        .await
        .unwrap();
    usage
        .add(
            "2026-01-05",
            &row("eng", "apikey|bob", "alpha", "add"),
            &n(50, 0),
        )
        .await
        .unwrap();
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
    let full = call(&h, "GET", &format!("/admin/usage?{days}"), None, &[])
        .await
        .json();
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
    let current = call(&h, "GET", "/admin/policy", None, &[]).await.json();
    let gone = call(&h, "DELETE", "/admin/policy", None, &[("if-match", "0")]).await;
    assert_eq!(gone.status, 409, "{}", gone.text);
    assert_eq!(
        call(&h, "GET", "/admin/policy", None, &[]).await.json(),
        current
    );

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

#[tokio::test]
async fn a_change_kv_refuses_is_not_reported_as_made() {
    let (h, _) = setup();
    let key = call(
        &h,
        "POST",
        "/admin/apikeys",
        Some(&json!({"subject": "bot"})),
        &[],
    )
    .await
    .json();
    let (id, secret) = (
        key["id"].as_str().unwrap().to_string(),
        key["key"].as_str().unwrap().to_string(),
    );
    h.p.kv.fail_writes(Some("auth/apikeys/"));
    let revoke = call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[]).await;
    assert_eq!(revoke.status, 503, "{}", revoke.text);
    assert!(
        revoke.text.contains("could not be written"),
        "{}",
        revoke.text
    );
    // The admin API says what callers get: not revoked, and the history
    // says why.
    let read = call(&h, "GET", &format!("/admin/apikeys/{id}"), None, &[])
        .await
        .json();
    assert_eq!(read["document"]["revoked"], json!(null), "{read}");
    let versions = call(
        &h,
        "GET",
        &format!("/admin/apikeys/{id}/versions"),
        None,
        &[],
    )
    .await
    .json();
    assert!(
        versions["versions"][0]["action"]
            .as_str()
            .unwrap()
            .starts_with("not published"),
        "{versions}"
    );
    assert_eq!(
        h.send(request("GET", "/registry", &secret, None, &[]))
            .await
            .status,
        200
    );
    // Retried once KV takes writes again: revoked.
    h.p.kv.fail_writes(None);
    assert_eq!(
        call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        h.send(request("GET", "/registry", &secret, None, &[]))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_writing_instance_sees_its_write_at_once_while_kv_catches_up() {
    tokio::time::pause();
    let (h, _) = setup();
    let gamma = std::rc::Rc::new(MockServer::new("gamma").tools(&["ping"]));
    h.p.http.mount("http://gamma.us.test/mcp", gamma);
    let elsewhere = Harness {
        gw: Gateway::new(setting("ADMIN_ROLE", "platform-admin")),
        p: h.p.clone(),
        meta: RequestMeta::default(),
    };
    assert_eq!(
        elsewhere
            .send(request("GET", "/registry", ALICE, None, &[]))
            .await
            .status,
        200
    );

    // KV takes the write but serves it nowhere yet (as Workers KV, for up
    // to a minute).
    h.p.kv.lag_writes();
    let created = call(
        &h,
        "PUT",
        "/admin/servers/gamma",
        Some(&server_doc("http://gamma.us.test/mcp")),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        h.p.kv.value("servers/gamma").is_none(),
        "KV has not caught up"
    );
    let here = h
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(
        here.status, 200,
        "the writing instance serves it at once: {}",
        here.text
    );
    let read = call(&h, "GET", "/admin/servers/gamma", None, &[]).await;
    assert_eq!(read.json()["version"], 1);
    // Another instance: not yet (its registry copy, and KV, are older).
    let there = elsewhere
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(there.status, 404);
    // The admin API there reports the history's newest version, not KV's
    // stale answer: a change made there is made against version 1.
    let seen = call(&elsewhere, "GET", "/admin/servers/gamma", None, &[]).await;
    assert_eq!(seen.json()["version"], 1, "{}", seen.text);

    // KV catches up and the other instance's copy expires: served there too.
    h.p.kv.propagate();
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    let there = elsewhere
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(there.status, 200, "{}", there.text);
}
