//! What the gateway records of what it does, beside its answers: the audit
//! trail of its decisions ([`audit`]). (Spans, metrics and their export
//! over OTLP come here next; trace context itself is a wire format,
//! `protocol/trace_context.rs`.)

pub(crate) mod audit;
