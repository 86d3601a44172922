//! Talking MCP to upstream servers on behalf of one client session.
//!
//! Each upstream is initialized lazily, the first time the client session needs
//! it, and its session is recorded in the client's session record (Durable
//! Object on Workers) so any isolate can reuse it. An upstream that forgot its
//! session (404) is re-initialized transparently, once. A region that cannot be
//! reached, answers 5xx or times out is skipped for the next one, with a log line.
//! The client's own credentials never reach an upstream: requests are built from
//! scratch with only the MCP headers.
//!
//! Opening a session (the era probe, `initialize`) is in
//! [`opening`](super::opening). Before the first session on an endpoint the gateway asks it
//! `server/discover` ([`Eras`]): an endpoint that speaks 2026-07-28 gets no
//! `initialize` and no session, only self-contained requests
//! ([`modern`](super::modern)), recorded as a session without an id so the
//! next request (from any isolate) goes straight to it.

use super::aside;
use super::credentials;
use super::eras::Eras;
use super::failover;
use super::minter::Minter;
use super::modern;
use super::reply::{self, describe, is_error_response, session_gone, Reply};
use super::ClientSession;
use crate::body::Body;
use crate::config::credentials::Credentials;
use crate::config::{Endpoint, Server};
use crate::error::GatewayError;
use crate::observe::audit::{self, Audit};
use crate::observe::collect::{current_span_id, note_here};
use crate::ports::{with_timeout, HttpClient, Platform, UpstreamSession};
use crate::protocol::headers;
use crate::protocol::jsonrpc::Id;
use crate::protocol::trace_context;
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use std::rc::Rc;

/// The upstream side of one request.
pub(crate) struct Upstreams<'a, P: Platform> {
    pub platform: &'a P,
    pub client: &'a ClientSession,
    pub minter: &'a Rc<Minter>,
    pub eras: &'a Rc<Eras>,
}

/// What [`Upstreams`] borrows, owned: for work that outlives the request
/// handler, such as a call made once a user approved it, inside a stream
/// already being sent.
pub(crate) struct Detached<P: Platform> {
    pub platform: P,
    pub client: ClientSession,
    pub minter: Rc<Minter>,
    pub eras: Rc<Eras>,
}

impl<P: Platform> Detached<P> {
    pub(crate) fn upstreams(&self) -> Upstreams<'_, P> {
        Upstreams::new(&self.platform, &self.client, &self.minter, &self.eras)
    }
}

/// A failed attempt: `retry` says whether the next region may do better.
pub(super) struct Attempt {
    pub(super) retry: bool,
    pub(super) message: String,
    /// The answer the caller gets as it is, when it is more than a failure
    /// (a connect prompt, a store that could not be reached).
    pub(super) error: Option<GatewayError>,
}

impl Attempt {
    /// A failed attempt, answered as an upstream failure.
    pub(super) fn fail(retry: bool, message: String) -> Attempt {
        Attempt {
            retry,
            message,
            error: None,
        }
    }

    /// The error the caller gets for this attempt on `server`.
    pub(super) fn into_error(self, server: &Server) -> GatewayError {
        self.error
            .unwrap_or_else(|| upstream_error(server, self.message))
    }
}

impl<'a, P: Platform> Upstreams<'a, P> {
    pub(crate) fn new(
        platform: &'a P,
        client: &'a ClientSession,
        minter: &'a Rc<Minter>,
        eras: &'a Rc<Eras>,
    ) -> Self {
        Upstreams {
            platform,
            client,
            minter,
            eras,
        }
    }

    /// The same, owned (see [`Detached`]).
    pub(crate) fn detach(&self) -> Detached<P>
    where
        P: Clone,
    {
        Detached {
            platform: self.platform.clone(),
            client: self.client.snapshot(),
            minter: self.minter.clone(),
            eras: self.eras.clone(),
        }
    }

