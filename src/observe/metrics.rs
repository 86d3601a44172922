//! The metrics one request adds, read off its finished batch: every point
//! is a delta (this request's share), so a backend sums them (an
//! OpenTelemetry Collector's `deltatocumulative` processor, or a backend
//! that takes delta temporality, such as Honeycomb or Grafana Cloud).
//!
//! - `mcp.server.operation.duration` (histogram, s): the MCP semantic
//!   conventions' metric (`open-telemetry/semantic-conventions-genai`,
//!   `docs/gen-ai/mcp.md` § Metrics), with their bucket boundaries;
//! - `mcp_edge.calls` and `mcp_edge.errors` (counters): requests by
//!   method, tool, server, teams and outcome;
//! - `mcp_edge.upstream.duration` (histogram, s): each upstream attempt by
//!   server, region and outcome; and `mcp.client.operation.duration`, the
//!   conventions' client metric, for the same attempts;
//! - `mcp_edge.limit.refusals` (counter): calls refused, by limit;
//! - `mcp_edge.approvals` (counter): approvals requested, decided, used.

use super::batch::{Attr, Batch, SpanData};

/// `docs/gen-ai/mcp.md`: "ExplicitBucketBoundaries of
/// `[ 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300 ]`".
pub(crate) const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// One data point.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub name: &'static str,
    pub unit: &'static str,
    pub description: &'static str,
    pub attrs: Vec<(&'static str, Attr)>,
    pub value: Value,
    pub start_ns: u64,
    pub end_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    /// A monotonic delta count.
    Count(i64),
    /// One measurement in seconds ([`DURATION_BOUNDS`]).
    Seconds(f64),
}

/// The request attributes metrics are broken down by, as they are on the
/// span. (The method and the tool are added apart, bounded: see [`of`].)
const REQUEST_KEYS: [&str; 3] = [
    "gen_ai.operation.name",
    "mcp.protocol.version",
    "mcp_edge.server.id",
];

/// An error code as a metric names it: the JSON-RPC reserved range
/// (-32768 to -32000, where the protocol's and the gateway's codes are), an
/// HTTP status, or `tool_error`; any other code an upstream makes up is
/// `_OTHER`, so an upstream cannot mint a series per code.
fn bounded_error(value: &Attr) -> Attr {
    let known = value.as_str().is_some_and(|v| {
        v == "tool_error"
            || v.parse::<i64>()
                .is_ok_and(|c| (-32768..=-32000).contains(&c) || (100..=599).contains(&c))
    });
    if known {
        value.clone()
    } else {
        Attr::Str(super::notes::OTHER.into())
    }
}

/// `mcp.method.name`'s well-known values (`docs/gen-ai/mcp.md`), plus the
/// 2026-07-28 revision's own requests; any other method is `_OTHER` in a
/// metric, so a caller cannot mint a series per made-up method.
const METHODS: [&str; 28] = [
    "completion/complete",
    "elicitation/create",
    "initialize",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/initialized",
    "notifications/message",
    "notifications/progress",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "notifications/roots/list_changed",
    "notifications/tools/list_changed",
    "ping",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/subscribe",
    "resources/templates/list",
    "resources/unsubscribe",
    "roots/list",
    "sampling/createMessage",
    "tools/call",
    "tools/list",
    "server/discover",
    "subscriptions/listen",
    "tasks/get",
];

/// The bounded breakdown of a request: its attributes as on the span, the
/// method (known ones only) and the tool as the server names it
/// (`mcp_edge.tool.name`, `_OTHER` for one it does not list).
fn breakdown(root: &SpanData) -> Vec<(&'static str, Attr)> {
    let mut attrs = copy(root, &REQUEST_KEYS);
    for key in ["error.type", "rpc.response.status_code"] {
        if let Some(v) = root.attr(key) {
            attrs.push((key, bounded_error(v)));
        }
    }
    if let Some(method) = root.str("mcp.method.name") {
        let known = METHODS.contains(&method);
        let method = if known { method } else { super::notes::OTHER };
        attrs.push(("mcp.method.name", Attr::Str(method.into())));
    }
    if let Some(tool) = root.attr("mcp_edge.tool.name") {
        attrs.push(("gen_ai.tool.name", tool.clone()));
    }
    if let Some(teams) = root.attr("mcp_edge.teams") {
        attrs.push(("mcp_edge.teams", teams.clone()));
    }
    attrs
}

