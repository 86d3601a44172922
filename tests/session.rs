//! Client sessions and protocol versions on the memory adapter: lifecycle,
//! negotiation, header rules, upstream sessions and their re-initialization.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::json;
use support::{initialize, Harness};

#[tokio::test]
async fn session_lifecycle_ends_in_404_after_delete() {
    let (h, a, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    assert_eq!(c.session.len(), 43, "256 random bits, base64url");
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(c.delete().await.status, 200);
    let (code, msg) = c.request("tools/list", json!({})).await.error(404);
    assert_eq!(code, -32000);
    assert!(msg.starts_with("Session not found"), "{msg}");
    assert_eq!(c.delete().await.status, 404, "deleting twice is 404 too");
    // The upstream session opened on the client's behalf ends after the response.
    h.p.run_deferred().await;
    assert!(a.seen().iter().any(|s| s.http_method == "DELETE"));
    assert!(h.p.sessions.is_empty());
}

#[tokio::test]
async fn session_ids_are_unique_and_unknown_ones_are_404() {
    let (h, _, _) = Harness::two_servers();
    let a = h.connect("/mcp").await;
    let b = h.connect("/mcp").await;
    assert_ne!(a.session, b.session);
    let list = json!({"jsonrpc":"2.0","id":5,"method":"tools/list"});
    let forged = "A".repeat(43);
    for id in [
        forged.as_str(),
        "short",
        "with spaces and more characters than forty-three...",
    ] {
        let r = h.post("/mcp", &list, &[("mcp-session-id", id)]).await;
        assert_eq!(r.status, 404, "{id}");
        assert_eq!(r.json()["id"], 5, "the error echoes the request id");
    }
}

#[tokio::test]
async fn requests_without_a_session_are_400() {
    let (h, _, _) = Harness::two_servers();
    let r = h
        .post(
            "/mcp",
            &json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
            &[],
        )
        .await;
    let (code, msg) = r.error(400);
    assert_eq!(
        (code, msg.as_str()),
        (-32000, "Bad Request: Mcp-Session-Id header is required")
    );
}

#[tokio::test]
async fn a_session_belongs_to_the_endpoint_that_opened_it() {
    let (h, _, _) = Harness::two_servers();
    let c = h.connect("/mcp").await;
    let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
    let r = h
        .post(
            "/servers/alpha/mcp",
            &list,
            &[("mcp-session-id", &c.session)],
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(start_paused = true)]
async fn sessions_expire() {
    let h = Harness::with_var("SESSION_TTL_SECS", "60");
    h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
    let mut c = h.connect("/mcp").await;
    assert_eq!(c.request("ping", json!({})).await.status, 200);
    tokio::time::advance(std::time::Duration::from_secs(61)).await;
    assert_eq!(c.request("ping", json!({})).await.status, 404);
    assert!(
        h.p.sessions.is_empty(),
        "an expired session is removed when found"
    );
}

#[tokio::test]
async fn version_negotiation() {
    let (h, _, _) = Harness::two_servers();
    for (asked, got) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2024-11-05", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),
    ] {
        let r = h.post("/mcp", &initialize(1, asked), &[]).await;
        assert_eq!(r.json()["result"]["protocolVersion"], got, "asked {asked}");
    }
    let r = h
        .post(
            "/mcp",
            &json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}),
            &[],
        )
        .await;
    let (code, msg) = r.error(200);
    assert_eq!(code, -32602);
    assert!(msg.contains("protocolVersion"), "{msg}");
}

#[tokio::test]
async fn protocol_version_header_rules() {
    let (h, _, _) = Harness::two_servers();
    let c = h.connect("/mcp").await;
    let ping = json!({"jsonrpc":"2.0","id":9,"method":"ping"});
    let ok = h
        .post("/mcp", &ping, &[("mcp-session-id", &c.session)])
        .await;
    assert_eq!(ok.status, 200, "a missing header means 2025-03-26");
    let ok = h
        .post(
            "/mcp",
            &ping,
            &[
                ("mcp-session-id", &c.session),
                ("mcp-protocol-version", "2025-11-25"),
            ],
        )
        .await;
    assert_eq!(ok.status, 200);
    let bad = h
        .post(
            "/mcp",
            &ping,
            &[
                ("mcp-session-id", &c.session),
                ("mcp-protocol-version", "1.0"),
            ],
        )
        .await;
    let (code, msg) = bad.error(400);
    assert_eq!(
        (code, msg.as_str()),
        (
            -32000,
            "Bad Request: unsupported MCP-Protocol-Version '1.0'"
        )
    );
}

