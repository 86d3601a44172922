//! A modern answer's event stream, read message by message on its way to
//! the client: each message shaped like a whole answer
//! ([`Shape::complete`](super::shape::Shape)), what a modern client must not get left
//! out, the upstream's event ids read and never passed on, and a legacy
//! upstream's questions turned into an `input_required` result that
//! resumes after the last of them ([`super::held`]).

use super::held::{self, Asked};
use super::shape::Shape;
use crate::body::{Body, ByteStream};
use crate::error::code;
use crate::protocol::jsonrpc::{self, Id};
use crate::protocol::sse;
use crate::upstream::aside::ASIDE_ID;
use futures_util::StreamExt;
use serde_json::{json, Value};

impl Shape {
    /// An event stream shaped message by message. An event too large to
    /// read ends the stream with an error for the request, never silence.
    /// The upstream's event ids are read, not passed on: a legacy
    /// upstream's question ends the stream with an `input_required` result
    /// that resumes after the last of them ([`super::held`]).
    pub(super) fn events(mut self, body: Body) -> ByteStream {
        // Dropped with the stream: armed until the answer goes out.
        let cancel = self.on_abandon.take().map(super::cancel::Canceller::arm);
        // The relay re-encodes events it read under the same limit; leave
        // room for its framing.
        let decoder = sse::Decoder::with_limit(self.limit.saturating_add(self.limit / 8 + 1024));
        let reading = Reading {
            shape: self,
            decoder,
            cancel,
            last_event: None,
            asked: Vec::new(),
            answered: false,
            done: false,
        };
        futures_util::stream::unfold(
            (body.into_stream(), reading),
            |(mut stream, mut st)| async move {
                if st.done {
                    return None;
                }
                let chunk = match stream.next().await {
                    Some(Ok(chunk)) => chunk,
                    // Over before its answer (the relay then said so with
                    // an error of its own): the canceller stays armed, and
                    // fires as the stream is dropped.
                    next => {
                        let e = next?.err()?;
                        st.done = true;
                        return Some((Err(e), (stream, st)));
                    }
                };
                let out = st.chunk(&chunk);
                Some((Ok(out), (stream, st)))
            },
        )
        .boxed_local()
    }
}

/// A modern answer's event stream as it is read.
struct Reading {
    shape: Shape,
    decoder: sse::Decoder,
    cancel: Option<super::cancel::Canceller>,
    /// The upstream's last event id so far.
    last_event: Option<String>,
    /// Questions not yet put to the client: one asked on the upstream's
    /// GET stream (`upstream/aside.rs`) can come before the call's stream
    /// gave the event id it will resume after.
    asked: Vec<Asked>,
    /// The upstream answered the request: nothing is asked after that.
    answered: bool,
    done: bool,
}

impl Reading {
    /// The client's bytes for one upstream chunk.
    fn chunk(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let server = self.shape.seal.as_ref().and_then(|s| s.server.clone());
        for mut event in self.decoder.feed(chunk) {
            // An empty id is none (`Last-Event-ID: ""` would ask nothing).
            let id = event.id.take().filter(|id| !id.is_empty());
            let aside = id.as_deref() == Some(ASIDE_ID);
            if let Some(id) = id.filter(|_| !aside) {
                self.last_event = Some(id);
            }
            if event.data.trim().is_empty() {
                continue;
            }
            let Ok(mut message) = serde_json::from_str::<Value>(&event.data) else {
                out.extend_from_slice(&sse::encode_event(&event, event.data.as_bytes()));
                continue;
            };
            if self.shape.may_ask {
                if let Some(mut q) = held::question(&message, server.as_deref()) {
                    q.aside = aside;
                    self.asked.push(q);
                    continue;
                }
            }
            if !self.shape.passes(&message) {
                continue;
            }
            self.shape.complete(&mut message);
            if is_answer(&message, &self.shape.id) {
                // The upstream's answer: the request is over.
                self.answered = true;
                self.disarm();
            }
            let data = serde_json::to_vec(&message).expect("JSON serializes");
            out.extend_from_slice(&sse::encode_event(&event, &data));
        }
        if self.decoder.overflowed() {
            self.done = true;
            let error = jsonrpc::error_body(
                Some(&self.shape.id),
                code::UPSTREAM_UNAVAILABLE,
                "Upstream server sent an event larger than the gateway relays",
                None,
            );
            out.extend_from_slice(&sse::encode_message(&error));
        } else if self.answered {
            // Asked along with the answer: moot.
            self.asked.clear();
        } else if self.ready() {
            self.done = true;
            let asked = std::mem::take(&mut self.asked);
            out.extend_from_slice(&sse::encode_message(&self.questions(&asked)));
        }
        out
    }

    /// Whether the questions so far go to the client now: once the call's
    /// stream gave an id to resume after. A question on the call's own
    /// stream without one, or too many waiting, is put now, which fails
    /// (the call cannot be resumed) and cancels the call.
    fn ready(&self) -> bool {
        !self.asked.is_empty()
            && (self.last_event.is_some()
                || self.asked.iter().any(|a| !a.aside)
                || self.asked.len() >= held::MAX_ASKED)
    }

