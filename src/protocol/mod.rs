//! Wire formats: JSON-RPC envelopes, MCP protocol revisions, SSE framing, tool
//! namespacing, the gateway's own pagination cursors and raw JSON objects.
//! Pure code, no I/O.

pub mod cursor;
pub mod jsonrpc;
pub mod names;
pub mod raw_object;
pub mod sse;
pub mod version;
