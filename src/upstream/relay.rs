//! Relaying an upstream SSE answer to the client as it happens.
//!
//! Each upstream event is decoded and re-encoded as a gateway event as soon as
//! its bytes arrive, so progress and log notifications reach the client before
//! the result. Upstream event ids are dropped (the gateway does not offer
//! resumption, and they would be meaningless to the client); empty priming
//! events and comments are dropped. If the upstream stream breaks or ends before
//! the response to the client's request, the relay ends with a JSON-RPC error
//! for that request, so the client is never left waiting. Responses to any
//! other id are dropped: a stream answers one request.

use crate::body::{Body, ByteStream};
use crate::error::code;
use crate::governance::pii::{self, Kind};
use crate::protocol::jsonrpc::{self, Id, Message};
use crate::protocol::modern::log_rank;
use crate::protocol::sse;
use futures_util::StreamExt;

/// What of a message is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every member an upstream can put text in (all but `jsonrpc`, `id`
    /// and `method`).
    Everything,
    /// Only `error` (list answers: the server's declarations pass as they
    /// are, its error text does not).
    Errors,
}

/// Told the method of a list change a stream carries.
pub(crate) type OnChange = std::rc::Rc<dyn Fn(&str)>;

/// What one relayed stream answers and how.
pub(crate) struct Target {
    /// The client's request the stream answers.
    pub id: Id,
    pub server: String,
    /// Personal data to redact from every message (empty: relay as is).
    pub redact: Vec<Kind>,
    pub scope: Scope,
    /// Largest single event (`MAX_UPSTREAM_BYTES`): a larger one ends the
    /// stream with an error instead of being buffered.
    pub max_event_bytes: usize,
    /// The upstream's own requests go to the client under ids of the
    /// gateway's ([`super::asks`]): on `/mcp`, where many upstreams share
    /// one client session.
    pub tag_requests: bool,
    /// The least severe log level the client set on `/mcp` (a rank of
    /// `LOG_LEVELS`): log messages below it are dropped, whatever the
    /// upstream did with the level it was told.
    pub min_log: Option<usize>,
    /// Keep the upstream's event ids (and its empty priming events): for a
    /// modern client, whose answer is shaped next and may stop at an
    /// upstream's question, to resume after it (`gateway/modern/held.rs`).
    /// The shaping takes them out again.
    pub keep_ids: bool,
    /// Told the method of every list change the stream carries (the
    /// gateway's caches for the server are stale).
    pub on_change: Option<OnChange>,
}

/// State carried between upstream chunks.
struct Relay {
    upstream: ByteStream,
    decoder: sse::Decoder,
    id: Id,
    server: String,
    redact: Vec<Kind>,
    scope: Scope,
    tag_requests: bool,
    min_log: Option<usize>,
    keep_ids: bool,
    on_change: Option<OnChange>,
    answered: bool,
    done: bool,
}

