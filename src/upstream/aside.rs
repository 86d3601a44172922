//! Questions a legacy upstream asks outside the call that needs them, heard
//! for a modern client.
//!
//! A legacy server may ask its client on its GET stream rather than on the
//! call's, even while serving a call: server-everything asks `roots/list`
//! so (the TypeScript SDK's `listRoots()` names no related request). A
//! modern (2026-07-28) client has no such stream: it can only be asked in a
//! call's `input_required` result. So while a call that may ask goes to a
//! legacy upstream for a modern client that can answer roots, the gateway
//! listens to the upstream session's GET stream too, and the requests on it
//! join the call's stream as if asked there (then put to the client like
//! any question, `gateway/modern/held.rs`). Only requests join: the GET
//! stream's notifications are for `subscriptions/listen`. The GET stream's
//! event ids are replaced by [`ASIDE_ID`], so the call's own stay the
//! resume point and a question asked aside is told apart. An
//! upstream that refuses the GET (405, or 409 while another stream holds
//! it) only leaves the call as it was.

use crate::body::{Body, ByteStream};
use crate::protocol::sse;
use futures_util::StreamExt;
use serde_json::Value;

/// The event id every request joined from the GET stream carries.
pub(crate) const ASIDE_ID: &str = "mcp-edge-aside";

/// Whether a call to a legacy upstream listens to its GET stream meanwhile:
/// a modern client's call that may be answered with `input_required`, when
/// the client declared roots (the question legacy servers ask aside).
pub(crate) fn listens(client: &super::ClientSession, message: &[u8]) -> bool {
    let roots = || {
        client
            .client_params
            .as_ref()
            .and_then(|p| p.pointer("/capabilities/roots"))
            .is_some()
    };
    // The message is read last: most sends are not a modern client's.
    let may_ask = || {
        crate::protocol::jsonrpc::method_of(message)
            .is_some_and(|m| matches!(m, "tools/call" | "prompts/get" | "resources/read"))
    };
    client.modern_meta.is_some() && roots() && may_ask()
}

/// The call's stream with the requests of the GET stream `aside` joined in,
/// event by event; over when the call's stream is.
pub(crate) fn join(call: Body, aside: Body, limit: usize) -> Body {
    enum Part {
        Call(Result<Vec<u8>, String>),
        Aside(Vec<u8>),
        End,
    }
    let call = reframed(call.into_stream(), limit, true).map(Part::Call);
    let call = call.chain(futures_util::stream::once(async { Part::End }));
    let aside = reframed(aside.into_stream(), limit, false)
        .filter_map(|c| async move { c.ok() })
        .map(Part::Aside);
    let joined = futures_util::stream::select(call, aside)
        .take_while(|p| std::future::ready(!matches!(p, Part::End)))
        .filter_map(|p| async move {
            match p {
                Part::Call(c) => Some(c),
                Part::Aside(c) if !c.is_empty() => Some(Ok(c)),
                _ => None,
            }
        });
    Body::Stream(joined.boxed_local())
}

/// A stream re-cut at event boundaries, so two can be interleaved: all of
/// the call's events as they were, or only the requests of the GET stream,
/// without their ids.
fn reframed(stream: ByteStream, limit: usize, whole: bool) -> ByteStream {
    let decoder = sse::Decoder::with_limit(limit);
    futures_util::stream::unfold(
        (stream, decoder, false),
        move |(mut stream, mut decoder, done)| async move {
            if done {
                return None;
            }
            let chunk = match stream.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (stream, decoder, true))),
            };
            let mut out = Vec::new();
            for mut event in decoder.feed(&chunk) {
                if !whole {
                    if !is_request(&event.data) {
                        continue;
                    }
                    event.id = Some(ASIDE_ID.into());
                }
                out.extend_from_slice(&sse::encode_event(&event, event.data.as_bytes()));
            }
            if decoder.overflowed() {
                return Some((
                    Err("an event larger than the gateway relays".into()),
                    (stream, decoder, true),
                ));
            }
            Some((Ok(out), (stream, decoder, false)))
        },
    )
    .boxed_local()
}

/// Whether an event's data is a JSON-RPC request.
fn is_request(data: &str) -> bool {
    serde_json::from_str::<Value>(data)
        .is_ok_and(|v| v.get("method").is_some() && v.get("id").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&str]) -> Body {
        let parts: Vec<Result<Vec<u8>, String>> =
            parts.iter().map(|p| Ok(p.as_bytes().to_vec())).collect();
        Body::Stream(futures_util::stream::iter(parts).boxed_local())
    }

    #[tokio::test]
    async fn the_get_streams_requests_join_the_call_without_their_ids() {
        let call = body(&[
            "id: c1\ndata: \n\nid: c2\nevent: message\nda",
            "ta: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
        ]);
        let aside = body(&[
            "id: g1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n",
            "id: g2\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"roots/list\"}\n\n",
        ]);
        let joined = join(call, aside, 1 << 20).collect(1 << 20).await.unwrap();
        let events = sse::Decoder::new().feed(&joined);
        let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
        assert!(events
            .iter()
            .all(|e| !e.data.contains("notifications/message")));
        assert!(
            events.iter().any(|e| e.data.contains("\"result\"")),
            "the call's answer"
        );
        assert!(ids.contains(&Some("c1".into())) && ids.contains(&Some("c2".into())));
        assert!(
            !ids.contains(&Some("g2".into())),
            "the GET stream's ids stay out"
        );
    }
}
