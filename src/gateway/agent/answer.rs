//! The answer in OpenAI's shapes: a `chat.completion` object, or with
//! `stream: true` a `text/event-stream` of `chat.completion.chunk`s ending
//! in `data: [DONE]`.
//!
//! The gateway's extension is the `mcp_edge` member: on the completion, the
//! steps taken, the tool calls run, what the loop added to the conversation
//! (`messages`), the approvals waited for (id and URL) and why the loop
//! stopped early; in a stream, one chunk per tool call
//! started (with its arguments) and finished (`mcp_edge.event`
//! `tool_call.started` / `tool_call.finished`), each with an empty `delta`, so a client that reads
//! only `choices[0].delta.content` is not disturbed. Each is sent as it
//! happens: the response starts before the first model call, and a UI can
//! show the run's progress. A failure after that is an `error` chunk.

use super::outcome::Outcome;
use crate::body::Body;
use crate::error::GatewayError;
use crate::protocol::sse;
use futures_util::future::LocalBoxFuture;
use http::{header, Response, StatusCode};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Poll;

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
    if !out.messages.is_empty() {
        ext["messages"] = out.messages.clone().into();
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

/// A run that failed after it ran tool calls: the error as everywhere,
/// marked for the OpenAI SDKs not to retry (they retry 429 and 5xx by
/// default, which would run those calls again).
pub(crate) fn failed(e: GatewayError) -> Response<Body> {
    let mut response = e.into_response_in(crate::protocol::version::Era::Legacy, None);
    response.headers_mut().insert(
        http::HeaderName::from_static("x-should-retry"),
        http::HeaderValue::from_static("false"),
    );
    response
}

/// The chunks of a streamed answer, written as the loop goes: the first
/// (the assistant's role) at once, a tool event as each call starts and
/// finishes, then the answer's text, the finish and `[DONE]`.
#[derive(Clone)]
pub(crate) struct Progress {
    head: Rc<Head>,
    queue: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl Progress {
    pub(crate) fn new(head: Head) -> Self {
        let p = Progress {
            head: Rc::new(head),
            queue: Rc::default(),
        };
        p.push(p.chunk(json!({"role": "assistant", "content": ""}), None));
        p
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let h = &self.head;
        json!({
            "id": h.id, "object": "chat.completion.chunk", "created": h.created, "model": h.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    // Unnamed events, as OpenAI writes them (its SDKs skip named ones).
    fn push(&self, chunk: Value) {
        let frame = sse::encode_event(&sse::Event::default(), chunk.to_string().as_bytes());
        self.queue.borrow_mut().push_back(frame);
    }

    /// A tool event: `tool_call.started` or `tool_call.finished` with `what`.
    pub(crate) fn tool(&self, mut what: Value, event: &str) {
        let mut c = self.chunk(json!({}), None);
        what["event"] = event.into();
        c["mcp_edge"] = what;
        self.push(c);
    }

    /// The end of the run: its answer in pieces, the finish, `[DONE]`.
    fn finish(&self, out: &Outcome) {
        let text = out.message["content"].as_str().unwrap_or("");
        let letters: Vec<char> = text.chars().collect();
        for piece in letters.chunks(CHUNK_CHARS) {
            self.push(self.chunk(json!({"content": piece.iter().collect::<String>()}), None));
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
            self.push(self.chunk(json!({"tool_calls": indexed}), None));
        }
        let mut last = self.chunk(json!({}), Some(&out.finish));
        last["usage"] = usage(out);
        last["mcp_edge"] = extension(out);
        self.push(last);
        self.queue
            .borrow_mut()
            .push_back(b"data: [DONE]\n\n".to_vec());
    }

    /// A failure after the stream began: an `error` object, as OpenAI
    /// streams one (its SDKs raise it).
    fn fail(&self, e: &GatewayError) {
        self.push(
            json!({"error": {"message": e.to_string(), "type": "mcp_edge_error",
            "code": e.status().as_u16()}}),
        );
    }
}

/// The streamed answer: `run` is the loop, reporting to `progress`; the
/// response's body polls it and sends each chunk as soon as it is queued.
pub(crate) fn stream(
    progress: Progress,
    run: LocalBoxFuture<'static, Result<Outcome, GatewayError>>,
) -> Response<Body> {
    let mut run = Some(run);
    let body = futures_util::stream::poll_fn(move |cx| loop {
        if let Some(frame) = progress.queue.borrow_mut().pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(work) = run.as_mut() else {
            return Poll::Ready(None);
        };
        match work.as_mut().poll(cx) {
            Poll::Ready(outcome) => {
                run = None;
                match outcome {
                    Ok(out) => progress.finish(&out),
                    Err(e) => progress.fail(&e),
                }
            }
            // What the loop queued before it waits goes out now.
            Poll::Pending if progress.queue.borrow().is_empty() => return Poll::Pending,
            Poll::Pending => {}
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "private, no-store")
        .body(Body::Stream(Box::pin(body)))
        .expect("static response")
}
