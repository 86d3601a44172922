//! A compact summary of a request's trace for the caller who asked for it
//! (the playground's "Trace" panel): the phases the request went through,
//! how long each took and how it ended, read from the request's own batch
//! ([`super::batch`]) at the moment the answer leaves the gateway.
//!
//! A caller asks with the request header `mcp-edge-trace: summary`; the
//! gateway answers with the `mcp-edge-trace-summary` response header on a
//! whole JSON answer, or, on an event stream, with one last event of type
//! `mcp-edge-trace` before the stream ends (MCP clients ignore event types
//! other than `message`). Only the spans closed by then are in it: the
//! request's own span closes after the last byte.
//!
//! What it holds is the caller's own request, and still only a few
//! attributes pass ([`SHOWN`]): decisions, limits, outcome, never an
//! upstream's address, a policy rule's name or who the caller is.

use super::batch::{Attr, Batch};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The request header that asks for a summary, and its one value.
pub(crate) const ASK_HEADER: &str = "mcp-edge-trace";
pub(crate) const ASK_VALUE: &str = "summary";
/// The response header a whole JSON answer carries it in.
pub(crate) const ANSWER_HEADER: &str = "mcp-edge-trace-summary";
/// The event type a stream carries it in.
pub(crate) const EVENT: &str = "mcp-edge-trace";

/// At most this many spans are summarised; the count of the rest is given.
pub(crate) const MAX_SHOWN_SPANS: usize = 40;
/// And the summary is at most this long (a header well under the 8 KiB
/// most proxies accept): spans are dropped from the end until it fits.
pub(crate) const MAX_BYTES: usize = 4096;

/// The attributes a summary shows, when a span has them.
/// (`mcp_edge.limit`, every limit checked, is not: only the one that
/// refused, which the 429 names anyway.)
const SHOWN: [&str; 13] = [
    "mcp.method.name",
    "gen_ai.operation.name",
    "gen_ai.tool.name",
    "mcp_edge.server.id",
    "mcp_edge.region",
    "mcp_edge.policy.decision",
    "mcp_edge.limit.decision",
    "mcp_edge.limit.refused",
    "mcp_edge.approval.decider",
    "mcp_edge.approval.outcome",
    "http.response.status_code",
    "rpc.response.status_code",
    "error.type",
];

/// Whether the request asked for a summary.
pub(crate) fn asked(headers: &http::HeaderMap) -> bool {
    headers
        .get(ASK_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(ASK_VALUE))
}

/// The summary of what `batch` holds so far, as one line of ASCII JSON
/// (every other character escaped: it goes in a header) of at most
/// [`MAX_BYTES`]: `{"trace_id", "spans": [{"name", "depth", "start_ms",
/// "ms", "attrs"}], "omitted"}`, spans in the order they started, times in
/// milliseconds from the first one's start.
pub(crate) fn summarize(batch: &Batch) -> String {
    let mut spans: Vec<_> = batch.spans.iter().collect();
    spans.sort_by_key(|s| (s.start_ns, s.end_ns));
    let origin = spans.first().map_or(0, |s| s.start_ns);
    let parents: HashMap<[u8; 8], Option<[u8; 8]>> =
        batch.spans.iter().map(|s| (s.id, s.parent)).collect();
    let mut shown: Vec<Value> = spans
        .iter()
        .take(MAX_SHOWN_SPANS)
        .map(|s| {
            let mut attrs = Map::new();
            for (k, v) in &s.attrs {
                if SHOWN.contains(k) {
                    attrs.insert((*k).to_string(), value(v));
                }
            }
            json!({
                "name": s.name,
                "depth": depth(&parents, batch, s.parent),
                "start_ms": millis(s.start_ns - origin),
                "ms": millis(s.end_ns - s.start_ns),
                "attrs": attrs,
            })
        })
        .collect();
    loop {
        let omitted = (spans.len() - shown.len()) as u64 + batch.dropped.0;
        let text = ascii(&json!({
            "trace_id": batch.traced.context.trace_id_hex(),
            "spans": shown,
            "omitted": omitted,
        }));
        if text.len() <= MAX_BYTES || shown.is_empty() {
            return text;
        }
        // Each span is bounded (attribute values are cut to 256 bytes), so
        // halving what is over reaches the bound in a few rounds.
        let keep = shown.len() * MAX_BYTES / text.len();
        shown.truncate(keep.min(shown.len() - 1));
    }
}

