//! Discovery for callers (`GET /registry`, `GET /registry/{id}`): the
//! servers a caller may use and their tools as it sees them; what it may not
//! use stays invisible, exactly as an unknown server.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::{Harness, Reply};

fn get(path: &str, key: Option<&str>) -> http::Request<Vec<u8>> {
    // As every HTTP/1.1 client does, it names the host (this machine).
    let mut req = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("host", "localhost");
    req = match key {
        Some(key) => req.header("x-api-key", key),
        None => req.header("x-no-credential", "1"),
    };
    req.body(Vec::new()).unwrap()
}

/// Alpha (dev: echo, add, a destructive delete), beta (ops: echo, search),
/// gamma (ops, its only region down). Alice (eng) may use dev and beta's
/// echo; bob (ops) everything but alpha.
fn registry() -> (Harness, std::rc::Rc<MockServer>) {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha").tools(&["echo", "add", "delete"]),
        &["us", "eu"],
    );
    h.add(
        "beta",
        MockServer::new("beta").tools(&["echo", "search"]),
        &["us"],
    );
    let mut entry = h.raw_entry("alpha");
    entry["group"] = json!("dev");
    h.register("alpha", entry);
    for id in ["beta", "gamma"] {
        let mut entry = match id {
            "beta" => h.raw_entry("beta"),
            _ => json!({"description": "gamma server", "timeout_ms": 200,
                        "endpoints": [{"region": "us", "url": "http://gamma.us.test/mcp"}]}),
        };
        entry["group"] = json!("ops");
        h.register(id, entry);
    }
    h.api_key("mk_alice", json!({"subject": "alice", "teams": ["eng"]}));
    h.api_key("mk_bob", json!({"subject": "bob", "teams": ["ops"]}));
    policy(
        &h,
        json!({"rules": [
            {"name": "eng-dev", "effect": "allow", "subjects": {"teams": ["eng"]}, "groups": ["dev"]},
            {"name": "eng-beta-echo", "effect": "allow", "subjects": {"teams": ["eng"]},
             "servers": ["beta"], "tools": ["echo"]},
            {"name": "ops", "effect": "allow", "subjects": {"teams": ["ops"]}, "groups": ["ops"]}]}),
    );
    (h, alpha)
}

/// Replaces the policy.
fn policy(h: &Harness, policy: Value) {
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
}

/// Opens beta to anonymous callers, and everything to everyone.
fn open_beta(h: &Harness) {
    let mut entry = h.raw_entry("beta");
    entry["anonymous"] = json!(true);
    h.register("beta", entry);
    policy(
        h,
        json!({"rules": [{"name": "anyone", "effect": "allow", "subjects": {"everyone": true}}]}),
    );
}

fn ids(doc: &Value) -> Vec<&str> {
    doc["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

fn server<'d>(doc: &'d Value, id: &str) -> &'d Value {
    doc["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {doc}"))
}

