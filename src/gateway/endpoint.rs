//! The MCP endpoints once the caller is known: `initialize` opening a session
//! bound to the caller, every later message dispatched to the aggregated or
//! per-server handling, DELETE ending the session, GET relaying a stream.

use super::ask::ElicitationModes;
use super::guard::CallGuard;
use super::hold::{Carried, Requester, Retry};
use super::ingest::Route;
use super::naming::Naming;
use super::{aggregate, answer, ingest, passthrough, respond, session, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::ports::{Clock, Platform, SessionRecord};
use crate::protocol::jsonrpc::{self, Id, Message};
use crate::protocol::method::{Method, Notice};
use crate::protocol::version::Era;
use crate::upstream::{asks, relay, Caller, ClientSession, Upstreams};
use http::Response;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// The server a per-server route names, if the caller may see it.
    pub(super) fn server(&self) -> Result<Option<Rc<Server>>, GatewayError> {
        match &self.route {
            Route::Server(id) => {
                let server = self
                    .registry
                    .get(id)
                    .cloned()
                    .ok_or_else(|| GatewayError::UnknownServer(id.clone()))?;
                crate::observe::notes::server(&server.id);
                Ok(Some(server))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn client_session(
        &self,
        session_id: Option<String>,
        version: &str,
        client_params: Option<serde_json::Value>,
    ) -> ClientSession {
        ClientSession {
            session_id,
            protocol_version: version.to_string(),
            client_params,
            region: self.region.clone(),
            upstreams: RefCell::new(BTreeMap::new()),
            max_bytes: self.upstream_limit,
            caller: Caller {
                principal: self.identity.principal.clone(),
                issuer: self.identity.base.clone(),
            },
            modern_meta: None,
            param_headers: Vec::new(),
            listening: RefCell::new(None),
            log_level: RefCell::new(None),
            resuming: RefCell::new(None),
            stale: Some(self.stale()),
            traced: Some(self.traced.clone()),
        }
    }

    /// What a server's list change makes stale, by server and method: its
    /// cached list pages and its part of the tool catalog, in this isolate.
    pub(super) fn stale(&self) -> crate::upstream::Stale {
        let (lists, catalog) = (self.gw.lists.clone(), self.gw.catalog.clone());
        Rc::new(move |server: &str, method: &str| {
            for list in crate::protocol::method::lists_of(method) {
                lists.forget(server, list);
                catalog.forget(server, list);
            }
        })
    }

    /// How `/mcp` names tools and prompts for this caller.
    pub(super) fn naming(&self) -> Naming<'_> {
        Naming {
            mode: self.gw.settings.names,
            registry: &self.registry,
            gate: &self.gate,
            catalog: &self.gw.catalog,
        }
    }

    pub(super) fn upstreams<'l>(&'l self, client: &'l ClientSession) -> Upstreams<'l, P> {
        Upstreams::new(self.p, client, &self.gw.minter, &self.gw.eras)
    }

    /// What sessions are bound to: a session opened by one caller is unknown
    /// to every other.
    pub(super) fn owner(&self) -> String {
        self.identity.principal.key()
    }

    /// A POST: one JSON-RPC message, taken through named steps.
    pub(super) async fn post(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, (GatewayError, Option<Id>)> {
        let (parts, body) = req.into_parts();
        let message = self.read_message(&parts.headers, &body)?;
        let id = match &message {
            Message::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        let with_id = |e: GatewayError| (e, id.clone());
        let server = self.server().map_err(with_id)?;
        if let Message::Request(r) = &message {
            if Method::parse(&r.method) == Method::Initialize {
                return self.initialize(server.as_deref(), r).await.map_err(with_id);
            }
        }
        if let Message::Response(_) = &message {
            // An answer goes to the upstream session that asked, which
            // another isolate may have met after this one cached the
            // record: answers (rare) read the store itself.
            if let Some(Ok(sid)) = parts
                .headers
                .get(crate::protocol::headers::SESSION_ID)
                .map(|v| v.to_str())
            {
                self.gw.sessions.evict(sid, self.p.clock().now_ms());
            }
        }
        let record = session::find(
            self.p,
            &parts.headers,
            &self.route.endpoint_name(),
            &self.owner(),
        )
        .await
        .map_err(with_id)?;
        if let Message::Response(r) = &message {
            if self.answers_a_question(r).await.map_err(with_id)? {
                return Ok(respond::accepted());
            }
        }
        let guard = self.guard(&record);
        let client = self.client_session(
            Some(record.id.clone()),
            &record.protocol_version,
            record.client_params.clone(),
        );
        *client.log_level.borrow_mut() = record.log_level;
        *client.upstreams.borrow_mut() = record.upstreams;
        self.dispatch(
            &self.upstreams(&client),
            &guard,
            server.as_deref(),
            &message,
            &body,
        )
        .await
        .map_err(with_id)
    }

    /// Body checks, then the JSON-RPC envelope: one message (no batches),
    /// and only `notifications/*` without an id.
    pub(super) fn read_message(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Message, (GatewayError, Option<Id>)> {
        ingest::check_post(headers, body.len(), &self.gw.settings).map_err(|e| (e, None))?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let e = GatewayError::InvalidRequest(
                "JSON-RPC batches are not supported; send one message per POST".into(),
            );
            return Err((e, None));
        }
        let message =
            jsonrpc::parse_message(body).map_err(|e| (e.into(), jsonrpc::salvage_id(body)))?;
        crate::observe::notes::message(&message);
        if let Message::Notification(n) = &message {
            // A request without an id would skip the guard (policy, limits,
            // validation, approval) on its way upstream: only notifications
            // may come without one.
            if !jsonrpc::is_notification_method(&n.method) {
                let e = GatewayError::InvalidRequest(format!(
                    "'{}' is a request and needs an id; only notifications/* may be sent without one",
                    n.method
                ));
                return Err((e, None));
            }
        }
        Ok(message)
    }

    /// Whether a client response answers one of the gateway's own approval
    /// questions (then it is recorded here and goes no further).
    async fn answers_a_question(&self, r: &jsonrpc::Response) -> Result<bool, GatewayError> {
        let result: Option<serde_json::Value> = r
            .result
            .as_ref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok());
        let ttl = self
            .gate
            .policy
            .as_ref()
            .and_then(|p| p.approval.as_ref())
            .map_or(0, |a| a.ttl_ms);
        answer::answer(self.p, &r.id, result.as_ref(), &self.owner(), ttl).await
    }

    /// What every `tools/call` of this session is checked with.
    fn guard(&self, record: &SessionRecord) -> CallGuard<'_> {
        let elicitation = ElicitationModes {
            form: record.elicitation,
            url: record.elicitation_url,
        };
        self.guard_for(Era::Legacy, elicitation, (None, None))
    }

    /// What a `tools/call` of `era` is checked with, for a client that can
    /// be asked in `elicitation` modes; `retry` is a modern client's answer
    /// to the question it was asked, `carried` the grant of a call approved
    /// in an earlier round.
    pub(super) fn guard_for(
        &self,
        era: Era,
        elicitation: ElicitationModes,
        (retry, carried): (Option<Retry>, Option<Carried>),
    ) -> CallGuard<'_> {
        CallGuard {
            gate: &self.gate,
            catalog: &self.gw.catalog,
            refusals: &self.gw.refusals,
            validate_arguments: self.gw.settings.validate_arguments,
            modern: era == Era::Modern,
            connect_by_url: false,
            requester: Requester {
                key: self.owner(),
                principal: &self.gate.principal,
                elicitation,
                base: self.identity.base.clone(),
                poll_ms: self.gw.settings.approval_poll_ms,
                max_waits: self.gw.settings.approval_waits_per_caller,
                retry,
                carried,
                approved: Cell::new(None),
            },
        }
    }

    /// Routes a message within a session: the aggregated endpoint merges
    /// and routes, the per-server endpoint passes `body` through as sent.
    pub(super) async fn dispatch(
        &self,
        ups: &Upstreams<'_, P>,
        guard: &CallGuard<'_>,
        server: Option<&Server>,
        message: &Message,
        body: &[u8],
    ) -> Result<Response<Body>, GatewayError> {
        match (message, server) {
            (Message::Request(r), None) => {
                aggregate::request(
                    ups,
                    &self.registry,
                    guard,
                    r,
                    Method::parse(&r.method),
                    &self.naming(),
                    &self.gw.lists,
                )
                .await
            }
            (Message::Request(r), Some(s)) => {
                passthrough::request(ups, s, guard, r, Method::parse(&r.method), body).await
            }
            (Message::Notification(n), None) => {
                aggregate::notify(ups, &self.registry, Notice::parse(&n.method), body).await;
                Ok(respond::accepted())
            }
            (Message::Notification(n), Some(s)) => {
                passthrough::forward_one_way(ups, s, Some(Notice::parse(&n.method)), body).await?;
                Ok(respond::accepted())
            }
            (Message::Response(_), Some(s)) => {
                passthrough::forward_one_way(ups, s, None, body).await?;
                Ok(respond::accepted())
            }
            (Message::Response(r), None) => {
                // The answer to an upstream's request goes back to the
                // upstream session that asked, under the upstream's own id.
                let Some((server, original)) = asks::untag(&r.id) else {
                    tracing::debug!(id = %r.id, "client response on /mcp to no upstream ignored");
                    return Ok(respond::accepted());
                };
                let Some(server) = self.registry.get(server) else {
                    tracing::warn!(id = %r.id, "client response for a server the caller does not see ignored");
                    return Ok(respond::accepted());
                };
                // Only to the session that asked: none is opened for it.
                let answer = asks::answer_bytes(&original, r);
                if let Err(e) = ups.notify_known(server, &answer).await {
                    tracing::warn!(server = %server.id, "answer to the server's request not delivered: {e}");
                }
                Ok(respond::accepted())
            }
        }
    }

    pub(super) async fn delete(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Response<Body>, GatewayError> {
        let endpoint = self.route.endpoint_name();
        let record = session::close(self.p, headers, &endpoint, &self.owner()).await?;
        // The upstream sessions end after the response, each with the
        // credential its server's requests carry.
        let client = self.client_session(None, &record.protocol_version, None);
        let ups = self.upstreams(&client);
        let mut credentials = Vec::new();
        for server in record.upstreams.keys() {
            if let Some(s) = self.registry.get(server) {
                credentials.push((server.clone(), ups.credential(s).await.ok().flatten()));
            }
        }
        session::end_upstreams(self.p, record, credentials);
        Ok(respond::ok_empty())
    }

    /// GET opens a server-to-client stream: on `/mcp` every visible server's
    /// merged (`server_stream.rs`), on the per-server endpoint the
    /// upstream's own, relayed.
    pub(super) async fn get(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Response<Body>, GatewayError> {
        let Some(server) = self.server()? else {
            return self.merged_stream(headers).await;
        };
        let record =
            session::find(self.p, headers, &self.route.endpoint_name(), &self.owner()).await?;
        let client = self.client_session(Some(record.id.clone()), &record.protocol_version, None);
        *client.log_level.borrow_mut() = record.log_level;
        *client.upstreams.borrow_mut() = record.upstreams;
        let last_event_id = headers
            .get(crate::protocol::headers::LAST_EVENT_ID)
            .and_then(|v| v.to_str().ok());
        let kinds = self.gate.redaction(&server, None);
        let body = self
            .upstreams(&client)
            .open_stream(&server, last_event_id)
            .await
            .map_err(|e| respond::redact_error(e, &kinds))?;
        if kinds.is_empty() {
            return Ok(respond::sse(body));
        }
        let limit = self.upstream_limit;
        Ok(respond::sse(Body::Stream(relay::redact_stream(
            body,
            (server.id.clone(), kinds),
            limit,
        ))))
    }
}
