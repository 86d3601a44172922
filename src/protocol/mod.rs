//! Wire formats: JSON-RPC envelopes, MCP methods, protocol revisions and
//! transport headers, SSE framing, tool
//! namespacing, the gateway's own pagination cursors, raw JSON objects and
//! the digest of JSON text that approvals bind to. Pure code, no I/O.

pub mod canonical;
pub mod cursor;
pub mod error;
pub mod headers;
pub mod jsonrpc;
pub mod method;
pub mod names;
pub mod raw_object;
pub mod sse;
pub mod version;
