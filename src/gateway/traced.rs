//! The trace each request goes into (W3C Trace Context,
//! [`crate::protocol::trace_context`]).
//!
//! The caller's context is read from the JSON-RPC request's
//! `params._meta` first (the MCP convention: it names the message, where a
//! header names only the HTTP request that carried it), then from the
//! `traceparent`/`tracestate` headers; a request with neither, or with an
//! invalid one, starts a trace of its own. The gateway's span in it gets a
//! random id; its requests upstream carry the trace under that span, on the
//! HTTP headers and in `params._meta` (`upstream/client.rs`), and the
//! client gets it back in a `traceresponse` header. Every log line written
//! while the request is handled names the trace id.

use crate::body::{Body, ByteStream};
use crate::observe::collect::note;
use crate::observe::notes;
use crate::ports::Platform;
use crate::protocol::headers::{TRACEPARENT, TRACERESPONSE, TRACESTATE};
use crate::protocol::trace_context::{TraceContext, Traced};
use crate::protocol::version::Era;
use futures_util::StreamExt;
use serde::Deserialize;

/// The trace `req` goes into (see the module docs). A trace the gateway
/// starts is sampled as `telemetry`'s ratio says, and the decision is its
/// sampled flag, carried upstream and back.
pub(super) fn of<P: Platform>(
    p: &P,
    req: &http::Request<Vec<u8>>,
    telemetry: &crate::config::Telemetry,
) -> Traced {
    // A header sent more than once is one list (RFC 9110 § 5.3); only
    // `tracestate` is such a list, and a repeated `traceparent` is invalid.
    let header = |name: &str| {
        let values: Vec<&str> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        (!values.is_empty()).then(|| values.join(","))
    };
    let meta = from_meta(req.body());
    let context = meta
        .and_then(|(parent, state)| TraceContext::parse(&parent, state.as_deref()))
        .or_else(|| {
            let parent = header(TRACEPARENT)?;
            TraceContext::parse(&parent, header(TRACESTATE).as_deref())
        })
        .unwrap_or_else(|| {
            let mut id = [0u8; 16];
            p.random_bytes(&mut id);
            let mut started = TraceContext::start(id);
            if !telemetry.samples(&started.trace_id) {
                started.flags &= !1;
            }
            started
        });
    let mut span = [0u8; 8];
    p.random_bytes(&mut span);
    Traced { context, span }
}

/// The span every log line of the request is written in.
pub(super) fn span(traced: &Traced) -> tracing::Span {
    tracing::info_span!(
        "request",
        trace_id = %traced.context.trace_id_hex(),
        span_id = %traced.span_hex(),
    )
}

/// What the request's span says of the HTTP request (`docs/gen-ai/mcp.md`
/// § Server: `network.*` for an MCP session over HTTP).
pub(super) fn describe(req: &http::Request<Vec<u8>>, era: Era) {
    note("http.request.method", req.method().as_str().into());
    note("network.protocol.name", "http".into());
    note("network.transport", "tcp".into());
    if era == Era::Modern {
        if let Some(v) = req
            .headers()
            .get(crate::protocol::headers::PROTOCOL_VERSION)
            .and_then(|v| v.to_str().ok())
        {
            note("mcp.protocol.version", notes::known_version(v).into());
        }
    }
}

/// How the request ended: its status, the JSON-RPC error the gateway ended
/// it with (`code`), or what a whole JSON answer says.
pub(super) fn ended(response: &http::Response<Body>, code: Option<i64>) {
    notes::outcome(response.status().as_u16(), code);
    if code.is_none() && crate::observe::collect::current_span_id().is_some() {
        if let Body::Full(bytes) = response.body() {
            notes::json_answer(bytes);
        }
    }
}

/// The client gets the trace its request went into; what a streamed answer
/// logs while it is read is written in the request's span too.
pub(super) fn answer(response: &mut http::Response<Body>, traced: &Traced, span: tracing::Span) {
    if let Ok(value) = http::HeaderValue::from_str(&traced.traceparent()) {
        response.headers_mut().insert(TRACERESPONSE, value);
    }
    if let Body::Stream(_) = response.body() {
        let body = std::mem::replace(response.body_mut(), Body::empty());
        *response.body_mut() = Body::Stream(in_span(body.into_stream(), span));
    }
}

/// On the caller's request (`observe::summary`), the answer carries a
/// summary of its trace: in a header on a whole answer, as a last event on
/// an event stream, summarised when the stream's own content has ended.
pub(super) fn summary(
    response: &mut http::Response<Body>,
    batch: &crate::observe::collect::Shared,
) {
    use crate::observe::summary;
    let read = |batch: &crate::observe::collect::Shared| {
        summary::summarize(&batch.lock().unwrap_or_else(|e| e.into_inner()))
    };
    match response.body() {
        // A whole answer, or one the platform passes through unread.
        Body::Full(_) | Body::Native(_) => {
            if let Ok(value) = http::HeaderValue::from_str(&read(batch)) {
                response.headers_mut().insert(summary::ANSWER_HEADER, value);
            }
        }
        Body::Stream(_) => {
            if !crate::protocol::headers::is_event_stream(response.headers()) {
                return;
            }
            let body = std::mem::replace(response.body_mut(), Body::empty()).into_stream();
            let batch = batch.clone();
            let last = futures_util::stream::once(async move { Ok(summary::event(&read(&batch))) });
            *response.body_mut() = Body::Stream(body.chain(last).boxed_local());
        }
    }
}

/// A stream each of whose polls runs in `span`.
fn in_span(stream: ByteStream, span: tracing::Span) -> ByteStream {
    futures_util::stream::unfold((stream, span), |(mut stream, span)| async move {
        let next = tracing::Instrument::instrument(stream.next(), span.clone()).await?;
        Some((next, (stream, span)))
    })
    .boxed_local()
}

/// `params._meta.traceparent` (and `tracestate`) of a JSON-RPC message, if
/// the body is one that has them.
fn from_meta(body: &[u8]) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct Message {
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        traceparent: Option<String>,
        tracestate: Option<String>,
    }
    // Most requests carry none: no second parse of the body for them.
    if !body.windows(11).any(|w| w == b"traceparent") {
        return None;
    }
    let meta = serde_json::from_slice::<Message>(body).ok()?.params?.meta?;
    Some((meta.traceparent?, meta.tracestate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_of_a_request_is_read() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_meta":{"traceparent":"00-a","tracestate":"k=v"}}}"#;
        assert_eq!(
            from_meta(body),
            Some(("00-a".to_string(), Some("k=v".to_string())))
        );
        assert_eq!(from_meta(br#"{"params":{"_meta":{}}}"#), None);
        assert_eq!(from_meta(br#"{"params":[1]}"#), None);
        assert_eq!(from_meta(b"not json"), None);
    }
}
