//! OTLP/HTTP JSON encoding of a request's batch: `ExportTraceServiceRequest`,
//! `ExportLogsServiceRequest` and `ExportMetricsServiceRequest` as the
//! OpenTelemetry protocol specification encodes them in JSON
//! (`opentelemetry-proto`, `docs/specification.md` § JSON Protobuf
//! Encoding): field names in lowerCamelCase, `traceId`/`spanId` as hex
//! strings (not base64), enums as integers, 64-bit integers as decimal
//! strings.

use super::batch::{Attr, Batch, Kind, SpanData};
use super::metrics::{Point, Value as MetricValue, DURATION_BOUNDS};
use serde_json::{json, Value};

/// Who is reporting: the `Resource` of every export.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub service_name: String,
}

impl Resource {
    fn encode(&self) -> Value {
        json!({"attributes": [
            kv("service.name", &Attr::Str(self.service_name.clone())),
            kv("service.version", &Attr::Str(env!("CARGO_PKG_VERSION").into())),
            kv("telemetry.sdk.name", &Attr::Str("mcp-edge".into())),
            kv("telemetry.sdk.language", &Attr::Str("rust".into())),
        ]})
    }
}

fn scope() -> Value {
    json!({"name": "mcp-edge", "version": env!("CARGO_PKG_VERSION")})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn any(v: &Attr) -> Value {
    match v {
        Attr::Str(s) => json!({"stringValue": s}),
        Attr::Int(i) => json!({"intValue": i.to_string()}),
        Attr::Bool(b) => json!({"boolValue": b}),
        Attr::Double(d) => json!({"doubleValue": d}),
    }
}

fn kv(key: &str, v: &Attr) -> Value {
    json!({"key": key, "value": any(v)})
}

fn attrs(list: &[(&'static str, Attr)]) -> Vec<Value> {
    list.iter().map(|(k, v)| kv(k, v)).collect()
}

/// The span's name: `{mcp.method.name} {target}` where it carries an MCP
/// method (the request itself and each upstream attempt; `docs/gen-ai/mcp.md`
/// § Server: the target is the tool or prompt name, never a resource URI),
/// else the phase's name.
use super::collect::TOOL_CALL_SPAN;

pub(crate) fn span_name(span: &SpanData) -> String {
    // GenAI spans (`docs/gen-ai/gen-ai-spans.md`): `chat {model}`,
    // `invoke_agent {model}`, and `execute_tool {tool}` for the agent API's
    // tool calls (which carry their MCP method too: the GenAI name wins).
    let genai = span.str("mcp.method.name").is_none() || span.name == TOOL_CALL_SPAN;
    if let Some(op) = span.str("gen_ai.operation.name").filter(|_| genai) {
        return match span
            .str("gen_ai.request.model")
            .or_else(|| span.str("gen_ai.tool.name"))
        {
            Some(target) => format!("{op} {target}"),
            None => op.to_string(),
        };
    }
    let Some(method) = span.str("mcp.method.name") else {
        if span.parent.is_none() {
            if let Some(m) = span.str("http.request.method") {
                return m.to_string();
            }
        }
        return span.name.to_string();
    };
    match span
        .str("gen_ai.tool.name")
        .or_else(|| span.str("gen_ai.prompt.name"))
    {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    }
}

fn encode_span(batch: &Batch, span: &SpanData) -> Value {
    let context = &batch.traced.context;
    let parent = match span.parent {
        Some(p) => hex(&p),
        None => context.parent_id.map(|p| hex(&p)).unwrap_or_default(),
    };
    let kind = match span.kind {
        Kind::Internal => 1,
        Kind::Server => 2,
        Kind::Client => 3,
    };
    // `docs/gen-ai/mcp.md`: status ERROR when `error.type` is present.
    let status = match span.str("error.type") {
        Some(t) => json!({"code": 2, "message": t}),
        None => json!({}),
    };
    let mut out = json!({
        "traceId": hex(&context.trace_id),
        "spanId": hex(&span.id),
        "parentSpanId": parent,
        "name": span_name(span),
        "kind": kind,
        "startTimeUnixNano": span.start_ns.to_string(),
        "endTimeUnixNano": span.end_ns.to_string(),
        "attributes": attrs(&span.attrs),
        "status": status,
    });
    // Every span of the gateway's carries the trace's state.
    if let Some(state) = &context.state {
        out["traceState"] = json!(state);
    }
    if span.parent.is_none() {
        // What the per-request caps dropped, on the span they belonged to.
        let (spans, logs) = batch.dropped;
        for (key, n) in [
            ("mcp_edge.dropped.spans", spans),
            ("mcp_edge.dropped.records", logs),
        ] {
            if n > 0 {
                out["attributes"]
                    .as_array_mut()
                    .expect("attributes is an array")
                    .push(kv(key, &Attr::Int(n.min(i64::MAX as u64) as i64)));
            }
        }
    }
    out
}

/// `ExportTraceServiceRequest` with every span of the batch.
pub(crate) fn traces(batch: &Batch, resource: &Resource) -> Vec<u8> {
    let spans: Vec<Value> = batch.spans.iter().map(|s| encode_span(batch, s)).collect();
    let body = json!({"resourceSpans": [{
        "resource": resource.encode(),
        "scopeSpans": [{"scope": scope(), "spans": spans}],
    }]});
    serde_json::to_vec(&body).expect("JSON serializes")
}

/// `ExportLogsServiceRequest` with every audit event of the batch, each
/// linked to its trace and span; the body is the event's JSON line.
pub(crate) fn logs(batch: &Batch, resource: &Resource) -> Vec<u8> {
    let trace_id = hex(&batch.traced.context.trace_id);
    let records: Vec<Value> = batch
        .logs
        .iter()
        .map(|log| {
            let event = serde_json::from_str::<Value>(&log.body)
                .ok()
                .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_default();
            json!({
                "timeUnixNano": log.time_ns.to_string(),
                "observedTimeUnixNano": log.time_ns.to_string(),
                "severityNumber": 9,
                "severityText": "INFO",
                "body": {"stringValue": log.body},
                "attributes": [kv("event.name", &Attr::Str(format!("mcp_edge.audit.{event}")))],
                "traceId": trace_id,
                "spanId": hex(&log.span_id),
                "flags": u32::from(batch.traced.context.flags),
            })
        })
        .collect();
    let body = json!({"resourceLogs": [{
        "resource": resource.encode(),
        "scopeLogs": [{"scope": scope(), "logRecords": records}],
    }]});
    serde_json::to_vec(&body).expect("JSON serializes")
}

fn encode_point(p: &Point) -> Value {
    let mut point = json!({
        "attributes": attrs(&p.attrs),
        "startTimeUnixNano": p.start_ns.to_string(),
        "timeUnixNano": p.end_ns.to_string(),
    });
    match p.value {
        MetricValue::Count(n) => point["asInt"] = json!(n.to_string()),
        MetricValue::Seconds(s) => {
            let mut buckets = vec!["0"; DURATION_BOUNDS.len() + 1];
            // A value on a boundary belongs to the bucket it bounds (upper
            // bounds are inclusive in OTLP).
            let i = DURATION_BOUNDS.partition_point(|b| *b < s);
            buckets[i] = "1";
            point["count"] = json!("1");
            point["sum"] = json!(s);
            point["min"] = json!(s);
            point["max"] = json!(s);
            point["bucketCounts"] = json!(buckets);
            point["explicitBounds"] = json!(DURATION_BOUNDS);
        }
    }
    point
}

/// `ExportMetricsServiceRequest` with `points`, one metric per name, all
/// delta temporality (`AGGREGATION_TEMPORALITY_DELTA` = 1).
pub(crate) fn metrics(points: &[Point], resource: &Resource) -> Vec<u8> {
    let mut metrics: Vec<Value> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for p in points {
        let encoded = encode_point(p);
        let data = match p.value {
            MetricValue::Count(_) => "sum",
            MetricValue::Seconds(_) => "histogram",
        };
        match names.iter().position(|n| *n == p.name) {
            Some(i) => metrics[i][data]["dataPoints"]
                .as_array_mut()
                .expect("dataPoints is an array")
                .push(encoded),
            None => {
                names.push(p.name);
                let mut metric =
                    json!({"name": p.name, "unit": p.unit, "description": p.description});
                metric[data] = match p.value {
                    MetricValue::Count(_) => json!({
                        "dataPoints": [encoded],
                        "aggregationTemporality": 1,
                        "isMonotonic": true,
                    }),
                    MetricValue::Seconds(_) => json!({
                        "dataPoints": [encoded],
                        "aggregationTemporality": 1,
                    }),
                };
                metrics.push(metric);
            }
        }
    }
    let body = json!({"resourceMetrics": [{
        "resource": resource.encode(),
        "scopeMetrics": [{"scope": scope(), "metrics": metrics}],
    }]});
    serde_json::to_vec(&body).expect("JSON serializes")
}
