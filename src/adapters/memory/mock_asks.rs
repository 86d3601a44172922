//! A [`MockServer`](super::MockServer) asking its client something in the
//! middle of a call, as a legacy server does: tool `ask_user` sends an
//! `elicitation/create` request on the call's event stream, waits for the
//! client's answer (a separate POST on the session) and returns what the
//! user said; `ask_model` does the same with `sampling/createMessage` and
//! `list_roots` with `roots/list`. Request ids count from 1 per server, so
//! two mocks asking at once use the same ids, as real servers may.

use crate::body::{Body, Chunk};
use crate::protocol::headers;
use futures_util::StreamExt;
use http::Response;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// How long a question waits for its answer.
const WAIT: Duration = Duration::from_secs(5);

/// The questions a mock has open and the answers it got.
#[derive(Default)]
pub(super) struct Asks {
    next: RefCell<i64>,
    open: RefCell<HashMap<i64, tokio::sync::oneshot::Sender<Value>>>,
    /// Every answer received (as sent: id included).
    pub(super) answers: RefCell<Vec<Value>>,
}

/// The request each asking tool sends.
fn question(tool: &str) -> Option<(&'static str, Value)> {
    Some(match tool {
        "ask_user" => (
            "elicitation/create",
            json!({"message": "Your name?", "requestedSchema": {"type": "object",
                "properties": {"name": {"type": "string"}}}}),
        ),
        "ask_model" => (
            "sampling/createMessage",
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Say hi"}}],
                "maxTokens": 10}),
        ),
        "list_roots" => ("roots/list", json!({})),
        _ => return None,
    })
}

impl Asks {
    /// The answer of an asking tool, as an event stream: the question, then
    /// (once answered, or after [`WAIT`]) the result naming what came back.
    pub(super) fn call(
        self: &Rc<Self>,
        server: &str,
        tool: &str,
        call_id: &Value,
    ) -> Option<Response<Body>> {
        let (method, params) = question(tool)?;
        let id = {
            let mut next = self.next.borrow_mut();
            *next += 1;
            *next
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.open.borrow_mut().insert(id, tx);
        let asked = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (server, call_id) = (server.to_string(), call_id.clone());
        let first = futures_util::stream::once(async move {
            Ok::<_, String>(format!("event: message\ndata: {asked}\n\n").into_bytes())
        });
        let then = futures_util::stream::once(async move {
            let answer = tokio::time::timeout(WAIT, rx).await;
            let text = match answer {
                Ok(Ok(answer)) => format!("{server} heard {}", answer["result"]),
                _ => format!("{server} heard nothing"),
            };
            let done = json!({"jsonrpc": "2.0", "id": call_id,
                "result": {"content": [{"type": "text", "text": text}]}});
            Ok::<_, String>(format!("event: message\ndata: {done}\n\n").into_bytes())
        });
        let stream = first.chain(then).map(|c: Chunk| c).boxed_local();
        Some(
            Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
                .body(Body::Stream(stream))
                .expect("static"),
        )
    }

    /// A client's answer to one of the questions: hands it to the waiting
    /// call. Answers to nothing open are kept too (the tests look).
    pub(super) fn answer(&self, body: &Value) {
        self.answers.borrow_mut().push(body.clone());
        let waiting = body
            .get("id")
            .and_then(Value::as_i64)
            .and_then(|id| self.open.borrow_mut().remove(&id));
        if let Some(tx) = waiting {
            let _ = tx.send(body.clone());
        }
    }
}
