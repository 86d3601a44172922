//! mcp-edge: an MCP gateway for the edge.
//!
//! The crate is a platform-free core plus thin adapters:
//!
//! - [`protocol`]: JSON-RPC envelopes, MCP versions, SSE framing, tool namespacing,
//!   gateway cursors. Pure functions, no I/O.
//! - [`config`]: the server registry and gateway settings, parsed from `*Spec` serde
//!   types into checked runtime types.
//! - [`ports`]: the small traits the core needs from a platform (KV, sessions,
//!   upstream HTTP, clock, randomness, after-response work).
//! - [`governance`]: access policies and rate-limit math.
//! - [`identity`]: who is calling (JWT, API keys, OAuth resource metadata) and
//!   the credentials minted for upstreams.
//! - [`upstream`]: the gateway's MCP client towards regional upstream servers
//!   (lazy initialize, session reuse, re-initialize, regional failover, SSE relay).
//! - [`gateway`]: the request pipeline (ingest, session, dispatch, aggregate or
//!   pass through) that turns an `http::Request` into an `http::Response`.
//! - [`adapters`]: `memory` (native tests and benchmarks) and `workers`
//!   (Cloudflare Workers, behind the `workers` feature).
//!
//! The core never imports a platform crate; adapters never contain policy.

pub mod adapters;
pub mod body;
pub mod cache;
pub mod config;
pub mod error;
pub mod gateway;
pub mod governance;
pub mod identity;
pub mod ports;
pub mod protocol;
pub mod upstream;

pub use body::Body;
pub use error::GatewayError;
pub use gateway::Gateway;