    /// An id for a request the gateway makes on its own behalf (initialize,
    /// the tool catalog's listing) on an upstream session it shares with the
    /// client: 128 random bits, so no id a client picks can collide with it
    /// and cross-wire the answers.
    pub(crate) fn own_request_id(&self) -> Id {
        let mut bytes = [0u8; 16];
        self.platform.random_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Id::Str(format!("mcp-edge-{hex}"))
    }

    /// The credential header for `server` (see [`credentials`](super::credentials)).
    pub(crate) async fn credential(
        &self,
        server: &Server,
    ) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
        credentials::header_for(self.platform, self.minter, server, &self.client.caller).await
    }

    /// POSTs one JSON-RPC message to `server` and returns its classified answer.
    pub(crate) async fn send(
        &self,
        server: &Server,
        message: &[u8],
    ) -> Result<Reply, GatewayError> {
        if let Some(resume) = self.resuming(server, message) {
            return self.resume(server, resume).await;
        }
        let known = self.client.upstreams.borrow().get(&server.id).cloned();
        let endpoints = failover::order(
            server,
            self.client.region.as_deref(),
            known.as_ref().map(|k| k.url.as_str()),
        );
        let mut failures = Vec::new();
        let method = crate::protocol::jsonrpc::method_of(message).unwrap_or("");
        for (i, endpoint) in endpoints.iter().enumerate() {
            // Each attempt is a client span; the upstream's spans go under it.
            let host = endpoint.url.parse::<http::Uri>().ok();
            let span = tracing::info_span!(
                "upstream",
                otel.kind = "client",
                "mcp.method.name" = method,
                "mcp_edge.server.id" = %server.id,
                "mcp_edge.region" = %endpoint.region,
                "server.address" = host.as_ref().and_then(|u| u.host()).unwrap_or(""),
            );
            let collected = span.in_scope(current_span_id).is_some();
            if let Some(tool) = tool_called(method, message).filter(|_| collected) {
                span.in_scope(|| note_here("gen_ai.tool.name", tool.into()));
            }
            let attempt = self.send_to(server, endpoint, known.clone(), message);
            let attempt = tracing::Instrument::instrument(attempt, span.clone()).await;
            if let Err(a) = &attempt {
                let kind = audit::failure_kind(&a.message);
                span.in_scope(|| note_here("error.type", kind.into()));
            }
            match attempt {
                Ok(reply) => return Ok(reply),
                Err(a) if a.retry => {
                    if let Some(next) = endpoints.get(i + 1) {
                        tracing::warn!(
                            server = %server.id, from = %endpoint.region, to = %next.region,
                            "upstream failover: {}", a.message
                        );
                        audit::record(&Audit::Failover {
                            server: &server.id,
                            from: &endpoint.region,
                            to: &next.region,
                            why: &audit::failure_kind(&a.message),
                        });
                    }
                    failures.push(format!("{}: {}", endpoint.region, a.message));
                }
                Err(a) => return Err(a.into_error(server)),
            }
        }
        Err(upstream_error(server, failures.join("; ")))
    }

    /// Meets `server` now (per-server `initialize` and `server/discover`)
    /// and returns its `initialize` result (a modern server's discover
    /// result, in that shape).
    pub(crate) async fn initialize_now(&self, server: &Server) -> Result<Value, GatewayError> {
        let endpoints = failover::order(server, self.client.region.as_deref(), None);
        let mut failures = Vec::new();
        for endpoint in endpoints {
            match self.open(server, endpoint, true).await {
                Ok((_, result)) => return Ok(result),
                Err(a) if a.retry => failures.push(format!("{}: {}", endpoint.region, a.message)),
                Err(a) => return Err(a.into_error(server)),
            }
        }
        Err(upstream_error(server, failures.join("; ")))
    }

    /// Opens the upstream's server-to-client SSE stream (GET) on the session
    /// this client session already holds with it, passing `Last-Event-ID` so
    /// the upstream can resume. The body is relayed unchanged.
    pub(crate) async fn open_stream(
        &self,
        server: &Server,
        last_event_id: Option<&str>,
    ) -> Result<Body, GatewayError> {
        let not_offered = GatewayError::MethodNotAllowed {
            allow: "POST, DELETE",
        };
        let Some(session) = self.client.upstreams.borrow().get(&server.id).cloned() else {
            return Err(not_offered);
        };
        self.open_stream_on(server, &session, last_event_id).await
    }

    /// Opens the server-to-client stream on one upstream session.
    pub(super) async fn open_stream_on(
        &self,
        server: &Server,
        session: &UpstreamSession,
        last_event_id: Option<&str>,
    ) -> Result<Body, GatewayError> {
        let not_offered = GatewayError::MethodNotAllowed {
            allow: "POST, DELETE",
        };
        // A modern upstream has no stream outside a request.
        if modern::is_modern(session) {
            return Err(not_offered);
        }
        let mut req = http::Request::get(&session.url)
            .header(http::header::ACCEPT, headers::EVENT_STREAM)
            .header(headers::PROTOCOL_VERSION, &session.protocol_version);
        if let Some(id) = &session.session_id {
            req = req.header(headers::SESSION_ID, id);
        }
        if let Some(last) = last_event_id {
            req = req.header(headers::LAST_EVENT_ID, last);
        }
        if let Some(traced) = &self.client.traced {
            req = req.header(headers::TRACEPARENT, parent_of(traced));
            if let Some(state) = &traced.context.state {
                req = req.header(headers::TRACESTATE, state);
            }
        }
        if let Some((name, value)) = self.credential(server).await? {
            req = req.header(name, value);
        }
        let req = req
            .body(Vec::new())
            .map_err(|e| upstream_error(server, format!("cannot build request: {e}")))?;
        let send = self.platform.http().send(req);
        let response = match with_timeout(self.platform.clock(), server.timeout_ms, send).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(upstream_error(server, format!("unreachable: {}", e.0))),
            None => {
                return Err(upstream_error(
                    server,
                    format!("timed out after {} ms", server.timeout_ms),
                ))
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        if status == http::StatusCode::METHOD_NOT_ALLOWED {
            return Err(not_offered);
        }
        let body = response
            .into_body()
            .collect(64 * 1024)
            .await
            .unwrap_or_default();
        Err(upstream_error(server, describe(status, &body)))
    }

    /// The servers, of `servers`, this client session holds an upstream
    /// session with.
    pub(crate) fn met(&self, servers: &[Rc<Server>]) -> Vec<Rc<Server>> {
        let known = self.client.upstreams.borrow();
        servers
            .iter()
            .filter(|s| known.contains_key(&s.id))
            .cloned()
            .collect()
    }

    /// Sends a message to several servers at once; failures are logged only.
    pub(crate) async fn broadcast(&self, servers: &[Rc<Server>], message: &[u8], id: Option<&Id>) {
        let answers = futures_util::future::join_all(servers.iter().map(|s| async move {
            let answer = self.send(s, message).await?;
            match id {
                Some(id) => reply::read_result(answer, id, &s.id, self.client.max_bytes)
                    .await
                    .map(drop),
                None => Ok(()),
            }
        }))
        .await;
        for (server, answer) in servers.iter().zip(answers) {
            if let Err(e) = answer {
                tracing::warn!(server = %server.id, "broadcast failed: {e}");
            }
        }
    }

    /// Sends a one-way message (a notification, an answer to the server's
    /// request) on the session this client already holds with `server`, as
    /// it is: no session is opened, none re-initialized, no other region
    /// tried (a cancellation or an answer means nothing anywhere else).
    pub(crate) async fn notify_known(&self, server: &Server, message: &[u8]) -> Result<(), String> {
        let session = self.client.upstreams.borrow().get(&server.id).cloned();
        let session = session.ok_or("no session with it")?;
        let endpoint = server
            .endpoints
            .iter()
            .find(|e| e.url == session.url)
            .ok_or("its session's endpoint is no longer registered")?;
        let send = self.post(server, endpoint, Some(&session), message);
        match with_timeout(self.platform.clock(), server.timeout_ms, send).await {
            Some(Ok(r)) if r.status().is_success() => Ok(()),
            Some(Ok(r)) => Err(format!("HTTP {}", r.status())),
            Some(Err(a)) => Err(a.message),
            None => Err(format!("timed out after {} ms", server.timeout_ms)),
        }
    }

    /// One endpoint: make sure a session exists, send, re-initialize once if the
    /// upstream lost the session.
    async fn send_to(
        &self,
        server: &Server,
        endpoint: &Endpoint,
        known: Option<UpstreamSession>,
        message: &[u8],
    ) -> Result<Reply, Attempt> {
        let mut session = known.filter(|k| k.url == endpoint.url);
        let mut fresh = false;
        loop {
            let current = match session.take() {
                Some(s) => s,
                None => {
                    fresh = true;
                    self.open(server, endpoint, false).await?.0
                }
            };
            // Heard before the call goes, so nothing it asks aside is missed.
            let aside = match !modern::is_modern(&current) && aside::listens(self.client, message) {
                true => self.open_stream_on(server, &current, None).await.ok(),
                false => None,
            };
            let response = self.post(server, endpoint, Some(&current), message).await?;
            let status = response.status();
            if status.is_success() {
                let reply = match (reply::classify(response), aside) {
                    (Reply::Sse(call), Some(aside)) => {
                        Reply::Sse(aside::join(call, aside, self.client.max_bytes))
                    }
                    (reply, _) => reply,
                };
                // A legacy client cannot answer a modern upstream's question.
                if modern::is_modern(&current) && self.client.modern_meta.is_none() {
                    return Ok(super::to_legacy::reply(reply, self.client.max_bytes).await);
                }
                return Ok(reply);
            }
            let body = response
                .into_body()
                .collect(64 * 1024)
                .await
                .unwrap_or_default();
            // A modern server answers a refused request with a 4xx and its
            // JSON-RPC error (-32602 and the like): that is the answer, not a
            // failed attempt.
            if modern::is_modern(&current) && status.is_client_error() && is_error_response(&body) {
                return Ok(Reply::Json(Body::from(body)));
            }
            if !fresh && current.session_id.is_some() && session_gone(status, &body) {
                tracing::info!(server = %server.id, "upstream session expired; re-initializing");
                continue;
            }
            return Err(Attempt::fail(
                status.is_server_error(),
                describe(status, &body),
            ));
        }
    }

    /// One POST with the gateway's own headers, bounded by the server's timeout.
    pub(super) async fn post(
        &self,
        server: &Server,
        endpoint: &Endpoint,
        session: Option<&UpstreamSession>,
        body: &[u8],
    ) -> Result<http::Response<Body>, Attempt> {
        let mut req = http::Request::post(&endpoint.url)
            .header(http::header::CONTENT_TYPE, headers::JSON)
            .header(http::header::ACCEPT, "application/json, text/event-stream");
        let mut body = std::borrow::Cow::Borrowed(body);
        if session.is_some_and(modern::is_modern) {
            let out = modern::prepare(&body, &self.client.envelope(), &self.client.param_headers)
                .map_err(|message| Attempt::fail(false, message))?;
            for (name, value) in out.headers {
                req = req.header(name, value);
            }
            body = std::borrow::Cow::Owned(out.body);
        } else if let Some(s) = session {
            if let Some(id) = &s.session_id {
                req = req.header(headers::SESSION_ID, id);
            }
            req = req.header(headers::PROTOCOL_VERSION, &s.protocol_version);
        }
        // The upstream's spans join the client's trace, under the gateway's.
        if let Some(traced) = &self.client.traced {
            let parent = parent_of(traced);
            let state = traced.context.state.as_deref();
            if let Some(with) = trace_context::into_meta(&body, &parent, state) {
                body = std::borrow::Cow::Owned(with);
            }
            req = req.header(headers::TRACEPARENT, parent);
            if let Some(state) = state {
                req = req.header(headers::TRACESTATE, state);
            }
        }
        let credential = self.credential(server).await.map_err(|e| match e {
            GatewayError::Upstream { message, .. } => Attempt::fail(false, message),
            other => Attempt {
                retry: false,
                message: other.to_string(),
                error: Some(other),
            },
        })?;
        let sent = credential
            .as_ref()
            .and_then(|(_, v)| v.to_str().ok().map(str::to_string));
        if let Some((name, value)) = credential {
            req = req.header(name, value);
        }
        let req = req
            .body(body.to_vec())
            .map_err(|e| Attempt::fail(false, format!("cannot build request: {e}")))?;
        let send = self.platform.http().send(req);
        match with_timeout(self.platform.clock(), server.timeout_ms, send).await {
            Some(Ok(response)) if response.status() == http::StatusCode::UNAUTHORIZED => {
                Err(self.refused(server, &response, sent.as_deref()).await)
            }
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(Attempt::fail(true, format!("unreachable: {}", e.0))),
            None => Err(Attempt::fail(
                true,
                format!("timed out after {} ms", server.timeout_ms),
            )),
        }
    }
}