fn names(detail: &Value) -> Vec<&str> {
    detail["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{detail}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_list_holds_only_what_the_caller_may_use_with_its_tool_counts() {
    let (h, _) = registry();
    let alice = h.send(get("/registry", Some("mk_alice"))).await;
    assert_eq!(alice.status, 200, "{}", alice.text);
    let doc = alice.json();
    assert_eq!(ids(&doc), ["alpha", "beta"]);
    let alpha = server(&doc, "alpha");
    assert_eq!(alpha["group"], "dev");
    assert_eq!(alpha["description"], "alpha server");
    assert_eq!(alpha["regions"], json!(["eu", "us"]));
    assert_eq!(alpha["endpoint"], "http://localhost/servers/alpha/mcp");
    assert_eq!(alpha["tools"], 3);
    assert_eq!(server(&doc, "beta")["tools"], 1, "only echo: {doc}");
    assert_eq!(doc["mcp"], "http://localhost/mcp");

    let bob = h.send(get("/registry", Some("mk_bob"))).await.json();
    assert_eq!(ids(&bob), ["beta", "gamma"]);
    assert_eq!(server(&bob, "beta")["tools"], 2);
    // A server that cannot be listed is still there, with why.
    let gamma = server(&bob, "gamma");
    assert_eq!(gamma["tools"], Value::Null, "{gamma}");
    assert!(
        gamma["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{gamma}"
    );
}

#[tokio::test]
async fn one_server_shows_its_tools_as_the_caller_sees_them() {
    let (h, _) = registry();
    let reply = h.send(get("/registry/alpha", Some("mk_alice"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let detail = reply.json();
    assert_eq!(detail["id"], "alpha");
    assert_eq!(names(&detail), ["add", "delete", "echo"]);
    let delete = &detail["tools"][1];
    assert_eq!(delete["on_mcp"], "alpha__delete");
    assert_eq!(delete["description"], "delete on alpha");
    assert_eq!(delete["annotations"], json!({"destructiveHint": true}));

    let beta = h.send(get("/registry/beta", Some("mk_alice"))).await.json();
    assert_eq!(names(&beta), ["echo"], "the policy hides search: {beta}");
}

#[tokio::test]
async fn a_denied_server_is_as_unknown_as_one_that_does_not_exist() {
    let (h, _) = registry();
    let denied = h.send(get("/registry/gamma", Some("mk_alice"))).await;
    let unknown = h.send(get("/registry/nowhere", Some("mk_alice"))).await;
    assert_eq!(denied.status, 404);
    assert_eq!(unknown.status, 404);
    let message = |r: &Reply| {
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace("gamma", "X")
    };
    assert_eq!(
        message(&denied),
        message(&unknown).replace("nowhere", "X"),
        "the same answer"
    );
    // Not even a malformed id tells them apart.
    assert_eq!(
        h.send(get("/registry/a__b", Some("mk_alice"))).await.status,
        404
    );
}

#[tokio::test]
async fn discovery_is_authenticated_like_mcp() {
    let (h, _) = registry();
    let anonymous = h.send(get("/registry", None)).await;
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|c| c.contains("/.well-known/oauth-protected-resource/mcp")),
        "the challenge points to /mcp's metadata: {:?}",
        anonymous.header("www-authenticate")
    );
    assert_eq!(h.send(get("/registry", Some("mk_wrong"))).await.status, 401);
    let post = http::Request::builder()
        .method("POST")
        .uri("/registry")
        .header("x-api-key", "mk_alice")
        .body(b"{}".to_vec())
        .unwrap();
    assert_eq!(h.send(post).await.status, 405);
}

#[tokio::test]
async fn an_open_server_is_discovered_by_anonymous_callers_and_nothing_else() {
    let (h, _) = registry();
    open_beta(&h);
    let doc = h.send(get("/registry", None)).await.json();
    assert_eq!(ids(&doc), ["beta"]);
    assert_eq!(h.send(get("/registry/alpha", None)).await.status, 404);
}

#[tokio::test]
async fn the_catalog_answers_again_without_listing_the_servers() {
    let (h, alpha) = registry();
    h.send(get("/registry", Some("mk_alice"))).await;
    h.send(get("/registry/alpha", Some("mk_alice"))).await;
    h.send(get("/registry", Some("mk_alice"))).await;
    assert_eq!(
        alpha.count("tools/list"),
        1,
        "kept for TOOL_CATALOG_TTL_SECS"
    );
}

#[tokio::test]
async fn a_failed_listing_is_shown_redacted() {
    let h = Harness::new();
    h.add(
        "crm",
        MockServer::new("crm")
            .tools(&["echo"])
            .list_error("listing denied for jane.doe@corp.example"),
        &["us"],
    );
    policy(
        &h,
        json!({"rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
               "redact": [{"servers": ["crm"]}]}),
    );
    let doc = h
        .send(get("/registry", Some(support::API_KEY)))
        .await
        .json();
    let error = server(&doc, "crm")["error"].as_str().unwrap().to_string();
    assert!(error.contains("listing denied"), "{error}");
    assert!(!error.contains("jane.doe@corp.example"), "{error}");
}

#[tokio::test]
async fn anonymous_discovery_is_answered_only_on_this_machine_or_public_urls_host() {
    let (h, _) = registry();
    open_beta(&h);
    let at = |host: &str, key: Option<&str>| {
        let mut req = get("/registry", key);
        match host {
            "" => req.headers_mut().remove("host"),
            host => req.headers_mut().insert("host", host.parse().unwrap()),
        };
        req
    };
    assert_eq!(h.send(at("", None)).await.status, 403, "no host named");
    // A page that rebound its own name to this machine.
    assert_eq!(h.send(at("rebound.example:8787", None)).await.status, 403);
    assert_eq!(h.send(at("127.0.0.1:8787", None)).await.status, 200);
    assert_eq!(h.send(at("localhost:8787", None)).await.status, 200);
    // A credential is no browser's to send: any host.
    assert_eq!(
        h.send(at("rebound.example:8787", Some("mk_bob")))
            .await
            .status,
        200
    );

    let h = Harness::with_var("PUBLIC_URL", "https://mcp.example.com");
    h.add("beta", MockServer::new("beta").tools(&["echo"]), &["us"]);
    open_beta(&h);
    assert_eq!(h.send(at("mcp.example.com", None)).await.status, 200);
    assert_eq!(h.send(at("MCP.example.com:443", None)).await.status, 200);
    assert_eq!(h.send(at("rebound.example", None)).await.status, 403);
    assert_eq!(h.send(at("mcp.example.com:8443", None)).await.status, 403);
    // Behind a proxy every request may name this machine: with a public
    // PUBLIC_URL, only its host counts.
    assert_eq!(h.send(at("127.0.0.1:3000", None)).await.status, 403);
}

#[tokio::test]
async fn answers_are_the_callers_own_to_keep() {
    let (h, _) = registry();
    for path in ["/registry", "/registry/alpha"] {
        let reply = h.send(get(path, Some("mk_alice"))).await;
        assert_eq!(
            reply.header("cache-control").as_deref(),
            Some("private, no-store"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_dual_era_upstream_is_listed_in_the_modern_era_and_mcp_keeps_it_so() {
    let h = Harness::new();
    let up = h.add(
        "dual",
        MockServer::new("dual").tools(&["echo"]).modern(),
        &["us"],
    );
    let doc = h
        .send(get("/registry", Some(support::API_KEY)))
        .await
        .json();
    assert_eq!(server(&doc, "dual")["tools"], 1, "{doc}");
    assert_eq!(up.count("initialize"), 0, "met as a modern client would be");
    // The caller's modern requests on /mcp find no legacy session kept for it.
    let call = support::modern_request(
        "/mcp",
        7,
        "tools/call",
        json!({"name": "dual__echo", "arguments": {"text": "hi"}}),
        &[("x-api-key", support::API_KEY)],
    );
    let r = h.send(call).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(up.count("initialize"), 0, "{}", r.text);
}
