//! Wire formats: JSON-RPC envelopes, MCP methods, protocol revisions and
//! transport headers, SSE framing, tool
//! namespacing, the gateway's own pagination cursors, raw JSON objects and
//! the digest of JSON text that approvals bind to, W3C trace context. Pure
//! code, no I/O.

pub mod canonical;
pub mod cursor;
pub(crate) mod error;
pub(crate) mod headers;
pub mod jsonrpc;
pub mod method;
pub mod modern;
pub mod names;
pub(crate) mod raw_object;
pub mod sse;
pub mod trace_context;
pub(crate) mod version;
