//! Identity on the memory adapter: the negative matrix (every bad token is a
//! 401 with a JSON-RPC error, never a panic), the good paths for each
//! algorithm and for API keys, JWKS rotation, protected-resource metadata,
//! scopes, anonymous servers, session binding, and credentials for upstreams.

mod support;

use jwt_compact::alg::{Es256, Hs256, Hs256Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::jwt::{keys, now, public, sign};
use support::{initialize, Harness};

const ISS: &str = "https://id.test";
const AUD: &str = "http://gw.test/mcp";

fn good_claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "scope": "mcp:tools", "groups": ["eng"], "exp": now() + 600})
}

/// A gateway with one trusted issuer (inline keys) and one protected server.
fn harness() -> (Harness, Rc<MockServer>) {
    let h = Harness::new();
    let s = h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
    let jwks = json!({"keys": [public("rsa"), public("ec"), public("ed")]});
    h.p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": ISS, "jwks": jwks}).to_string(),
    );
    h.gw.reload_config();
    (h, s)
}

/// Initializes with `Authorization: Bearer {token}` and returns the reply.
async fn init_with(h: &Harness, token: &str) -> support::Reply {
    h.post(
        "/mcp",
        &initialize(1, "2025-06-18"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
}

fn assert_401(r: &support::Reply, want: &str) {
    let (code, msg) = r.error(401);
    assert_eq!(code, -32000);
    assert!(msg.contains(want), "expected {want:?} in {msg:?}");
    let challenge = r.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with(
            r#"Bearer resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp""#
        ),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn valid_tokens_of_each_algorithm_are_accepted() {
    let (h, _) = harness();
    for (key, kid) in [("rsa", "rsa-1"), ("ec", "ec-1"), ("ed", "ed-1")] {
        let r = init_with(&h, &sign(key, Some(kid), good_claims())).await;
        assert_eq!(r.status, 200, "{key}: {}", r.text);
    }
    // Without kid, the only key of the algorithm is used.
    assert_eq!(
        init_with(&h, &sign("ec", None, good_claims())).await.status,
        200
    );
}

#[tokio::test]
async fn the_negative_matrix_is_401_every_time() {
    let (h, _) = harness();
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let good = sign("rsa", Some("rsa-1"), good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    // HS256 keyed with the issuer's RSA public key: the classic algorithm confusion.
    let rsa_public = public("rsa").to_string();
    let hs_confused = Hs256
        .token(
            &Header::empty().with_key_id("rsa-1"),
            &Claims::new(good_claims().as_object().unwrap().clone()),
            &Hs256Key::new(rsa_public.as_bytes()),
        )
        .unwrap();
    let tampered_payload = {
        let mut claims = good_claims();
        claims["sub"] = json!("mallory");
        format!("{}.{}.{}", parts[0], b64(&claims), parts[2])
    };
    let tampered_signature = {
        // Change the first character: still valid base64url, wrong bytes.
        let sig = parts[2];
        let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
        format!("{}.{}.{flipped}{}", parts[0], parts[1], &sig[1..])
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good_claims();
        f(&mut c);
        sign("rsa", Some("rsa-1"), c)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, "'none' is not accepted"),
        (
            "HS256 with the RSA public key",
            hs_confused,
            "HS256 is not accepted",
        ),
        (
            "unknown kid",
            sign("rsa_other", Some("rsa-2"), good_claims()),
            "no key with kid 'rsa-2'",
        ),
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 3600)),
            "expired",
        ),
        (
            "no expiry",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "no expiry",
        ),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            "not valid yet",
        ),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.test")),
            "issuer 'https://evil.test' is not trusted",
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("https://other.example/mcp")),
            "audience",
        ),
        ("tampered payload", tampered_payload, "signature"),
        ("tampered signature", tampered_signature, "signature"),
        (
            "malformed base64",
            "eyJhbGciOiJSUzI1NiJ9.!!!.sig".to_string(),
            "not a well-formed JWT",
        ),
        (
            "garbage JSON",
            format!("{}.{}.{}", b64(&json!("x")), parts[1], parts[2]),
            "malformed",
        ),
        (
            "over 16 KiB",
            format!("{}.{}.{}", parts[0], "a".repeat(17 * 1024), parts[2]),
            "longer than 16384 bytes",
        ),
    ];
    for (name, token, want) in cases {
        let r = init_with(&h, &token).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text);
        assert_401(&r, want);
    }
}

