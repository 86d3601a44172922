//! The agent API's loop on the memory adapter (`/v1/chat/completions`):
//! tools run through the pipeline and their results go back to the model;
//! `max_steps`; parallel calls; tool errors; provider failover; the
//! caller's own tools returned unrun; streaming. Governance and the
//! provider's key: `agent_governance.rs`.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use std::cell::Cell;
use std::rc::Rc;
use support::model::*;
use support::Harness;

async fn chat(h: &Harness, body: &Value) -> (u16, Value) {
    chat_as(h, body, support::API_KEY).await
}

fn answer(v: &Value) -> &str {
    v["choices"][0]["message"]["content"].as_str().unwrap_or("")
}

/// The tool messages the `n`th model call was sent.
fn tool_results(model: &ScriptedModel, n: usize) -> Vec<String> {
    model.bodies()[n]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_loop_runs_each_tool_call_through_the_pipeline_and_answers() {
    let (h, alpha, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(200, asks(&[("c1", "alpha__add", json!({"a": 2, "b": 3}))]))
        .then(200, asks(&[("c2", "beta__echo", json!({"text": "hi"}))]))
        .then(200, says("the sum is 5 and the echo hi"));
    let (status, v) = chat(&h, &ask_model("demo", "add and echo")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(answer(&v), "the sum is 5 and the echo hi");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 30);
    assert_eq!(v["mcp_edge"]["steps"], 3);
    assert_eq!(v["mcp_edge"]["tool_calls"][0]["name"], "alpha__add");
    // Each result went back to the model, after the call that asked for it.
    assert_eq!(tool_results(&model, 1), ["5"]);
    assert_eq!(tool_results(&model, 2), ["5", "hi"]);
    assert_eq!(
        model.bodies()[0]["model"],
        "scripted-1",
        "the provider's id"
    );
    // What the loop added, for the caller to keep: two tool-call turns and
    // their results.
    let added: Vec<&str> = v["mcp_edge"]["messages"]
        .as_array()
        .expect("mcp_edge.messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["assistant", "tool", "assistant", "tool"]);
    // The model was offered the caller's tools under their names on /mcp.
    let offered = model.offered(0);
    assert!(offered.contains(&"alpha__add".to_string()), "{offered:?}");
    assert!(offered.contains(&"beta__search".to_string()));
    assert_eq!(alpha.count("tools/call"), 1);
}

#[tokio::test]
async fn sampling_members_pass_on_and_a_forced_tool_choice_holds_for_the_first_step() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({"max_tokens": 100}));
    model
        .then(200, asks(&[("c1", "alpha__echo", json!({"text": "x"}))]))
        .then(200, says("done"));
    let mut body = ask_model("demo", "hi");
    body["tool_choice"] = json!("required");
    body["stop"] = json!(["END"]);
    body["seed"] = json!(7);
    body["max_tokens"] = json!(500);
    let (status, v) = chat(&h, &body).await;
    assert_eq!((status, answer(&v)), (200, "done"), "{v}");
    let sent = model.bodies();
    assert_eq!(sent[0]["tool_choice"], "required");
    assert!(
        sent[1].get("tool_choice").is_none(),
        "a forced choice would never let it answer"
    );
    assert_eq!(
        (sent[1]["stop"].clone(), sent[1]["seed"].clone()),
        (json!(["END"]), json!(7))
    );
    assert_eq!(
        sent[0]["max_completion_tokens"], 100,
        "the model's cap wins"
    );
    body["n"] = json!(3);
    assert_eq!(chat(&h, &body).await.0, 400);
}

#[tokio::test]
async fn max_steps_ends_a_model_that_never_stops_asking() {
    let (h, alpha, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({"max_steps": 2}));
    for i in 0..5 {
        model.then(
            200,
            asks(&[(&format!("c{i}"), "alpha__echo", json!({"text": "again"}))]),
        );
    }
    let (status, v) = chat(&h, &ask_model("demo", "loop")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["mcp_edge"]["stopped"], "max_steps");
    assert_eq!(model.bodies().len(), 2, "two model calls, no third");
    assert_eq!(alpha.count("tools/call"), 2);
    assert!(answer(&v).contains("max_steps"), "{v}");
}

#[tokio::test]
async fn a_turn_asking_for_too_many_calls_runs_the_first_sixteen() {
    let (h, alpha, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    let ids: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let calls: Vec<(&str, &str, Value)> = ids
        .iter()
        .map(|id| (id.as_str(), "alpha__echo", json!({"text": "x"})))
        .collect();
    model.then(200, asks(&calls)).then(200, says("ok"));
    let (status, v) = chat(&h, &ask_model("demo", "flood")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(alpha.count("tools/call"), 16);
    let results = tool_results(&model, 1);
    assert_eq!(results.len(), 20, "every call is answered");
    assert!(
        results[16..].iter().all(|r| r.contains("at most 16")),
        "{results:?}"
    );
}

#[tokio::test]
async fn the_calls_of_one_turn_run_side_by_side() {
    let h = Harness::new();
    // Each server holds its call until the other's has arrived too: run one
    // after the other, the first would wait in vain (and the test fail).
    let arrived = Rc::new(Cell::new(0));
    let met = Rc::new(Cell::new(true));
    for id in ["alpha", "beta"] {
        let server = Rc::new(MockServer::new(id).tools(&["echo"]));
        let (arrived, met) = (arrived.clone(), met.clone());
        h.p.http
            .mount_fn(&format!("http://{id}.us.test/mcp"), move |req| {
                let (server, arrived, met) = (server.clone(), arrived.clone(), met.clone());
                Box::pin(async move {
                    if String::from_utf8_lossy(req.body()).contains("\"tools/call\"") {
                        arrived.set(arrived.get() + 1);
                        let mut waited = 0;
                        while arrived.get() < 2 && waited < 400 {
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            waited += 5;
                        }
                        met.set(met.get() && arrived.get() >= 2);
                    }
                    server.handle(req).await
                })
            });
        h.register(id, json!({"endpoints": [{"region": "us", "url": format!("http://{id}.us.test/mcp")}], "timeout_ms": 3000}));
    }
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(
            200,
            asks(&[
                ("a", "alpha__echo", json!({"text": "one"})),
                ("b", "beta__echo", json!({"text": "two"})),
            ]),
        )
        .then(200, says("done"));
    let (status, v) = chat(&h, &ask_model("demo", "both")).await;
    assert_eq!((status, answer(&v)), (200, "done"), "{v}");
    assert_eq!(arrived.get(), 2);
    assert!(
        met.get(),
        "each call waited for the other: they ran side by side"
    );
    assert_eq!(
        tool_results(&model, 1),
        ["one", "two"],
        "results in the order asked"
    );
}

#[tokio::test]
async fn tool_errors_go_back_to_the_model_as_results() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(
            200,
            asks(&[
                ("a", "alpha__nope", json!({})),
                ("b", "alpha__echo", json!("{not json")),
                ("c", "alpha__add", json!({"a": "x"})),
            ]),
        )
        .then(200, says("recovered"));
    let (status, v) = chat(&h, &ask_model("demo", "break things")).await;
    assert_eq!((status, answer(&v)), (200, "recovered"), "{v}");
    let results = tool_results(&model, 1);
    assert!(
        results[0].contains("no tool named alpha__nope"),
        "{results:?}"
    );
    assert!(results[1].contains("not a JSON object"), "{results:?}");
    let errors: Vec<&Value> = v["mcp_edge"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(errors[0]["is_error"], true);
    assert_eq!(errors[1]["is_error"], true);
}

#[tokio::test]
async fn a_provider_5xx_fails_over_to_the_next_region_and_all_failing_is_a_502() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["eu", "us"], json!({}));
    // One script, both regions: the first answer is eu's 503.
    model
        .then(503, json!({"error": {"message": "overloaded"}}))
        .then(200, says("from us"));
    let (status, v) = chat(&h, &ask_model("demo", "hi")).await;
    assert_eq!((status, answer(&v)), (200, "from us"), "{v}");
    let urls: Vec<String> =
        h.p.http
            .sent()
            .into_iter()
            .filter(|u| u.contains("model."))
            .collect();
    assert_eq!(
        urls,
        [
            "POST http://model.eu.test/v1/chat/completions",
            "POST http://model.us.test/v1/chat/completions"
        ]
    );

    model
        .then(500, json!({"error": {"message": "down"}}))
        .then(502, json!({"error": {"message": "also down"}}));
    let (status, v) = chat(&h, &ask_model("demo", "hi")).await;
    assert_eq!(status, 502, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("eu: HTTP 500 down") && message.contains("us: HTTP 502 also down"),
        "{message}"
    );

    // A refusal every region would repeat is not retried elsewhere.
    model.then(400, json!({"error": {"message": "bad tool schema"}}));
    let before = model.bodies().len();
    let (status, v) = chat(&h, &ask_model("demo", "hi")).await;
    assert_eq!(status, 502, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad tool schema"));
    assert_eq!(model.bodies().len(), before + 1);
}

#[tokio::test]
async fn the_callers_own_tools_are_offered_and_returned_unrun() {
    let (h, alpha, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    model.then(
        200,
        asks(&[("mine-1", "lookup_weather", json!({"city": "Oslo"}))]),
    );
    let mut body = ask_model("demo", "weather?");
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup_weather", "parameters": {"type": "object"}}}]);
    let (status, v) = chat(&h, &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        (call["id"].as_str(), call["function"]["name"].as_str()),
        (Some("mine-1"), Some("lookup_weather"))
    );
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert!(model.offered(0).contains(&"lookup_weather".to_string()));
    assert_eq!(alpha.count("tools/call"), 0, "nothing ran");

    // A name of the caller's that is a gateway tool's too is refused.
    body["tools"][0]["function"]["name"] = json!("alpha__echo");
    let (status, v) = chat(&h, &body).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn streaming_sends_the_tool_events_then_the_answer_in_chunks() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    let long = "x".repeat(150);
    model
        .then(200, asks(&[("c1", "alpha__echo", json!({"text": "hi"}))]))
        .then(200, says(&long));
    let mut body = ask_model("demo", "stream it");
    body["stream"] = json!(true);
    // The answer starts before the first model call: the run is live.
    let response = h.open(chat_request(&body, &[])).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(
        model.bodies().is_empty(),
        "the loop runs as the stream is read"
    );
    let r = support::Reply::read(response).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let data: Vec<&str> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let events: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["mcp_edge"]["event"].as_str())
        .collect();
    assert_eq!(events, ["tool_call.started", "tool_call.finished"]);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, long);
    assert!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"].is_string())
            .count()
            > 2
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn a_provider_failing_mid_stream_ends_it_with_an_error_chunk() {
    let (h, _, _) = Harness::two_servers();
    let model = add_model(&h, "demo", &["us"], json!({}));
    model
        .then(200, asks(&[("c1", "alpha__echo", json!({"text": "hi"}))]))
        .then(401, json!({"error": {"message": "bad key"}}));
    let mut body = ask_model("demo", "stream it");
    body["stream"] = json!(true);
    let r = h.send(chat_request(&body, &[])).await;
    assert_eq!(r.status, 200);
    let data: Vec<Value> = r
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    let last = data.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad key"),
        "{last}"
    );
    assert_eq!(last["error"]["code"], 502);
    assert!(
        !r.text.contains("[DONE]"),
        "a failed run does not end as a finished one"
    );
    assert!(data
        .iter()
        .any(|c| c["mcp_edge"]["event"] == "tool_call.finished"));
}

#[tokio::test]
async fn bad_requests_are_clear_errors() {
    let (h, _, _) = Harness::two_servers();
    add_model(&h, "demo", &["us"], json!({}));
    let (status, v) = chat(&h, &json!({"model": "demo", "messages": []})).await;
    assert_eq!(status, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("messages is empty"));
    let (status, v) = chat(&h, &ask_model("nope", "hi")).await;
    assert_eq!(status, 404);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GET /v1/models"));
    let mut form = chat_request(&ask_model("demo", "hi"), &[]);
    form.headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(h.send(form).await.status, 415);
    let get = http::Request::get("http://gw.test/v1/chat/completions")
        .body(Vec::new())
        .unwrap();
    assert_eq!(h.send(get).await.status, 405);
}
