//! One upstream's listen or GET stream as the client hears it: its
//! acknowledgment read first, then only the notifications asked for,
//! tagged with the client's subscription and redacted; list changes also
//! make the list cache's pages stale.

use super::filter::Filter;
use super::SUBSCRIPTION_ID_KEY;
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::governance::pii::{self, Kind};
use crate::ports::{with_timeout, Clock};
use crate::protocol::jsonrpc::Id;
use crate::protocol::sse;
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde_json::{json, Value};
use std::rc::Rc;

/// One upstream's stream, as the client will hear it.
pub(super) struct Heard {
    server: String,
    /// What this upstream will be heard for.
    pub(super) filter: Filter,
    upstream: ByteStream,
    /// What was read of `upstream` before relaying began: the decoder's
    /// state and the events it had already finished.
    decoder: sse::Decoder,
    pending: Vec<sse::Event>,
}

impl Heard {
    pub(super) fn new(server: &Server, filter: Filter, body: Body, limit: usize) -> Heard {
        Heard {
            server: server.id.clone(),
            filter,
            upstream: body.into_stream(),
            decoder: sse::Decoder::with_limit(limit),
            pending: Vec::new(),
        }
    }

    /// Reads a modern upstream's acknowledgment (its first message) and
    /// keeps to what it agreed to honor, so the gateway's own
    /// acknowledgment promises no more. An upstream that sends something
    /// else first has its messages relayed as they are, filtered by what was
    /// asked; one that sends no message within `timeout_ms` in all is not
    /// heard. Events without a message (a priming event, comments) come
    /// before it as they may.
    pub(super) async fn acknowledged<C: Clock>(
        mut self,
        clock: &C,
        timeout_ms: u64,
    ) -> Result<Heard, String> {
        let is_message = |e: &sse::Event| serde_json::from_str::<Value>(&e.data).is_ok();
        let first = async {
            while !self.pending.iter().any(is_message) {
                self.pending.clear();
                match self.upstream.next().await {
                    Some(Ok(chunk)) => self.pending = self.decoder.feed(&chunk),
                    Some(Err(e)) => return Err(e),
                    None => return Err("its stream ended before the acknowledgment".into()),
                }
                if self.decoder.overflowed() {
                    return Err("an event larger than the gateway relays".to_string());
                }
            }
            Ok(())
        };
        match with_timeout(clock, timeout_ms, first).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => return Err(format!("no acknowledgment within {timeout_ms} ms")),
        }
        let at = self.pending.iter().position(is_message).unwrap_or(0);
        let agreed = serde_json::from_str::<Value>(&self.pending[at].data)
            .ok()
            .filter(|m| m["method"] == "notifications/subscriptions/acknowledged")
            .and_then(|m| m.pointer("/params/notifications").cloned())
            .and_then(|n| serde_json::from_value::<Filter>(n).ok());
        if let Some(agreed) = agreed {
            self.filter = self.filter.within(&agreed);
            self.pending.drain(..=at);
        }
        Ok(self)
    }
}

/// An item of the merged stream.
pub(super) enum Frame {
    Bytes(Vec<u8>),
    /// One upstream stream broke off, or the stream lived its time: the
    /// client's ends without a response, so the client listens again.
    Ended,
    /// The upstream ended its subscription with a response (on a
    /// server's own endpoint, the client's ends the same way).
    Closed,
}

