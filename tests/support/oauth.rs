//! An in-process authorization server and a third-party MCP server that
//! takes its tokens, for the connection tests: what `oidc-provider` and
//! the fixture server do end to end, reduced to what the gateway relies
//! on. The authorization server checks PKCE (`S256`), the redirect URI,
//! the resource indicator and the client's secret, rotates nothing, and
//! counts what it was asked; the MCP server answers `whoami` with the
//! user its bearer token was issued to, and 401 with a challenge to
//! anything else.

#![allow(dead_code)]

use super::Harness;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcp_edge::body::Body;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub const AS: &str = "https://as.test";
pub const MCP: &str = "https://tp.test/mcp";
/// A server that names its authorization server only in its RFC 9728
/// metadata, whose client the gateway registers dynamically (RFC 7591).
pub const PUB: &str = "https://pub.test/mcp";
pub const DCR_CLIENT: &str = "dcr-client";
pub const CLIENT: (&str, &str) = ("gw-client", "gw-client-secret");
pub const CONNECTIONS_KEY: &str = "a test connections key of 32+ bytes";

/// What the authorization server holds and was asked.
#[derive(Default)]
pub struct AuthServer {
    /// code -> (user, challenge, redirect)
    pub codes: HashMap<String, (String, String, String)>,
    /// access token -> user
    pub access: HashMap<String, String>,
    /// refresh token -> user
    pub refresh: HashMap<String, String>,
    pub code_grants: u32,
    pub refresh_grants: u32,
    pub revocations: Vec<String>,
    /// Lifetime of access tokens, in seconds.
    pub ttl_secs: u64,
    /// Refuse every refresh with this status and OAuth error.
    pub refuse_refresh: Option<(u16, &'static str)>,
    /// Every token issued, to look for at rest.
    pub issued: Vec<String>,
    /// Dynamic registrations asked for.
    pub registrations: u32,
    next: u32,
}

pub type Shared = Rc<RefCell<AuthServer>>;

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn json_response(status: u16, v: Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Full(v.to_string().into_bytes()))
        .unwrap()
}

impl AuthServer {
    fn token(&mut self, user: &str) -> Value {
        self.next += 1;
        let (a, r) = (
            format!("at-{user}-{}", self.next),
            format!("rt-{user}-{}", self.next),
        );
        self.access.insert(a.clone(), user.to_string());
        self.refresh.insert(r.clone(), user.to_string());
        self.issued.push(a.clone());
        self.issued.push(r.clone());
        json!({"access_token": a, "token_type": "Bearer", "expires_in": self.ttl_secs,
               "refresh_token": r, "scope": "whoami"})
    }

    fn token_endpoint(&mut self, req: &http::Request<Vec<u8>>) -> http::Response<Body> {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", CLIENT.0, CLIENT.1))
        );
        let f = form(req.body());
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        // The confidential client authenticates; the registered public one
        // names itself and has no secret.
        let client = match (auth, f.get("client_id").map(String::as_str)) {
            (Some(a), None) if a == basic => CLIENT.0,
            (None, Some(DCR_CLIENT)) => DCR_CLIENT,
            _ => return json_response(401, json!({"error": "invalid_client"})),
        };
        let resource = f.get("resource").map(String::as_str);
        if resource != Some(if client == DCR_CLIENT { PUB } else { MCP }) {
            return json_response(400, json!({"error": "invalid_target"}));
        }
        match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let Some((user, challenge, redirect)) =
                    f.get("code").and_then(|c| self.codes.remove(c))
                else {
                    return json_response(400, json!({"error": "invalid_grant"}));
                };
                let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge || f.get("redirect_uri") != Some(&redirect) {
                    return json_response(400, json!({"error": "invalid_grant"}));
                }
                self.code_grants += 1;
                json_response(200, self.token(&user))
            }
            Some("refresh_token") => {
                self.refresh_grants += 1;
                let user = f
                    .get("refresh_token")
                    .and_then(|r| self.refresh.get(r))
                    .cloned();
                match (user, self.refuse_refresh) {
                    (_, Some((status, error))) => json_response(status, json!({"error": error})),
                    (Some(user), None) => json_response(200, self.token(&user)),
                    (None, None) => json_response(400, json!({"error": "invalid_grant"})),
                }
            }
            _ => json_response(400, json!({"error": "unsupported_grant_type"})),
        }
    }
}

/// A user logging in at the authorization request `url` (what the
/// browser would do): a code bound to its challenge, and the callback URL.
pub fn log_in(server: &Shared, url: &str, user: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let q: HashMap<String, String> = form(query.as_bytes());
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    let public = q["client_id"] == DCR_CLIENT;
    assert_eq!(q["resource"], if public { PUB } else { MCP });
    assert!(public || q["client_id"] == CLIENT.0);
    let mut s = server.borrow_mut();
    s.next += 1;
    let code = format!("code-{}", s.next);
    s.codes.insert(
        code.clone(),
        (
            user.to_string(),
            q["code_challenge"].clone(),
            q["redirect_uri"].clone(),
        ),
    );
    let mut back = form_urlencoded::Serializer::new(String::new());
    back.append_pair("code", &code)
        .append_pair("state", &q["state"]);
    format!("{}?{}", q["redirect_uri"], back.finish())
}

