//! Per-user OAuth to third-party servers on the memory adapter: the
//! connect flow (state and PKCE bound to the caller and the browser),
//! each user's own token on their calls, refresh once under concurrency,
//! tokens sealed at rest, revocation, and an upstream's 401 relayed as a
//! connect prompt. The same flows run end to end against `oidc-provider`
//! in `tests/e2e/connect.py`.

mod support;

use serde_json::{json, Value};
use support::oauth::{self, Shared};
use support::{modern_request, Harness};

const BOB: &str = "mk_test_bob";

fn harness() -> (Harness, Shared) {
    let settings = mcp_edge::config::Settings::from_vars(|k| match k {
        "ADMIN_ROLE" => Some("platform-admin".into()),
        "PUBLIC_URL" => Some("http://gw.test".into()),
        _ => None,
    })
    .unwrap();
    let h = Harness::with_settings(settings);
    h.api_key(BOB, json!({"subject": "bob", "scopes": ["mcp:tools"]}));
    h.api_key(
        support::admin::ADMIN,
        json!({"subject": "root", "roles": ["platform-admin"]}),
    );
    let a = oauth::setup(&h);
    (h, a)
}

fn get(path_and_query: &str, key: &str, cookie: Option<&str>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::get(format!("http://gw.test{path_and_query}"))
        .header("host", "gw.test")
        .header("x-api-key", key);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.body(Vec::new()).unwrap()
}

/// `whoami` on `/mcp` as the holder of `key` (modern: no session).
async fn whoami(h: &Harness, key: &str) -> Value {
    whoami_with(h, key, json!({})).await
}

async fn whoami_with(h: &Harness, key: &str, arguments: Value) -> Value {
    let params = json!({"name": "tp__whoami", "arguments": arguments});
    let req = modern_request("/mcp", 7, "tools/call", params, &[("x-api-key", key)]);
    let r = h.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["result"].clone()
}

/// Starts a connect as `key`: the authorization request URL and the
/// browser's binding cookie.
async fn start(h: &Harness, key: &str) -> (String, String) {
    let r = h.send(get("/connect/tp", key, None)).await;
    assert_eq!(r.status, 302, "{}", r.text);
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    (r.header("location").unwrap(), cookie)
}

fn path_of(url: &str) -> &str {
    url.strip_prefix("http://gw.test").unwrap()
}

/// Connects the holder of `key` as `user` at the authorization server.
async fn connect(h: &Harness, a: &Shared, key: &str, user: &str) {
    let (authorize, cookie) = start(h, key).await;
    assert!(
        authorize.starts_with("https://as.test/authorize?"),
        "{authorize}"
    );
    let back = oauth::log_in(a, &authorize, user);
    let r = h.send(get(path_of(&back), key, Some(&cookie))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("is connected"), "{}", r.text);
}

