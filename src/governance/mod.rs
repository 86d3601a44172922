//! Governance: who may use what, how often, with which safeguards. Pure
//! decisions over parsed documents: no I/O, no ports (the gateway loads the
//! policy and keeps the counters).
//!
//! - [`policy`]: access policies (allow/deny, globs, default deny, invisibility).
//! - [`approval`]: which calls need a human's approval; the approval record.
//! - [`arguments`]: checking `tools/call` arguments against the tool's schema.
//! - [`gate`]: one caller's view: registry tool filters, then the policy.
//! - [`limits`]: rate limits and quotas, and the counters a call touches.
//! - [`pii`]: redacting personal data from results (typed placeholders).
//! - [`subjects`]: the callers a rule or an approver list names.
//! - [`gcra`]: rate-limit and quota arithmetic as pure functions.

pub(crate) mod approval;
pub(crate) mod arguments;
pub mod gate;
pub mod gcra;
pub mod limits;
pub mod pii;
pub mod policy;
pub(crate) mod subjects;
