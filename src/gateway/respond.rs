//! Building the gateway's HTTP answers: its own JSON results, 202s, and
//! upstream replies relayed to the client.

use crate::body::Body;
use crate::error::GatewayError;
use crate::governance::pii::Kind;
use crate::protocol::headers;
use crate::protocol::jsonrpc::{self, Id, Message};
use crate::upstream::relay::{self, Scope};
use crate::upstream::{ClientSession, Reply};
use http::{header, Response, StatusCode};
use serde::Serialize;
use std::rc::Rc;

/// A JSON body with status 200.
pub(crate) fn json(bytes: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, headers::JSON)
        .body(Body::Full(bytes))
        .expect("static response")
}

/// Marks an answer as this caller's alone (discovery, approvals): no
/// cache keeps it.
pub(crate) fn private(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-store"),
    );
    response
}

/// A JSON-RPC success response.
pub(crate) fn result<T: Serialize + ?Sized>(id: &Id, value: &T) -> Response<Body> {
    json(jsonrpc::result_body(id, value))
}

/// 202 Accepted with no body (notifications and responses from the client).
pub(crate) fn accepted() -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Body::empty())
        .expect("static response")
}

/// 200 with no body (DELETE of a session).
pub(crate) fn ok_empty() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .expect("static response")
}

/// Relays an upstream's reply to request `id`, with personal data of
/// `kinds` redacted from what `scope` covers: a JSON answer is read whole
/// (within `limit`), an SSE answer is relayed event by event. What cannot
/// be read for redaction is refused, never passed on as it came.
///
/// An answer must be the response to *this* request: a JSON answer with
/// another id is refused, and responses to other ids inside a stream are
/// dropped ([`relay`]). Otherwise an upstream could answer, in the client's
/// eyes, a request the client sent to another server (on `/mcp` the
/// client's own ids go to every upstream). The upstream's own requests in a
/// stream go under ids of the gateway's where `aggregated`
/// ([`crate::upstream::asks`]), and its log messages below `min_log` are
/// dropped (the level the `client` set on `/mcp`). For a modern client the
/// stream keeps the upstream's event ids for the shaping that comes next
/// ([`relay::Target::keep_ids`]); a list change on it makes the gateway's
/// caches for the server stale.
pub(crate) async fn forward(
    reply: Reply,
    id: &Id,
    (server, aggregated): (&str, bool),
    (kinds, scope): (&[Kind], Scope),
    client: &ClientSession,
) -> Result<Response<Body>, GatewayError> {
    let limit = client.max_bytes;
    let upstream = |message: String| GatewayError::Upstream {
        server: server.to_string(),
        message,
    };
    match reply {
        Reply::Json(body) => {
            let bytes = body.collect(limit).await.map_err(upstream)?;
            match jsonrpc::parse_message(&bytes) {
                Ok(Message::Response(r)) if &r.id == id => {}
                Ok(Message::Response(r)) => {
                    return Err(upstream(format!("answered id {} instead of {id}", r.id)))
                }
                Ok(_) => {
                    return Err(upstream(
                        "answered with a message that is not a response".into(),
                    ))
                }
                Err(e) => return Err(upstream(format!("answered invalid JSON-RPC: {e}"))),
            }
            if kinds.is_empty() {
                return Ok(json(bytes));
            }
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| upstream("an answer that must be redacted is not UTF-8".into()))?;
            match relay::redacted(text, kinds, scope, server).map_err(upstream)? {
                Some(clean) => Ok(json(clean)),
                None => Ok(json(bytes)),
            }
        }
        Reply::Sse(body) => Ok(sse(Body::Stream(relay::relay_sse(
            body,
            relay::Target {
                id: id.clone(),
                server: server.to_string(),
                redact: kinds.to_vec(),
                scope,
                max_event_bytes: limit,
                tag_requests: aggregated,
                // Per server, the upstream heard the client's level itself.
                min_log: aggregated.then(|| client.min_log()).flatten(),
                keep_ids: client.modern_meta.is_some(),
                on_change: client.stale.clone().map(|stale| {
                    let server = server.to_string();
                    Rc::new(move |method: &str| stale(&server, method)) as relay::OnChange
                }),
            },
        )))),
        Reply::Accepted => Err(upstream("answered 202 Accepted to a request".into())),
    }
}

/// An upstream failure as the client may see it: the upstream's own words
/// in it (its JSON-RPC error message, an HTTP error body's message) are
/// redacted like its results.
pub(crate) fn redact_error(e: GatewayError, kinds: &[Kind]) -> GatewayError {
    match e {
        GatewayError::Upstream { server, message } if !kinds.is_empty() => {
            let mut tally = crate::governance::pii::Tally::default();
            let message = crate::governance::pii::redact_counted(&message, kinds, &mut tally)
                .unwrap_or(message);
            crate::observe::audit::redactions(&server, &tally);
            GatewayError::Upstream { server, message }
        }
        other => other,
    }
}

/// An event-stream response around `body`.
pub(crate) fn sse(body: Body) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, headers::EVENT_STREAM)
        .header(header::CACHE_CONTROL, "no-cache, no-transform")
        .body(body)
        .expect("static response")
}
