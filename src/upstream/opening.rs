//! Opening an upstream session for a client session: in the era the
//! endpoint speaks (asked once with `server/discover` and remembered, see
//! [`Eras`](super::eras::Eras)), by the `initialize` handshake for a legacy endpoint, and by
//! adopting a modern endpoint as a session without an id; either way the
//! session is recorded where any isolate finds it.

use super::client::{Attempt, Upstreams};
use super::eras::Speaks;
use super::modern;
use super::reply::{self, describe, header};
use crate::config::{Endpoint, Era, Server};
use crate::ports::{Clock, HttpClient, Platform, Sessions, UpstreamChange, UpstreamSession};
use crate::protocol::headers;
use crate::protocol::jsonrpc;
use serde_json::{json, Value};

/// What a `server/discover` probe learned.
enum Probe {
    /// A modern or dual-era server's discover result.
    Modern(Value),
    /// A legacy server's kind of answer.
    Legacy,
    /// Nothing either way (unreachable, 5xx, credentials refused, limited).
    Unclear,
}

/// How often, and how far apart, a first session is read back.
const READ_BACK_TRIES: usize = 5;
const READ_BACK_WAIT_MS: u64 = 20;

impl<P: Platform> Upstreams<'_, P> {
    /// Opens a session on one endpoint in the era it speaks (asked the first
    /// time, see [`Eras`]) and returns it with the server's `initialize`
    /// result (for a modern one, its discover result in that shape; with
    /// `want_result` false an already known modern endpoint is not asked).
    pub(super) async fn open(
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
        let session = self.remember(server, modern::session(&endpoint.url)).await;
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
            return Err(Attempt::fail(
                status.is_server_error(),
                describe(status, &body),
            ));
        }
        let session_id = header(&response, headers::SESSION_ID);
        let result = reply::read_result(
            reply::classify(response),
            &id,
            &server.id,
            self.client.max_bytes,
        )
        .await
        .map_err(|e| Attempt::fail(false, format!("initialize: {e}")))?;
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
        if self.client.listens_first() {
            // Heard from the start (see `ClientSession::listening`); a
            // server that offers no stream is simply not listened to.
            match self.open_stream_on(server, &session, None).await {
                Ok(body) => {
                    if let Some(open) = self.client.listening.borrow_mut().as_mut() {
                        open.insert(server.id.clone(), (session.clone(), body));
                    }
                }
                Err(e) => tracing::debug!(server = %server.id, "not listened to first: {e}"),
            }
        }
        let note = jsonrpc::notification_bytes("notifications/initialized", None);
        let level = self.client.log_level.borrow().clone();
        match self.post(server, endpoint, Some(&session), &note).await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!(server = %server.id, status = %r.status(), "notifications/initialized refused")
            }
            Err(a) => {
                tracing::warn!(server = %server.id, "notifications/initialized failed: {}", a.message)
            }
        }
        if let Some(level) = level {
            // Met after the client set its level: told it too.
            let body = json!({"jsonrpc": "2.0", "id": self.own_request_id(),
                "method": "logging/setLevel", "params": {"level": level}});
            let body = serde_json::to_vec(&body).expect("a request serializes");
            match self.post(server, endpoint, Some(&session), &body).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    tracing::info!(server = %server.id, status = %r.status(), "logging/setLevel refused")
                }
                Err(a) => {
                    tracing::info!(server = %server.id, "logging/setLevel failed: {}", a.message)
                }
            }
        }
        let session = self.remember(server, session).await;
        Ok((session, result))
    }

    /// Keeps the session for the rest of this request and in the session
    /// store, and returns the one to use: a server this client session meets
    /// for the first time may have been met a moment ago by another of its
    /// requests (a call and the GET stream at once); the session recorded
    /// first is kept and used by both, so what the server sends on its
    /// stream is heard (the other is ended).
    async fn remember(&self, server: &Server, session: UpstreamSession) -> UpstreamSession {
        let first = self
            .client
            .upstreams
            .borrow_mut()
            .insert(server.id.clone(), session.clone())
            .is_none();
        let Some(id) = &self.client.session_id else {
            return session;
        };
        let sessions = self.platform.sessions();
        let change = UpstreamChange {
            server: server.id.clone(),
            upstream: Some(session.clone()),
            unless_held: first,
        };
        if let Err(e) = sessions.set_upstream(id, &change).await {
            tracing::warn!(server = %server.id, "could not record upstream session: {e}");
            return session;
        }
        if !first {
            return session;
        }
        // Where the store only claims the first session atomically (Spin),
        // the first claimer's write may still be on its way: wait for it a
        // little, then record this one after all rather than none.
        let mut held = None;
        for _ in 0..READ_BACK_TRIES {
            held = match sessions.get(id).await {
                Ok(record) => record.and_then(|mut r| r.upstreams.remove(&server.id)),
                Err(_) => None,
            };
            if held.is_some() {
                break;
            }
            self.platform.clock().sleep(READ_BACK_WAIT_MS).await;
        }
        if held.is_none() {
            let change = UpstreamChange {
                unless_held: false,
                ..change
            };
            if let Err(e) = sessions.set_upstream(id, &change).await {
                tracing::warn!(server = %server.id, "could not record upstream session: {e}");
            }
        }
        match held {
            Some(theirs) if theirs != session => {
                tracing::info!(server = %server.id, "met at once by two requests: the session recorded first is used");
                self.client
                    .upstreams
                    .borrow_mut()
                    .insert(server.id.clone(), theirs.clone());
                self.end_unused(server, session).await;
                theirs
            }
            _ => session,
        }
    }

    /// Ends, after the response, an upstream session nobody will use (the
    /// one that lost to the session recorded first), so the upstream does
    /// not keep it until it times out. Best effort: logged.
    async fn end_unused(&self, server: &Server, unused: UpstreamSession) {
        let Some(sid) = unused.session_id else { return };
        let mut req = http::Request::delete(&unused.url)
            .header(headers::SESSION_ID, sid)
            .header(headers::PROTOCOL_VERSION, &unused.protocol_version);
        if let Ok(Some((name, value))) = self.credential(server).await {
            req = req.header(name, value);
        }
        let Ok(req) = req.body(Vec::new()) else {
            return;
        };
        let (http, id) = (self.platform.http().clone(), server.id.clone());
        self.platform.defer(Box::pin(async move {
            if let Err(e) = http.send(req).await {
                tracing::info!(server = %id, "ending an unused upstream session failed: {}", e.0);
            }
        }));
    }
}
