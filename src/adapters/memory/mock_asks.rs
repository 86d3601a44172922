//! A [`MockServer`](super::MockServer) asking its client something in the
//! middle of a call, as a legacy server does: tool `ask_user` sends an
//! `elicitation/create` request on the call's event stream, waits for the
//! client's answer (a separate POST on the session) and returns what the
//! user said; `ask_model` does the same with `sampling/createMessage` and
//! `list_roots` with `roots/list`. Request ids count from 1 per server, so
//! two mocks asking at once use the same ids, as real servers may.
//!
//! The question's event has id `ask-{id}`: a client that dropped the call's
//! stream after it resumes with a GET and that `Last-Event-ID`, and gets the
//! result there once answered, as a resumable server's stream replays it.

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
    /// The result of each call whose question is open, until a stream
    /// (the call's own, or a resumed one) takes it.
    results: Rc<RefCell<HashMap<i64, Pending>>>,
    /// Every answer received (as sent: id included).
    pub(super) answers: RefCell<Vec<Value>>,
}

/// A call's result once its question is answered.
type Pending = futures_util::future::LocalBoxFuture<'static, Vec<u8>>;

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
        let result = async move {
            let answer = tokio::time::timeout(WAIT, rx).await;
            let text = match answer {
                Ok(Ok(answer)) => format!("{server} heard {}", answer["result"]),
                _ => format!("{server} heard nothing"),
            };
            let done = json!({"jsonrpc": "2.0", "id": call_id,
                "result": {"content": [{"type": "text", "text": text}]}});
            format!("event: message\ndata: {done}\n\n").into_bytes()
        };
        self.results.borrow_mut().insert(id, Box::pin(result));
        let first = futures_util::stream::once(async move {
            Ok::<_, String>(format!("id: ask-{id}\nevent: message\ndata: {asked}\n\n").into_bytes())
        });
        let then = self.result_of(id);
        let stream = first.chain(then).map(|c: Chunk| c).boxed_local();
        Some(
            Response::builder()
                .status(200)
                .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
                .body(Body::Stream(stream))
                .expect("static"),
        )
    }

    /// The rest of the stream of the call that asked `id`: its result, if
    /// no stream took it yet.
    fn result_of(&self, id: i64) -> futures_util::stream::LocalBoxStream<'static, Chunk> {
        let results = self.results.clone();
        futures_util::stream::once(async move { results.borrow_mut().remove(&id) })
            .filter_map(|pending| async move { pending })
            .then(|pending| async move { Ok::<_, String>(pending.await) })
            .boxed_local()
    }

    /// A GET resuming the stream of the call that asked `ask-{id}`: its
    /// result, once answered; 400 for an event id it never gave.
    pub(super) fn resume(&self, last_event_id: &str) -> Response<Body> {
        let id = last_event_id
            .strip_prefix("ask-")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|id| self.results.borrow().contains_key(id));
        let Some(id) = id else {
            return Response::builder()
                .status(400)
                .body(Body::empty())
                .expect("static");
        };
        Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
            .body(Body::Stream(self.result_of(id)))
            .expect("static")
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
