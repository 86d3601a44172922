//! `subscriptions/listen`: one long-lived stream carrying exactly the
//! notifications a modern client asked for, merged from the upstreams it
//! may see (`docs/specification/2026-07-28/basic/patterns/subscriptions.mdx`
//! in `modelcontextprotocol/modelcontextprotocol`).
//!
//! The stream starts with the gateway's own
//! `notifications/subscriptions/acknowledged`, naming what it honors: of
//! what the client asked, what at least one upstream declares
//! (`listChanged`, `resources.subscribe`). Each upstream is then heard in
//! its own era:
//! - a modern upstream gets its own `subscriptions/listen`, asking only
//!   for what it declares; its acknowledgment and closing response stay at
//!   the gateway;
//! - a legacy upstream is heard on its session's GET stream, after a
//!   `resources/subscribe` for each URI the client named.
//!
//! Every notification is checked against what the client asked (an
//! upstream that sends more is not relayed), tagged with the client's
//! subscription id, and redacted by the server's rules; requests an
//! upstream sends on these streams are not relayed (issue 12). While the
//! upstreams are quiet a keep-alive comment goes out every
//! [`KEEPALIVE_MS`].
//!
//! The stream lasts while every upstream stream it merges is open: when
//! one ends, the client's stream ends without a response, the signal of an
//! unexpected end, so the client listens again and is heard by every
//! upstream anew. With nothing to listen to, the subscription ends right
//! after the acknowledgment with the closing response.

use super::super::{respond, Ctx};
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::pii::{self, Kind};
use crate::ports::{with_timeout, Clock, Platform};
use crate::protocol::jsonrpc::{Id, Request};
use crate::protocol::sse;
use crate::upstream::{modern, ClientSession, Reply};
use futures_util::future::join_all;
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// How long a listen stream stays silent before a keep-alive comment, so
/// that proxies and clients do not take a quiet stream for a dead one.
pub(crate) const KEEPALIVE_MS: u64 = 15_000;

/// The most resource URIs one listen may name: each costs a
/// `resources/subscribe` per legacy upstream and a comparison per update.
pub(crate) const MAX_URIS: usize = 100;

/// `_meta` key naming the subscription a notification belongs to.
pub(crate) const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";

