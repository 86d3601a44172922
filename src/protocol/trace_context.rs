//! W3C Trace Context (`traceparent`, `tracestate`): read from a client's
//! request, written on the gateway's requests upstream.
//!
//! Format from the W3C Trace Context recommendation
//! (<https://www.w3.org/TR/trace-context/> § 3.2 and § 3.3): `traceparent`
//! is `{version}-{trace-id}-{parent-id}-{trace-flags}` in lowercase hex,
//! 2-32-16-2 digits; version `ff` is invalid, and neither id may be all
//! zeros; a later version may append fields after another `-`, which a
//! reader of version `00` ignores. MCP carries the same keys in a request's
//! `params._meta` (`docs/specification/2026-07-28/basic/index.mdx`,
//! "OpenTelemetry trace context", in `modelcontextprotocol/modelcontextprotocol`;
//! `docs/gen-ai/mcp.md` § Context propagation in
//! `open-telemetry/semantic-conventions-genai`). Parsing is one pass over a
//! bounded string: linear in its length.

/// Longest `tracestate` passed on (§ 3.3.1.5: a vendor may truncate past
/// 512 characters; past that it is dropped whole rather than cut).
const MAX_TRACESTATE: usize = 512;

/// Where a request stands in a trace: the trace, the span that called the
/// gateway (if the caller said), the sampling flag, the vendors' state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The caller's span: the parent of the gateway's.
    pub parent_id: Option<[u8; 8]>,
    /// `trace-flags` (bit 0: sampled).
    pub flags: u8,
    pub state: Option<String>,
}

impl TraceContext {
    /// A `traceparent` (with its `tracestate`), if it is a valid one.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceContext> {
        let text = traceparent.trim();
        // Version 00 is exactly 55 characters; a later one may be longer.
        let (head, rest) = text.split_at_checked(55)?;
        let mut parts = head.split('-');
        let version = hex::<1>(parts.next()?)?;
        let trace_id = hex::<16>(parts.next()?)?;
        let parent_id = hex::<8>(parts.next()?)?;
        let flags = hex::<1>(parts.next()?)?[0];
        let valid = version[0] != 0xff
            && (version[0] != 0 || rest.is_empty())
            && (rest.is_empty() || rest.starts_with('-'))
            && trace_id != [0; 16]
            && parent_id != [0; 8];
        let state = tracestate.and_then(tracestate_list);
        valid.then_some(TraceContext {
            trace_id,
            parent_id: Some(parent_id),
            flags,
            state,
        })
    }

    /// A new trace, sampled, from 24 random bytes (a 16-byte trace id, which
    /// must not be all zeros: the odds are nil, but a zero one is bumped).
    pub fn start(random: [u8; 16]) -> TraceContext {
        let mut trace_id = random;
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        TraceContext {
            trace_id,
            parent_id: None,
            flags: 1,
            state: None,
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// The `traceparent` of a request made within span `span` of this trace
    /// (version 00: what this gateway writes, whatever version it read).
    pub fn traceparent(&self, span: [u8; 8]) -> String {
        let mut span = span;
        if span == [0; 8] {
            span[7] = 1;
        }
        format!(
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&span),
            self.flags
        )
    }
}

/// A JSON-RPC request or notification with `traceparent` (and `tracestate`,
/// or none) in its `params._meta`, in place of whatever the client put
/// there: the upstream's spans join the trace under the gateway's. Other
/// fields stay as they came (raw). `None` for a message that has no method
/// (a response) or whose params are not an object: it goes as it is.
pub(crate) fn into_meta(
    body: &[u8],
    traceparent: &str,
    tracestate: Option<&str>,
) -> Option<Vec<u8>> {
    use super::raw_object::RawObject;
    let text = std::str::from_utf8(body).ok()?;
    let mut message = RawObject::parse(text).ok()?;
    message.get("method")?;
    let params_text = message.get("params").map_or("{}", |p| p.get()).to_string();
    let mut params = RawObject::parse(&params_text).ok()?;
    let meta_text = params.get("_meta").map_or("{}", |m| m.get()).to_string();
    let mut meta = RawObject::parse(&meta_text).ok()?;
    meta.set_str("traceparent", traceparent);
    match tracestate {
        Some(state) => meta.set_str("tracestate", state),
        None => meta.remove("tracestate"),
    }
    params.set("_meta", meta.to_raw());
    message.set("params", params.to_raw());
    serde_json::to_vec(&message).ok()
}

