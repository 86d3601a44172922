//! Governance: who may use what, how often, with which safeguards.
//!
//! - [`policy`]: access policies (allow/deny, globs, default deny, invisibility).
//! - [`gate`]: one caller's view: registry tool filters, then the policy.
//! - [`store`]: the policy in force, reloaded from KV, last good kept.
//! - [`gcra`]: rate-limit and quota arithmetic as pure functions.

pub mod gate;
pub mod gcra;
pub mod policy;
pub mod store;
