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
//! Before the first session on an endpoint the gateway asks it
//! `server/discover` ([`Eras`]): an endpoint that speaks 2026-07-28 gets no
//! `initialize` and no session, only self-contained requests
//! ([`modern`](super::modern)), recorded as a session without an id so the
//! next request (from any isolate) goes straight to it.

use super::credentials::{self, Caller};
use super::eras::{Eras, Speaks};
use super::failover;
use super::minter::Minter;
use super::modern;
use super::reply::{self, Reply};
use crate::body::Body;
use crate::config::{Endpoint, Era, Server};
use crate::error::GatewayError;
use crate::ports::{
    with_timeout, Clock, HttpClient, Platform, Sessions, UpstreamChange, UpstreamSession,
};
use crate::protocol::headers;
use crate::protocol::jsonrpc::{self, Id};
use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// What the gateway knows about the client session it is acting for.
pub(crate) struct ClientSession {
    /// The client session id, when there is one to record upstream sessions in.
    pub session_id: Option<String>,
    /// The revision the client speaks; offered to upstreams first.
    pub protocol_version: String,
    /// The client's `initialize` params to replay upstream (per-server endpoint),
    /// or `None` to initialize as the gateway itself.
    pub client_params: Option<Value>,
    /// The caller's region, for endpoint preference.
    pub region: Option<String>,
    /// Upstream sessions known at the start of the request, updated as we go.
    pub upstreams: RefCell<BTreeMap<String, UpstreamSession>>,
    /// Largest upstream answer to buffer.
    pub max_bytes: usize,
    /// Who the gateway acts for (credentials minted for upstreams name them).
    pub caller: Caller,
    /// A modern client's own envelope (`_meta` revision, capabilities,
    /// client info, log level), for requests the gateway makes for it.
    pub modern_meta: Option<Map<String, Value>>,
    /// A modern client's `Mcp-Param-*` headers, forwarded with its call.
    pub param_headers: Vec<(HeaderName, HeaderValue)>,
}

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

impl ClientSession {
    /// A copy, with the upstream sessions known so far.
    pub(crate) fn snapshot(&self) -> ClientSession {
        ClientSession {
            session_id: self.session_id.clone(),
            protocol_version: self.protocol_version.clone(),
            client_params: self.client_params.clone(),
            region: self.region.clone(),
            upstreams: RefCell::new(self.upstreams.borrow().clone()),
            max_bytes: self.max_bytes,
            caller: self.caller.clone(),
            modern_meta: self.modern_meta.clone(),
            param_headers: self.param_headers.clone(),
        }
    }

    /// The envelope a modern upstream gets with the requests made for this
    /// client: a modern client's own; for a legacy client no capabilities,
    /// and its info from its `initialize` (the gateway's on `/mcp`).
    pub(crate) fn envelope(&self) -> Map<String, Value> {
        if let Some(meta) = &self.modern_meta {
            return meta.clone();
        }
        // A legacy client cannot answer an `input_required`: its envelope
        // declares no capabilities, so a modern upstream does not ask it.
        let info = self
            .client_params
            .as_ref()
            .and_then(|p| p.get("clientInfo"))
            .cloned();
        modern::envelope(json!({}), info)
    }
}

/// What a `server/discover` probe learned.
enum Probe {
    /// A modern or dual-era server's discover result.
    Modern(Value),
    /// A legacy server's kind of answer.
    Legacy,
    /// Nothing either way (unreachable, 5xx, credentials refused, limited).
    Unclear,
}