/// What a client asks to hear (`SubscriptionsListenRequest.params
/// .notifications` in `schema/2026-07-28/schema.ts`); every field is
/// optional, an absent one is not asked for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Filter {
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) tools_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) prompts_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) resources_list_changed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_subscriptions: Option<Vec<String>>,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Filter {
    /// The request's filter; a field of the wrong type is invalid params.
    pub(crate) fn of(req: &Request) -> Result<Filter, GatewayError> {
        #[derive(Deserialize)]
        struct Params {
            #[serde(default)]
            notifications: Filter,
        }
        let params: Params = req.params_as()?;
        let mut filter = params.notifications;
        if let Some(uris) = &mut filter.resource_subscriptions {
            let mut seen = std::collections::HashSet::new();
            uris.retain(|u| seen.insert(u.clone()));
            if uris.len() > MAX_URIS {
                return Err(GatewayError::InvalidParams(format!(
                    "notifications.resourceSubscriptions names {} URIs; at most {MAX_URIS}",
                    uris.len()
                )));
            }
        }
        Ok(filter)
    }

    /// What of this filter a server with `capabilities` can deliver.
    pub(crate) fn honored_by(&self, capabilities: &Value) -> Filter {
        let declares = |feature: &str, flag: &str| {
            capabilities
                .pointer(&format!("/{feature}/{flag}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Filter {
            tools_list_changed: self.tools_list_changed && declares("tools", "listChanged"),
            prompts_list_changed: self.prompts_list_changed && declares("prompts", "listChanged"),
            resources_list_changed: self.resources_list_changed
                && declares("resources", "listChanged"),
            resource_subscriptions: self
                .resource_subscriptions
                .clone()
                .filter(|uris| !uris.is_empty() && declares("resources", "subscribe")),
        }
    }

    /// What both filters ask for.
    fn within(&self, other: &Filter) -> Filter {
        let uris = match (&self.resource_subscriptions, &other.resource_subscriptions) {
            (Some(mine), Some(theirs)) => {
                let theirs: std::collections::HashSet<&String> = theirs.iter().collect();
                Some(
                    mine.iter()
                        .filter(|u| theirs.contains(u))
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            }
            _ => None,
        };
        Filter {
            tools_list_changed: self.tools_list_changed && other.tools_list_changed,
            prompts_list_changed: self.prompts_list_changed && other.prompts_list_changed,
            resources_list_changed: self.resources_list_changed && other.resources_list_changed,
            resource_subscriptions: uris.filter(|u| !u.is_empty()),
        }
    }

    /// Everything either filter asks for.
    fn union(mut self, other: &Filter) -> Filter {
        self.tools_list_changed |= other.tools_list_changed;
        self.prompts_list_changed |= other.prompts_list_changed;
        self.resources_list_changed |= other.resources_list_changed;
        if let Some(uris) = &other.resource_subscriptions {
            let mine = self.resource_subscriptions.get_or_insert_with(Vec::new);
            for uri in uris {
                if !mine.contains(uri) {
                    mine.push(uri.clone());
                }
            }
        }
        self
    }

    /// Whether nothing is asked for.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a notification is one this filter asks for.
    pub(crate) fn admits(&self, method: &str, params: Option<&Value>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools_list_changed,
            "notifications/prompts/list_changed" => self.prompts_list_changed,
            "notifications/resources/list_changed" => self.resources_list_changed,
            "notifications/resources/updated" => {
                let uri = params.and_then(|p| p.get("uri")).and_then(Value::as_str);
                match (&self.resource_subscriptions, uri) {
                    (Some(uris), Some(uri)) => uris.iter().any(|u| u == uri),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// One upstream's stream, as the client will hear it.
struct Heard {
    server: String,
    filter: Filter,
    upstream: ByteStream,
    /// What was read of `upstream` before relaying began: the decoder's
    /// state and the events it had already finished.
    decoder: sse::Decoder,
    pending: Vec<sse::Event>,
}

impl Heard {
    fn new(server: &Server, filter: Filter, body: Body, limit: usize) -> Heard {
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
    async fn acknowledged<C: Clock>(mut self, clock: &C, timeout_ms: u64) -> Result<Heard, String> {
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
enum Frame {
    Bytes(Vec<u8>),
    /// One upstream stream broke off, or the stream lived its time: the
    /// client's ends without a response, so the client listens again.
    Ended,
    /// The upstream ended its subscription with a response (on a
    /// server's own endpoint, the client's ends the same way).
    Closed,
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// Answers `subscriptions/listen` with the merged stream.
    pub(super) async fn listen(
        &self,
        server: Option<&Server>,
        req: &Request,
        meta: &Map<String, Value>,
    ) -> Result<http::Response<Body>, GatewayError> {
        let asked = Filter::of(req)?;
        let targets: Vec<&Server> = match server {
            Some(s) => vec![s],
            None => self.registry.servers.iter().map(|s| &**s).collect(),
        };
        // Each stream meets its upstreams anew, like a discover: each one
        // met counts against the caller's session budget.
        for _ in &targets {
            self.may_open_a_session().await?;
        }
        let mut client = self.bridged().await?;
        client.modern_meta = Some(meta.clone());
        let client = Rc::new(client);
        let heard = join_all(
            targets
                .iter()
                .map(|s| self.hear(s, &asked, &client, &req.id)),
        )
        .await;
        let mut sources = Vec::new();
        let mut honored = Filter::default();
        for (s, outcome) in targets.iter().zip(heard) {
            match outcome {
                Ok(Some(h)) => {
                    honored = honored.union(&h.filter);
                    let lists = self.gw.lists.clone();
                    let server = s.id.clone();
                    let changed = move |method: &str| {
                        for list in lists_of(method) {
                            lists.forget(&server, list);
                        }
                    };
                    sources.push(relay(
                        h,
                        req.id.clone(),
                        self.redaction_for(s),
                        Rc::new(changed),
                    ));
                }
                Ok(None) => {}
                // One server's trouble is not the whole stream's on /mcp;
                // on a server's own endpoint it is. Its words are its
                // content: redacted as such.
                Err(e) => {
                    let e = respond::redact_error(e, &self.redaction_for(s));
                    match server {
                        None => {
                            tracing::warn!(server = %s.id, "subscriptions/listen not heard: {e}")
                        }
                        Some(_) => return Err(e),
                    }
                }
            }
        }
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
            "params": {"_meta": {SUBSCRIPTION_ID_KEY: &req.id}, "notifications": honored}});
        let ack = stream::once(async move { Ok(encode(&ack)) });
        let done = encode(&json!({"jsonrpc": "2.0", "id": &req.id,
            "result": {"resultType": "complete", "_meta": {SUBSCRIPTION_ID_KEY: &req.id}}}));
        if sources.is_empty() {
            let done = stream::once(async move { Ok(done) });
            return Ok(respond::sse(Body::Stream(ack.chain(done).boxed_local())));
        }
        // What the caller may hear was decided when the stream opened: it
        // lasts no longer than the policy and registry it was decided by
        // are kept, then the client listens again and is checked anew.
        let lifetime = self.gw.settings.registry_ttl_ms.max(KEEPALIVE_MS);
        let ticks = ticks(self.p.clock().clone(), lifetime);
        // A graceful close is passed on only where one upstream is heard.
        let graceful = server.is_some();
        let merged = stream::select(stream::select_all(sources), ticks)
            .flat_map(move |f| {
                stream::iter(match f {
                    Frame::Bytes(b) => vec![Some(b)],
                    Frame::Closed if graceful => vec![Some(done.clone()), None],
                    Frame::Closed | Frame::Ended => vec![None],
                })
            })
            .take_while(|b| std::future::ready(b.is_some()))
            .filter_map(|b| async move { b.filter(|b| !b.is_empty()).map(Ok) });
        let body: ByteStream = ack.chain(merged).boxed_local();
        Ok(respond::sse(Body::Stream(body)))
    }

    /// Opens what `server` would say of `asked`, in its era; `None` when
    /// it declares none of it.
    async fn hear(
        &self,
        server: &Server,
        asked: &Filter,
        client: &ClientSession,
        id: &Id,
    ) -> Result<Option<Heard>, GatewayError> {
        let met = self.meet(server, client).await?;
        let mut filter = asked.honored_by(&met["capabilities"]);
        let stream_error = |what: &str| GatewayError::Upstream {
            server: server.id.clone(),
            message: format!("subscriptions/listen answered {what}, not a stream"),
        };
        if filter.is_empty() {
            return Ok(None);
        }
        let ups = self.upstreams(client);
        let session = client.upstreams.borrow().get(&server.id).cloned();
        if session.as_ref().is_some_and(modern::is_modern) {
            let listen = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                "params": {"notifications": &filter}});
            let bytes = serde_json::to_vec(&listen).expect("JSON values serialize");
            let body = match ups.send(server, &bytes).await? {
                Reply::Sse(body) => body,
                Reply::Json(_) => return Err(stream_error("with JSON")),
                Reply::Accepted => return Err(stream_error("202")),
            };
            let heard = Heard::new(server, filter, body, self.limit())
                .acknowledged(self.p.clock(), server.timeout_ms)
                .await
                .map_err(|why| GatewayError::Upstream {
                    server: server.id.clone(),
                    message: format!("subscriptions/listen: {why}"),
                })?;
            return Ok((!heard.filter.is_empty()).then_some(heard));
        }
        // A legacy session: subscribe to each URI, then its GET stream.
        if let Some(uris) = filter.resource_subscriptions.take() {
            let mut kept = Vec::new();
            for uri in uris {
                let sub_id = ups.own_request_id();
                let sub = json!({"jsonrpc": "2.0", "id": &sub_id,
                    "method": "resources/subscribe", "params": {"uri": &uri}});
                let bytes = serde_json::to_vec(&sub).expect("JSON values serialize");
                let answer = match ups.send(server, &bytes).await {
                    Ok(reply) => {
                        crate::upstream::reply::read_result(reply, &sub_id, &server.id, 64 * 1024)
                            .await
                            .map(drop)
                    }
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(()) => kept.push(uri),
                    Err(e) => tracing::warn!(server = %server.id, "resources/subscribe {uri}: {e}"),
                }
            }
            filter.resource_subscriptions = Some(kept).filter(|k| !k.is_empty());
            if filter.is_empty() {
                return Ok(None);
            }
        }
        let body = match ups.open_stream(server, None).await {
            Err(GatewayError::MethodNotAllowed { .. }) => {
                return Err(stream_error("its GET stream with 405"))
            }
            other => other?,
        };
        Ok(Some(Heard::new(server, filter, body, self.limit())))
    }

    fn redaction_for(&self, server: &Server) -> Vec<Kind> {
        self.gate.redaction(server, None)
    }

    fn limit(&self) -> usize {
        self.gw.settings.max_upstream_bytes
    }
}

/// A keep-alive comment every [`KEEPALIVE_MS`], then [`Frame::Ended`] once
/// `lifetime_ms` has passed.
fn ticks<C: Clock + 'static>(clock: C, lifetime_ms: u64) -> LocalBoxStream<'static, Frame> {
    let until = clock.now_ms().saturating_add(lifetime_ms);
    stream::unfold(Some(clock), move |clock| async move {
        let clock = clock?;
        let now = clock.now_ms();
        if now >= until {
            return Some((Frame::Ended, None));
        }
        clock.sleep(KEEPALIVE_MS.min(until - now)).await;
        match clock.now_ms() >= until {
            true => Some((Frame::Ended, None)),
            false => Some((Frame::Bytes(b": keep-alive\n\n".to_vec()), Some(clock))),
        }
    })
    .boxed_local()
}

/// One upstream's stream as frames for the client: what the client asked
/// for, tagged with its subscription, redacted; then [`Frame::Ended`].
fn relay(
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

/// The cached lists a list change makes stale.
fn lists_of(method: &str) -> &'static [&'static str] {
    match method {
        "notifications/tools/list_changed" => &["tools/list"],
        "notifications/prompts/list_changed" => &["prompts/list"],
        "notifications/resources/list_changed" => &["resources/list", "resources/templates/list"],
        _ => &[],
    }
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

fn encode(message: &Value) -> Vec<u8> {
    sse::encode_message(&serde_json::to_vec(message).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_filter_is_honored_only_as_far_as_a_server_declares() {
        let asked = filter(json!({"toolsListChanged": true, "promptsListChanged": true,
            "resourceSubscriptions": ["file:///a"]}));
        let caps = json!({"tools": {"listChanged": true}, "prompts": {}, "resources": {"subscribe": true}});
        let honored = asked.honored_by(&caps);
        assert_eq!(
            serde_json::to_value(&honored).unwrap(),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
        );
        assert!(asked.honored_by(&json!({"tools": {}})).is_empty());
        let both = honored.union(&filter(json!({"promptsListChanged": true,
            "resourceSubscriptions": ["file:///a", "file:///b"]})));
        assert_eq!(
            serde_json::to_value(&both).unwrap(),
            json!({"toolsListChanged": true, "promptsListChanged": true,
                "resourceSubscriptions": ["file:///a", "file:///b"]})
        );
    }

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
