//! What the gateway records of what it does, beside its answers:
//!
//! - the audit trail of its decisions ([`audit`]), one JSON line each;
//! - per request, its spans and those events, collected by a `tracing`
//!   layer ([`collect`]) into a [`batch`];
//! - once the request is over ([`after`]), its usage row recorded
//!   ([`usage`]) and the batch exported over OTLP/HTTP ([`export`],
//!   [`otlp`]) with the metrics it adds ([`metrics`]);
//! - on the caller's request, a compact summary of its own trace in the
//!   answer ([`summary`]).
//!
//! Trace context itself is a wire format (`protocol/trace_context.rs`).

pub(crate) mod after;
pub(crate) mod audit;
pub(crate) mod batch;
pub(crate) mod collect;
pub(crate) mod export;
pub(crate) mod metrics;
pub(crate) mod notes;
pub(crate) mod otlp;
pub(crate) mod pending;
pub(crate) mod summary;
pub(crate) mod usage;

pub use collect::Collector;
pub use export::HEADERS_SECRET;