    /// The answer that puts a legacy upstream's questions to the client.
    /// Put, the upstream holds the call for the retry: it is not cancelled.
    fn questions(&mut self, asked: &[Asked]) -> Vec<u8> {
        let shape = &self.shape;
        let wire = shape.wire.as_ref().unwrap_or(&shape.id);
        let session = asked.first().and_then(|a| (shape.session_of)(&a.server));
        let stand = held::Stand {
            wire,
            last_event: self.last_event.as_deref(),
            session: session.as_deref(),
            answerable: &shape.answerable,
            label: shape.aggregated,
        };
        match held::input_required(asked, stand, shape.seal.as_ref()) {
            Ok(result) => {
                let body = jsonrpc::result_body(&shape.id, &result);
                self.disarm();
                body
            }
            Err(why) => {
                let server = &asked[0].server;
                tracing::warn!(server = %server, "an upstream's question cannot be put: {why}");
                jsonrpc::error_body(
                    Some(&shape.id),
                    code::UPSTREAM_UNAVAILABLE,
                    &format!("Upstream server '{server}' {why}"),
                    None,
                )
            }
        }
    }

    fn disarm(&mut self) {
        if let Some(c) = self.cancel.as_mut() {
            c.disarm();
        }
    }
}

/// Whether a message is the upstream's answer to request `id`: a response
/// for it, but not the error the relay writes when the upstream's stream
/// ended or broke before the answer (`upstream/relay.rs`).
fn is_answer(message: &Value, id: &Id) -> bool {
    let gateway_closing = message.pointer("/error/code").and_then(Value::as_i64)
        == Some(code::UPSTREAM_UNAVAILABLE)
        && message
            .pointer("/error/message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.starts_with("Upstream server '"));
    message.get("method").is_none() && message.get("id") == Some(&json!(id)) && !gateway_closing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::modern::round::Sealer;
    use crate::upstream::asks;

    fn reading() -> Reading {
        let shape = Shape {
            id: Id::Num(3),
            cacheable: false,
            may_ask: true,
            log_level: None,
            limit: 1 << 20,
            seal: Some(Sealer::for_tests(Some("a"))),
            wire: Some(Id::Str("mcp-edge-w".into())),
            on_abandon: None,
            session_of: Box::new(|server| (server == "a").then(|| "d".to_string())),
            answerable: vec!["elicitation/create", "roots/list"],
            aggregated: true,
        };
        Reading {
            shape,
            decoder: sse::Decoder::new(),
            cancel: None,
            last_event: None,
            asked: Vec::new(),
            answered: false,
            done: false,
        }
    }

    fn ask(n: i64, id: Option<&str>) -> String {
        let tagged = asks::tag("a", &Id::Num(n));
        let data = json!({"jsonrpc": "2.0", "id": tagged, "method": "roots/list"});
        match id {
            Some(id) => format!("id: {id}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        }
    }

    fn messages(out: &[u8]) -> Vec<Value> {
        sse::Decoder::new()
            .feed(out)
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    #[test]
    fn a_question_asked_aside_waits_for_an_id_to_resume_after() {
        let mut r = reading();
        assert!(r.chunk(ask(0, Some(ASIDE_ID)).as_bytes()).is_empty());
        assert!(!r.done);
        // The call's stream gives its first id (a priming event).
        let out = messages(&r.chunk(b"id: e1\ndata: \n\n"));
        assert!(r.done);
        assert_eq!(out[0]["result"]["resultType"], "input_required", "{out:?}");
        assert!(out[0]["result"]["inputRequests"]["a/ask-0"].is_object());
    }

    #[test]
    fn a_question_on_the_calls_stream_without_an_id_ends_the_call() {
        for id in [None, Some("")] {
            let mut r = reading();
            let out = messages(&r.chunk(ask(0, id).as_bytes()));
            assert!(r.done);
            let message = out[0]["error"]["message"].as_str().unwrap();
            assert!(message.contains("cannot resume"), "{message}");
        }
    }

    #[test]
    fn too_many_questions_waiting_end_the_call() {
        let mut r = reading();
        let many: String = (0..held::MAX_ASKED as i64)
            .map(|n| ask(n, Some(ASIDE_ID)))
            .collect();
        let out = messages(&r.chunk(many.as_bytes()));
        assert!(r.done);
        assert!(out[0].get("error").is_some(), "{out:?}");
    }

    #[test]
    fn nothing_is_asked_after_the_answer() {
        let mut r = reading();
        let answer = json!({"jsonrpc": "2.0", "id": "mcp-edge-w", "result": {"content": []}});
        let chunk = format!("{}id: e2\ndata: {answer}\n\n", ask(0, Some(ASIDE_ID)));
        let out = messages(&r.chunk(chunk.as_bytes()));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0]["id"], 3);
        assert_eq!(out[0]["result"]["resultType"], "complete");
        assert!(r.asked.is_empty());
    }
}
