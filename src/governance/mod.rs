//! Governance: who may use what, how often, with which safeguards.
//!
//! - [`policy`]: access policies (allow/deny, globs, default deny, invisibility).
//! - [`approval`]: which calls need a human's approval; the approval record.
//! - [`arguments`]: checking `tools/call` arguments against the tool's schema.
//! - [`enforce`]: the limits a `tools/call` must pass (429 otherwise).
//! - [`gate`]: one caller's view: registry tool filters, then the policy.
//! - [`store`]: the policy in force, reloaded from KV, last good kept.
//! - [`limits`]: rate limits and quotas, and the counters a call touches.
//! - [`pii`]: redacting personal data from results (typed placeholders).
//! - [`subjects`]: the callers a rule or an approver list names.
//! - [`gcra`]: rate-limit and quota arithmetic as pure functions.

pub mod approval;
pub mod arguments;
pub mod enforce;
pub mod gate;
pub mod gcra;
pub mod limits;
pub mod pii;
pub mod policy;
pub mod store;
pub mod subjects;
