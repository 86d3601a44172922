//! The collector: a `tracing` layer that keeps what one request did, its
//! spans and its audit events, in the request's own [`Batch`], for the
//! exporter ([`super::export`]) and the usage record ([`super::usage`]) to
//! read once the request is over.
//!
//! The gateway opens a `request` span per request and [`attach`]es a batch
//! to it; every span opened inside it (authentication, policy, each limit,
//! each upstream attempt, ...) and every `audit` event written inside it
//! goes to that batch, spans when they close. When the `request` span
//! closes (after the last byte of a streamed answer), the batch is done and
//! [`Finished`] resolves. Spans outside a request, and any request where no
//! collector is installed, cost nothing here.
//!
//! Span ids: the request's span keeps the gateway's id ([`Traced::span`]);
//! the ones inside it are numbered from it (unique within the trace, which
//! is all W3C Trace Context asks of a span id).

use super::audit::{cut, MAX_VALUE};
use super::batch::{Attr, Batch, Kind, LogData, SpanData};
use crate::protocol::trace_context::Traced;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A request's batch, shared by the layer and the work done after the
/// response.
pub(crate) type Shared = Arc<Mutex<Batch>>;

/// The layer. `now_ns` is the platform's wall clock in nanoseconds since the
/// Unix epoch (on Workers it advances only across I/O, as Workers' clocks do).
pub struct Collector {
    now_ns: fn() -> u64,
}

impl Collector {
    pub fn new(now_ns: fn() -> u64) -> Self {
        Collector { now_ns }
    }
}

/// What the layer keeps in a span's extensions while it is open.
struct Node {
    batch: Shared,
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    kind: Kind,
    start_ns: u64,
    attrs: Vec<(&'static str, Attr)>,
}

/// Attaches a fresh batch to `span`, the request's span, when a collector
/// is installed; `None` otherwise.
pub(crate) fn attach(span: &tracing::Span, traced: &Traced) -> Option<Shared> {
    span.with_subscriber(|(id, dispatch)| {
        let collector = dispatch.downcast_ref::<Collector>()?;
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span(id)?;
        let batch = Arc::new(Mutex::new(Batch::new(traced)));
        // `replace`, not `insert` (which panics on a second one): a gateway
        // handling a request inside another's span gets a batch of its own.
        data.extensions_mut().replace(Node {
            batch: batch.clone(),
            id: traced.span,
            parent: None,
            name: "request",
            kind: Kind::Server,
            start_ns: (collector.now_ns)(),
            attrs: Vec::new(),
        });
        Some(batch)
    })
    .flatten()
}

/// The id the collector gave the current span, if it is inside a request:
/// what a request upstream names as its parent.
pub(crate) fn current_span_id() -> Option<[u8; 8]> {
    let span = tracing::Span::current();
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let data = registry.span(id)?;
        let ext = data.extensions();
        ext.get::<Node>().map(|n| n.id)
    })
    .flatten()
}

/// Resolves once the request's span closed and its batch is complete.
pub(crate) struct Finished(pub Shared);

impl std::future::Future for Finished {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut batch = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if batch.done {
            Poll::Ready(())
        } else {
            batch.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// At most this many spans and this many audit records are kept per
/// request: a stream that lives for hours (the `/mcp` GET stream, a span
/// per redacted message) must not grow its batch without bound. What is
/// dropped is counted ([`Batch::dropped`]).
pub(crate) const MAX_SPANS: usize = 256;
pub(crate) const MAX_LOGS: usize = 256;
/// Room past [`MAX_SPANS`] for the agent API's `execute_tool` and `chat`
/// spans, which usage rows are read from.
pub(crate) const MAX_METERED_SPANS: usize = 1024;

/// Attributes whose values come from verified credentials, not from the
/// request: never cut (a cut team list would merge usage rows).
const VOUCHED: [&str; 3] = ["enduser.id", "mcp_edge.teams", "mcp_edge.auth.via"];

/// `value` of attribute `key`, cut to [`MAX_VALUE`] bytes at a character
/// boundary unless the key is [`VOUCHED`] for.
pub(crate) fn bounded_for(key: &str, value: Attr) -> Attr {
    if VOUCHED.contains(&key) {
        value
    } else {
        bounded(value)
    }
}

/// `value`, cut to [`MAX_VALUE`] bytes at a character boundary.
pub(crate) fn bounded(value: Attr) -> Attr {
    match value {
        Attr::Str(s) if s.len() > MAX_VALUE => Attr::Str(cut(&s)),
        other => other,
    }
}

/// Span fields that are for log lines only, never attributes.
const LOG_ONLY: [&str; 2] = ["trace_id", "span_id"];

/// Copies a span's or event's fields into attributes.
struct Fields<'a>(&'a mut Vec<(&'static str, Attr)>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Attr) {
        let name = field.name();
        if LOG_ONLY.contains(&name) || name.starts_with("otel.") {
            return;
        }
        let value = bounded(value);
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Attr::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Attr::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Attr::Int(value.min(i64::MAX as u64) as i64));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Attr::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Attr::Double(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Attr::Str(format!("{value:?}")));
    }
}

/// The message of an audit event (its JSON line).
struct Message(Option<String>);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// A span's kind from its `otel.kind` field: `client` for a request the
/// gateway sends, internal otherwise.
struct KindOf(Kind);

