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
//! Not yet served: `subscriptions/listen`, `input_required` results (a call
//! held for approval is answered with the pending approval, as for a legacy
//! client without elicitation), modern upstreams spoken to in their own era.

use super::ask::ElicitationModes;
use super::guard::CallGuard;
use super::hold::Requester;
use super::{aggregate, respond, session, Ctx};
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::pii;
use crate::ports::Platform;
use crate::protocol::headers;
use crate::protocol::jsonrpc::{Id, Message, Request};
use crate::protocol::method::Method;
use crate::protocol::modern;
use crate::protocol::sse;
use crate::protocol::version;
use futures_util::StreamExt;
use http::Response;
use serde_json::{json, Value};

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
        modern::classify(r, &parts.headers).map_err(|e| with_id(e.into()))?;
        let server = self.server().map_err(with_id)?;
        let method = Method::parse(&r.method);
        let bridge = session::bridge(
            self.p,
            self.route.endpoint_name(),
            self.owner(),
            self.gw.settings.session_ttl_ms,
        )
        .await
        .map_err(with_id)?;
        let client = self.client_session(Some(bridge.id.clone()), version::LATEST, None);
        *client.upstreams.borrow_mut() = bridge.upstreams;
        let ups = self.upstreams(&client);
        let answer = match method {
            Method::Discover => self.discover(&ups, server.as_deref(), r).await,
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
                let guard = CallGuard {
                    gate: &self.gate,
                    catalog: &self.gw.catalog,
                    validate_arguments: self.gw.settings.validate_arguments,
                    requester: Requester {
                        key: self.owner(),
                        principal: &self.gate.principal,
                        elicitation: ElicitationModes::default(),
                        base: self.identity.base.clone(),
                        poll_ms: self.gw.settings.approval_poll_ms,
                        max_waits: self.gw.settings.approval_waits_per_caller,
                    },
                };
                self.dispatch(&ups, &guard, server.as_deref(), &message, &body)
                    .await
            }
        };
        let limit = self.gw.settings.max_upstream_bytes;
        answer
            .map(|a| for_modern(a, method, limit))
            .map_err(with_id)
    }

    /// `server/discover`: on `/mcp` the gateway describes itself; on
    /// `/servers/{id}/mcp` the upstream's own capabilities and instructions,
    /// from its `initialize` (redacted as the policy asks).
    async fn discover(
        &self,
        ups: &crate::upstream::Upstreams<'_, P>,
        server: Option<&Server>,
        req: &Request,
    ) -> Result<Response<Body>, GatewayError> {
        let (capabilities, instructions) = match server {
            None => {
                let own = aggregate::initialize_result(version::LATEST, &self.registry);
                (own["capabilities"].clone(), own["instructions"].clone())
            }
            Some(server) => {
                // Each discover meets the upstream anew: it counts against
                // the caller's session budget like an `initialize`.
                self.may_open_a_session().await?;
                let kinds = self.gate.redaction(server, None);
                let mut result = ups
                    .initialize_now(server)
                    .await
                    .map_err(|e| respond::redact_error(e, &kinds))?;
                pii::redact_value(&mut result, &kinds);
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
            "capabilities": capabilities,
        });
        if !instructions.is_null() {
            result["instructions"] = instructions;
        }
        Ok(respond::result(&req.id, &result))
    }
}

/// An answer as the 2026-07-28 revision has it. A result says
/// `resultType`, and a cacheable one `ttlMs` and `cacheScope` (private,
/// immediately stale: what a caller sees is filtered for them); in an event
/// stream the response event is completed the same way as it passes. A JSON
/// error (an upstream's too) gets the HTTP status its code implies.
fn for_modern(mut response: Response<Body>, method: Method<'_>, limit: usize) -> Response<Body> {
    let cacheable = matches!(
        method,
        Method::List(_) | Method::ResourcesRead | Method::Discover
    );
    let is_stream = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(headers::EVENT_STREAM.as_bytes()));
    if is_stream {
        let body = std::mem::replace(response.body_mut(), Body::empty());
        *response.body_mut() = Body::Stream(complete_events(body, cacheable, limit));
        return response;
    }
    let Body::Full(bytes) = response.body() else {
        return response;
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(bytes) else {
        return response;
    };
    if let Some(code) = message.pointer("/error/code").and_then(Value::as_i64) {
        if let Some(status) = status_of(code) {
            *response.status_mut() = status;
        }
        return response;
    }
    if complete(&mut message, cacheable) {
        let bytes = serde_json::to_vec(&message).expect("JSON serializes");
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        *response.body_mut() = Body::Full(bytes);
    }
    response
}

/// Adds what a modern result must say to a JSON-RPC response; `false` when
/// the message is not one (a notification, an error).
fn complete(message: &mut Value, cacheable: bool) -> bool {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    result
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    if cacheable {
        result.entry("ttlMs").or_insert_with(|| json!(0));
        result
            .entry("cacheScope")
            .or_insert_with(|| json!("private"));
    }
    true
}

/// An event stream with its response event completed (see [`complete`]);
/// every other event passes unchanged.
fn complete_events(body: Body, cacheable: bool, limit: usize) -> ByteStream {
    let decoder = sse::Decoder::with_limit(limit);
    futures_util::stream::unfold(
        (body.into_stream(), decoder),
        move |(mut stream, mut decoder)| async move {
            let chunk = match stream.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (stream, decoder))),
            };
            let mut out = Vec::with_capacity(chunk.len() + 64);
            for event in decoder.feed(&chunk) {
                let completed = serde_json::from_str::<Value>(&event.data)
                    .ok()
                    .filter(|m| m.get("id").is_some())
                    .and_then(|mut m| complete(&mut m, cacheable).then_some(m));
                match completed {
                    Some(m) => out.extend_from_slice(&sse::encode_event(
                        &event,
                        &serde_json::to_vec(&m).expect("JSON serializes"),
                    )),
                    None => {
                        out.extend_from_slice(&sse::encode_event(&event, event.data.as_bytes()))
                    }
                }
            }
            Some((Ok(out), (stream, decoder)))
        },
    )
    .boxed_local()
}

/// The status a modern error answer is sent with
/// (`basic/transports/streamable-http.mdx` of 2026-07-28): unknown method
/// 404, malformed or mismatched request 400; others keep theirs.
fn status_of(code: i64) -> Option<http::StatusCode> {
    use crate::error::code;
    match code {
        code::METHOD_NOT_FOUND => Some(http::StatusCode::NOT_FOUND),
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => Some(http::StatusCode::BAD_REQUEST),
        _ => None,
    }
}
