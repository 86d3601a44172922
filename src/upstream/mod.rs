//! The gateway's MCP client side: how it talks to upstream servers.
//!
//! - [`failover`]: the order in which a server's regional endpoints are tried.
//! - [`client`]: sending for a client session ([`ClientSession`]): session
//!   reuse, transparent re-initialize on an expired upstream session,
//!   timeouts and failover to the next region; `opening` meets an endpoint
//!   in its era (`initialize`, or adopting a modern one).
//! - [`credentials`]: what an upstream request carries instead of the
//!   caller's token (a minted JWT, a secret header, the user's own OAuth
//!   token, or nothing).
//! - [`minter`]: the signing key and the tokens minted with it.
//! - [`oauth`]: each user's own OAuth token for third-party servers: the
//!   connect flow, refresh, revocation.
//! - [`eras`], [`modern`]: which endpoints speak 2026-07-28 (asked once with
//!   `server/discover`), and the envelope and routing headers their requests
//!   carry.
//! - [`reply`]: classifying an upstream HTTP answer (JSON, SSE, 202) and reading
//!   the JSON-RPC response out of it.
//! - [`relay`]: streaming an upstream SSE answer to the client event by event.
//! - [`asks`]: the ids an upstream's own requests travel under on `/mcp`.
//! - [`merged`]: one upstream's GET stream as a part of `/mcp`'s, and
//!   [`merged_id`] the merged stream's event ids (resumption).
//! - [`aside`]: the GET stream heard during a modern client's call, for
//!   the questions a legacy upstream asks there.
//! - [`resume`]: a legacy upstream's call picked up again after a modern
//!   client answered the questions the upstream asked in it.

pub(crate) mod aside;
pub(crate) mod asks;
pub(crate) mod client;
mod client_session;
pub(crate) mod credentials;
pub(crate) mod eras;
pub(crate) mod failover;
pub(crate) mod merged;
pub(crate) mod merged_id;
pub(crate) mod minter;
pub(crate) mod modern;
pub(crate) mod oauth;
mod opening;
pub(crate) mod relay;
pub(crate) mod reply;
pub(crate) mod resume;
pub(crate) mod to_legacy;

pub(crate) use client::Upstreams;
pub(crate) use client_session::{ClientSession, Stale};

/// Identifies the gateway to upstreams when it meets them on its own behalf.
pub(crate) const CLIENT_NAME: &str = "mcp-edge";
pub(crate) use credentials::Caller;
pub(crate) use reply::Reply;