impl Visit for KindOf {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "otel.kind" && value == "client" {
            self.0 = Kind::Client;
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S> Layer<S> for Collector
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // The nearest enclosing span that belongs to a request.
        let Some((batch, parent)) = span.scope().skip(1).find_map(|s| {
            let ext = s.extensions();
            ext.get::<Node>().map(|n| (n.batch.clone(), n.id))
        }) else {
            return;
        };
        let node_id = batch.lock().unwrap_or_else(|e| e.into_inner()).next_id();
        let mut kind = KindOf(Kind::Internal);
        attrs.record(&mut kind);
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        span.extensions_mut().insert(Node {
            batch,
            id: node_id,
            parent: Some(parent),
            name: attrs.metadata().name(),
            kind: kind.0,
            start_ns: (self.now_ns)(),
            attrs: fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(node) = span.extensions_mut().get_mut::<Node>() {
                values.record(&mut Fields(&mut node.attrs));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if event.metadata().target() != "audit" {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some((batch, span_id)) = scope.into_iter().find_map(|s| {
            let ext = s.extensions();
            ext.get::<Node>().map(|n| (n.batch.clone(), n.id))
        }) else {
            return;
        };
        let mut message = Message(None);
        event.record(&mut message);
        if let Some(body) = message.0 {
            let mut batch = batch.lock().unwrap_or_else(|e| e.into_inner());
            if batch.logs.len() >= MAX_LOGS {
                batch.dropped.1 += 1;
                return;
            }
            batch.logs.push(LogData {
                time_ns: (self.now_ns)(),
                span_id,
                body,
            });
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(node) = span.extensions_mut().remove::<Node>() else {
            return;
        };
        let end_ns = (self.now_ns)();
        let mut batch = node.batch.lock().unwrap_or_else(|e| e.into_inner());
        // The request's own span is always kept: it is what the rest hangs
        // on. The agent API's tool and model calls are what usage is read
        // from: they have room of their own past the cap (a run makes at
        // most 32 model calls of 16 tool calls each).
        let cap = match node.name {
            TOOL_CALL_SPAN | MODEL_CALL_SPAN => MAX_SPANS + MAX_METERED_SPANS,
            _ => MAX_SPANS,
        };
        if node.parent.is_some() && batch.spans.len() >= cap {
            batch.dropped.0 += 1;
            return;
        }
        batch.spans.push(SpanData {
            id: node.id,
            parent: node.parent,
            name: node.name,
            kind: node.kind,
            start_ns: node.start_ns,
            end_ns: end_ns.max(node.start_ns),
            attrs: node.attrs,
        });
        if node.parent.is_none() {
            batch.done = true;
            if let Some(waker) = batch.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The span the agent API opens around each tool call it runs through the
/// pipeline, a request inside the request: what the call notes lands on
/// it, not on the request's span.
pub(crate) const TOOL_CALL_SPAN: &str = "execute_tool";
/// The same around the agent API's listing of the caller's tools.
pub(crate) const LIST_TOOLS_SPAN: &str = "list_tools";
/// The agent API's span around one model call.
pub(crate) const MODEL_CALL_SPAN: &str = "chat";

/// Sets attribute `key` on the request's span (the one [`attach`]ed, or
/// the agent API's span around a request of its own inside it),
/// from anywhere inside the request: what is known only as the request is
/// read (its method, tool, caller) lands on the span that describes it.
pub(crate) fn note(key: &'static str, value: Attr) {
    set(key, value, true)
}

/// Sets attribute `key` on the innermost span of the request that is
/// current.
pub(crate) fn note_here(key: &'static str, value: Attr) {
    set(key, value, false)
}

fn set(key: &'static str, value: Attr, on_root: bool) {
    let span = tracing::Span::current();
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let current = registry.span(id)?;
        for s in current.scope() {
            let mut ext = s.extensions_mut();
            let Some(node) = ext.get_mut::<Node>() else {
                continue;
            };
            // A tool call the agent API runs is a request of its own
            // inside the agent's: what it notes describes that call.
            let own_request = matches!(node.name, TOOL_CALL_SPAN | LIST_TOOLS_SPAN);
            if on_root && node.parent.is_some() && !own_request {
                continue;
            }
            let value = bounded_for(key, value);
            match node.attrs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => node.attrs.push((key, value)),
            }
            return Some(());
        }
        None
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::trace_context::TraceContext;
    use tracing_subscriber::layer::SubscriberExt;

    fn now() -> u64 {
        7
    }

    #[test]
    fn a_long_request_keeps_at_most_the_caps_and_counts_the_rest() {
        let subscriber = tracing_subscriber::registry().with(Collector::new(now));
        tracing::subscriber::with_default(subscriber, || {
            let traced = Traced {
                context: TraceContext::start([3; 16]),
                span: [9; 8],
            };
            let root = tracing::info_span!("request");
            let batch = attach(&root, &traced).expect("a collector is installed");
            root.in_scope(|| {
                note("gen_ai.tool.name", Attr::Str("é".repeat(400)));
                for _ in 0..MAX_SPANS + 10 {
                    let _s = tracing::info_span!("redact").entered();
                    tracing::info!(target: "audit", "{{\"event\":\"redacted\"}}");
                }
            });
            drop(root);
            let b = batch.lock().unwrap();
            assert!(b.done);
            assert_eq!(
                b.spans.len(),
                MAX_SPANS + 1,
                "the caps, and the request's own span"
            );
            assert_eq!(b.logs.len(), MAX_LOGS);
            assert_eq!(b.dropped, (10, 10));
            let name = b
                .root()
                .unwrap()
                .str("gen_ai.tool.name")
                .unwrap()
                .to_string();
            assert!(name.len() <= MAX_VALUE && name.chars().all(|c| c == 'é'));
        });
    }
}
