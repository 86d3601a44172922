//! The answer in OpenAI's shapes: a `chat.completion` object, or with
//! `stream: true` a `text/event-stream` of `chat.completion.chunk`s ending
//! in `data: [DONE]`.
//!
//! The gateway's extension is the `mcp_edge` member: on the completion, the
//! steps taken, the tool calls run, the approvals waited for (id and URL)
//! and why the loop stopped early; in a stream, one chunk per tool call
//! started and finished (`mcp_edge.event` `tool_call.started` /
//! `tool_call.finished`), each with an empty `delta`, so a client that reads
//! only `choices[0].delta.content` is not disturbed. The chunks are written
//! once the loop is done: the stream carries the whole run in order, not
//! live.

use super::run::Outcome;
use crate::body::Body;
use crate::protocol::sse;
use http::{header, Response, StatusCode};
use serde_json::{json, Value};

/// Text of the final answer per content chunk.
const CHUNK_CHARS: usize = 64;

/// What every chunk and the completion share.
pub(crate) struct Head {
    pub id: String,
    pub created: u64,
    pub model: String,
}

fn extension(out: &Outcome) -> Value {
    let mut ext = json!({
        "steps": out.steps,
        "tool_calls": out.tool_calls,
        "tools_offered": out.offered,
    });
    if out.offered_dropped > 0 {
        ext["tools_left_out"] = out.offered_dropped.into();
    }
    if !out.approvals.is_empty() {
        ext["approvals"] = out.approvals.clone().into();
    }
    if let Some(why) = out.stopped {
        ext["stopped"] = why.into();
    }
    ext
}

fn usage(out: &Outcome) -> Value {
    json!({
        "prompt_tokens": out.input_tokens,
        "completion_tokens": out.output_tokens,
        "total_tokens": out.input_tokens + out.output_tokens,
    })
}

/// The `chat.completion` object.
pub(crate) fn completion(head: &Head, out: &Outcome) -> Response<Body> {
    let body = json!({
        "id": head.id,
        "object": "chat.completion",
        "created": head.created,
        "model": head.model,
        "choices": [{"index": 0, "message": out.message, "finish_reason": out.finish}],
        "usage": usage(out),
        "mcp_edge": extension(out),
    });
    crate::gateway::respond::private(crate::gateway::respond::json(body.to_string().into_bytes()))
}

/// The same run as a stream of chunks.
pub(crate) fn stream(head: &Head, out: &Outcome) -> Response<Body> {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": head.id, "object": "chat.completion.chunk", "created": head.created,
            "model": head.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for call in &out.tool_calls {
        for event in ["tool_call.started", "tool_call.finished"] {
            let mut c = chunk(json!({}), None);
            let mut what = json!({"event": event, "id": call["id"], "name": call["name"]});
            if event == "tool_call.finished" {
                what["is_error"] = call["is_error"].clone();
                if let Some(a) = call.get("approval") {
                    what["approval"] = a.clone();
                }
            }
            c["mcp_edge"] = what;
            chunks.push(c);
        }
    }
    let text = out.message["content"].as_str().unwrap_or("");
    let letters: Vec<char> = text.chars().collect();
    for piece in letters.chunks(CHUNK_CHARS) {
        chunks.push(chunk(json!({"content": piece.iter().collect::<String>()}), None));
    }
    if let Some(calls) = out.message.get("tool_calls").and_then(Value::as_array) {
        let indexed: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut c = c.clone();
                c["index"] = i.into();
                c
            })
            .collect();
        chunks.push(chunk(json!({"tool_calls": indexed}), None));
    }
    let mut last = chunk(json!({}), Some(&out.finish));
    last["usage"] = usage(out);
    last["mcp_edge"] = extension(out);
    chunks.push(last);
    // Unnamed events, as OpenAI writes them (its SDKs skip named ones).
    let mut bytes = Vec::new();
    for c in chunks {
        bytes.extend(sse::encode_event(&sse::Event::default(), c.to_string().as_bytes()));
    }
    bytes.extend(b"data: [DONE]\n\n");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::Full(bytes))
        .expect("static response")
}