fn connect_url(result: &Value) -> String {
    assert_eq!(result["isError"], true, "{result}");
    let url = result["_meta"]["mcp-edge/connect"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with("http://gw.test/connect/tp?ticket="),
        "{url}"
    );
    assert!(result["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains(&url));
    url
}

#[tokio::test]
async fn a_call_without_a_connection_asks_to_connect_and_is_not_forwarded() {
    let (h, a) = harness();
    let result = whoami(&h, support::API_KEY).await;
    let url = connect_url(&result);
    // The upstream heard nothing: no token was ever issued or used.
    assert!(a.borrow().issued.is_empty());
    assert!(
        !h.p.http.sent().iter().any(|u| u == oauth::MCP),
        "{:?}",
        h.p.http.sent()
    );

    // The prompt's URL opens a page naming who connects what; its button
    // (a POST carrying the page's SameSite=Strict cookie) starts the flow
    // for that caller without their key. A page elsewhere submitting the
    // form has no such cookie: refused.
    let r = h.send(get(path_of(&url), "", None)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.contains("apikey|tester") && r.text.contains("<form method=\"post\""),
        "{}",
        r.text
    );
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let field = |name: &str| {
        let at = r.text.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        r.text[at..].split('"').next().unwrap().to_string()
    };
    let body = format!("ticket={}&confirm={}", field("ticket"), field("confirm"));
    let press = |cookie: Option<String>| {
        let mut req = http::Request::post("http://gw.test/connect/tp")
            .header("host", "gw.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-no-credential", "1");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.body(body.clone().into_bytes()).unwrap()
    };
    assert_eq!(h.send(press(None)).await.status, 403);
    assert_eq!(
        h.send(press(Some("mcp-edge-confirm=other".into())))
            .await
            .status,
        403
    );
    let r = h.send(press(Some(cookie.clone()))).await;
    assert_eq!(r.status, 302, "{}", r.text);
    assert!(r
        .header("location")
        .unwrap()
        .starts_with("https://as.test/authorize?"));
    // The link starts one connect: pressed again (or passed on), refused.
    let r = h.send(press(Some(cookie))).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("used already"), "{}", r.text);
    let other = path_of(&url).replace("/connect/tp?", "/connect/notes?");
    let r = h.send(get(&other, "", None)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // Without PUBLIC_URL, a callback address made from the Host header
    // (the caller's to choose, here not this machine) is refused.
    let unset = h.another_isolate();
    let r = unset.send(get("/connect/tp", support::API_KEY, None)).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(r.text.contains("PUBLIC_URL"), "{}", r.text);
    let forged = format!("{}x", path_of(&url));
    assert_eq!(h.send(get(&forged, "", None)).await.status, 401);
}

#[tokio::test]
async fn two_users_connect_and_each_call_carries_their_own_token() {
    let (h, a) = harness();
    connect(&h, &a, support::API_KEY, "alice").await;
    // Bob is not connected by Alice's connect.
    connect_url(&whoami(&h, BOB).await);
    connect(&h, &a, BOB, "bob").await;
    for _ in 0..2 {
        assert_eq!(
            whoami(&h, support::API_KEY).await["content"][0]["text"],
            "you are alice"
        );
        assert_eq!(whoami(&h, BOB).await["content"][0]["text"], "you are bob");
    }
    // Arguments are checked against each user's own schema, never the
    // first lister's (which would also show one user's values to another).
    let mine = whoami_with(&h, BOB, json!({"repo": "bob-repo"})).await;
    assert_eq!(mine["content"][0]["text"], "you are bob", "{mine}");
    let params = json!({"name": "tp__whoami", "arguments": {"repo": "bob-repo"}});
    let r = h
        .send(modern_request("/mcp", 8, "tools/call", params, &[]))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("'alice-repo'") && !r.text.contains("bob-repo'"),
        "{}",
        r.text
    );
    // Each lists only their own connection; no token in the listing.
    let r = h.send(get("/connections", BOB, None)).await;
    assert_eq!(r.status, 200);
    let list = r.json()["connections"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["server"], "tp");
    for t in &a.borrow().issued {
        assert!(!r.text.contains(t.as_str()));
    }
}

#[tokio::test]
async fn a_callback_replayed_by_another_caller_or_twice_fails() {
    let (h, a) = harness();
    let (authorize, cookie) = start(&h, support::API_KEY).await;
    let back = oauth::log_in(&a, &authorize, "alice");
    // Another caller's browser (no binding cookie, or its own) is refused,
    // and that use spends the state: the flow must start again.
    let (_, bobs_cookie) = start(&h, BOB).await;
    let r = h.send(get(path_of(&back), BOB, Some(&bobs_cookie))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("another browser"), "{}", r.text);
    let r = h
        .send(get(path_of(&back), support::API_KEY, Some(&cookie)))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(a.borrow().code_grants, 0);
    connect_url(&whoami(&h, BOB).await);
    connect_url(&whoami(&h, support::API_KEY).await);

    // A fresh flow finishes once; its callback replayed finds nothing.
    let (authorize, cookie) = start(&h, support::API_KEY).await;
    let back = oauth::log_in(&a, &authorize, "alice");
    assert_eq!(
        h.send(get(path_of(&back), support::API_KEY, Some(&cookie)))
            .await
            .status,
        200
    );
    let r = h
        .send(get(path_of(&back), support::API_KEY, Some(&cookie)))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(a.borrow().code_grants, 1);

    // Mix-up: an answer for `tp`'s flow brought to another server's
    // callback is refused (one redirect URI per server).
    let (authorize, cookie) = start(&h, support::API_KEY).await;
    let back = oauth::log_in(&a, &authorize, "alice");
    let elsewhere = path_of(&back).replace("/connect/tp/callback", "/connect/other/callback");
    let r = h
        .send(get(&elsewhere, support::API_KEY, Some(&cookie)))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("another server"), "{}", r.text);

    // RFC 9207: an answer naming another issuer is a mix-up, refused.
    let (authorize, cookie) = start(&h, support::API_KEY).await;
    let back = oauth::log_in(&a, &authorize, "alice");
    let mixed = format!("{}&iss=https%3A%2F%2Fevil.test", path_of(&back));
    let r = h.send(get(&mixed, support::API_KEY, Some(&cookie))).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(
        r.text.contains("another authorization server"),
        "{}",
        r.text
    );
    assert_eq!(a.borrow().code_grants, 1);

    // PKCE: a code the server issued for another flow's challenge does not
    // exchange with this flow's verifier.
    let (first, cookie1) = start(&h, support::API_KEY).await;
    let (second, _) = start(&h, support::API_KEY).await;
    let code_for_second = oauth::log_in(&a, &second, "alice");
    let code = code_for_second
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let state_of_first = first
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let swapped = format!("/connect/tp/callback?code={code}&state={state_of_first}");
    let r = h
        .send(get(&swapped, support::API_KEY, Some(&cookie1)))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("invalid_grant"), "{}", r.text);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_refreshed_once_for_concurrent_calls() {
    let (h, a) = harness();
    a.borrow_mut().ttl_secs = 60;
    connect(&h, &a, support::API_KEY, "alice").await;
    assert_eq!(
        whoami(&h, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    let calls = (0..4).map(|_| whoami(&h, support::API_KEY));
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result["content"][0]["text"], "you are alice", "{result}");
    }
    assert_eq!(a.borrow().refresh_grants, 1, "one refresh for four calls");
    // Another isolate reads the refreshed record: no second refresh.
    let other = h.another_isolate();
    assert_eq!(
        whoami(&other, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
    assert_eq!(a.borrow().refresh_grants, 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_asks_to_connect_again() {
    let (h, a) = harness();
    a.borrow_mut().ttl_secs = 60;
    connect(&h, &a, support::API_KEY, "alice").await;
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    // Throttled, or the client misconfigured: the call fails, the
    // connection stays, and works again once the server does.
    for refusal in [(429, "slow_down"), (401, "invalid_client")] {
        a.borrow_mut().refuse_refresh = Some(refusal);
        let result = whoami(&h, support::API_KEY).await;
        assert!(result["_meta"]["mcp-edge/connect"].is_null(), "{result}");
        assert!(h.p.connections.dump().contains("\"server\":\"tp\""));
    }
    a.borrow_mut().refuse_refresh = None;
    assert_eq!(
        whoami(&h, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
    // The refresh token refused for good: connect again.
    tokio::time::advance(std::time::Duration::from_secs(3700)).await;
    a.borrow_mut().refuse_refresh = Some((400, "invalid_grant"));
    connect_url(&whoami(&h, support::API_KEY).await);
    assert!(
        h.p.connections.dump().len() < 10,
        "the connection is gone: {}",
        h.p.connections.dump()
    );
}

#[tokio::test]
async fn tokens_are_sealed_at_rest() {
    let (h, a) = harness();
    connect(&h, &a, support::API_KEY, "alice").await;
    // A connect in flight holds its verifier sealed too.
    start(&h, BOB).await;
    let stored = h.p.connections.dump();
    assert!(stored.contains("\"server\":\"tp\""), "{stored}");
    let issued = a.borrow().issued.clone();
    assert_eq!(issued.len(), 2);
    for token in &issued {
        assert!(
            !stored.contains(token.as_str()),
            "{token} stored in clear: {stored}"
        );
    }
    // Under another key the connection does not open: the caller is asked
    // to connect again, and the record stays for the right key.
    h.p.runtime.secrets.borrow_mut().insert(
        "CONNECTIONS_KEY".into(),
        "another key, also 32 bytes or more".into(),
    );
    let other = h.another_isolate();
    connect_url(&whoami(&other, support::API_KEY).await);
    h.p.runtime
        .secrets
        .borrow_mut()
        .insert("CONNECTIONS_KEY".into(), oauth::CONNECTIONS_KEY.into());
    let back = h.another_isolate();
    assert_eq!(
        whoami(&back, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
    // Without the key, nothing is usable: refused, not served (fail closed).
    h.p.runtime.secrets.borrow_mut().remove("CONNECTIONS_KEY");
    let fresh = h.another_isolate();
    let req = modern_request(
        "/mcp",
        7,
        "tools/call",
        json!({"name": "tp__whoami", "arguments": {}}),
        &[],
    );
    let r = fresh.send(req).await;
    assert!(r.text.contains("CONNECTIONS_KEY"), "{}", r.text);
    assert!(!r.text.contains("you are alice"));
}

#[tokio::test]
async fn revoking_is_immediate_and_calls_the_revocation_endpoint() {
    let (h, a) = harness();
    connect(&h, &a, support::API_KEY, "alice").await;
    connect(&h, &a, BOB, "bob").await;
    let del = http::Request::delete("http://gw.test/connections/tp")
        .header("host", "gw.test")
        .header("x-api-key", support::API_KEY)
        .body(Vec::new())
        .unwrap();
    let r = h.send(del).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["revoked"], true);
    assert_eq!(a.borrow().revocations.len(), 1);
    assert!(a.borrow().revocations[0].starts_with("rt-alice"));
    connect_url(&whoami(&h, support::API_KEY).await);
    assert_eq!(whoami(&h, BOB).await["content"][0]["text"], "you are bob");
    let again = http::Request::delete("http://gw.test/connections/tp")
        .header("host", "gw.test")
        .header("x-api-key", support::API_KEY)
        .body(Vec::new())
        .unwrap();
    assert_eq!(h.send(again).await.status, 404);
}

#[tokio::test]
async fn an_upstream_401_becomes_a_connect_prompt() {
    let (h, a) = harness();
    connect(&h, &a, support::API_KEY, "alice").await;
    // The server stops accepting the access token: the gateway takes the
    // 401 as the token's end and refreshes it, transparently.
    a.borrow_mut().access.clear();
    assert_eq!(
        whoami(&h, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
    assert_eq!(a.borrow().refresh_grants, 1);
    // Everything revoked behind the gateway's back: the 401 becomes a
    // prompt to connect again, not an opaque failure.
    a.borrow_mut().access.clear();
    a.borrow_mut().refresh.clear();
    connect_url(&whoami(&h, support::API_KEY).await);

    // A server registered without `oauth` that challenges: the error says
    // how to fix it and names its metadata, never an opaque failure.
    h.register(
        "plain",
        json!({"description": "no oauth", "timeout_ms": 1000,
               "endpoints": [{"region": "us", "url": oauth::MCP}]}),
    );
    let req = modern_request(
        "/mcp",
        8,
        "tools/call",
        json!({"name": "plain__whoami", "arguments": {}}),
        &[],
    );
    let r = h.send(req).await;
    assert!(r.text.contains("oauth-protected-resource"), "{}", r.text);
    assert!(r.text.contains("\\\"type\\\": \\\"oauth\\\""), "{}", r.text);
}

#[tokio::test]
async fn admins_see_who_is_connected_and_can_revoke() {
    let (h, a) = harness();
    connect(&h, &a, support::API_KEY, "alice").await;
    connect(&h, &a, BOB, "bob").await;
    let list = support::admin::get(&h, "/admin/connections").await;
    let rows = list["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{list}");
    for t in &a.borrow().issued {
        assert!(!list.to_string().contains(t.as_str()));
    }
    let bobs = rows
        .iter()
        .find(|r| r["principal"] == "apikey|bob")
        .unwrap();
    let id = bobs["id"].as_str().unwrap();
    let r =
        support::admin::call(&h, "DELETE", &format!("/admin/connections/{id}"), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    connect_url(&whoami(&h, BOB).await);
    assert_eq!(
        whoami(&h, support::API_KEY).await["content"][0]["text"],
        "you are alice"
    );
}

#[tokio::test]
async fn clients_that_declared_url_elicitation_are_sent_to_connect_in_their_own_era() {
    let (h, a) = harness();
    // Modern: an `input_required` URL elicitation, no state; the retry
    // after connecting is an ordinary call, and the answer stays here.
    let caps = json!({"elicitation": {"url": {}}});
    let r = support::modern_call(&h, ("/mcp", 3, "tp__whoami"), caps.clone(), json!({})).await;
    let result = &r.json()["result"];
    assert_eq!(result["resultType"], "input_required", "{result}");
    let ask = &result["inputRequests"]["mcp-edge/connect"];
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["mode"], "url");
    let url = ask["params"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http://gw.test/connect/tp?ticket="),
        "{url}"
    );
    assert!(result.get("requestState").is_none());
    connect(&h, &a, support::API_KEY, "alice").await;
    let answer = json!({"inputResponses": {"mcp-edge/connect": {"action": "accept"}}});
    let r = support::modern_call(&h, ("/mcp", 4, "tp__whoami"), caps, answer).await;
    assert_eq!(
        r.json()["result"]["content"][0]["text"],
        "you are alice",
        "{}",
        r.text
    );

    // Legacy (2025-11-25): the URL elicitation required error (-32042).
    let init = support::initialize_with(1, "2025-11-25", json!({"elicitation": {"url": {}}}));
    let r = h.post("/mcp", &init, &[("x-api-key", BOB)]).await;
    let sid = r.header("mcp-session-id").unwrap();
    let headers = [
        ("x-api-key", BOB),
        ("mcp-session-id", sid.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    h.post(
        "/mcp",
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        &headers,
    )
    .await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "tp__whoami", "arguments": {}}});
    let r = h.post("/mcp", &call, &headers).await;
    let error = &r.response()["error"];
    assert_eq!(error["code"], -32042, "{}", r.text);
    let elicitation = &error["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(elicitation["url"]
        .as_str()
        .unwrap()
        .starts_with("http://gw.test/connect/tp?ticket="));
}

#[tokio::test]
async fn a_server_found_from_its_own_metadata_is_connected_with_a_registered_client() {
    let (h, a) = harness();
    // Only `{"type": "oauth"}`: the authorization server comes from the
    // server's RFC 9728 metadata, the client from dynamic registration
    // (a public client: PKCE, no secret), registered once.
    for (key, user) in [(support::API_KEY, "alice"), (BOB, "bob")] {
        let r = h.send(get("/connect/pub", key, None)).await;
        assert_eq!(r.status, 302, "{}", r.text);
        let authorize = r.header("location").unwrap();
        assert!(authorize.contains("client_id=dcr-client"), "{authorize}");
        let cookie = r
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let back = oauth::log_in(&a, &authorize, user);
        assert!(
            back.starts_with("http://gw.test/connect/pub/callback?"),
            "{back}"
        );
        let r = h.send(get(path_of(&back), key, Some(&cookie))).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let params = json!({"name": "pub__whoami", "arguments": {}});
        let r = h
            .send(modern_request(
                "/mcp",
                9,
                "tools/call",
                params,
                &[("x-api-key", key)],
            ))
            .await;
        assert_eq!(
            r.json()["result"]["content"][0]["text"],
            format!("you are {user}"),
            "{}",
            r.text
        );
    }
    assert_eq!(a.borrow().registrations, 1);
    // The registration is the gateway's, not a user's: never listed.
    let list = support::admin::get(&h, "/admin/connections").await;
    let rows = list["connections"].as_array().unwrap();
    assert!(
        rows.iter().all(|r| r["principal"] != "~registered-client"),
        "{list}"
    );
    assert_eq!(rows.len(), 2, "{list}");
}
