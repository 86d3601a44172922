//! The header names and media types of MCP's Streamable HTTP transport, in
//! one place (`docs/specification/2025-11-25/basic/transports.mdx` in
//! `modelcontextprotocol/modelcontextprotocol`). HTTP header names are
//! case-insensitive; these are written lower-case, as `http` stores them.

/// The session a request belongs to, minted by the server at `initialize`.
pub(crate) const SESSION_ID: &str = "mcp-session-id";
/// The protocol revision a request after `initialize` speaks.
pub(crate) const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// The last SSE event a client saw, to resume a stream after it.
pub(crate) const LAST_EVENT_ID: &str = "last-event-id";
/// W3C Trace Context (<https://www.w3.org/TR/trace-context/>).
pub(crate) const TRACEPARENT: &str = "traceparent";
pub(crate) const TRACESTATE: &str = "tracestate";
/// The trace a request went into, on the gateway's answer (W3C Trace
/// Context Level 2, `traceresponse`).
pub(crate) const TRACERESPONSE: &str = "traceresponse";

/// The JSON-RPC method of a modern request, mirrored from the body.
pub const METHOD: &str = "mcp-method";
/// The tool, prompt or resource a modern request names, mirrored from the
/// body (`tools/call`, `prompts/get`: `name`; `resources/read`: `uri`).
pub const NAME: &str = "mcp-name";

/// JSON-RPC messages and single answers.
pub(crate) const JSON: &str = "application/json";
/// An answer streamed as server-sent events.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// Whether `headers` say the body is a server-sent event stream (media
/// types are case-insensitive, RFC 9110 §8.3.1; parameters may follow).
pub(crate) fn is_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with(EVENT_STREAM)
        })
}