impl<P: Platform> Upstreams<'_, P> {
    /// An upstream's 401, relayed as something the caller can act on. For a
    /// server that takes each user's own token, the token is marked expired
    /// (the next call refreshes it) and the caller is asked to connect; for
    /// any other, the error says the server wants authorization the
    /// registry does not give it, and names its challenge's metadata.
    async fn refused(
        &self,
        server: &Server,
        response: &http::Response<Body>,
        sent: Option<&str>,
    ) -> Attempt {
        let challenge = reply::header(response, "www-authenticate");
        let caller = &self.client.caller;
        if let Credentials::OAuth(_) = &server.credentials {
            let owner = caller.principal.key();
            let oauth = &self.minter.oauth;
            if let Err(e) = oauth
                .expire(self.platform, (&owner, &server.id), sent)
                .await
            {
                return Attempt {
                    retry: false,
                    message: e.to_string(),
                    error: Some(e),
                };
            }
            let why = "the server refused your token";
            let prompt = oauth
                .prompt(self.platform, &caller.issuer, &owner, &server.id, why)
                .await;
            return Attempt {
                retry: false,
                message: "HTTP 401".into(),
                error: Some(prompt),
            };
        }
        // Named only when it is a plain URL of sensible length: the text
        // reaches a model, and an upstream's words are not instructions.
        let metadata = challenge
            .as_deref()
            .and_then(|c| crate::identity::oauth::challenge_param(c, "resource_metadata"))
            .filter(|m| m.len() <= 512 && m.parse::<http::Uri>().is_ok_and(|u| u.host().is_some()));
        let message = match (challenge, metadata) {
            (None, _) => "HTTP 401: the server refused the gateway's credentials".to_string(),
            (Some(_), Some(m)) => format!(
                "HTTP 401: the server asks each user to authorize (its metadata: {m}); \
                 register it with credentials {{\"type\": \"oauth\"}} so users can connect"
            ),
            (Some(_), None) => {
                "HTTP 401: the server asks for authorization the gateway was not given; \
                 register it with credentials {\"type\": \"oauth\"} so users can connect"
                    .to_string()
            }
        };
        Attempt::fail(false, message)
    }
}

fn upstream_error(server: &Server, message: String) -> GatewayError {
    GatewayError::Upstream {
        server: server.id.clone(),
        message,
    }
}

/// The `traceparent` a request upstream carries: the trace under the span
/// the request is sent in (an upstream attempt's, when spans are collected),
/// else under the gateway's span.
fn parent_of(traced: &crate::protocol::trace_context::Traced) -> String {
    traced
        .context
        .traceparent(current_span_id().unwrap_or(traced.span))
}

/// The tool a `tools/call` message calls (upstream, by its own name).
fn tool_called(method: &str, message: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Call {
        params: Params,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: String,
    }
    (method == "tools/call")
        .then(|| serde_json::from_slice::<Call>(message).ok())
        .flatten()
        .map(|c| c.params.name)
}
