//! A modern upstream's answer to a legacy client.
//!
//! A legacy (2025) client met with a modern-only upstream gets its results
//! as they come, with one exception: an `input_required` result
//! (`docs/specification/2026-07-28/basic/patterns/mrtr.mdx`) asks for
//! answers a 2025 client has no way to give, and read as a plain result it
//! would pass for an empty success. It becomes a JSON-RPC error for the
//! request that says so, in a JSON answer and in an event stream alike.

use super::Reply;
use crate::body::{Body, ByteStream};
use crate::error::code;
use crate::protocol::{jsonrpc, sse};
use futures_util::StreamExt;
use serde_json::Value;

/// `reply` with any `input_required` result turned into an error. A JSON
/// answer larger than `limit` is passed on unread (the relay refuses it).
pub(crate) async fn reply(reply: Reply, limit: usize) -> Reply {
    match reply {
        Reply::Json(body) => match body.collect(limit).await {
            Ok(bytes) => Reply::Json(Body::Full(message(&bytes).unwrap_or(bytes))),
            Err(e) => Reply::Json(Body::Stream(
                futures_util::stream::once(async move { Err(e) }).boxed_local(),
            )),
        },
        Reply::Sse(body) => Reply::Sse(Body::Stream(events(body, limit))),
        Reply::Accepted => Reply::Accepted,
    }
}

/// The replacement for one message, if it is an `input_required` result.
fn message(bytes: &[u8]) -> Option<Vec<u8>> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let asks =
        value.pointer("/result/resultType").and_then(Value::as_str) == Some("input_required");
    if !asks {
        return None;
    }
    let id = serde_json::from_value(value.get("id")?.clone()).ok();
    Some(jsonrpc::error_body(
        id.as_ref(),
        code::UPSTREAM_UNAVAILABLE,
        "Upstream server asked for input (input_required, 2026-07-28), which a client of an \
         earlier protocol revision cannot give through the gateway",
        None,
    ))
}

fn events(body: Body, limit: usize) -> ByteStream {
    let decoder = sse::Decoder::with_limit(limit);
    futures_util::stream::unfold(
        (body.into_stream(), decoder),
        move |(mut stream, mut decoder)| async move {
            if decoder.overflowed() {
                return None;
            }
            let chunk = match stream.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (stream, decoder))),
            };
            let mut out = Vec::with_capacity(chunk.len());
            for event in decoder.feed(&chunk) {
                match message(event.data.as_bytes()) {
                    Some(error) => out.extend(sse::encode_event(&event, &error)),
                    None => out.extend(sse::encode_event(&event, event.data.as_bytes())),
                }
            }
            if decoder.overflowed() {
                return Some((
                    Err(format!("event larger than {limit} bytes")),
                    (stream, decoder),
                ));
            }
            Some((Ok(out), (stream, decoder)))
        },
    )
    .boxed_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_question_becomes_an_error_for_its_request() {
        let asks = br#"{"jsonrpc":"2.0","id":4,"result":{"resultType":"input_required","inputRequests":{}}}"#;
        let error: Value = serde_json::from_slice(&message(asks).unwrap()).unwrap();
        assert_eq!(error["id"], 4);
        assert_eq!(error["error"]["code"], code::UPSTREAM_UNAVAILABLE);
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("input_required"));
        let done = br#"{"jsonrpc":"2.0","id":4,"result":{"resultType":"complete","content":[]}}"#;
        assert!(message(done).is_none());
        assert!(message(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#).is_none());
        assert!(message(b"not json").is_none());
    }
}