/// The trace a request is in, and the gateway's own span in it: what the
/// gateway's requests upstream are made within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    pub context: TraceContext,
    pub span: [u8; 8],
}

impl Traced {
    /// The `traceparent` the gateway's requests upstream carry.
    pub fn traceparent(&self) -> String {
        self.context.traceparent(self.span)
    }

    /// The gateway's span id as 16 lowercase hex digits.
    pub fn span_hex(&self) -> String {
        to_hex(&self.span)
    }
}

/// A `tracestate` in its list form (§ 3.3.1: at most 32 `key=value`
/// members, comma-separated with optional blanks around), without its
/// empty members; `None`, so it is dropped whole, when any member breaks
/// the grammar or the list is longer than [`MAX_TRACESTATE`].
fn tracestate_list(text: &str) -> Option<String> {
    if text.len() > MAX_TRACESTATE {
        return None;
    }
    let key_char = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '*' | '/' | '@');
    // A value is printable ASCII but `,` and `=`, and does not end in a space.
    let value_char = |c: char| matches!(c, ' '..='~') && c != ',' && c != '=';
    let mut members = Vec::new();
    for member in text.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        let key_ok = key.len() <= 256
            && key.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && key.chars().all(key_char)
            && key.matches('@').count() <= 1;
        let value_ok = !value.is_empty()
            && value.len() <= 256
            && value.chars().all(value_char)
            && !value.ends_with(' ');
        if !(key_ok && value_ok) {
            return None;
        }
        members.push(member);
    }
    (!members.is_empty() && members.len() <= 32).then(|| members.join(","))
}

/// Exactly `2 * N` lowercase hex digits.
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_traceparent_is_read() {
        let t = TraceContext::parse(EXAMPLE, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            t.parent_id,
            Some([0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31])
        );
        assert_eq!(t.flags, 1);
        assert_eq!(t.state.as_deref(), Some("congo=t61rcWkgMzE"));
        // What the gateway sends on: the same trace, its own span.
        assert_eq!(
            t.traceparent([1, 2, 3, 4, 5, 6, 7, 8]),
            "00-0af7651916cd43dd8448eb211c80319c-0102030405060708-01"
        );
        // A later version may carry more fields; version 00 may not.
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra";
        assert!(TraceContext::parse(later, None).is_some());
        assert!(TraceContext::parse(&format!("{EXAMPLE}-extra"), None).is_none());
    }

    #[test]
    fn an_invalid_traceparent_is_none() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
            "00-0af7651916cd43dd8448eb211c80319é-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad}");
        }
        // A tracestate too long or not ASCII is dropped, not the trace.
        let long = "k=".to_string() + &"v".repeat(600);
        assert_eq!(
            TraceContext::parse(EXAMPLE, Some(&long)).unwrap().state,
            None
        );
    }

    #[test]
    fn the_trace_goes_into_a_requests_meta_and_nothing_else_changes() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-0102030405060708-01";
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"b":2,"a":1},"_meta":{"progressToken":7,"traceparent":"x","tracestate":"old=1"}}}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&into_meta(call, tp, None).unwrap()).unwrap();
        assert_eq!(
            out["params"]["_meta"],
            serde_json::json!({"progressToken": 7, "traceparent": tp})
        );
        assert_eq!(
            out["params"]["arguments"],
            serde_json::json!({"b": 2, "a": 1})
        );
        let bare = br#"{"jsonrpc":"2.0","method":"notifications/cancelled"}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&into_meta(bare, tp, Some("k=v")).unwrap()).unwrap();
        assert_eq!(out["params"]["_meta"]["tracestate"], "k=v");
        // A response, or params that are no object, go as they are.
        assert_eq!(
            into_meta(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, tp, None),
            None
        );
        assert_eq!(
            into_meta(
                br#"{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}"#,
                tp,
                None
            ),
            None
        );
    }

    #[test]
    fn a_started_trace_is_sampled_and_never_zero() {
        let t = TraceContext::start([0; 16]);
        assert_ne!(t.trace_id, [0; 16]);
        assert_eq!((t.parent_id, t.flags), (None, 1));
        assert!(t.traceparent([0; 8]).ends_with("-0000000000000001-01"));
    }
}