/// Turns an upstream SSE body into the client's SSE body for one request,
/// redacting the target's kinds of personal data from every message.
pub(crate) fn relay_sse(body: Body, target: Target) -> ByteStream {
    let state = Relay {
        upstream: body.into_stream(),
        decoder: sse::Decoder::with_limit(target.max_event_bytes),
        id: target.id,
        server: target.server,
        redact: target.redact,
        scope: target.scope,
        tag_requests: target.tag_requests,
        min_log: target.min_log,
        keep_ids: target.keep_ids,
        on_change: target.on_change,
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

/// One event, with the upstream's id when it is kept.
fn encode(id: Option<&str>, data: &[u8]) -> Vec<u8> {
    match id {
        Some(id) => sse::encode_with_id(id, data),
        None => sse::encode_message(data),
    }
}

/// Whether `note` is a log message below the client's level `min` (one
/// without a known level passes only when everything is asked for).
pub(crate) fn too_quiet(note: &jsonrpc::Notification, min: Option<usize>) -> bool {
    #[derive(serde::Deserialize)]
    struct Params {
        level: Option<String>,
    }
    let Some(min) = min else { return false };
    if note.method != "notifications/message" {
        return false;
    }
    let level = note
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<Params>(p.get()).ok())
        .and_then(|p| p.level)
        .and_then(|l| log_rank(&l))
        .unwrap_or(0);
    level < min
}

/// A server-to-client stream (the per-server GET stream) with personal data
/// of `kinds` redacted from every message and from the events' `id` and
/// `event` fields (an id without personal data is kept for resumption).
/// An event that cannot be read for redaction, or one larger than
/// `max_event_bytes`, ends the stream (the client may reconnect and resume).
pub(crate) fn redact_stream(
    body: Body,
    (server, kinds): (String, Vec<Kind>),
    max_event_bytes: usize,
) -> ByteStream {
    let upstream = body.into_stream();
    let decoder = sse::Decoder::with_limit(max_event_bytes);
    futures_util::stream::unfold(
        (upstream, decoder, false),
        move |(mut upstream, mut decoder, done)| {
            let kinds = kinds.clone();
            let server = server.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    let chunk = match upstream.next().await {
                        Some(Ok(chunk)) => chunk,
                        Some(Err(e)) => return Some((Err(e), (upstream, decoder, true))),
                        None => return None,
                    };
                    let mut out = Vec::new();
                    let mut stop = false;
                    for mut event in decoder.feed(&chunk) {
                        for field in [&mut event.id, &mut event.event].into_iter().flatten() {
                            if let Some(clean) = pii::redact(field, &kinds) {
                                *field = clean;
                            }
                        }
                        if event.data.trim().is_empty() {
                            out.extend_from_slice(&sse::encode_event(&event, b""));
                            continue;
                        }
                        match redacted(&event.data, &kinds, Scope::Everything, &server) {
                            Ok(Some(clean)) => {
                                out.extend_from_slice(&sse::encode_event(&event, &clean))
                            }
                            Ok(None) => out.extend_from_slice(&sse::encode_event(
                                &event,
                                event.data.as_bytes(),
                            )),
                            Err(why) => {
                                tracing::warn!("server stream cut: {why}");
                                stop = true;
                                break;
                            }
                        }
                    }
                    if decoder.overflowed() {
                        tracing::warn!(
                            "server stream cut: an event larger than MAX_UPSTREAM_BYTES"
                        );
                        stop = true;
                    }
                    if stop || !out.is_empty() {
                        return Some((Ok(out), (upstream, decoder, stop)));
                    }
                }
            }
        },
    )
    .boxed_local()
}

/// A JSON-RPC message with personal data redacted from what `scope` names:
/// everything an upstream can put text in (`result`, `params` of
/// notifications and requests, `error` message and data, and any member a
/// message should not have), or only `error`. `Ok(None)` when there is
/// nothing to do; `Err` when the message cannot be read, which the caller
/// must refuse rather than pass on unredacted.
pub(crate) fn redacted(
    message: &str,
    kinds: &[Kind],
    scope: Scope,
    server: &str,
) -> Result<Option<Vec<u8>>, String> {
    if kinds.is_empty() {
        return Ok(None);
    }
    // One span per message redacted, with what it replaced.
    let span = tracing::info_span!("redact", "mcp_edge.server.id" = server);
    let _in = span.enter();
    let mut v: serde_json::Value = serde_json::from_str(message)
        .map_err(|e| format!("an answer that must be redacted is not JSON ({e})"))?;
    let Some(object) = v.as_object_mut() else {
        return Err("an answer that must be redacted is not a JSON-RPC message".into());
    };
    let mut tally = pii::Tally::default();
    for (name, part) in object.iter_mut() {
        let covered = match scope {
            Scope::Everything => !matches!(name.as_str(), "jsonrpc" | "id" | "method"),
            Scope::Errors => name == "error",
        };
        if covered {
            pii::redact_value_counted(part, kinds, &mut tally);
        }
    }
    for (kind, count) in tally.counts() {
        crate::observe::collect::note_here(kind_attr(kind), count.into());
    }
    crate::observe::audit::redactions(server, &tally);
    Ok(Some(serde_json::to_vec(&v).expect("a value serializes")))
}

/// The span attribute that counts one kind's matches.
fn kind_attr(kind: &str) -> &'static str {
    match kind {
        "email" => "mcp_edge.redacted.email",
        "phone" => "mcp_edge.redacted.phone",
        "card" => "mcp_edge.redacted.card",
        "ssn" => "mcp_edge.redacted.ssn",
        _ => "mcp_edge.redacted.iban",
    }
}