#[tokio::test]
async fn the_upstream_session_is_recorded_in_the_store_and_reused_across_isolates() {
    let (h, a, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "1"}}),
    )
    .await;
    let record = h.p.sessions.snapshot(&c.session).unwrap();
    assert_eq!(
        record.upstreams["alpha"].session_id.as_deref(),
        Some("alpha-session-1")
    );
    assert_eq!(record.upstreams["alpha"].protocol_version, "2025-06-18");
    // A second gateway (another isolate) sharing the store reuses it.
    let other = std::rc::Rc::new(mcp_edge::Gateway::new(Default::default()));
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"alpha__echo","arguments":{"text":"2"}}});
    let req = http::Request::post("http://gw.test/mcp")
        .header("content-type", "application/json")
        .header("accept", support::ACCEPT_BOTH)
        .header("mcp-session-id", &c.session)
        .header("x-api-key", support::API_KEY)
        .body(call.to_string().into_bytes())
        .unwrap();
    let r = support::Reply::read(other.handle(&h.p, req, &h.meta).await).await;
    assert_eq!(r.json()["result"]["content"][0]["text"], "2");
    assert_eq!(a.count("initialize"), 1);
    let call = a
        .seen()
        .into_iter()
        .filter(|s| s.rpc_method.as_deref() == Some("tools/call"))
        .last()
        .unwrap();
    assert_eq!(call.headers["mcp-session-id"], "alpha-session-1");
    assert_eq!(call.headers["mcp-protocol-version"], "2025-06-18");
}

#[tokio::test]
async fn a_lost_upstream_session_is_reinitialized_once_transparently() {
    for status in [404, 400] {
        let h = Harness::new();
        let s = h.add(
            "alpha",
            MockServer::new("alpha")
                .tools(&["echo"])
                .lost_session_status(status),
            &["us"],
        );
        let mut c = h.connect("/mcp").await;
        c.result(
            "tools/call",
            json!({"name": "alpha__echo", "arguments": {"text": "1"}}),
        )
        .await;
        s.forget_sessions();
        let r = c
            .result(
                "tools/call",
                json!({"name": "alpha__echo", "arguments": {"text": "2"}}),
            )
            .await;
        assert_eq!(r["content"][0]["text"], "2", "status {status}");
        assert_eq!(s.count("initialize"), 2);
        let record = h.p.sessions.snapshot(&c.session).unwrap();
        assert_eq!(
            record.upstreams["alpha"].session_id.as_deref(),
            Some("alpha-session-2")
        );
    }
}

#[tokio::test]
async fn notifications_are_accepted_with_202() {
    let (h, a, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "1"}}),
    )
    .await;
    let r = c
        .notify(
            "notifications/cancelled",
            json!({"requestId": 3, "reason": "user"}),
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(r.text.is_empty());
    assert_eq!(
        a.count("notifications/cancelled"),
        1,
        "cancellation reaches upstreams of this session"
    );
    let resp = json!({"jsonrpc":"2.0","id":"srv-1","result":{}});
    let r = h
        .post("/mcp", &resp, &[("mcp-session-id", &c.session)])
        .await;
    assert_eq!(r.status, 202);
}

#[tokio::test(start_paused = true)]
async fn steady_state_lookups_come_from_the_isolate_cache() {
    let (h, _, _) = Harness::two_servers();
    let mut c = h.connect("/mcp").await;
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "warm"}}),
    )
    .await;
    let before = h.p.sessions.reads();
    for _ in 0..5 {
        c.result(
            "tools/call",
            json!({"name": "alpha__echo", "arguments": {"text": "x"}}),
        )
        .await;
    }
    assert_eq!(
        h.p.sessions.reads(),
        before,
        "no store round trip within SESSION_CACHE_MS"
    );
    tokio::time::advance(std::time::Duration::from_millis(1001)).await;
    c.result(
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "x"}}),
    )
    .await;
    assert_eq!(
        h.p.sessions.reads(),
        before + 1,
        "the entry is re-read once it ages out"
    );
}

#[tokio::test(start_paused = true)]
async fn a_delete_through_another_isolate_is_seen_when_the_cache_entry_ages_out() {
    for cache_ms in ["1000", "0"] {
        let settings = support::setting("SESSION_CACHE_MS", cache_ms);
        let h = Harness::with_settings(settings.clone());
        h.add("alpha", MockServer::new("alpha").tools(&["echo"]), &["us"]);
        let mut c = h.connect("/mcp").await;
        assert_eq!(c.request("ping", json!({})).await.status, 200);
        // Another isolate, same store, ends the session.
        let other = std::rc::Rc::new(mcp_edge::Gateway::new(settings));
        let del = http::Request::delete("http://gw.test/mcp")
            .header("mcp-session-id", &c.session)
            .header("x-api-key", support::API_KEY)
            .body(Vec::new())
            .unwrap();
        assert_eq!(other.handle(&h.p, del, &h.meta).await.status(), 200);
        let status = c.request("ping", json!({})).await.status;
        if cache_ms == "0" {
            assert_eq!(
                status, 404,
                "without the cache every isolate sees a DELETE at once"
            );
        } else {
            assert_eq!(
                status, 200,
                "within SESSION_CACHE_MS this isolate still has the record"
            );
            tokio::time::advance(std::time::Duration::from_millis(1001)).await;
            assert_eq!(c.request("ping", json!({})).await.status, 404);
        }
    }
}
