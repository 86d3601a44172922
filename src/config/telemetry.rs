//! Telemetry settings: where OTLP goes and how much of it. The names are
//! the OpenTelemetry SDK environment variables (`opentelemetry-specification`,
//! `specification/configuration/sdk-environment-variables.md`), so a
//! platform team sets them as it would for any other service:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP base URL (`/v1/traces`,
//!   `/v1/logs` and `/v1/metrics` are appended); unset, nothing is exported;
//! - `OTEL_TRACES_SAMPLER_ARG`: the share of the traces the gateway starts
//!   whose spans are exported, 0 to 1 (default 1); a caller's trace follows
//!   the caller's sampled flag (the SDKs' `parentbased_traceidratio`);
//!   audit records and metrics are not sampled;
//! - `OTEL_SERVICE_NAME`: the `service.name` reported (default `mcp-edge`).
//!
//! The headers the exporter sends (`OTEL_EXPORTER_OTLP_HEADERS`, such as an
//! API key) are a secret, read when exporting, never a setting.
//!
//! Telemetry describes the gateway; it does not grant or limit access. So a
//! value that does not parse turns export off (or keeps the default) with a
//! warning naming the variable, never its value (an endpoint may carry a
//! credential), instead of failing every request.

/// Checked telemetry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// The OTLP/HTTP base URL, without a trailing `/`.
    pub endpoint: Option<String>,
    /// The share of traces whose spans are exported.
    pub sample_ratio: f64,
    pub service_name: String,
    /// What did not parse (variable names and why, never values): logged
    /// once when the gateway starts.
    pub problems: Vec<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            endpoint: None,
            sample_ratio: 1.0,
            service_name: "mcp-edge".into(),
            problems: Vec::new(),
        }
    }
}

/// The longest endpoint taken (a URL with `/v1/metrics` appended must stay
/// a valid request target).
const MAX_ENDPOINT: usize = 2048;

/// Whether `v` is an OTLP base URL the exporter may post to: http(s), a
/// host, no user info (credentials go in the headers secret), no query or
/// fragment (the signal paths are appended).
fn endpoint_ok(v: &str) -> bool {
    let Ok(uri) = v.parse::<http::Uri>() else {
        return false;
    };
    let authority = uri.authority().map_or("", |a| a.as_str());
    v.len() <= MAX_ENDPOINT
        && matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some()
        && !authority.contains('@')
        && uri.query().is_none()
        && !v.contains('#')
}

impl Telemetry {
    /// Every variable read here.
    pub const VARIABLES: [&'static str; 3] = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SERVICE_NAME",
    ];

    /// Reads the settings through `var` (name -> value); what does not
    /// parse is left at its default and named in `problems`.
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Telemetry {
        let mut t = Telemetry::default();
        if let Some(v) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let v = v.trim().trim_end_matches('/');
            if endpoint_ok(v) {
                t.endpoint = Some(v.to_string());
            } else if !v.is_empty() {
                t.problems.push(
                    "OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL without user info, query \
                     or fragment (at most 2048 bytes); telemetry is not exported"
                        .into(),
                );
            }
        }
        if let Some(v) = var("OTEL_TRACES_SAMPLER_ARG") {
            match v.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => t.sample_ratio = r,
                _ => t.problems.push(
                    "OTEL_TRACES_SAMPLER_ARG is not a number from 0 to 1; every trace is sampled"
                        .into(),
                ),
            }
        }
        if let Some(v) = var("OTEL_SERVICE_NAME").map(|v| v.trim().to_string()) {
            if !v.is_empty() {
                t.service_name = v.chars().take(256).collect();
            }
        }
        t
    }

    /// Whether the spans of a trace the gateway starts are exported: the
    /// same answer for a trace wherever it is asked (the W3C
    /// `TraceIdRatioBased` sampler's rule: the trace id's last 8 bytes under
    /// `ratio * 2^64`). A caller's trace follows its own sampled flag.
    pub(crate) fn samples(&self, trace_id: &[u8; 16]) -> bool {
        if self.sample_ratio >= 1.0 {
            return true;
        }
        let low = u64::from_be_bytes(trace_id[8..].try_into().expect("8 bytes"));
        (low as f64) < self.sample_ratio * (u64::MAX as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unset_exports_nothing_and_samples_everything() {
        let t = Telemetry::from_vars(&vars(&[]));
        assert_eq!(t, Telemetry::default());
        assert!(t.endpoint.is_none());
        assert!(t.samples(&[0xff; 16]));
    }

    #[test]
    fn settings_are_read_and_checked() {
        let t = Telemetry::from_vars(&vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
            ("OTEL_SERVICE_NAME", "edge-eu"),
        ]));
        assert!(t.problems.is_empty());
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(t.service_name, "edge-eu");
        let mut low = [0u8; 16];
        assert!(t.samples(&low));
        low[8] = 0x90;
        assert!(!t.samples(&low));
        let long = format!("http://c.test/{}", "a".repeat(3000));
        for (name, bad) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "user:tok@collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://user:tok@collector.test",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c.test/otlp?k=secret"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c.test/otlp#x"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", long.as_str()),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_TRACES_SAMPLER_ARG", "50%"),
        ] {
            let t = Telemetry::from_vars(&vars(&[(name, bad)]));
            assert!(t.endpoint.is_none() && t.sample_ratio == 1.0, "{bad}");
            let problem = t.problems.join(" ");
            assert!(problem.starts_with(name), "{problem}");
            // The value (which may hold a credential) is never repeated.
            assert!(
                !problem.contains("tok") && !problem.contains("secret"),
                "{problem}"
            );
        }
        let none = Telemetry::from_vars(&vars(&[("OTEL_TRACES_SAMPLER_ARG", "0")]));
        assert!(!none.samples(&[0; 16]));
    }
}
