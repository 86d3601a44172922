//! Building the gateway's HTTP answers: its own JSON results, 202s, and
//! upstream replies relayed to the client.

use crate::body::Body;
use crate::error::GatewayError;
use crate::governance::pii::Kind;
use crate::protocol::jsonrpc::{self, Id};
use crate::upstream::relay;
use crate::upstream::Reply;
use http::{header, Response, StatusCode};
use serde::Serialize;

/// Header carrying the session id.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Header carrying the protocol revision.
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// A JSON body with status 200.
pub fn json(bytes: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Full(bytes))
        .expect("static response")
}

/// A JSON-RPC success response.
pub fn result<T: Serialize + ?Sized>(id: &Id, value: &T) -> Response<Body> {
    json(jsonrpc::result_body(id, value))
}

/// 202 Accepted with no body (notifications and responses from the client).
pub fn accepted() -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Body::empty())
        .expect("static response")
}

/// 200 with no body (DELETE of a session).
pub fn ok_empty() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .expect("static response")
}

/// Relays an upstream's reply to request `id`: JSON as is, SSE event by event.
pub fn forward(reply: Reply, id: &Id, server: &str) -> Result<Response<Body>, GatewayError> {
    match reply {
        Reply::Json(body) => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("static response")),
        Reply::Sse(body) => Ok(sse(Body::Stream(relay::relay_sse(
            body,
            id.clone(),
            server.to_string(),
            Vec::new(),
        )))),
        Reply::Accepted => Err(GatewayError::Upstream {
            server: server.to_string(),
            message: "answered 202 Accepted to a request".into(),
        }),
    }
}

/// Like [`forward`], with personal data of `kinds` redacted from the answer:
/// a JSON answer is read whole, an SSE answer is redacted event by event.
pub async fn forward_redacted(
    reply: Reply,
    id: &Id,
    server: &str,
    kinds: Vec<Kind>,
    limit: usize,
) -> Result<Response<Body>, GatewayError> {
    if kinds.is_empty() {
        return forward(reply, id, server);
    }
    match reply {
        Reply::Json(body) => {
            let bytes = body
                .collect(limit)
                .await
                .map_err(|message| GatewayError::Upstream {
                    server: server.to_string(),
                    message,
                })?;
            let text = String::from_utf8_lossy(&bytes);
            Ok(json(
                relay::redacted(&text, &kinds).unwrap_or_else(|| bytes.clone()),
            ))
        }
        Reply::Sse(body) => Ok(sse(Body::Stream(relay::relay_sse(
            body,
            id.clone(),
            server.to_string(),
            kinds,
        )))),
        Reply::Accepted => forward(reply, id, server),
    }
}

/// An event-stream response around `body`.
pub fn sse(body: Body) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache, no-transform")
        .body(body)
        .expect("static response")
}
