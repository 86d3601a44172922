//! One upstream's server-to-client stream (its GET stream) as a part of
//! `/mcp`'s own GET stream, where many upstreams speak to one client.
//!
//! Each event is decoded and written again: the upstream's own requests go
//! under ids of the gateway's ([`super::asks`]), so the client's answers find
//! their way back; personal data is redacted like the server's results;
//! each event's id says where every upstream stands ([`super::merged_id`]),
//! so a reconnect resumes them all (an upstream id with personal data in it
//! is not kept: that server starts afresh); a list change is also told to
//! `on_change` (caches to forget).
//! A message that cannot be read for redaction, or an event past the size
//! limit, ends this upstream's part (logged); the others go on.
//!
//! The parts together ([`fold_changes`]): list changes of one kind that are
//! ready at once, from one server or several, reach the client as one
//! notification (on `/mcp` the client lists every server's anyway).

use super::merged_id::Positions;
use crate::body::{Body, ByteStream};
use crate::governance::pii;
use crate::governance::pii::Kind;
use crate::protocol::jsonrpc::{self, Message};
use crate::protocol::sse;
use futures_util::StreamExt;
use std::cell::RefCell;
use std::rc::Rc;

/// What one upstream's part of the merged stream is relayed with.
pub(crate) struct Part {
    pub server: String,
    pub redact: Vec<Kind>,
    pub max_event_bytes: usize,
    /// Log messages below this rank are dropped (the level the client set).
    pub min_log: Option<usize>,
    /// Told the method of every `notifications/*/list_changed`.
    pub on_change: Rc<dyn Fn(&str)>,
    /// Where every part stands, shared by the parts of one merged stream.
    pub positions: Rc<RefCell<Positions>>,
}

/// The client's side of one upstream's GET stream.
pub(crate) fn part(body: Body, part: Part) -> ByteStream {
    let decoder = sse::Decoder::with_limit(part.max_event_bytes);
    let state = (body.into_stream(), decoder, part, false);
    futures_util::stream::unfold(
        state,
        |(mut upstream, mut decoder, part, done)| async move {
            if done {
                return None;
            }
            loop {
                let chunk = match upstream.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(e)) => {
                        tracing::info!(server = %part.server, "server stream ended: {e}");
                        return None;
                    }
                    None => return None,
                };
                let (out, stop) = translate(&mut decoder, &chunk, &part);
                if stop || !out.is_empty() {
                    return Some((Ok(out), (upstream, decoder, part, stop)));
                }
            }
        },
    )
    .boxed_local()
}

/// The client's events for one chunk, and whether this part must end.
fn translate(decoder: &mut sse::Decoder, chunk: &[u8], part: &Part) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    for event in decoder.feed(chunk) {
        if let Some(id) = &event.id {
            let mut positions = part.positions.borrow_mut();
            match pii::redact(id, &part.redact) {
                None => positions.set(&part.server, id),
                Some(_) => positions.forget(&part.server),
            }
        }
        if event.data.trim().is_empty() {
            continue;
        }
        let mut data = event.data;
        match jsonrpc::parse_message(data.as_bytes()) {
            Ok(Message::Request(r)) => {
                let Some(bytes) = super::asks::relayed(&part.server, &r) else {
                    tracing::warn!(server = %part.server, "a question that cannot be labelled dropped");
                    continue;
                };
                data = String::from_utf8(bytes).expect("JSON is UTF-8");
            }
            Ok(Message::Notification(n)) if super::relay::too_quiet(&n, part.min_log) => continue,
            Ok(Message::Notification(n)) if n.method.ends_with("/list_changed") => {
                (part.on_change)(&n.method)
            }
            // A response belongs to no request of this client's.
            Ok(Message::Response(r)) => {
                tracing::warn!(server = %part.server, id = %r.id, "response on a server stream dropped");
                continue;
            }
            Ok(Message::Notification(_)) => {}
            // Not one JSON-RPC message (a duplicate `id`, a `method` with a
            // `result`): a client's parser could read it as something this
            // one did not, say a request under another server's tagged id.
            Err(e) => {
                tracing::warn!(server = %part.server, "unreadable message on a server stream dropped: {e}");
                continue;
            }
        }
        let framing = sse::Event {
            event: Some("message".into()),
            data: String::new(),
            id: part.positions.borrow().encode(),
        };
        match super::relay::redacted(
            &data,
            &part.redact,
            super::relay::Scope::Everything,
            &part.server,
        ) {
            Ok(Some(clean)) => out.extend_from_slice(&sse::encode_event(&framing, &clean)),
            Ok(None) => out.extend_from_slice(&sse::encode_event(&framing, data.as_bytes())),
            Err(why) => {
                tracing::warn!(server = %part.server, "server stream cut: {why}");
                return (out, true);
            }
        }
    }
    if decoder.overflowed() {
        tracing::warn!(server = %part.server, "server stream cut: an event larger than MAX_UPSTREAM_BYTES");
        return (out, true);
    }
    (out, false)
}

