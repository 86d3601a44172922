//! Modern (2026-07-28) requests: stateless, one self-contained request per
//! POST, on both endpoints.
//!
//! No session is looked up or minted for the client. The envelope is checked
//! first ([`protocol::modern::classify`](crate::protocol::modern::classify)),
//! then the request takes the same route a legacy one does (the gate, the
//! guard, the aggregated or per-server handling), towards upstreams the
//! gateway meets as itself. A legacy upstream's session is kept per caller
//! and endpoint in a bridge record ([`session::bridge`]), so it is
//! initialized once, not once per request.
//!
//! Every result says `resultType` (absent would read as `complete`, but the
//! 2026-07-28 schema requires it), and the results a client may cache (lists,
//! `resources/read`, `server/discover`) carry `ttlMs` and `cacheScope`; the
//! gateway filters what each caller sees, so its own hints are `private`
//! and immediately stale (`server/utilities/caching.mdx`).
//!
//! What a modern client must not get is left out: server-to-client requests,
//! log messages below the level it asked for, an upstream's cache hints (the
//! gateway's own replace them), an upstream's `requestState` unsealed.
//!
//! A call the user must confirm is asked with an `input_required` result
//! when the client declared form elicitation ([`question`]), and answered on
//! its retry; calls approvers decide get the pending approval, as for a
//! legacy client.
//!
//! An upstream that speaks the modern era itself is relayed in it, without
//! any session ([`crate::upstream::modern`]); its own `input_required`
//! passes with the state sealed for this caller and request ([`round`]).
//!
//! `subscriptions/listen` merges the upstreams' notifications into one
//! stream ([`listen`]). A client that closes its response stream cancels
//! the request on the legacy upstream it was bridged to ([`cancel`]).

mod cancel;
mod held;
mod listen;
pub(crate) mod question;
mod reading;
mod round;
pub(crate) mod shape;

