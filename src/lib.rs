//! mcp-edge: an MCP gateway for the edge.
//!
//! A platform-free core plus thin adapters, in layers that only point down
//! (`scripts/layers.py` holds the crate to them; ARCHITECTURE.md draws them):
//!
//! - [`protocol`], [`body`]: JSON-RPC envelopes, MCP methods, revisions and
//!   headers, SSE framing, tool namespacing, gateway cursors, the response
//!   body. Pure functions, no I/O.
//! - [`config`]: the server registry and gateway settings, parsed from `*Spec`
//!   serde types into checked runtime types.
//! - [`error`]: the one error enum and its mapping to HTTP and JSON-RPC.
//! - [`identity`]: who is calling (JWT, API keys, OAuth resource metadata) and
//!   the signing of credentials minted for upstreams. Pure.
//! - [`governance`]: access policies, rate-limit math, approval rules, argument
//!   validation, PII redaction. Pure.
//! - [`cache`]: the isolate-lived caches (keep-last-good, bounded maps).
//! - [`ports`]: the small traits the core needs from a platform (KV, sessions,
//!   HTTP client, clock, limiter, approvals, randomness, after-response work).
//! - [`upstream`]: the gateway's MCP client towards regional upstream servers
//!   (lazy initialize, session reuse, re-initialize, regional failover, SSE
//!   relay, upstream credentials).
//! - [`gateway`]: the request pipeline (ingest, authenticate, session, guard,
//!   aggregate or pass through, respond) that turns an `http::Request` into an
//!   `http::Response`.
//! - [`adapters`]: `memory` (native tests and benchmarks), `workers`
//!   (Cloudflare Workers, behind the `workers` feature) and `spin` (Fermyon
//!   Spin, behind the `spin` feature).
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
pub mod observe;
pub mod ports;
pub mod protocol;
pub mod upstream;

pub use body::Body;
pub use error::GatewayError;
pub use gateway::Gateway;
