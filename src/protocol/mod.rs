//! Wire formats: JSON-RPC envelopes, MCP protocol revisions, SSE framing, tool
//! namespacing and the gateway's own pagination cursors. Pure code, no I/O.

pub mod cursor;
pub mod jsonrpc;
pub mod names;
pub mod sse;
pub mod version;
