//! Upstream answers: what came back, and how to read the JSON-RPC response out
//! of a JSON body or an SSE stream.

use crate::body::Body;
use crate::error::GatewayError;
use crate::protocol::headers;
use crate::protocol::jsonrpc::{self, Id, Message};
use crate::protocol::sse;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::Value;

/// A classified upstream answer to a POSTed message.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `application/json`: one JSON-RPC message.
    Json(Body),
    /// `text/event-stream`: notifications and requests, then the response.
    Sse(Body),
    /// 202: the upstream accepted a notification or response.
    Accepted,
}

/// Classifies a successful (2xx) response by its content type.
pub(crate) fn classify(response: http::Response<Body>) -> Reply {
    if response.status() == http::StatusCode::ACCEPTED {
        return Reply::Accepted;
    }
    if headers::is_event_stream(response.headers()) {
        Reply::Sse(response.into_body())
    } else {
        Reply::Json(response.into_body())
    }
}

/// Reads the response to request `id` out of a reply and returns its `result`;
/// an upstream JSON-RPC error becomes `Err` with the upstream's message.
pub(crate) async fn read_result(
    reply: Reply,
    id: &Id,
    server: &str,
    limit: usize,
) -> Result<Value, GatewayError> {
    let raw = read_result_raw(reply, id, server, limit).await?;
    serde_json::from_str(raw.get()).map_err(|e| GatewayError::Upstream {
        server: server.to_string(),
        message: format!("invalid JSON: {e}"),
    })
}

/// Like [`read_result`], but the `result` stays raw JSON (lists the gateway
/// merges without building a value tree).
pub(crate) async fn read_result_raw(
    reply: Reply,
    id: &Id,
    server: &str,
    limit: usize,
) -> Result<Box<RawValue>, GatewayError> {
    let fail = |message: String| GatewayError::Upstream {
        server: server.to_string(),
        message,
    };
    let response = read_response(reply, id, limit).await.map_err(fail)?;
    if let Some(err) = response.error {
        #[derive(serde::Deserialize, Default)]
        struct ErrorObject {
            code: Option<i64>,
            message: Option<String>,
        }
        let err: ErrorObject = serde_json::from_str(err.get()).unwrap_or_default();
        let message = err.message.as_deref().unwrap_or("error without message");
        return Err(fail(format!("{message} (code {})", err.code.unwrap_or(0))));
    }
    Ok(response
        .result
        .unwrap_or_else(|| RawValue::from_string("null".into()).expect("null is JSON")))
}

/// Reads the JSON-RPC response to `id` out of a reply (parsed once).
pub(crate) async fn read_response(
    reply: Reply,
    id: &Id,
    limit: usize,
) -> Result<jsonrpc::Response, String> {
    match reply {
        Reply::Accepted => Err("answered 202 Accepted to a request".into()),
        Reply::Json(body) => {
            let bytes = body.collect(limit).await?;
            match jsonrpc::parse_message(&bytes) {
                Ok(Message::Response(r)) if &r.id == id => Ok(r),
                Ok(Message::Response(r)) => Err(format!("answered id {} instead of {id}", r.id)),
                Ok(_) => Err("answered with a message that is not a response".into()),
                Err(e) => Err(format!("answered invalid JSON-RPC: {e}")),
            }
        }
        Reply::Sse(body) => {
            let mut stream = body.into_stream();
            let mut decoder = sse::Decoder::with_limit(limit);
            let mut seen = 0usize;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                seen += chunk.len();
                if seen > limit {
                    return Err(format!("event stream larger than {limit} bytes"));
                }
                for event in decoder.feed(&chunk) {
                    if let Ok(Message::Response(r)) = jsonrpc::parse_message(event.data.as_bytes())
                    {
                        if &r.id == id {
                            return Ok(r);
                        }
                    }
                }
            }
            Err("event stream ended before the response".into())
        }
    }
}

/// Whether a body is a JSON-RPC error response.
pub(super) fn is_error_response(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_slice::<Response>(body).is_ok_and(|r| r.error.is_some())
}

/// Whether an error answer means "your session is gone". The spec says 404;
/// some servers (the TypeScript SDK's examples) answer 400 naming the session.
pub(super) fn session_gone(status: http::StatusCode, body: &[u8]) -> bool {
    status == http::StatusCode::NOT_FOUND
        || (status == http::StatusCode::BAD_REQUEST
            && String::from_utf8_lossy(body)
                .to_ascii_lowercase()
                .contains("session"))
}

/// A short description of an error answer, with the upstream's JSON-RPC message
/// when it sent one.
pub(super) fn describe(status: http::StatusCode, body: &[u8]) -> String {
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

/// A header of an upstream answer, as text.
pub(super) fn header(response: &http::Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse_body(parts: &[&str]) -> Body {
        let chunks: Vec<crate::body::Chunk> =
            parts.iter().map(|p| Ok(p.as_bytes().to_vec())).collect();
        Body::Stream(futures_util::stream::iter(chunks).boxed_local())
    }

    #[tokio::test]
    async fn finds_the_response_after_notifications_in_sse() {
        let body = sse_body(&[
            "id: 1\ndata:\n\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n",
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"ok\":true}}\n\n",
        ]);
        let v = read_result(Reply::Sse(body), &Id::Num(3), "s", 1 << 20)
            .await
            .unwrap();
        assert_eq!(v, serde_json::json!({"ok": true}));
    }

    #[tokio::test]
    async fn upstream_errors_and_truncated_streams_are_reported() {
        let body = Body::Full(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"nope"}}"#.to_vec(),
        );
        let err = read_result(Reply::Json(body), &Id::Num(1), "s", 1 << 20)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Upstream server 's' failed: nope (code -32601)"
        );
        let err = read_result(
            Reply::Sse(sse_body(&["data: {}\n\n"])),
            &Id::Num(1),
            "s",
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("event stream ended before the response"));
        let err = read_result(
            Reply::Json(Body::Full(
                br#"{"jsonrpc":"2.0","id":2,"result":{}}"#.to_vec(),
            )),
            &Id::Num(1),
            "s",
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("answered id 2 instead of 1"));
    }

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
