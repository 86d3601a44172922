//! The admin API (`/admin/...`) on the memory adapter: who may use it,
//! documents checked by the gateway's own parsers, and that what it writes
//! is what callers then get (discovery, `/mcp`). Versions and concurrency:
//! `admin_versions.rs`; API keys, the policy, usage: `admin_keys.rs`.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::json;
use support::admin::*;
use support::{modern_request, Harness};

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
    let listed = get(&h, "/admin/servers").await;
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
    let versions = get(&h, "/admin/servers/gamma/versions").await;
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
