//! SECURITY.md, malicious upstream: personal data a redact rule covers never
//! reaches the client, on any path that carries the server's content, and
//! an upstream cannot stall or flood the gateway with what it sends. Issue
//! 9, items 3 (linear scanners), 4 (every path) and 10 (one event's size).

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::rc::Rc;
use support::{Client, Harness};

const TOOLS: &[&str] = &[
    "leak",
    "log_pii",
    "dashes",
    "not_json",
    "fail_pii",
    "huge_event",
    "echo",
    "wrong_id",
    "forge",
];

/// `notes` under a server-wide redact rule (every kind), with prompts and
/// a server-to-client stream.
fn harness() -> (Harness, Rc<MockServer>) {
    let h = Harness::with_var("MAX_UPSTREAM_BYTES", "65536");
    let notes = h.add(
        "notes",
        MockServer::new("notes")
            .tools(TOOLS)
            .prompts(&["pii_brief", "plain"])
            .get_stream(),
        &["us"],
    );
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "redact": [{"servers": ["notes"]}]
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    (h, notes)
}

/// A notes tool as `path` names it.
fn tool_name(path: &str, tool: &str) -> String {
    match path {
        "/mcp" => format!("notes__{tool}"),
        _ => tool.to_string(),
    }
}

/// Every email address a text still holds.
fn emails(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || "\"'{}[],:".contains(c))
        .filter(|w| w.contains("@corp.example"))
        .collect()
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        emails(text).is_empty(),
        "{what} leaked {:?}: {text}",
        emails(text)
    );
    assert!(text.contains("[EMAIL]"), "{what} was redacted: {text}");
}

#[tokio::test]
async fn prompts_are_redacted_on_both_endpoints_embedded_resources_included() {
    let (h, _) = harness();
    for (path, name) in [
        ("/mcp", "notes__pii_brief"),
        ("/servers/notes/mcp", "pii_brief"),
    ] {
        let mut c = h.connect(path).await;
        let r = c.request("prompts/get", json!({"name": name})).await;
        assert_clean(&format!("prompts/get on {path}"), &r.text);
        let v = r.response();
        assert_eq!(
            v["result"]["messages"][1]["content"]["resource"]["text"],
            "[EMAIL]"
        );
    }
}

#[tokio::test]
async fn errors_notifications_and_other_methods_are_redacted() {
    let (h, _) = harness();
    for path in ["/mcp", "/servers/notes/mcp"] {
        let mut c = h.connect(path).await;
        let name = |t: &str| tool_name(path, t);
        let r = c
            .request("tools/call", json!({"name": name("fail_pii")}))
            .await;
        assert_clean(&format!("a JSON-RPC error on {path}"), &r.text);
        assert_eq!(r.response()["error"]["data"]["owner"], "[EMAIL]");
        let r = c
            .request(
                "tools/call",
                json!({"name": name("log_pii"), "_meta": {"progressToken": 9}}),
            )
            .await;
        assert!(r.is_sse());
        assert_clean(
            &format!("log and progress notifications on {path}"),
            &r.text,
        );
        assert_eq!(r.events().len(), 3, "{}", r.text);
    }
    let mut c = h.connect("/servers/notes/mcp").await;
    let r = c
        .request(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "plain"}, "argument": {"name": "to", "value": ""}}),
        )
        .await;
    assert_clean("completion/complete", &r.text);
}

#[tokio::test]
async fn the_per_server_get_stream_is_redacted_and_keeps_its_event_ids() {
    let (h, _) = harness();
    let c = h.connect("/servers/notes/mcp").await;
    // Any call opens the upstream session the stream belongs to.
    let mut c = c;
    c.result(
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
    )
    .await;
    let req = http::Request::get("http://gw.test/servers/notes/mcp")
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &c.session)
        .header("mcp-protocol-version", &c.version)
        .body(Vec::new())
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_clean("the GET stream", &r.text);
    assert!(r.text.contains("id: ev-1"), "resumable: {}", r.text);
    assert!(r.text.contains("id: [EMAIL]"), "event ids too: {}", r.text);
    assert!(r.text.contains("event: [EMAIL]"), "{}", r.text);
}