impl Relay {
    /// Re-encodes the events completed by `chunk`.
    fn translate(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let events = self.decoder.feed(chunk);
        let overflowed = self.decoder.overflowed();
        for event in events {
            // Kept only as the resume point, never as the upstream sent it.
            let id = event.id.as_deref().filter(|_| self.keep_ids);
            if event.data.trim().is_empty() {
                if let Some(id) = id {
                    out.extend_from_slice(&sse::encode_with_id(id, b""));
                }
                continue;
            }
            let mut tagged = None;
            match jsonrpc::parse_message(event.data.as_bytes()) {
                Ok(Message::Response(r)) if r.id != self.id => {
                    // A response to another request is not this stream's to
                    // carry: relayed, it would answer, in the client's eyes,
                    // a request the client sent elsewhere.
                    tracing::warn!(server = %self.server, id = %r.id, "upstream sent a response to another request; dropped");
                    continue;
                }
                Ok(Message::Response(r)) => {
                    crate::observe::notes::response(&r);
                    self.answered = true
                }
                Ok(Message::Notification(n)) if too_quiet(&n, self.min_log) => continue,
                Ok(Message::Notification(n)) if n.method.ends_with("/list_changed") => {
                    if let Some(told) = &self.on_change {
                        told(&n.method);
                    }
                }
                Ok(Message::Request(r)) if self.tag_requests => {
                    let Some(bytes) = super::asks::relayed(&self.server, &r) else {
                        tracing::warn!(server = %self.server, "a question that cannot be labelled dropped");
                        continue;
                    };
                    tagged = Some(String::from_utf8(bytes).expect("JSON is UTF-8"));
                }
                // On `/mcp`, what is not one JSON-RPC message (a duplicate
                // `id`, a `method` with a `result`) could be read by the
                // client as a request under another server's tagged id.
                Err(e) if self.tag_requests => {
                    tracing::warn!(server = %self.server, "unreadable message dropped: {e}");
                    continue;
                }
                _ => {}
            }
            let data = tagged.as_deref().unwrap_or(&event.data);
            match redacted(data, &self.redact, self.scope, &self.server) {
                Ok(Some(data)) => out.extend_from_slice(&encode(id, &data)),
                Ok(None) => out.extend_from_slice(&encode(id, data.as_bytes())),
                Err(why) => {
                    // Never pass on what could not be redacted: end the
                    // stream with an error for the request instead.
                    self.done = true;
                    if let Some(last) = self.closing(&why) {
                        out.extend_from_slice(&last);
                    }
                    return out;
                }
            }
        }
        if overflowed {
            self.done = true;
            let why = "sent an event larger than MAX_UPSTREAM_BYTES; the stream was cut";
            if let Some(last) = self.closing(why) {
                out.extend_from_slice(&last);
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
            None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Chunk;

    async fn run(parts: Vec<Chunk>) -> Vec<sse::Event> {
        run_on(parts, false).await
    }

    async fn run_on(parts: Vec<Chunk>, aggregated: bool) -> Vec<sse::Event> {
        let body = Body::Stream(futures_util::stream::iter(parts).boxed_local());
        let target = Target {
            id: Id::Num(5),
            server: "s".into(),
            redact: Vec::new(),
            scope: Scope::Everything,
            tag_requests: aggregated,
            min_log: None,
            max_event_bytes: 1 << 20,
            keep_ids: false,
            on_change: None,
        };
        let out = relay_sse(body, target).collect::<Vec<_>>().await;
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

    /// On `/mcp`, a message with a duplicate `id` (the last another
    /// server's tagged one) is dropped, not passed on as it came.
    #[tokio::test]
    async fn on_mcp_what_is_not_one_message_is_dropped() {
        let forged = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"elicitation/create\",\"id\":\"mcp-edge-asks:bank:7\"}\n\n".to_vec();
        let answer = b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}\n\n".to_vec();
        let events = run_on(vec![Ok(forged.clone()), Ok(answer.clone())], true).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].data.contains("\"result\""));
        // Per server, the stream is the server's own: passed as it came.
        let events = run_on(vec![Ok(forged), Ok(answer)], false).await;
        assert_eq!(events.len(), 2, "{events:?}");
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
