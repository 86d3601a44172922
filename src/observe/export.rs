//! Export: once a request is over, its batch goes to the OTLP/HTTP
//! endpoint as three JSON posts (traces, logs, metrics), sent side by side
//! from the platform's after-response work (Workers `waitUntil`, a task the
//! Spin component runs after its response), so the export never delays or
//! fails the call.
//!
//! - spans only for sampled traces ([`Telemetry::samples`]); audit records
//!   and metrics always (they are counts and decisions, not samples);
//! - the headers (`OTEL_EXPORTER_OTLP_HEADERS`, `key=value,...` with
//!   percent-encoded values as the OpenTelemetry SDKs read them) come from
//!   a secret, read per export, never logged;
//! - a post that fails or takes over [`EXPORT_TIMEOUT_MS`] is not retried:
//!   it is counted (`mcp_edge.export.failures`, sent with the next export)
//!   and the first failure of an isolate is logged.

use super::batch::Batch;
use super::collect::Shared;
use super::metrics::{self, Point, Value};
use super::otlp::{self, Resource};
use crate::config::Telemetry;
use crate::ports::{with_timeout, HttpClient, Platform};
use futures_util::FutureExt;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How long one post may take.
pub(crate) const EXPORT_TIMEOUT_MS: u64 = 10_000;

/// The secret that holds the exporter's headers.
pub const HEADERS_SECRET: &str = "OTEL_EXPORTER_OTLP_HEADERS";

static FAILURES: AtomicU64 = AtomicU64::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);
static HEADERS_WARNED: AtomicBool = AtomicBool::new(false);

/// What three posts carry for one finished batch.
pub(crate) struct Posts {
    pub traces: Option<Vec<u8>>,
    pub logs: Option<Vec<u8>>,
    pub metrics: Vec<u8>,
}

/// Encodes a finished batch (see the module docs for what is included).
pub(crate) fn encode(batch: &Batch, telemetry: &Telemetry, failures: u64) -> Posts {
    let resource = Resource {
        service_name: telemetry.service_name.clone(),
    };
    // The decision was taken when the trace was read or started (its
    // sampled flag: the caller's, or the ratio's for a trace of the
    // gateway's), so the upstream and the client see the same one.
    let sampled = batch.traced.context.flags & 1 == 1;
    let mut points = metrics::of(batch);
    if failures > 0 {
        let (start_ns, end_ns) = points.first().map_or((0, 0), |p| (p.start_ns, p.end_ns));
        points.push(Point {
            name: "mcp_edge.export.failures",
            unit: "{export}",
            description: "OTLP posts that failed or timed out (not retried).",
            attrs: Vec::new(),
            value: Value::Count(failures.min(i64::MAX as u64) as i64),
            start_ns,
            end_ns,
        });
    }
    Posts {
        traces: (sampled && !batch.spans.is_empty()).then(|| otlp::traces(batch, &resource)),
        logs: (!batch.logs.is_empty()).then(|| otlp::logs(batch, &resource)),
        metrics: otlp::metrics(&points, &resource),
    }
}

/// Exports a finished batch when an endpoint is set.
pub(crate) async fn export<P: Platform + 'static>(
    p: &Rc<P>,
    batch: &Shared,
    telemetry: &Telemetry,
) {
    let Some(endpoint) = telemetry.endpoint.clone() else {
        return;
    };
    let headers = parse_headers(p.secret(HEADERS_SECRET).await.as_deref().unwrap_or(""));
    let failures = FAILURES.swap(0, Ordering::Relaxed);
    let posts = {
        let batch = batch.lock().unwrap_or_else(|e| e.into_inner());
        encode(&batch, telemetry, failures)
    };
    let send = |signal: &'static str, body: Vec<u8>| {
        let p = p.clone();
        let url = format!("{endpoint}/v1/{signal}");
        let headers = headers.clone();
        async move {
            let Ok(mut req) = http::Request::post(url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
            else {
                failed_once(signal, "the endpoint does not make a request URL");
                return false;
            };
            for (name, value) in headers {
                // The body's type is the exporter's to say.
                if name != http::header::CONTENT_TYPE {
                    req.headers_mut().append(name, value);
                }
            }
            let sent = with_timeout(p.clock(), EXPORT_TIMEOUT_MS, p.http().send(req)).await;
            // Only the kind of failure: the platform's error text may
            // repeat the URL.
            let failed = match sent {
                None => Some(format!("no answer in {EXPORT_TIMEOUT_MS} ms")),
                Some(Err(_)) => Some("unreachable".to_string()),
                Some(Ok(r)) if !r.status().is_success() => Some(format!("HTTP {}", r.status())),
                Some(Ok(_)) => None,
            };
            if let Some(why) = &failed {
                failed_once(signal, why);
            }
            failed.is_none()
        }
    };
    let mut posts_out = vec![send("metrics", posts.metrics).boxed_local()];
    if let Some(body) = posts.traces {
        posts_out.push(send("traces", body).boxed_local());
    }
    if let Some(body) = posts.logs {
        posts_out.push(send("logs", body).boxed_local());
    }
    let delivered = futures_util::future::join_all(posts_out).await;
    if !delivered[0] {
        // The failures this metrics post carried were not delivered either.
        FAILURES.fetch_add(failures, Ordering::Relaxed);
    }
}

/// Counts a failed post; logs only the first of the isolate.
fn failed_once(signal: &str, why: &str) {
    FAILURES.fetch_add(1, Ordering::Relaxed);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "OTLP export of {signal} failed: {why}; not retried, and further failures are \
             counted in mcp_edge.export.failures rather than logged"
        );
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated by commas,
/// values percent-decoded; a pair that is not a valid header is skipped
/// (and never logged: it may hold a key).
pub(crate) fn parse_headers(text: &str) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut skipped = 0;
    let headers = text
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .filter_map(|pair| {
            let parsed = pair.split_once('=').and_then(|(name, value)| {
                let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
                let value = http::HeaderValue::from_bytes(&percent_decode(value.trim())).ok()?;
                Some((name, value))
            });
            skipped += usize::from(parsed.is_none());
            parsed
        })
        .collect();
    if skipped > 0 && !HEADERS_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "{HEADERS_SECRET}: {skipped} pair(s) are not key=value headers and were skipped"
        );
    }
    headers
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_pairs_with_percent_encoded_values() {
        let h = parse_headers("x-honeycomb-team=abc%3D%3D, Authorization=Basic%20dXNlcjpwdw==,bad");
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].0, "x-honeycomb-team");
        assert_eq!(h[0].1, "abc==");
        assert_eq!(h[1].1, "Basic dXNlcjpwdw==");
        assert_eq!(percent_decode("50%"), b"50%");
        assert_eq!(percent_decode("%4"), b"%4");
        assert_eq!(percent_decode("%41"), b"A");
        assert!(parse_headers("x=%0Aevil").is_empty());
    }
}