/// `value` as JSON with every character outside ASCII escaped (`\uXXXX`,
/// UTF-16 pairs past the BMP): still the same JSON, and a valid header
/// value (workerd takes only ASCII there).
fn ascii(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    let mut units = [0u16; 2];
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// How deep a span with `parent` sits under the request's span (1: right
/// under it). Bounded by the batch's size, so a cycle cannot loop.
fn depth(
    parents: &HashMap<[u8; 8], Option<[u8; 8]>>,
    batch: &Batch,
    mut parent: Option<[u8; 8]>,
) -> usize {
    let mut depth = 1;
    while let Some(id) = parent {
        if id == batch.traced.span || depth > parents.len() {
            break;
        }
        parent = parents.get(&id).copied().flatten();
        depth += 1;
    }
    depth
}

fn millis(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1_000.0
}

fn value(v: &Attr) -> Value {
    match v {
        Attr::Str(s) => json!(s),
        Attr::Int(i) => json!(i),
        Attr::Bool(b) => json!(b),
        Attr::Double(d) => json!(d),
    }
}

/// The event that ends a stream with the summary.
pub(crate) fn event(summary: &str) -> Vec<u8> {
    format!("event: {EVENT}\ndata: {summary}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::batch::{Kind, SpanData};
    use crate::protocol::trace_context::{TraceContext, Traced};

    fn span(id: u8, parent: Option<u8>, name: &'static str, start: u64, end: u64) -> SpanData {
        SpanData {
            id: [id; 8],
            parent: parent.map(|p| [p; 8]),
            name,
            kind: Kind::Internal,
            start_ns: start,
            end_ns: end,
            attrs: vec![
                ("mcp_edge.policy.decision", Attr::Str("allow".into())),
                ("server.address", Attr::Str("10.0.0.7".into())),
                ("enduser.id", Attr::Str("alice".into())),
            ],
        }
    }

    /// A request's batch: trace 0707..., the request's span 0101....
    fn batch() -> Batch {
        Batch::new(&Traced {
            context: TraceContext::start([7; 16]),
            span: [1; 8],
        })
    }

    #[test]
    fn phases_are_ordered_nested_and_only_shown_attributes_pass() {
        let mut b = batch();
        b.spans
            .push(span(3, Some(2), "rate_limit", 3_000_000, 4_500_000));
        b.spans
            .push(span(2, Some(1), "policy", 2_000_000, 5_000_000));
        b.spans
            .push(span(4, Some(1), "authenticate", 1_000_000, 1_250_000));
        let s: Value = serde_json::from_str(&summarize(&b)).unwrap();
        let names: Vec<&str> = s["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["authenticate", "policy", "rate_limit"]);
        assert_eq!(s["spans"][2]["depth"], 2);
        assert_eq!(s["spans"][0]["depth"], 1);
        assert_eq!(s["spans"][2]["start_ms"], 2.0);
        assert_eq!(s["spans"][2]["ms"], 1.5);
        let attrs = s["spans"][1]["attrs"].as_object().unwrap();
        assert_eq!(attrs.len(), 1, "{attrs:?}");
        assert_eq!(attrs["mcp_edge.policy.decision"], "allow");
        assert_eq!(s["trace_id"], "07".repeat(16));
        assert_eq!(s["omitted"], 0);
    }

    #[test]
    fn the_summary_is_ascii_and_bounded_whatever_the_spans_say() {
        let mut b = batch();
        for i in 0..40u8 {
            let mut s = span(i + 10, Some(1), "upstream", i as u64, i as u64 + 1);
            s.attrs = SHOWN
                .iter()
                .map(|k| (*k, Attr::Str(format!("météo-☃-🌧-{}", "x".repeat(200)))))
                .collect();
            b.spans.push(s);
        }
        let text = summarize(&b);
        assert!(text.is_ascii(), "{text}");
        assert!(text.len() <= MAX_BYTES, "{}", text.len());
        assert!(http::HeaderValue::from_str(&text).unwrap().to_str().is_ok());
        let s: Value = serde_json::from_str(&text).unwrap();
        let shown = s["spans"].as_array().unwrap().len();
        assert!(shown >= 1, "{text}");
        assert_eq!(s["omitted"], 40 - shown as u64);
        assert!(s["spans"][0]["attrs"]["gen_ai.tool.name"]
            .as_str()
            .unwrap()
            .starts_with("météo-☃-🌧-"));
    }

    #[test]
    fn a_long_trace_is_cut_and_a_cycle_ends() {
        let mut b = batch();
        for i in 0..60u8 {
            b.spans
                .push(span(i + 10, Some(i + 11), "x", i as u64, i as u64 + 1));
        }
        b.spans.push(span(70, Some(10), "y", 100, 101));
        let s: Value = serde_json::from_str(&summarize(&b)).unwrap();
        assert_eq!(s["spans"].as_array().unwrap().len(), MAX_SHOWN_SPANS);
        assert_eq!(s["omitted"], 61 - MAX_SHOWN_SPANS as u64);
        let mut h = http::HeaderMap::new();
        assert!(!asked(&h));
        h.insert(ASK_HEADER, http::HeaderValue::from_static(" Summary "));
        assert!(asked(&h));
    }
}
