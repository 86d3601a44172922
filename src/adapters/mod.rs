//! Adapters: the ports implemented for each platform. They convert types and
//! call platform APIs; they hold no policy or protocol logic.
//!
//! - `memory`: in-process ports for native tests and benchmarks.
//! - `workers`: Cloudflare Workers (KV, Durable Objects, fetch, waitUntil).
//! - `spin`: Fermyon Spin (key-value stores, wasi:http, variables).
//! - `assets`: the playground's static files for a platform without a
//!   static-asset server (Spin), platform-free so it is tested natively.
//! - `expiry_index`: end-of-life bookkeeping for stores without TTLs (Spin),
//!   platform-free so it is tested natively.

#[cfg(not(target_arch = "wasm32"))]
pub mod memory;

#[cfg(any(feature = "workers", feature = "spin"))]
mod log;

#[cfg(any(feature = "spin", test))]
pub(crate) mod assets;

#[cfg(any(feature = "spin", test))]
pub(crate) mod expiry_index;

#[cfg(feature = "workers")]
pub mod workers;

#[cfg(feature = "spin")]
pub mod spin;
