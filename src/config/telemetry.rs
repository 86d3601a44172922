//! Telemetry settings: where OTLP goes and how much of it. The names are
//! the OpenTelemetry SDK environment variables (`opentelemetry-specification`,
//! `specification/configuration/sdk-environment-variables.md`), so a
//! platform team sets them as it would for any other service:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT`: the OTLP/HTTP base URL (`/v1/traces`,
//!   `/v1/logs` and `/v1/metrics` are appended); unset, nothing is exported;
//! - `OTEL_TRACES_SAMPLER_ARG`: the share of traces whose spans are
//!   exported, 0 to 1 (default 1); audit records and metrics are not sampled;
//! - `OTEL_SERVICE_NAME`: the `service.name` reported (default `mcp-edge`).
//!
//! The headers the exporter sends (`OTEL_EXPORTER_OTLP_HEADERS`, such as an
//! API key) are a secret, read when exporting, never a setting.

/// Checked telemetry settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// The OTLP/HTTP base URL, without a trailing `/`.
    pub endpoint: Option<String>,
    /// The share of traces whose spans are exported.
    pub sample_ratio: f64,
    pub service_name: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            endpoint: None,
            sample_ratio: 1.0,
            service_name: "mcp-edge".into(),
        }
    }
}

impl Telemetry {
    /// Every variable read here.
    pub const VARIABLES: [&'static str; 3] = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SERVICE_NAME",
    ];

    /// Reads the settings through `var` (name -> value).
    pub fn from_vars(var: &impl Fn(&str) -> Option<String>) -> Result<Telemetry, String> {
        let mut t = Telemetry::default();
        if let Some(v) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let v = v.trim().trim_end_matches('/');
            if !v.is_empty() {
                v.parse::<http::Uri>()
                    .ok()
                    .filter(|u| {
                        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                    })
                    .ok_or_else(|| {
                        format!("OTEL_EXPORTER_OTLP_ENDPOINT: '{v}' is not an http(s) URL")
                    })?;
                t.endpoint = Some(v.to_string());
            }
        }
        if let Some(v) = var("OTEL_TRACES_SAMPLER_ARG") {
            t.sample_ratio = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!("OTEL_TRACES_SAMPLER_ARG: '{v}' is not a number from 0 to 1")
                })?;
        }
        if let Some(v) = var("OTEL_SERVICE_NAME").map(|v| v.trim().to_string()) {
            if !v.is_empty() {
                t.service_name = v;
            }
        }
        Ok(t)
    }

    /// Whether the spans of trace `trace_id` are exported: the same answer
    /// for a trace wherever it is asked (the W3C `TraceIdRatioBased`
    /// sampler's rule: the trace id's last 8 bytes under `ratio * 2^64`).
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
        let t = Telemetry::from_vars(&vars(&[])).unwrap();
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
        ]))
        .unwrap();
        assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(t.service_name, "edge-eu");
        let mut low = [0u8; 16];
        assert!(t.samples(&low));
        low[8] = 0x90;
        assert!(!t.samples(&low));
        for (name, bad) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ] {
            let e = Telemetry::from_vars(&vars(&[(name, bad)])).unwrap_err();
            assert!(e.starts_with(name), "{e}");
        }
        let none = Telemetry::from_vars(&vars(&[("OTEL_TRACES_SAMPLER_ARG", "0")])).unwrap();
        assert!(!none.samples(&[0; 16]));
    }
}