#[tokio::test]
async fn api_keys_unknown_and_revoked_are_401() {
    let (h, _) = harness();
    h.api_key("mk_revoked", json!({"subject": "old-ci", "revoked": true}));
    for (header, key) in [
        ("x-api-key", "mk_nope"),
        ("x-api-key", "mk_revoked"),
        ("authorization", "Bearer mk_nope"),
    ] {
        let r = h
            .post("/mcp", &initialize(1, "2025-06-18"), &[(header, key)])
            .await;
        assert_eq!(
            r.error(401).1,
            "Unauthorized: unknown or revoked API key",
            "{key}"
        );
    }
    h.api_key("mk_ci", json!({"subject": "ci-bot", "roles": ["deployer"]}));
    let r = h
        .post(
            "/mcp",
            &initialize(1, "2025-06-18"),
            &[("authorization", "Bearer mk_ci")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        h.p.kv
            .keys_with("auth/apikeys/")
            .iter()
            .all(|k| !k.contains("mk_ci")),
        "keys are stored hashed"
    );
}

#[tokio::test]
async fn no_credential_is_401_with_a_challenge_pointing_at_the_metadata() {
    let (h, _) = harness();
    let r = h
        .post(
            "/mcp",
            &initialize(1, "2025-06-18"),
            &[("x-no-credential", "1")],
        )
        .await;
    assert_eq!(r.error(401).1, "Unauthorized: authentication required");
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        r#"Bearer resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp""#
    );
    let md = h
        .send(
            http::Request::get("http://gw.test/.well-known/oauth-protected-resource/mcp")
                .header("x-no-credential", "1")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(md.status, 200);
    let doc = md.json();
    assert_eq!(doc["resource"], "http://gw.test/mcp");
    assert_eq!(doc["authorization_servers"], json!([ISS]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    let root = h
        .send(
            http::Request::get("http://gw.test/.well-known/oauth-protected-resource")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(root.json()["resource"], "http://gw.test");
    let per_server = h
        .send(
            http::Request::get(
                "http://gw.test/.well-known/oauth-protected-resource/servers/alpha/mcp",
            )
            .body(Vec::new())
            .unwrap(),
        )
        .await;
    assert_eq!(
        per_server.json()["resource"],
        "http://gw.test/servers/alpha/mcp"
    );
}

#[tokio::test]
async fn missing_scopes_are_403_insufficient_scope() {
    let h = Harness::with_var("REQUIRED_SCOPES", "mcp:tools mcp:admin");
    h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
    h.p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": ISS, "jwks": {"keys": [public("ec")]}}).to_string(),
    );
    h.gw.reload_config();
    let r = init_with(&h, &sign("ec", Some("ec-1"), good_claims())).await;
    let (code, msg) = r.error(403);
    assert_eq!(code, -32000);
    assert!(msg.contains("mcp:admin"), "{msg}");
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp""#
    );
    let mut claims = good_claims();
    claims["scope"] = json!("mcp:tools mcp:admin");
    assert_eq!(
        init_with(&h, &sign("ec", Some("ec-1"), claims))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn jwks_rotation_is_picked_up_once_per_interval() {
    let h = Harness::new();
    h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
    let set = Rc::new(std::cell::RefCell::new(json!({"keys": [public("rsa")]})));
    let fetches = Rc::new(std::cell::Cell::new(0));
    let (s2, f2) = (set.clone(), fetches.clone());
    h.p.http.mount_fn("https://id.test/jwks", move |_| {
        f2.set(f2.get() + 1);
        let body = s2.borrow().to_string().into_bytes();
        Box::pin(async move {
            http::Response::builder()
                .status(200)
                .body(mcp_edge::Body::Full(body))
                .unwrap()
        })
    });
    h.p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": ISS, "jwks_uri": "https://id.test/jwks"}).to_string(),
    );
    h.gw.reload_config();
    assert_eq!(
        init_with(&h, &sign("rsa", Some("rsa-1"), good_claims()))
            .await
            .status,
        200
    );
    assert_eq!(fetches.get(), 1);
    // The issuer rotates to a new key: one refetch finds it.
    set.borrow_mut()["keys"]
        .as_array_mut()
        .unwrap()
        .push(public("rsa_other"));
    assert_eq!(
        init_with(&h, &sign("rsa_other", Some("rsa-2"), good_claims()))
            .await
            .status,
        200
    );
    assert_eq!(fetches.get(), 2);
    // A flood of unknown kids inside the interval does not refetch.
    for _ in 0..3 {
        assert_eq!(
            init_with(&h, &sign("ec", Some("ec-unknown"), good_claims()))
                .await
                .status,
            401
        );
    }
    assert_eq!(fetches.get(), 2);
}

#[tokio::test]
async fn anonymous_callers_see_only_anonymous_servers() {
    let h = Harness::new();
    h.add(
        "private",
        MockServer::new("private").tools(&["secret"]),
        &["us"],
    );
    let open = std::rc::Rc::new(MockServer::new("open").tools(&["hello"]));
    h.p.http.mount("http://open.test/mcp", open);
    h.register(
        "open",
        json!({"anonymous": true, "endpoints": [{"region": "us", "url": "http://open.test/mcp"}]}),
    );
    let anon = [("x-no-credential", "1")];
    let r = h.post("/mcp", &initialize(1, "2025-06-18"), &anon).await;
    assert_eq!(r.status, 200);
    let sid = r.header("mcp-session-id").unwrap();
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let r = h
        .post(
            "/mcp",
            &list,
            &[("x-no-credential", "1"), ("mcp-session-id", &sid)],
        )
        .await;
    let names: Vec<String> = r.json()["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["open__hello"]);
    let r = h
        .post("/servers/private/mcp", &initialize(1, "2025-06-18"), &anon)
        .await;
    assert_eq!(r.status, 401, "a private server needs credentials");
}

#[tokio::test]
async fn a_session_is_useless_to_anyone_but_its_owner() {
    let (h, _) = harness();
    let alice = sign("ec", Some("ec-1"), good_claims());
    let r = init_with(&h, &alice).await;
    let sid = r.header("mcp-session-id").unwrap();
    let mut bob_claims = good_claims();
    bob_claims["sub"] = json!("bob");
    let bob = sign("ec", Some("ec-1"), bob_claims);
    let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list"});
    let as_bob = h
        .post(
            "/mcp",
            &list,
            &[
                ("authorization", &format!("Bearer {bob}")),
                ("mcp-session-id", &sid),
            ],
        )
        .await;
    assert_eq!(as_bob.status, 404);
    let as_alice = h
        .post(
            "/mcp",
            &list,
            &[
                ("authorization", &format!("Bearer {alice}")),
                ("mcp-session-id", &sid),
            ],
        )
        .await;
    assert_eq!(as_alice.status, 200);
}

#[tokio::test]
async fn upstreams_get_a_minted_jwt_naming_the_caller_never_the_callers_token() {
    let (h, _) = harness();
    let minted = std::rc::Rc::new(MockServer::new("minted").tools(&["echo"]));
    h.p.http.mount("http://minted.test/mcp", minted.clone());
    h.register(
        "minted",
        json!({"credentials": {"type": "jwt", "ttl_secs": 120},
        "endpoints": [{"region": "us", "url": "http://minted.test/mcp"}]}),
    );
    h.p.runtime.secrets.borrow_mut().insert(
        "UPSTREAM_SIGNING_KEY".into(),
        keys()["ec_gateway"].to_string(),
    );
    let alice = sign("ec", Some("ec-1"), good_claims());
    let bearer = format!("Bearer {alice}");
    let r = h
        .post(
            "/mcp",
            &initialize(1, "2025-06-18"),
            &[("authorization", &bearer)],
        )
        .await;
    let sid = r.header("mcp-session-id").unwrap();
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"minted__echo","arguments":{"text":"hi"}}});
    let r = h
        .post(
            "/mcp",
            &call,
            &[("authorization", &bearer), ("mcp-session-id", &sid)],
        )
        .await;
    assert_eq!(r.response()["result"]["content"][0]["text"], "hi");
    // The upstream's view: a gateway token, verifiable with the gateway's JWKS.
    let jwks = h
        .send(
            http::Request::get("http://gw.test/.well-known/jwks.json")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kid"], "gw-1");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "only the public key is published"
    );
    let key_json = jwks["keys"][0].to_string();
    let key: JsonWebKey<'_> = serde_json::from_str(&key_json).unwrap();
    let vk = p256::ecdsa::VerifyingKey::try_from(&key).unwrap();
    for seen in minted.seen() {
        let auth = seen.headers["authorization"].to_str().unwrap();
        assert!(
            !auth.contains(&alice),
            "the caller's token never reaches an upstream"
        );
        let token =
            jwt_compact::UntrustedToken::new(auth.strip_prefix("Bearer ").unwrap()).unwrap();
        let checked = Es256
            .validator::<serde_json::Map<String, Value>>(&vk)
            .validate(&token)
            .unwrap();
        let claims = checked.claims();
        assert_eq!(claims.custom["sub"], "alice");
        assert_eq!(
            claims.custom["aud"], "minted",
            "aud defaults to the server id"
        );
        assert_eq!(claims.custom["iss"], "http://gw.test");
        assert_eq!(claims.custom["teams"], json!(["eng"]));
        assert!(claims.custom["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let life = claims.expiration.unwrap().timestamp() - claims.issued_at.unwrap().timestamp();
        assert_eq!(life, 120);
    }
    assert!(
        minted.seen().len() >= 3,
        "initialize, initialized and the call all carried it"
    );
}

#[tokio::test]
async fn static_secret_headers_and_missing_secrets() {
    let (h, _) = harness();
    let gh = std::rc::Rc::new(MockServer::new("gh").tools(&["echo"]));
    h.p.http.mount("http://gh.test/mcp", gh.clone());
    h.register("gh", json!({"credentials": {"type": "header", "header": "x-upstream-token", "secret": "GH_TOKEN", "prefix": "token "},
        "endpoints": [{"region": "us", "url": "http://gh.test/mcp"}]}));
    let mut c = h.connect("/mcp").await;
    let resp = c
        .call(
            "tools/call",
            json!({"name": "gh__echo", "arguments": {"text": "x"}}),
        )
        .await;
    assert_eq!(resp["error"]["code"], -32001);
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the secret GH_TOKEN is not set"),
        "{resp}"
    );
    h.p.runtime
        .secrets
        .borrow_mut()
        .insert("GH_TOKEN".into(), "s3cret".into());
    let r = c
        .result(
            "tools/call",
            json!({"name": "gh__echo", "arguments": {"text": "y"}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"], "y");
    let last = gh.seen().pop().unwrap();
    assert_eq!(last.headers["x-upstream-token"], "token s3cret");
    assert!(
        last.headers.get("x-api-key").is_none(),
        "the caller's API key stays at the gateway"
    );
}

#[tokio::test]
async fn removing_an_issuer_cuts_off_its_tokens_without_waiting_for_their_expiry() {
    tokio::time::pause();
    let (h, _) = harness();
    let other = h.another_isolate();
    let token = sign("ec", Some("ec-1"), good_claims());
    assert_eq!(init_with(&h, &token).await.status, 200);
    assert_eq!(
        init_with(&other, &token).await.status,
        200,
        "verified, and remembered"
    );
    h.p.kv.delete("auth/issuers/corp");
    // Where the change was made (the admin API reloads): at once.
    h.gw.reload_config();
    assert_401(&init_with(&h, &token).await, "not trusted");
    // Elsewhere: once the trusted issuers are read again (the TTL), though
    // the token was verified there before and is still valid.
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    assert_401(&init_with(&other, &token).await, "not trusted");
}
