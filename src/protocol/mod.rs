//! Wire formats: JSON-RPC envelopes, MCP methods, protocol revisions and
//! transport headers, SSE framing, tool
//! namespacing, the gateway's own pagination cursors, raw JSON objects and
//! the digest of JSON text that approvals bind to. Pure code, no I/O.

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
pub(crate) mod version;