/// How many ready chunks are read at once for folding.
const FOLD_BATCH: usize = 32;

/// The merged stream with a `notifications/*/list_changed` left out when
/// the very next event, ready with it, is the same change: the later one
/// stands for both. Only adjacent ones fold: every event id holds the
/// positions of all the events before it, so a client that resumes after
/// any event that went out has missed no change. Nothing waits to be
/// folded: only what is ready at once is.
pub(crate) fn fold_changes(merged: ByteStream) -> ByteStream {
    merged
        .ready_chunks(FOLD_BATCH)
        .flat_map(|batch| futures_util::stream::iter(fold(batch)))
        .boxed_local()
}

/// One ready batch, folded. Chunks hold whole events ([`part`] writes
/// them so); one that mentions no list change goes out untouched.
fn fold(batch: Vec<Result<Vec<u8>, String>>) -> Vec<Result<Vec<u8>, String>> {
    let mentions = |c: &Result<Vec<u8>, String>| {
        c.as_ref()
            .is_ok_and(|c| c.windows(12).any(|w| w == b"list_changed"))
    };
    if batch.len() < 2 || !batch.iter().any(mentions) {
        return batch;
    }
    // The batch's events in order, each with its chunk; an error stays as
    // a chunk of its own.
    let mut events: Vec<(usize, sse::Event)> = Vec::new();
    for (i, chunk) in batch.iter().enumerate() {
        if let Ok(bytes) = chunk {
            // Already bounded by the part that wrote it.
            let decoded = sse::Decoder::with_limit(usize::MAX).feed(bytes);
            events.extend(decoded.into_iter().map(|e| (i, e)));
        }
    }
    let change = |e: &sse::Event| -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Note {
            method: String,
            id: Option<serde::de::IgnoredAny>,
        }
        if !e.data.contains("list_changed") {
            return None;
        }
        let note: Note = serde_json::from_str(&e.data).ok()?;
        (note.id.is_none() && note.method.ends_with("/list_changed")).then_some(note.method)
    };
    let kinds: Vec<Option<String>> = events.iter().map(|(_, e)| change(e)).collect();
    let mut out: Vec<Vec<u8>> = vec![Vec::new(); batch.len()];
    for (k, (i, e)) in events.iter().enumerate() {
        let folded = kinds[k].is_some() && kinds.get(k + 1).is_some_and(|next| *next == kinds[k]);
        if !folded {
            out[*i].extend_from_slice(&sse::encode_event(e, e.data.as_bytes()));
        }
    }
    batch
        .into_iter()
        .zip(out)
        .filter_map(|(chunk, bytes)| match chunk {
            Err(e) => Some(Err(e)),
            Ok(_) => (!bytes.is_empty()).then_some(Ok(bytes)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[tokio::test]
    async fn list_changes_ready_together_reach_the_client_once() {
        let change = |server: &str, kind: &str| {
            format!("id: {server}\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/{kind}/list_changed\"}}\n\n")
        };
        let log = "id: l\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n";
        let ready: Vec<Result<Vec<u8>, String>> = vec![
            Ok(change("a", "tools").into_bytes()),
            Ok(format!("{}{log}", change("b", "tools")).into_bytes()),
            Ok(change("c", "prompts").into_bytes()),
            Ok(change("d", "tools").into_bytes()),
        ];
        let out = fold_changes(futures_util::stream::iter(ready).boxed_local())
            .map(|c| String::from_utf8(c.unwrap()).unwrap())
            .collect::<String>()
            .await;
        let events = sse::Decoder::new().feed(out.as_bytes());
        let ids: Vec<_> = events.iter().filter_map(|e| e.id.as_deref()).collect();
        // Adjacent tools changes fold into the later one (its id holds
        // every position); the log message in between keeps the changes on
        // either side of it apart, so a client resuming after it misses
        // none; the prompts change stays.
        assert_eq!(ids, ["b", "l", "c", "d"], "{out}");
        // Changes apart in time are not folded: the client hears both.
        let (first, second) = (change("a", "tools"), change("b", "tools"));
        let apart = futures_util::stream::iter(vec![Ok(first.into_bytes())])
            .chain(futures_util::stream::once(async move {
                tokio::task::yield_now().await;
                Ok(second.into_bytes())
            }))
            .boxed_local();
        let out = fold_changes(apart).collect::<Vec<_>>().await;
        assert_eq!(out.len(), 2);
    }

    fn run(chunks: &[&str], redact: Vec<Kind>) -> (String, Vec<String>) {
        let (out, changed, _) = run_all(chunks, redact);
        (out, changed)
    }

    /// What the part sends, the changes it told, whether it ended.
    fn run_all(chunks: &[&str], redact: Vec<Kind>) -> (String, Vec<String>, bool) {
        let changed = Rc::new(RefCell::new(Vec::new()));
        let seen = changed.clone();
        let part = Part {
            server: "alpha".into(),
            redact,
            max_event_bytes: 1 << 16,
            min_log: None,
            positions: Rc::default(),
            on_change: Rc::new(move |m: &str| seen.borrow_mut().push(m.to_string())),
        };
        let mut decoder = sse::Decoder::with_limit(1 << 16);
        let (mut out, mut ended) = (Vec::new(), false);
        for c in chunks {
            let (more, stop) = translate(&mut decoder, c.as_bytes(), &part);
            out.extend(more);
            ended |= stop;
        }
        let out = String::from_utf8(out).unwrap();
        let changed = changed.borrow().clone();
        (out, changed, ended)
    }

    #[test]
    fn requests_are_tagged_responses_dropped_ids_gone_and_changes_told() {
        let (out, changed) = run(
            &[
                "id: 7\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
            ],
            Vec::new(),
        );
        assert!(out.contains(r#""id":"mcp-edge-asks:alpha:1""#), "{out}");
        assert!(!out.contains("\"result\""), "{out}");
        // Not the upstream's id: the merged stream's, which holds it.
        assert!(!out.contains("id: 7\n"), "{out}");
        let id = out
            .lines()
            .find_map(|l| l.strip_prefix("id: "))
            .unwrap_or_else(|| panic!("{out}"));
        assert_eq!(Positions::decode(id).unwrap().get("alpha"), Some("7"));
        assert!(out.contains("tools/list_changed"), "{out}");
        assert_eq!(changed, ["notifications/tools/list_changed"]);
    }

    /// What is not one JSON-RPC message never reaches the client, however
    /// a parser there would read it (a duplicate `id` the last of which is
    /// another server's tagged one); the rest of the stream does.
    #[test]
    fn what_is_not_one_message_is_dropped_and_the_part_goes_on() {
        let (out, _, ended) = run_all(
            &[
                "data: not json\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"elicitation/create\",\"params\":{\"message\":\"Allow?\"},\"id\":\"mcp-edge-asks:bank:7\"}\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"roots/list\",\"result\":{},\"id\":\"mcp-edge-asks:bank:7\"}\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
            ],
            vec![Kind::Email],
        );
        assert!(!ended);
        assert!(!out.contains("bank"), "{out}");
        assert!(!out.contains("not json"), "{out}");
        assert!(out.contains("tools/list_changed"), "{out}");
    }
}
