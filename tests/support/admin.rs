//! The admin API's test helpers: an admin and a caller, requests with
//! their keys, and the setup every admin test starts from.

use super::{modern_request, setting, Harness, Reply};
use mcp_edge::adapters::memory::MockServer;
use mcp_edge::gateway::{Gateway, RequestMeta};
use serde_json::{json, Value};

pub const ADMIN: &str = "mk_admin";
pub const ALICE: &str = "mk_alice";

pub fn request(
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

pub async fn call(
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
pub fn setup() -> (Harness, std::rc::Rc<MockServer>) {
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

pub fn server_doc(url: &str) -> Value {
    json!({"description": "gamma server", "group": "dev", "endpoints": [{"region": "us", "url": url}]})
}

pub fn bad(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    let error = &reply.json()["error"];
    (
        error["data"]["path"].as_str().unwrap().to_string(),
        error["data"]["reason"].as_str().unwrap().to_string(),
    )
}

pub async fn tool_names(h: &Harness, key: &str) -> Vec<String> {
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

/// `GET {path}` as the admin: the answer's JSON.
pub async fn get(h: &Harness, path: &str) -> Value {
    call(h, "GET", path, None, &[]).await.json()
}

/// Another instance of the same deployment, with the admin role set: its
/// own caches, the same stores.
pub fn second_instance(h: &Harness) -> Harness {
    Harness {
        gw: std::rc::Rc::new(Gateway::new(setting("ADMIN_ROLE", "platform-admin"))),
        p: h.p.clone(),
        meta: RequestMeta::default(),
    }
}