fn copy(span: &SpanData, keys: &[&'static str]) -> Vec<(&'static str, Attr)> {
    keys.iter()
        .filter_map(|k| span.attr(k).map(|v| (*k, v.clone())))
        .collect()
}

fn seconds(span: &SpanData) -> f64 {
    (span.end_ns - span.start_ns) as f64 / 1e9
}

/// The points `batch` adds (none before its request's span closed).
pub(crate) fn of(batch: &Batch) -> Vec<Point> {
    let Some(root) = batch.root() else {
        return Vec::new();
    };
    let (start_ns, end_ns) = (root.start_ns, root.end_ns);
    let point = |name, unit, description, attrs, value| Point {
        name,
        unit,
        description,
        attrs,
        value,
        start_ns,
        end_ns,
    };
    let mut points = Vec::new();
    let attrs = breakdown(root);
    points.push(point(
        "mcp.server.operation.duration",
        "s",
        "MCP request duration as observed on the receiver from the time it was received until the result or ack is sent.",
        attrs.clone(),
        Value::Seconds(seconds(root)),
    ));
    let failed = root.attr("error.type").is_some();
    let mut counted = attrs.clone();
    counted.retain(|(k, _)| *k != "rpc.response.status_code");
    counted.push((
        "mcp_edge.outcome",
        Attr::Str(if failed { "error" } else { "ok" }.into()),
    ));
    points.push(point(
        "mcp_edge.calls",
        "{request}",
        "Requests served, by method, tool, server, teams and outcome.",
        counted.clone(),
        Value::Count(1),
    ));
    if failed {
        points.push(point(
            "mcp_edge.errors",
            "{request}",
            "Requests that ended in an error, by error.type.",
            counted,
            Value::Count(1),
        ));
    }
    for attempt in batch.spans.iter().filter(|s| s.name == "upstream") {
        let mut attrs = copy(attempt, &["mcp_edge.server.id", "mcp_edge.region"]);
        let outcome = attempt
            .str("error.type")
            .map_or_else(|| "ok".to_string(), str::to_string);
        attrs.push(("mcp_edge.outcome", Attr::Str(outcome)));
        points.push(point(
            "mcp_edge.upstream.duration",
            "s",
            "One attempt at an upstream server, by server, region and outcome.",
            attrs,
            Value::Seconds(seconds(attempt)),
        ));
        // The gateway is an MCP client of its upstreams: the conventions'
        // client metric, by (known) method, server and failure kind.
        let mut client = copy(attempt, &["mcp_edge.server.id", "error.type"]);
        if let Some(method) = attempt.str("mcp.method.name") {
            let method = if METHODS.contains(&method) {
                method
            } else {
                super::notes::OTHER
            };
            client.push(("mcp.method.name", Attr::Str(method.into())));
        }
        points.push(point(
            "mcp.client.operation.duration",
            "s",
            "The duration of the MCP request or notification as observed on the sender from the time it was sent until the response or ack is received.",
            client,
            Value::Seconds(seconds(attempt)),
        ));
    }
    for log in &batch.logs {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&log.body) else {
            continue;
        };
        let field = |k: &str| event.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let kind = field("event").unwrap_or_default();
        // The server (from the registry) and the tool as the request's span
        // bounds it, never the record's own name of the tool.
        let mut attrs = Vec::new();
        if let Some(v) = field("server") {
            attrs.push(("mcp_edge.server.id", Attr::Str(v)));
        }
        if let Some(tool) = root.attr("mcp_edge.tool.name") {
            attrs.push(("gen_ai.tool.name", tool.clone()));
        }
        match kind.as_str() {
            "limited" => {
                attrs.push((
                    "mcp_edge.limit",
                    Attr::Str(field("limit").unwrap_or_default()),
                ));
                points.push(point(
                    "mcp_edge.limit.refusals",
                    "{call}",
                    "Calls refused by a rate limit or quota, by limit.",
                    attrs,
                    Value::Count(1),
                ));
            }
            "approval_requested" | "approval_decided" | "approval_used" => {
                attrs.push((
                    "mcp_edge.approval.event",
                    Attr::Str(kind["approval_".len()..].to_string()),
                ));
                if let Some(channel) = field("channel") {
                    attrs.push(("mcp_edge.approval.channel", Attr::Str(channel)));
                }
                if let Some(approved) = event.get("approved").and_then(|v| v.as_bool()) {
                    attrs.push(("mcp_edge.approval.approved", Attr::Bool(approved)));
                }
                points.push(point(
                    "mcp_edge.approvals",
                    "{approval}",
                    "Approvals requested, decided and used.",
                    attrs,
                    Value::Count(1),
                ));
            }
            _ => {}
        }
    }
    points
}