use super::ask::ElicitationModes;
use super::hold::Carried;
use super::{aggregate, respond, session, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::ports::Clock;
use crate::ports::Platform;
use crate::protocol::jsonrpc::{Id, Message, Request};
use crate::protocol::method::Method;
use crate::protocol::modern;
use crate::protocol::version::{self, Era};
use crate::upstream::eras::Speaks;
use crate::upstream::resume::{self, Resume};
use crate::upstream::{self, failover, ClientSession};
use http::Response;
use round::Round;
use serde_json::{json, Value};
use std::rc::Rc;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// A modern POST.
    pub(super) async fn post_modern(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, (GatewayError, Option<Id>)> {
        let (parts, body) = req.into_parts();
        let message = self.read_message(&parts.headers, &body)?;
        // The revision defines no client notifications on this wire
        // (cancelling is closing the response stream), and the gateway asks
        // modern clients nothing they could answer with a response.
        let Message::Request(r) = &message else {
            return Ok(respond::accepted());
        };
        let with_id = |e: GatewayError| (e, Some(r.id.clone()));
        let envelope = modern::classify(r, &parts.headers).map_err(|e| with_id(e.into()))?;
        let server = self.server().map_err(with_id)?;
        let method = Method::parse(&r.method);
        let may_ask = matches!(
            method,
            Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead
        );
        let mut seal = None;
        let mut wire = None;
        let mut on_abandon = None;
        let mut session_of: shape::SessionOf = Box::new(|_| None);
        let answer = match method {
            Method::Discover => self.discover(server.as_deref(), r, &envelope.meta).await,
            // A stream of notifications, not a result to shape.
            Method::SubscriptionsListen => {
                return self
                    .listen(server.as_deref(), r, &envelope.meta)
                    .await
                    .map_err(with_id)
            }
            // Removed by the revision (`changelog.mdx`, major changes 1, 4
            // and 5): unknown to a modern request, 404 + -32601.
            Method::Initialize
            | Method::Ping
            | Method::LoggingSetLevel
            | Method::ResourcesSubscribe
            | Method::ResourcesUnsubscribe => {
                Err(GatewayError::MethodNotFound(method.name().to_string()))
            }
            _ => {
                let round = match may_ask {
                    true => self.round(r, server.as_deref()).await.map_err(with_id)?,
                    false => Round::default(),
                };
                seal = round.sealer;
                let server = match round.pinned {
                    Some(pinned) => Some(pinned),
                    None => server.clone(),
                };
                let targets = self.reachable(server.as_deref(), method, r);
                let (mut client, shared) = match self.stateless(&targets) {
                    Some(client) => (client, false),
                    None => (
                        self.bridged(&envelope.capabilities)
                            .await
                            .map_err(with_id)?,
                        true,
                    ),
                };
                // Answers to a legacy upstream's questions: the call is
                // resumed with them, not sent again.
                if let Some((server, held)) = round.held {
                    let answers = held::answers(r, &held).map_err(with_id)?;
                    *client.resuming.borrow_mut() = Some(Resume {
                        server,
                        method: r.method.clone(),
                        answers,
                        held,
                    });
                }
                let held_wire = client
                    .resuming
                    .borrow()
                    .as_ref()
                    .map(|h| h.held.wire.clone());
                // A bridged upstream session is this caller's on this
                // endpoint, shared by all its modern requests: two of them
                // in flight with the same id would cross-wire their answers
                // there. Upstream, the request goes under an id of the
                // gateway's; the answer gets the client's back (Shape).
                let resent = match (round.resent, shared) {
                    (None, false) => None,
                    (resent, _) => {
                        let mut sent = resent.unwrap_or_else(|| r.clone());
                        if shared {
                            let id = held_wire.unwrap_or_else(|| self.wire_id());
                            sent.id = id.clone();
                            wire = Some(id);
                        }
                        let bytes = sent.to_bytes();
                        Some((Message::Request(sent), bytes))
                    }
                };
                let (message, body) = match &resent {
                    Some((m, b)) => (m, b.as_slice()),
                    None => (&message, body.as_slice()),
                };
                client.modern_meta = Some(envelope.meta.clone());
                client.param_headers = param_headers(&parts.headers);
                let retry = match method {
                    Method::ToolsCall if !round.continues => {
                        question::read_retry(r.params.as_deref()).map_err(with_id)?
                    }
                    _ => None,
                };
                // Form questions only: URL-mode approval waits on a stream,
                // which a modern request does not hold open for it.
                let elicitation = ElicitationModes {
                    form: ElicitationModes::from_capabilities(&envelope.capabilities).form,
                    url: false,
                };
                let mut guard = self.guard_for(Era::Modern, elicitation, (retry, round.carried));
                guard.connect_by_url =
                    ElicitationModes::from_capabilities(&envelope.capabilities).url;
                let client = Rc::new(client);
                // Armed while the gateway waits: if the client goes away
                // now, this future is dropped and the upstream is told.
                let armed = wire.as_ref().map(|w| {
                    cancel::Canceller::arm(self.on_abandon(client.clone(), &targets, w.clone()))
                });
                let answer = self
                    .dispatch(
                        &self.upstreams(&client),
                        &guard,
                        server.as_deref(),
                        message,
                        body,
                    )
                    .await;
                // An approved call asked for input again: its next round
                // carries the approval, once.
                if let (Some(decider), Some(s)) = (guard.requester.approved.get(), seal.as_mut()) {
                    s.grant = Some(Carried::grant(self.p, decider));
                }
                // A streamed answer hands the work on (armed until the
                // answer is read); anything else is the whole answer.
                let streamed = answer.as_ref().is_ok_and(shape::is_stream);
                let held_with = client.clone();
                session_of = Box::new(move |server: &str| {
                    let upstreams = held_with.upstreams.borrow();
                    let s = upstreams.get(server)?;
                    (!upstream::modern::is_modern(s)).then(|| resume::session_digest(s))
                });
                on_abandon = armed.and_then(|a| a.take()).filter(|_| streamed);
                answer
            }
        };
        let shape = shape::Shape {
            id: r.id.clone(),
            cacheable: matches!(
                method,
                Method::List(_) | Method::ResourcesRead | Method::Discover
            ),
            may_ask,
            log_level: envelope.log_level,
            limit: self.upstream_limit,
            seal,
            wire,
            on_abandon,
            session_of,
            answerable: held::answerable(&envelope.capabilities),
            aggregated: server.is_none(),
        };
        answer.map(|a| shape.apply(a)).map_err(with_id)
    }

    /// The servers a request can reach: its endpoint's; on `/mcp` the one a
    /// call or prompt names, else every one (a list fans out, a
    /// `resources/read` asks all). Only their eras decide whether the
    /// request needs the caller's bridge record.
    fn reachable<'s>(
        &'s self,
        server: Option<&'s Server>,
        method: Method,
        req: &Request,
    ) -> Vec<&'s Server> {
        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        if let Some(s) = server {
            return vec![s];
        }
        let named = match method {
            Method::ToolsCall | Method::PromptsGet => req.params_as::<Named>().ok(),
            _ => None,
        };
        // A bare name several servers could offer counts as every server.
        let one = named.and_then(|n| self.naming().resolve_now(&n.name).map(|(i, _)| i));
        match one {
            Some(i) => vec![&*self.registry.servers[i]],
            None => self.registry.servers.iter().map(|s| &**s).collect(),
        }
    }

    /// An id of the gateway's for a request on a shared upstream session:
    /// 96 random bits, so it meets no other request's there.
    fn wire_id(&self) -> Id {
        let mut bytes = [0u8; 12];
        self.p.random_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Id::Str(format!("mcp-edge-{hex}"))
    }

    /// A client session for a request whose upstreams all speak the modern
    /// era (as far as this isolate knows): none of them needs a session, so
    /// no record is read.
    fn stateless(&self, targets: &[&Server]) -> Option<ClientSession> {
        let now = self.p.clock().now_ms();
        let client = self.client_session(None, version::LATEST, None);
        for server in targets {
            let first = failover::order(server, self.region.as_deref(), None)
                .into_iter()
                .next()?;
            if self.gw.eras.get(server, &first.url, now)? == Speaks::Legacy {
                return None;
            }
            client
                .upstreams
                .borrow_mut()
                .insert(server.id.clone(), upstream::modern::session(&first.url));
        }
        Some(client)
    }

    /// A client session for the gateway's own requests on this caller's
    /// behalf outside MCP (discovery): none where every target speaks the
    /// modern era, else this caller's bridge on `/mcp` for no client
    /// capabilities, so legacy upstreams are initialized once, not per
    /// request.
    pub(in crate::gateway) async fn own_client(
        &self,
        targets: &[&Server],
    ) -> Result<ClientSession, GatewayError> {
        let mut client = match self.stateless(targets) {
            Some(client) => client,
            None => {
                self.bridge_on(self.route.credential_endpoint(), &Value::Null)
                    .await?
            }
        };
        // Met as a modern client without capabilities is, so a dual-era
        // upstream is asked in the modern era and the bridge, shared with
        // this caller's modern requests on `/mcp`, keeps no legacy session
        // for it.
        let info = json!({"name": "mcp-edge-discovery", "version": env!("CARGO_PKG_VERSION")});
        let meta = upstream::modern::envelope(json!({}), Some(info));
        client.modern_meta = Some(meta);
        Ok(client)
    }

    /// The client session the upstreams see: this caller's bridge record on
    /// this endpoint for the client capabilities it declared, read (or
    /// opened) only when an upstream is reached. A legacy upstream is
    /// offered, in its `initialize`, of those capabilities the ones that let
    /// it ask the client something, and no more: so there is a bridge per
    /// set of them (a server may offer tools by what its client can answer).
    async fn bridged(&self, capabilities: &Value) -> Result<ClientSession, GatewayError> {
        self.bridge_on(self.route.endpoint_name(), capabilities)
            .await
    }

    /// This caller's bridge record on `endpoint` for `capabilities`.
    async fn bridge_on(
        &self,
        endpoint: String,
        capabilities: &Value,
    ) -> Result<ClientSession, GatewayError> {
        let offered = super::initialize::upstream_params(capabilities);
        let bridge = session::bridge(
            self.p,
            endpoint,
            self.owner(),
            &offered["capabilities"],
            self.gw.settings.session_ttl_ms,
        )
        .await?;
        let client = self.client_session(Some(bridge.id), version::LATEST, Some(offered));
        *client.upstreams.borrow_mut() = bridge.upstreams;
        Ok(client)
    }

    /// `server/discover`: on `/mcp` the gateway describes itself; on
    /// `/servers/{id}/mcp` the upstream's own capabilities and instructions,
    /// from its `initialize` (redacted as the policy asks).
    async fn discover(
        &self,
        server: Option<&Server>,
        req: &Request,
        meta: &serde_json::Map<String, Value>,
    ) -> Result<Response<Body>, GatewayError> {
        let (capabilities, instructions) = match server {
            None => {
                let mut own = aggregate::initialize_result(version::LATEST, &self.registry);
                // Whatever an upstream declares, `subscriptions/listen`
                // relays; its acknowledgment says what was honored.
                for feature in ["tools", "prompts", "resources"] {
                    own["capabilities"][feature]["listChanged"] = json!(true);
                }
                own["capabilities"]["resources"]["subscribe"] = json!(true);
                (own["capabilities"].clone(), own["instructions"].clone())
            }
            Some(server) => {
                // Each discover meets the upstream anew: it counts against
                // the caller's session budget like an `initialize`.
                self.may_open_a_session().await?;
                let capabilities = meta.get(modern::CLIENT_CAPABILITIES_KEY);
                let mut client = self.bridged(capabilities.unwrap_or(&Value::Null)).await?;
                // Met as this modern client would be, so a dual-era
                // upstream is asked in the modern era, and the bridge
                // record keeps no legacy session for it.
                client.modern_meta = Some(meta.clone());
                let mut result = self.meet(server, &client).await?;
                (
                    result["capabilities"].take(),
                    result
                        .get_mut("instructions")
                        .map_or(Value::Null, Value::take),
                )
            }
        };
        let mut result = json!({
            "supportedVersions": version::MODERN,
            "capabilities": shape::served(capabilities),
            "_meta": { modern::SERVER_INFO_KEY: {
                "name": "mcp-edge", "version": env!("CARGO_PKG_VERSION"),
            }},
        });
        if !instructions.is_null() {
            result["instructions"] = instructions;
        }
        Ok(respond::result(&req.id, &result))
    }
}

/// A modern client's `Mcp-Param-*` headers: forwarded with its call
/// (streamable-http.mdx § Server Behavior for Custom Headers: intermediaries
/// must pass them on).
fn param_headers(headers: &http::HeaderMap) -> Vec<(http::HeaderName, http::HeaderValue)> {
    headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("mcp-param-"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}
