//! What a [`MockServer`](super::MockServer) built with `.notices(...)` says
//! to listeners: the capabilities that promise notifications, its
//! `subscriptions/listen` stream (modern) and its GET stream (legacy).
//!
//! Both streams carry the same notifications and then end, so a test reads
//! a whole relayed stream: the modern one closes with the response to the
//! listen request, as a server shutting down would
//! (`basic/patterns/subscriptions.mdx`, graceful closure). A quiet
//! listener's streams stay open instead.

use super::mock_tools::sse;
use crate::body::Body;
use crate::protocol::headers;
use http::Response;
use serde_json::{json, Value};

/// Capabilities of a server that sends list changes and resource updates.
pub(super) fn capabilities() -> Value {
    json!({"tools": {"listChanged": true}, "prompts": {"listChanged": true},
        "resources": {"subscribe": true}})
}

/// A `subscriptions/listen` answer: the acknowledgment (everything asked
/// is honored but prompt list changes, though the capabilities declare
/// them, as a server may), each notification tagged with the subscription,
/// the closing response.
pub(super) fn listen(body: &Value, notices: &[Value], open: bool) -> Response<Body> {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let tag = json!({"io.modelcontextprotocol/subscriptionId": &id});
    let mut asked = body
        .pointer("/params/notifications")
        .cloned()
        .unwrap_or(json!({}));
    if let Some(asked) = asked.as_object_mut() {
        asked.remove("promptsListChanged");
    }
    let mut events = vec![json!({"jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": &tag, "notifications": asked}})];
    for notice in notices {
        let mut notice = notice.clone();
        notice["params"]["_meta"] = tag.clone();
        events.push(notice);
    }
    if open {
        return sse_then_silence(&events);
    }
    events.push(json!({"jsonrpc": "2.0", "id": id,
        "result": {"resultType": "complete", "_meta": tag}}));
    sse(&events)
}

/// The events, then a stream that stays open and says nothing.
fn sse_then_silence(events: &[Value]) -> Response<Body> {
    use futures_util::StreamExt;
    let text: String = events
        .iter()
        .map(|e| format!("event: message\ndata: {e}\n\n"))
        .collect();
    let body = futures_util::stream::once(async move { Ok(text.into_bytes()) })
        .chain(futures_util::stream::pending());
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
        .body(Body::Stream(body.boxed_local()))
        .expect("static")
}

/// A GET stream carrying the notifications, as a legacy server sends them.
///
/// Event `i` has the id `n-{i}`; a GET with `Last-Event-ID: n-{k}` gets
/// the notifications after the `k`th (resumption), one with an id of no
/// event of ours is refused (400), as a server that cannot replay would.
pub(super) fn get_stream(notices: &[Value], open: bool, last: Option<&str>) -> Response<Body> {
    use futures_util::StreamExt;
    let from = match last {
        None => 0,
        Some(id) => match id.strip_prefix("n-").and_then(|k| k.parse::<usize>().ok()) {
            Some(k) => k + 1,
            None => {
                return Response::builder()
                    .status(400)
                    .body(Body::Full(b"unknown Last-Event-ID".to_vec()))
                    .expect("static")
            }
        },
    };
    let text: String = notices
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, e)| format!("id: n-{i}\nevent: message\ndata: {e}\n\n"))
        .collect();
    let once = futures_util::stream::once(async move { Ok(text.into_bytes()) });
    let body = match open {
        true => once.chain(futures_util::stream::pending()).boxed_local(),
        false => once.boxed_local(),
    };
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
        .body(Body::Stream(body))
        .expect("static")
}
