//! A scripted model provider for the agent API's tests: it answers each
//! model call with the next answer of its script and keeps what it was
//! sent (headers and body), per endpoint.

use super::Harness;
use mcp_edge::body::Body;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// What one endpoint of the provider was sent.
#[derive(Clone)]
pub struct Sent {
    pub headers: http::HeaderMap,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct ScriptedModel {
    script: Rc<RefCell<VecDeque<(u16, Value)>>>,
    pub sent: Rc<RefCell<Vec<Sent>>>,
}

impl ScriptedModel {
    /// Serves `url` (the provider's whole request URL) from this script.
    pub fn mount(&self, h: &Harness, url: &str) {
        let me = self.clone();
        h.p.http.mount_fn(url, move |req| {
            let me = me.clone();
            Box::pin(async move {
                let (parts, body) = req.into_parts();
                me.sent.borrow_mut().push(Sent {
                    headers: parts.headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let (status, answer) = me
                    .script
                    .borrow_mut()
                    .pop_front()
                    .unwrap_or((500, json!({"error": {"message": "the script ran out"}})));
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::Full(answer.to_string().into_bytes()))
                    .unwrap()
            })
        });
    }

    /// Adds an answer to the script.
    pub fn then(&self, status: u16, answer: Value) -> &Self {
        self.script.borrow_mut().push_back((status, answer));
        self
    }

    /// The bodies it was sent, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.sent.borrow().iter().map(|s| s.body.clone()).collect()
    }

    /// The tool names offered in the `n`th request.
    pub fn offered(&self, n: usize) -> Vec<String> {
        self.bodies()[n]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["function"]["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// An OpenAI answer that says `text`.
pub fn says(text: &str) -> Value {
    json!({"id": "x", "object": "chat.completion", "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

/// An OpenAI answer that asks for tool calls `(id, name, arguments)`.
pub fn asks(calls: &[(&str, &str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            let arguments = match args {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    json!({"id": "x", "object": "chat.completion", "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
}

/// Registers model `name` (OpenAI wire) at `http://model.{region}.test/v1`
/// per region, plus `extra` fields, and mounts `script` at each.
pub fn add_model(h: &Harness, name: &str, regions: &[&str], extra: Value) -> ScriptedModel {
    let script = ScriptedModel::default();
    let mut entry = json!({
        "provider": "openai", "model": "scripted-1",
        "endpoints": regions.iter().map(|r| json!({"region": r, "url": format!("http://model.{r}.test/v1")})).collect::<Vec<_>>(),
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        entry[k] = v.clone();
    }
    for r in regions {
        script.mount(h, &format!("http://model.{r}.test/v1/chat/completions"));
    }
    h.p.kv.put(&format!("models/{name}"), &entry.to_string());
    h.gw.reload_config();
    script
}

/// `POST /v1/chat/completions` with `body`, as the harness caller unless
/// `extra` names another credential.
pub fn chat_request(body: &Value, extra: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let mut req = http::Request::post("http://gw.test/v1/chat/completions")
        .header("content-type", "application/json")
        .header("host", "gw.test");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.body(body.to_string().into_bytes()).unwrap()
}

/// Sends `body` as the caller of API key `key`: the status and the JSON.
pub async fn chat_as(h: &Harness, body: &Value, key: &str) -> (u16, Value) {
    let r = h.send(chat_request(body, &[("x-api-key", key)])).await;
    (
        r.status,
        serde_json::from_str(&r.text).unwrap_or(Value::Null),
    )
}

/// A chat request for `model` with one user message.
pub fn ask_model(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}
