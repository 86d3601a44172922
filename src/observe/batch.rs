//! What one request recorded: its spans and audit events, as the collector
//! ([`super::collect`]) fills them in and the exporter and usage record
//! read them once the request is over.

use crate::protocol::trace_context::Traced;

/// An attribute value (the OTLP `AnyValue` kinds the gateway uses).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
}

impl Attr {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Attr::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A span's kind (OTLP `Span.SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Internal,
    /// The request the gateway serves.
    Server,
    /// A request the gateway sends (an upstream attempt).
    Client,
}

/// A finished span.
#[derive(Debug, Clone)]
pub(crate) struct SpanData {
    pub id: [u8; 8],
    /// `None` for the request's span, whose parent is the caller's.
    pub parent: Option<[u8; 8]>,
    /// The `tracing` name (`request`, `authenticate`, `upstream`, ...).
    pub name: &'static str,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attrs: Vec<(&'static str, Attr)>,
}

impl SpanData {
    pub(crate) fn attr(&self, key: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Attr::as_str)
    }
}

/// An audit event, in the span that was current when it was written.
#[derive(Debug, Clone)]
pub(crate) struct LogData {
    pub time_ns: u64,
    pub span_id: [u8; 8],
    /// The event's JSON line ([`super::audit`]).
    pub body: String,
}

/// One request's record.
#[derive(Debug)]
pub(crate) struct Batch {
    pub traced: Traced,
    pub spans: Vec<SpanData>,
    pub logs: Vec<LogData>,
    /// The request's span closed: nothing more comes.
    pub done: bool,
    pub waker: Option<std::task::Waker>,
    /// Spans and audit records not kept (over the per-request caps).
    pub dropped: (u64, u64),
    next: u64,
}

impl Batch {
    pub(crate) fn new(traced: &Traced) -> Self {
        Batch {
            traced: traced.clone(),
            spans: Vec::new(),
            logs: Vec::new(),
            done: false,
            waker: None,
            dropped: (0, 0),
            next: 0,
        }
    }

    /// A span id unique within the trace: the request's own id stepped by
    /// a multiple of an odd constant (a bijection on `u64`, so no two
    /// steps meet), never zero (invalid in W3C Trace Context).
    pub(crate) fn next_id(&mut self) -> [u8; 8] {
        let base = u64::from_be_bytes(self.traced.span);
        loop {
            self.next += 1;
            let id = base.wrapping_add(self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            if id != 0 {
                return id.to_be_bytes();
            }
        }
    }

    /// The request's span, once it closed.
    pub(crate) fn root(&self) -> Option<&SpanData> {
        self.spans.iter().find(|s| s.parent.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::trace_context::TraceContext;

    #[test]
    fn span_ids_inside_a_request_are_distinct_and_not_its_own() {
        let traced = Traced {
            context: TraceContext::start([7; 16]),
            span: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let mut b = Batch::new(&traced);
        let ids: std::collections::HashSet<[u8; 8]> = (0..1000).map(|_| b.next_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&traced.span));
        assert!(!ids.contains(&[0; 8]));
    }
}
