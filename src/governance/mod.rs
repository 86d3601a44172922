//! Governance: who may use what, how often, with which safeguards.
//!
//! - [`policy`]: access policies (allow/deny, globs, default deny, invisibility).
//! - [`gcra`]: rate-limit and quota arithmetic as pure functions.

pub mod gcra;
pub mod policy;
