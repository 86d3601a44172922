//! Relaying an upstream SSE answer to the client as it happens.
//!
//! Each upstream event is decoded and re-encoded as a gateway event as soon as
//! its bytes arrive, so progress and log notifications reach the client before
//! the result. Upstream event ids are dropped (the gateway does not offer
//! resumption, and they would be meaningless to the client); empty priming
//! events and comments are dropped. If the upstream stream breaks or ends before
//! the response to the client's request, the relay ends with a JSON-RPC error
//! for that request, so the client is never left waiting.

use crate::body::{Body, ByteStream};
use crate::error::code;
use crate::governance::pii::{self, Kind};
use crate::protocol::jsonrpc::{self, Id, Message};
use crate::protocol::sse;
use futures_util::StreamExt;

/// State carried between upstream chunks.
struct Relay {
    upstream: ByteStream,
    decoder: sse::Decoder,
    id: Id,
    server: String,
    /// Personal data to redact from every message (empty: relay as is).
    redact: Vec<Kind>,
    answered: bool,
    done: bool,
}

/// Turns an upstream SSE body into the client's SSE body for request `id`,
/// redacting `redact` kinds of personal data from every message.
pub fn relay_sse(body: Body, id: Id, server: String, redact: Vec<Kind>) -> ByteStream {
    let state = Relay {
        upstream: body.into_stream(),
        decoder: sse::Decoder::new(),
        id,
        server,
        redact,
        answered: false,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            match st.upstream.next().await {
                Some(Ok(chunk)) => {
                    let out = st.translate(&chunk);
                    if !out.is_empty() {
                        return Some((Ok(out), st));
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    return st
                        .closing(&format!("stream broke: {e}"))
                        .map(|b| (Ok(b), st));
                }
                None => {
                    st.done = true;
                    return st
                        .closing("stream ended before the response")
                        .map(|b| (Ok(b), st));
                }
            }
        }
    })
    .boxed_local()
}

/// A JSON-RPC message with personal data redacted from its `result` and
/// `params`, or `None` when there is nothing to do.
pub fn redacted(message: &str, kinds: &[Kind]) -> Option<Vec<u8>> {
    if kinds.is_empty() {
        return None;
    }
    let mut v: serde_json::Value = serde_json::from_str(message).ok()?;
    for field in ["result", "params"] {
        if let Some(part) = v.get_mut(field) {
            pii::redact_value(part, kinds);
        }
    }
    Some(serde_json::to_vec(&v).expect("a value serializes"))
}

impl Relay {
    /// Re-encodes the events completed by `chunk`.
    fn translate(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in self.decoder.feed(chunk) {
            if event.data.trim().is_empty() {
                continue;
            }
            if let Ok(Message::Response(r)) = jsonrpc::parse_message(event.data.as_bytes()) {
                if r.id == self.id {
                    self.answered = true;
                }
            }
            match redacted(&event.data, &self.redact) {
                Some(data) => out.extend_from_slice(&sse::encode_message(&data)),
                None => out.extend_from_slice(&sse::encode_message(event.data.as_bytes())),
            }
        }
        out
    }

    /// The final event when the upstream ended without answering.
    fn closing(&self, why: &str) -> Option<Vec<u8>> {
        if self.answered {
            return None;
        }
        tracing::warn!(server = %self.server, "upstream {why}");
        let message = format!("Upstream server '{}' failed: {why}", self.server);
        Some(sse::encode_message(&jsonrpc::error_body(
            Some(&self.id),
            code::UPSTREAM_UNAVAILABLE,
            &message,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Chunk;

    async fn run(parts: Vec<Chunk>) -> Vec<sse::Event> {
        let body = Body::Stream(futures_util::stream::iter(parts).boxed_local());
        let out = relay_sse(body, Id::Num(5), "s".into(), Vec::new())
            .collect::<Vec<_>>()
            .await;
        let mut d = sse::Decoder::new();
        out.into_iter().flat_map(|c| d.feed(&c.unwrap())).collect()
    }

    #[tokio::test]
    async fn passes_events_and_drops_ids_and_priming() {
        let events = run(vec![
            Ok(b"id: abc\ndata:\n\n".to_vec()),
            Ok(b"id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n".to_vec()),
            Ok(b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n".to_vec()),
        ])
        .await;
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.id.is_none()));
        assert!(events[1].data.contains("\"result\""));
    }

    #[tokio::test]
    async fn a_broken_stream_ends_with_an_error_for_the_request() {
        let events = run(vec![
            Ok(b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n".to_vec()),
            Err("connection reset".into()),
        ])
        .await;
        assert_eq!(events.len(), 2);
        let last: serde_json::Value = serde_json::from_str(&events[1].data).unwrap();
        assert_eq!(last["id"], 5);
        assert_eq!(last["error"]["code"], -32001);
        assert!(last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection reset"));
    }

    #[tokio::test]
    async fn an_answered_stream_ends_quietly() {
        let events = run(vec![Ok(
            b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n".to_vec(),
        )])
        .await;
        assert_eq!(events.len(), 1);
    }
}