/// One upstream's stream as frames for the client: what the client asked
/// for, tagged with its subscription, redacted; then [`Frame::Ended`].
pub(super) fn relay(
    heard: Heard,
    id: Id,
    kinds: Vec<Kind>,
    changed: Rc<dyn Fn(&str)>,
) -> LocalBoxStream<'static, Frame> {
    let server = heard.server;
    let state = (heard.upstream, heard.decoder, heard.filter, id, kinds);
    let first = heard.pending;
    stream::unfold(Some((state, first)), move |state| {
        let changed = changed.clone();
        async move {
            let ((mut upstream, mut decoder, filter, id, kinds), mut read) = state?;
            loop {
                if read.is_empty() {
                    read = match upstream.next().await {
                        Some(Ok(chunk)) => decoder.feed(&chunk),
                        Some(Err(_)) | None => return Some((vec![Frame::Ended], None)),
                    };
                }
                let mut out = Vec::new();
                let mut ended = false;
                for event in std::mem::take(&mut read) {
                    if let Some(method) = list_change(&event.data) {
                        changed(&method);
                    }
                    match translate(&event.data, &filter, &id, &kinds) {
                        Step::Send(bytes) => out.extend(bytes),
                        Step::Skip => {}
                        Step::End => {
                            ended = true;
                            break;
                        }
                    }
                }
                if ended {
                    return Some((vec![Frame::Bytes(out), Frame::Closed], None));
                }
                if decoder.overflowed() {
                    return Some((vec![Frame::Bytes(out), Frame::Ended], None));
                }
                if !out.is_empty() {
                    return Some((
                        vec![Frame::Bytes(out)],
                        Some(((upstream, decoder, filter, id, kinds), read)),
                    ));
                }
            }
        }
    })
    .flat_map(stream::iter)
    .map(move |f| {
        if !matches!(f, Frame::Bytes(_)) {
            tracing::debug!(server = %server, "listen stream ended");
        }
        f
    })
    .boxed_local()
}

/// The method of a `*/list_changed` notification, asked for or not.
fn list_change(data: &str) -> Option<String> {
    if !data.contains("list_changed") {
        return None;
    }
    let message: Value = serde_json::from_str(data).ok()?;
    let method = message.get("method")?.as_str()?;
    method
        .ends_with("/list_changed")
        .then(|| method.to_string())
}

/// What one upstream message becomes.
enum Step {
    Send(Vec<u8>),
    Skip,
    /// A response: the upstream closed its subscription.
    End,
}

fn translate(data: &str, filter: &Filter, id: &Id, kinds: &[Kind]) -> Step {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(data) else {
        return Step::Skip;
    };
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return match message.contains_key("id") {
            true => Step::End,
            false => Step::Skip,
        };
    };
    // A request to the client (roots, sampling, elicitation, ping) has no
    // one to answer it on this stream.
    if message.contains_key("id") || !filter.admits(method, message.get("params")) {
        return Step::Skip;
    }
    let params = message
        .entry("params")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(params) = params else {
        return Step::Skip;
    };
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return Step::Skip;
    };
    meta.insert(SUBSCRIPTION_ID_KEY.into(), json!(id));
    let mut message = Value::Object(message);
    pii::redact_value(&mut message, kinds);
    Step::Send(encode(&message))
}

pub(super) fn encode(message: &Value) -> Vec<u8> {
    sse::encode_message(&serde_json::to_vec(message).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::filter::tests::filter;
    use crate::protocol::method::lists_of;

    #[test]
    fn any_list_change_is_noticed_for_the_list_cache() {
        let change = r#"{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}"#;
        let method = list_change(change).unwrap();
        assert_eq!(
            lists_of(&method),
            ["resources/list", "resources/templates/list"]
        );
        assert!(list_change(
            r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"list_changed"}}"#
        )
        .is_none());
        assert!(list_change("list_changed, not JSON").is_none());
    }

    #[test]
    fn only_what_was_asked_passes_tagged_with_the_subscription() {
        let f = filter(json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]}));
        let id = Id::Num(7);
        let tag = |data: &str| match translate(data, &f, &id, &[]) {
            Step::Send(b) => Some(String::from_utf8(b).unwrap()),
            Step::Skip => None,
            Step::End => Some("END".into()),
        };
        let sent = tag(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#).unwrap();
        assert!(
            sent.contains(r#""io.modelcontextprotocol/subscriptionId":7"#),
            "{sent}"
        );
        assert!(
            tag(r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}"#).is_none()
        );
        assert!(tag(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}"#).is_some());
        assert!(tag(r#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///b"}}"#).is_none());
        assert!(tag(r#"{"jsonrpc":"2.0","id":3,"method":"roots/list"}"#).is_none());
        assert!(tag(
            r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{}}"#
        )
        .is_none());
        assert!(tag("not json").is_none());
        assert_eq!(
            tag(r#"{"jsonrpc":"2.0","id":7,"result":{}}"#).unwrap(),
            "END"
        );
    }
}