/// Mounts the authorization server and the MCP server `tp` (registered
/// with `credentials: oauth`), and sets the gateway's secrets.
pub fn setup(h: &Harness) -> Shared {
    let server: Shared = Rc::new(RefCell::new(AuthServer {
        ttl_secs: 3600,
        ..Default::default()
    }));
    let metadata = json!({
        "issuer": AS, "authorization_endpoint": format!("{AS}/authorize"),
        "token_endpoint": format!("{AS}/token"), "revocation_endpoint": format!("{AS}/revoke"),
        "registration_endpoint": format!("{AS}/register"),
        "code_challenge_methods_supported": ["S256"],
    });
    let s = server.clone();
    h.p.http.mount_fn(&format!("{AS}/register"), move |req| {
        let asked: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let ok = asked["token_endpoint_auth_method"] == "none"
            && asked["redirect_uris"][0]
                .as_str()
                .is_some_and(|u| u.ends_with("/connect/pub/callback"));
        s.borrow_mut().registrations += 1;
        Box::pin(async move {
            match ok {
                true => json_response(201, json!({"client_id": DCR_CLIENT})),
                false => json_response(400, json!({"error": "invalid_client_metadata"})),
            }
        })
    });
    h.p.http.mount_fn(
        &format!("{AS}/.well-known/oauth-authorization-server"),
        move |_| {
            let m = metadata.clone();
            Box::pin(async move { json_response(200, m) })
        },
    );
    let s = server.clone();
    h.p.http.mount_fn(&format!("{AS}/token"), move |req| {
        let answer = s.borrow_mut().token_endpoint(&req);
        Box::pin(async move { answer })
    });
    let s = server.clone();
    h.p.http.mount_fn(&format!("{AS}/revoke"), move |req| {
        let f = form(req.body());
        let mut a = s.borrow_mut();
        if let Some(t) = f.get("token") {
            a.revocations.push(t.clone());
            a.refresh.remove(t);
            a.access.remove(t);
        }
        Box::pin(async move { json_response(200, json!({})) })
    });
    h.p.http.mount_fn(
        "https://pub.test/.well-known/oauth-protected-resource/mcp",
        |_| {
            Box::pin(async move {
                json_response(200, json!({"resource": PUB, "authorization_servers": [AS]}))
            })
        },
    );
    h.p.http.mount_fn(
        "https://tp.test/.well-known/oauth-protected-resource/mcp",
        |_| {
            Box::pin(async move {
                json_response(200, json!({"resource": MCP, "authorization_servers": [AS]}))
            })
        },
    );
    for url in [MCP, PUB] {
        let s = server.clone();
        h.p.http.mount_fn(url, move |req| {
            let user = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| s.borrow().access.get(t).cloned());
            let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
            Box::pin(async move { third_party(user, body) })
        });
    }
    h.register(
        "pub",
        json!({"description": "found and registered on its own", "timeout_ms": 1000,
               "endpoints": [{"region": "us", "url": PUB}], "credentials": {"type": "oauth"}}),
    );
    h.register(
        "tp",
        json!({"description": "a third-party server", "timeout_ms": 1000,
               "endpoints": [{"region": "us", "url": MCP}],
               "credentials": {"type": "oauth", "client_id": CLIENT.0, "client_secret": "TP_CLIENT_SECRET",
                               "authorization_server": AS,
                               "scopes": ["whoami"]}}),
    );
    let mut secrets = h.p.runtime.secrets.borrow_mut();
    secrets.insert("TP_CLIENT_SECRET".into(), CLIENT.1.into());
    secrets.insert("CONNECTIONS_KEY".into(), CONNECTIONS_KEY.into());
    server
}

/// The third-party MCP server: stateless, answers its token's user.
fn third_party(user: Option<String>, body: Value) -> http::Response<Body> {
    let Some(user) = user else {
        return http::Response::builder()
            .status(401)
            .header(
                "www-authenticate",
                r#"Bearer error="invalid_token", resource_metadata="https://tp.test/.well-known/oauth-protected-resource/mcp""#,
            )
            .body(Body::Full(b"{}".to_vec()))
            .unwrap();
    };
    let id = body["id"].clone();
    let result = match body["method"].as_str() {
        Some("initialize") => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                                     "serverInfo": {"name": "tp", "version": "1"}})
        }
        Some("tools/list") => {
            // Each user's own tools: a schema naming their own repository.
            json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object",
                "properties": {"repo": {"enum": [format!("{user}-repo")]}}}}]})
        }
        Some("tools/call") => {
            json!({"content": [{"type": "text", "text": format!("you are {user}")}]})
        }
        Some(_) if id.is_null() => {
            return http::Response::builder()
                .status(202)
                .body(Body::empty())
                .unwrap()
        }
        _ => json!({}),
    };
    json_response(200, json!({"jsonrpc": "2.0", "id": id, "result": result}))
}