#[tokio::test]
async fn an_answer_that_cannot_be_read_for_redaction_is_refused() {
    let (h, _) = harness();
    for (path, tool) in [
        ("/mcp", "notes__not_json"),
        ("/servers/notes/mcp", "not_json"),
    ] {
        let mut c = h.connect(path).await;
        let r = c.request("tools/call", json!({"name": tool})).await;
        assert!(!r.text.contains("frank@"), "passed on raw: {}", r.text);
        let v = r.response();
        assert_eq!(v["error"]["code"], -32001, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("invalid JSON-RPC"), "refused: {v}");
    }
}

#[tokio::test]
async fn a_redacted_answer_of_adversarial_text_completes() {
    // 512 KiB of '-' made the email scanner quadratic (minutes of CPU).
    let (h, _) = harness();
    let h = Harness {
        gw: std::rc::Rc::new(mcp_edge::Gateway::new(support::setting(
            "MAX_UPSTREAM_BYTES",
            "4194304",
        ))),
        ..h
    };
    let mut c = h.connect("/mcp").await;
    let n = 512 * 1024;
    let r: Value = c
        .result(
            "tools/call",
            json!({"name": "notes__dashes", "arguments": {"n": n}}),
        )
        .await;
    assert_eq!(r["content"][0]["text"].as_str().unwrap().len(), n);
}

#[tokio::test]
async fn an_event_larger_than_max_upstream_bytes_ends_the_stream_cleanly() {
    let (h, _) = harness();
    let mut c: Client<'_> = h.connect("/mcp").await;
    let r = c
        .request(
            "tools/call",
            json!({"name": "notes__huge_event", "arguments": {"bytes": 200_000}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let last = r.events().pop().unwrap();
    assert_eq!(last["error"]["code"], -32001, "{last}");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_UPSTREAM_BYTES"),
        "{last}"
    );
    assert!(r.text.len() < 10_000, "the event was not relayed");
}

#[tokio::test]
async fn a_failed_listing_is_redacted_too() {
    // Validation lists the server before the first call: its error text is
    // the server's content.
    let h = Harness::new();
    h.add(
        "crm",
        MockServer::new("crm")
            .tools(&["echo"])
            .list_error("listing denied for jane.doe@corp.example"),
        &["us"],
    );
    let policy = json!({
        "rules": [{"name": "all", "effect": "allow", "subjects": {"everyone": true}}],
        "redact": [{"servers": ["crm"]}]
    });
    h.p.kv.put("policy", &policy.to_string());
    h.gw.reload_config();
    for (path, name) in [("/mcp", "crm__echo"), ("/servers/crm/mcp", "echo")] {
        let mut c = h.connect(path).await;
        let r = c
            .request("tools/call", json!({"name": name, "arguments": {}}))
            .await;
        assert_clean(&format!("a failed listing on {path}"), &r.text);
        let r = c.request("tools/list", json!({})).await;
        assert!(emails(&r.text).is_empty(), "{path} tools/list: {}", r.text);
    }
}

#[tokio::test]
async fn an_upstream_cannot_answer_another_request() {
    let (h, _) = harness();
    for path in ["/mcp", "/servers/notes/mcp"] {
        let mut c = h.connect(path).await;
        let name = |t: &str| tool_name(path, t);
        let r = c
            .request("tools/call", json!({"name": name("forge")}))
            .await;
        assert!(!r.text.contains("forged"), "{path}: {}", r.text);
        assert_eq!(r.events().len(), 1, "{path}: only the call's own answer");
        assert_eq!(r.response()["result"]["content"][0]["text"], "real");
        let r = c
            .request("tools/call", json!({"name": name("wrong_id")}))
            .await;
        assert!(!r.text.contains("forged"), "{path}: {}", r.text);
        let v = r.response();
        assert_eq!(v["error"]["code"], -32001, "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("instead of"),
            "{v}"
        );
    }
}
