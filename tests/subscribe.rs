//! Resource subscriptions on `/mcp`: a subscription goes to the server that
//! reads the URI (and no other), an unsubscription to the same one (or,
//! for a URI nobody reads, to every server met), an unknown URI is refused
//! before any server is subscribed, a server the caller may not see is
//! never asked, and updates come back on the merged GET stream.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{initialize, Harness};

fn harness() -> (Harness, Rc<MockServer>, Rc<MockServer>) {
    let h = Harness::new();
    let alpha = h.add(
        "alpha",
        MockServer::new("alpha")
            .tools(&["echo"])
            .resources(&["alpha://doc"]),
        &["us"],
    );
    let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
        "params": {"uri": "beta://doc"}});
    let beta = h.add(
        "beta",
        MockServer::new("beta")
            .tools(&["echo"])
            .resources(&["beta://doc"])
            .notices(vec![updated]),
        &["us"],
    );
    (h, alpha, beta)
}

async fn session(h: &Harness, key: &str) -> String {
    let r = h
        .post("/mcp", &initialize(1, "2025-06-18"), &[("x-api-key", key)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.header("mcp-session-id").unwrap()
}

async fn ask(h: &Harness, key: &str, sid: &str, method: &str, uri: &str) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": {"uri": uri}});
    h.post(
        "/mcp",
        &body,
        &[("x-api-key", key), ("mcp-session-id", sid)],
    )
    .await
    .response()
}

const KEY: &str = support::API_KEY;

#[tokio::test]
async fn mcp_offers_subscriptions_and_list_changes() {
    let (h, _, _) = harness();
    let r = h.post("/mcp", &initialize(1, "2025-06-18"), &[]).await;
    let caps = &r.json()["result"]["capabilities"];
    assert_eq!(caps["resources"]["subscribe"], true, "{caps}");
    assert_eq!(caps["tools"]["listChanged"], true, "{caps}");
}

#[tokio::test]
async fn a_subscription_goes_to_the_owner_only_and_its_updates_come_back() {
    let (h, alpha, beta) = harness();
    let sid = session(&h, KEY).await;
    let r = ask(&h, KEY, &sid, "resources/subscribe", "beta://doc").await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(beta.count("resources/subscribe"), 1);
    assert_eq!(alpha.count("resources/subscribe"), 0);
    let got = beta
        .seen()
        .into_iter()
        .find(|s| s.rpc_method.as_deref() == Some("resources/subscribe"))
        .unwrap();
    assert_eq!(got.body["params"]["uri"], "beta://doc");
    // The update beta sends on its stream reaches the client on /mcp's.
    let reply = h.listen_mcp(&sid, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .events()
            .iter()
            .any(|e| e["method"] == "notifications/resources/updated"
                && e["params"]["uri"] == "beta://doc"),
        "{}",
        reply.text
    );
    // Unsubscribing goes to the same server.
    let r = ask(&h, KEY, &sid, "resources/unsubscribe", "beta://doc").await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(beta.count("resources/unsubscribe"), 1);
    assert_eq!(alpha.count("resources/unsubscribe"), 0);
}

#[tokio::test]
async fn an_unknown_uri_is_refused_and_nobody_is_subscribed() {
    let (h, alpha, beta) = harness();
    let sid = session(&h, KEY).await;
    let r = ask(&h, KEY, &sid, "resources/subscribe", "gamma://nothing").await;
    assert_eq!(r["error"]["code"], -32002, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gamma://nothing"),
        "{r}"
    );
    assert_eq!(
        alpha.count("resources/subscribe") + beta.count("resources/subscribe"),
        0
    );
    // Unsubscribing from it reaches every server met, and is answered.
    let r = ask(&h, KEY, &sid, "resources/unsubscribe", "gamma://nothing").await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(alpha.count("resources/unsubscribe"), 1);
    assert_eq!(beta.count("resources/unsubscribe"), 1);
}

#[tokio::test]
async fn a_server_the_caller_may_not_see_is_never_asked() {
    let (h, alpha, beta) = harness();
    let mut entry = h.raw_entry("beta");
    entry["group"] = json!("prod");
    h.register("beta", entry);
    h.api_key("mk_dev", json!({"subject": "dev", "teams": ["eng"]}));
    let policy = json!({"rules": [
        {"name": "eng-all-but-prod", "effect": "allow", "subjects": {"teams": ["eng"]}, "groups": ["default", "dev"]}
    ]});
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    let sid = session(&h, "mk_dev").await;
    let r = ask(&h, "mk_dev", &sid, "resources/subscribe", "beta://doc").await;
    assert_eq!(r["error"]["code"], -32002, "{r}");
    assert!(beta.seen().is_empty(), "beta never hears of the caller");
    // The visible server still works.
    let r = ask(&h, "mk_dev", &sid, "resources/subscribe", "alpha://doc").await;
    assert_eq!(r["result"], json!({}), "{r}");
    assert_eq!(alpha.count("resources/subscribe"), 1);
}
