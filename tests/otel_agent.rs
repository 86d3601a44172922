//! The agent API's telemetry: one trace per request, an `invoke_agent`
//! span with a `chat` span per model call and an `execute_tool` span per
//! tool call (the pipeline's own spans under it), and usage rows per tool
//! call and per model call with its tokens. Installs the collector as the
//! process's subscriber (see `otel.rs`).

mod support;

use mcp_edge::ports::Usage;
use serde_json::{json, Value};
use support::model::*;
use support::otel::*;

#[tokio::test]
async fn an_agent_request_is_one_trace_with_model_and_tool_spans_and_usage_rows() {
    let (h, posts) = harness(&[]);
    let alpha = mcp_edge::adapters::memory::MockServer::new("alpha").tools(&["add", "echo"]);
    h.add("alpha", alpha, &["us"]);
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(
            200,
            asks(&[
                ("c1", "alpha__add", json!({"a": 1, "b": 2})),
                ("c2", "alpha__nope", json!({})),
            ]),
        )
        .then(200, says("3"));
    let (status, posted) = exported(&h, &posts, chat_request(&ask_model("demo", "add"), &[])).await;
    assert_eq!(status, 200);
    let spans = spans_of(&posted);
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let one = |name: &str| -> &Value {
        let found = named(&spans, name);
        assert_eq!(found.len(), 1, "one '{name}' in {names:?}");
        found[0]
    };
    let root = one("invoke_agent demo");
    assert_eq!(attr(root, "gen_ai.operation.name"), s("invoke_agent"));
    let chats = named(&spans, "chat scripted-1");
    assert_eq!(chats.len(), 2, "{names:?}");
    for chat in &chats {
        assert_eq!(chat["parentSpanId"], root["spanId"]);
        assert_eq!(attr(chat, "gen_ai.provider.name"), s("openai"));
        assert_eq!(
            attr(chat, "gen_ai.usage.input_tokens"),
            json!({"intValue": "10"})
        );
        assert_eq!(chat["kind"], 3, "a client span");
    }
    let add = one("execute_tool alpha__add");
    assert_eq!(add["parentSpanId"], root["spanId"]);
    assert_eq!(attr(add, "gen_ai.tool.call.id"), s("c1"));
    // The pipeline's spans of the call are under it: its upstream attempt.
    let under_add: Vec<&Value> = spans
        .iter()
        .filter(|s| s["parentSpanId"] == add["spanId"])
        .collect();
    assert!(
        under_add
            .iter()
            .any(|s| s["kind"] == 3
                && attr(s, "mcp_edge.server.id") == json!({"stringValue": "alpha"})),
        "{under_add:#?}"
    );
    let nope = one("execute_tool alpha__nope");
    assert_eq!(attr(nope, "error.type"), s("tool_error"));
    // The root is not taken for a tool call.
    assert_eq!(attr(root, "mcp.method.name"), Value::Null);

    let rows = h.p.usage.day(&today()).await.unwrap();
    let row = |server: &str, tool: &str| {
        rows.iter()
            .find(|(k, _)| k.server == server && k.tool == tool)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("a row for {server}/{tool}: {rows:?}"))
    };
    let add = row("alpha", "add");
    assert_eq!((add.calls, add.errors), (1, 0));
    let demo = row("models/demo", "");
    assert_eq!(
        (demo.calls, demo.input_tokens, demo.output_tokens),
        (2, 20, 10)
    );
    assert!(
        rows.iter().all(|(k, _)| k.principal == "apikey|tester"),
        "{rows:?}"
    );
}