/// A failed attempt: `retry` says whether the next region may do better.
struct Attempt {
    retry: bool,
    message: String,
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
        let known = self.client.upstreams.borrow().get(&server.id).cloned();
        let endpoints = failover::order(
            server,
            self.client.region.as_deref(),
            known.as_ref().map(|k| k.url.as_str()),
        );
        let mut failures = Vec::new();
        for (i, endpoint) in endpoints.iter().enumerate() {
            match self.send_to(server, endpoint, known.clone(), message).await {
                Ok(reply) => return Ok(reply),
                Err(a) if a.retry => {
                    if let Some(next) = endpoints.get(i + 1) {
                        tracing::warn!(
                            server = %server.id, from = %endpoint.region, to = %next.region,
                            "upstream failover: {}", a.message
                        );
                    }
                    failures.push(format!("{}: {}", endpoint.region, a.message));
                }
                Err(a) => return Err(upstream_error(server, a.message)),
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
                Err(a) => return Err(upstream_error(server, a.message)),
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
        // A modern upstream has no stream outside a request.
        if modern::is_modern(&session) {
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

    /// Sends a notification on the session this client already holds with
    /// `server`, as it is: no session is opened, none re-initialized, no
    /// other region tried (a cancellation means nothing anywhere else).
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
            let response = self.post(server, endpoint, Some(&current), message).await?;
            let status = response.status();
            if status.is_success() {
                let reply = reply::classify(response);
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
            return Err(Attempt {
                retry: status.is_server_error(),
                message: describe(status, &body),
            });
        }
    }

    /// Opens a session on one endpoint in the era it speaks (asked the first
    /// time, see [`Eras`]) and returns it with the server's `initialize`
    /// result (for a modern one, its discover result in that shape; with
    /// `want_result` false an already known modern endpoint is not asked).
    async fn open(
        &self,
        server: &Server,
        endpoint: &Endpoint,
        want_result: bool,
    ) -> Result<(UpstreamSession, Value), Attempt> {
        let now = self.platform.clock().now_ms();
        if self.client.modern_meta.is_none() {
            return self
                .open_for_legacy(server, endpoint, want_result, now)
                .await;
        }
        match self.eras.get(server, &endpoint.url, now) {
            Some(Speaks::Legacy) => return self.initialize(server, endpoint).await,
            Some(_) if !want_result => return Ok(self.adopt(server, endpoint, Value::Null).await),
            _ => {}
        }
        // What the probe could not tell is not learned: this time the
        // endpoint is met as a legacy one.
        match self.discover(server, endpoint).await {
            Probe::Modern(result) => {
                let ttl = result.get("ttlMs").and_then(Value::as_u64);
                self.eras.learn(&endpoint.url, Speaks::Dual, ttl, now);
                let result = modern::as_initialize_result(result);
                Ok(self.adopt(server, endpoint, result).await)
            }
            Probe::Legacy => {
                self.eras.learn(&endpoint.url, Speaks::Legacy, None, now);
                self.initialize(server, endpoint).await
            }
            // Declared modern: no `initialize` to fall back to.
            Probe::Unclear if server.era.is_some_and(|e| e != Era::Legacy) => {
                Ok(self.adopt(server, endpoint, Value::Null).await)
            }
            Probe::Unclear => self.initialize(server, endpoint).await,
        }
    }

    /// A legacy client meets an upstream in its own era: `initialize`. Only
    /// an upstream that refuses it (4xx) and then answers `server/discover`
    /// as a modern server is spoken to in the modern era. (A dual-era
    /// server's discover may list only modern revisions, so discover alone
    /// cannot tell that it still serves sessions.)
    async fn open_for_legacy(
        &self,
        server: &Server,
        endpoint: &Endpoint,
        want_result: bool,
        now: u64,
    ) -> Result<(UpstreamSession, Value), Attempt> {
        if self.eras.get(server, &endpoint.url, now) == Some(Speaks::Modern) {
            let result = match want_result {
                true => match self.discover(server, endpoint).await {
                    Probe::Modern(result) => modern::as_initialize_result(result),
                    _ => Value::Null,
                },
                false => Value::Null,
            };
            return Ok(self.adopt(server, endpoint, result).await);
        }
        match self.initialize(server, endpoint).await {
            Err(a) if !a.retry => {
                let Probe::Modern(result) = self.discover(server, endpoint).await else {
                    return Err(a);
                };
                let ttl = result.get("ttlMs").and_then(Value::as_u64);
                self.eras.learn(&endpoint.url, Speaks::Modern, ttl, now);
                let result = modern::as_initialize_result(result);
                Ok(self.adopt(server, endpoint, result).await)
            }
            other => other,
        }
    }

    /// Takes `endpoint` as a modern one: its session without an id, kept
    /// like any other, and `result` (what meeting it answered).
    async fn adopt(
        &self,
        server: &Server,
        endpoint: &Endpoint,
        result: Value,
    ) -> (UpstreamSession, Value) {
        let session = modern::session(&endpoint.url);
        self.remember(server, &session).await;
        (session, result)
    }

    /// Asks one endpoint `server/discover` as the gateway: its result when
    /// it speaks a modern revision; legacy for what a legacy server answers
    /// (an error about the session or the method, a result without the
    /// versions); unclear for an answer that says nothing about the era
    /// (unreachable, 5xx, credentials refused, rate limited).
    async fn discover(&self, server: &Server, endpoint: &Endpoint) -> Probe {
        use http::StatusCode as S;
        let id = self.own_request_id();
        let probe = modern::discover_request(&id);
        let modern = modern::session(&endpoint.url);
        let Ok(response) = self.post(server, endpoint, Some(&modern), &probe).await else {
            return Probe::Unclear;
        };
        let status = response.status();
        if status.is_server_error()
            || matches!(
                status,
                S::UNAUTHORIZED | S::FORBIDDEN | S::REQUEST_TIMEOUT | S::TOO_MANY_REQUESTS
            )
        {
            return Probe::Unclear;
        }
        if !status.is_success() {
            return Probe::Legacy;
        }
        let max = self.client.max_bytes;
        match reply::read_result(reply::classify(response), &id, &server.id, max).await {
            Ok(r) if modern::speaks_modern(&r) => Probe::Modern(r),
            _ => Probe::Legacy,
        }
    }

    /// Runs the initialize handshake on one endpoint and records the session.
    async fn initialize(
        &self,
        server: &Server,
        endpoint: &Endpoint,
    ) -> Result<(UpstreamSession, Value), Attempt> {
        let id = self.own_request_id();
        let mut params = self.client.client_params.clone().unwrap_or_else(|| {
            json!({
                "capabilities": {},
                "clientInfo": { "name": super::CLIENT_NAME, "version": env!("CARGO_PKG_VERSION") },
            })
        });
        params["protocolVersion"] = Value::String(self.client.protocol_version.clone());
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": params}),
        )
        .expect("initialize serializes");
        let response = self.post(server, endpoint, None, &body).await?;
        let status = response.status();
        if !status.is_success() {
            let body = response
                .into_body()
                .collect(64 * 1024)
                .await
                .unwrap_or_default();
            return Err(Attempt {
                retry: status.is_server_error(),
                message: describe(status, &body),
            });
        }
        let session_id = header(&response, headers::SESSION_ID);
        let result = reply::read_result(
            reply::classify(response),
            &id,
            &server.id,
            self.client.max_bytes,
        )
        .await
        .map_err(|e| Attempt {
            retry: false,
            message: format!("initialize: {e}"),
        })?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(&self.client.protocol_version)
            .to_string();
        let session = UpstreamSession {
            url: endpoint.url.clone(),
            session_id,
            protocol_version: version,
        };
        let note = jsonrpc::notification_bytes("notifications/initialized", None);
        match self.post(server, endpoint, Some(&session), &note).await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(server = %server.id, status = %r.status(), "notifications/initialized refused")
            }
            Err(a) => {
                tracing::warn!(server = %server.id, "notifications/initialized failed: {}", a.message)
            }
        }
        self.remember(server, &session).await;
        Ok((session, result))
    }

    /// Keeps the session for the rest of this request and in the session store.
    async fn remember(&self, server: &Server, session: &UpstreamSession) {
        self.client
            .upstreams
            .borrow_mut()
            .insert(server.id.clone(), session.clone());
        if let Some(id) = &self.client.session_id {
            if let Err(e) = self
                .platform
                .sessions()
                .set_upstream(
                    id,
                    &UpstreamChange {
                        server: server.id.clone(),
                        upstream: Some(session.clone()),
                    },
                )
                .await
            {
                tracing::warn!(server = %server.id, "could not record upstream session: {e}");
            }
        }
    }

    /// One POST with the gateway's own headers, bounded by the server's timeout.
    async fn post(
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
                .map_err(|message| Attempt {
                retry: false,
                message,
            })?;
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
        let credential = self.credential(server).await.map_err(|e| Attempt {
            retry: false,
            message: match e {
                GatewayError::Upstream { message, .. } => message,
                other => other.to_string(),
            },
        })?;
        if let Some((name, value)) = credential {
            req = req.header(name, value);
        }
        let req = req.body(body.to_vec()).map_err(|e| Attempt {
            retry: false,
            message: format!("cannot build request: {e}"),
        })?;
        let send = self.platform.http().send(req);
        match with_timeout(self.platform.clock(), server.timeout_ms, send).await {
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(Attempt {
                retry: true,
                message: format!("unreachable: {}", e.0),
            }),
            None => Err(Attempt {
                retry: true,
                message: format!("timed out after {} ms", server.timeout_ms),
            }),
        }
    }
}

