//! The gateway's MCP client side: how it talks to upstream servers.
//!
//! - [`failover`]: the order in which a server's regional endpoints are tried.
//! - [`client`]: lazy `initialize`, session reuse, transparent re-initialize on an
//!   expired upstream session, timeouts and failover to the next region.
//! - [`credentials`]: what an upstream request carries instead of the
//!   caller's token (a minted JWT, a secret header, or nothing).
//! - [`minter`]: the signing key and the tokens minted with it.
//! - [`reply`]: classifying an upstream HTTP answer (JSON, SSE, 202) and reading
//!   the JSON-RPC response out of it.
//! - [`relay`]: streaming an upstream SSE answer to the client event by event.

pub(crate) mod client;
pub(crate) mod credentials;
pub(crate) mod failover;
pub(crate) mod minter;
pub(crate) mod relay;
pub(crate) mod reply;

pub(crate) use client::{ClientSession, Upstreams};
pub(crate) use credentials::Caller;
pub(crate) use reply::Reply;
