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

mod filter;
mod relay;

use super::super::{respond, Ctx};
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::pii::Kind;
use crate::ports::{Clock, Platform};
use crate::protocol::jsonrpc::{Id, Request};
use crate::upstream::{modern, ClientSession, Reply};
use filter::Filter;
use futures_util::future::join_all;
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use relay::{encode, relay, Frame, Heard};
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// How long a listen stream stays silent before a keep-alive comment, so
/// that proxies and clients do not take a quiet stream for a dead one.
pub(crate) const KEEPALIVE_MS: u64 = 15_000;

/// `_meta` key naming the subscription a notification belongs to.
pub(crate) const SUBSCRIPTION_ID_KEY: &str = "io.modelcontextprotocol/subscriptionId";

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
        let capabilities = meta.get(crate::protocol::modern::CLIENT_CAPABILITIES_KEY);
        let mut client = self.bridged(capabilities.unwrap_or(&Value::Null)).await?;
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
                    let (stale, server) = (self.stale(), s.id.clone());
                    let changed = move |method: &str| stale(&server, method);
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