/// Whether a body is a JSON-RPC error response.
fn is_error_response(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_slice::<Response>(body).is_ok_and(|r| r.error.is_some())
}

/// Whether an error answer means "your session is gone". The spec says 404;
/// some servers (the TypeScript SDK's examples) answer 400 naming the session.
fn session_gone(status: http::StatusCode, body: &[u8]) -> bool {
    status == http::StatusCode::NOT_FOUND
        || (status == http::StatusCode::BAD_REQUEST
            && String::from_utf8_lossy(body)
                .to_ascii_lowercase()
                .contains("session"))
}

/// A short description of an error answer, with the upstream's JSON-RPC message
/// when it sent one.
fn describe(status: http::StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match message {
        Some(m) => format!("HTTP {}: {m}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

fn header(response: &http::Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn upstream_error(server: &Server, message: String) -> GatewayError {
    GatewayError::Upstream {
        server: server.id.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_loss_is_404_or_a_400_about_the_session() {
        assert!(session_gone(http::StatusCode::NOT_FOUND, b""));
        assert!(session_gone(
            http::StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"Bad Request: No valid session ID provided"}}"#
        ));
        assert!(!session_gone(
            http::StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"bad params"}}"#
        ));
        assert!(!session_gone(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            b"session"
        ));
    }

    #[test]
    fn describe_uses_the_jsonrpc_message() {
        assert_eq!(
            describe(
                http::StatusCode::BAD_GATEWAY,
                br#"{"error":{"message":"boom"}}"#
            ),
            "HTTP 502: boom"
        );
        assert_eq!(
            describe(http::StatusCode::SERVICE_UNAVAILABLE, b"<html>"),
            "HTTP 503"
        );
    }
}
