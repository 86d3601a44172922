//! One model call: the provider's key from its secret (never the caller's
//! credential), the model's regions in failover order, one `chat` client
//! span with the GenAI attributes (`docs/gen-ai/gen-ai-spans.md` of
//! open-telemetry/semantic-conventions-genai: operation, provider, request
//! model, token usage, `error.type`).
//!
//! A region that cannot be reached, times out, or answers 429 or 5xx is
//! passed over for the next; any other refusal (a bad request, a wrong
//! key) would be the same everywhere and ends the call. The provider's own
//! error text is passed on, cut short: it is the caller's best clue.

use super::provider::{self, Ask, Turn};
use crate::config::Model;
use crate::error::GatewayError;
use crate::observe::batch::Attr;
use crate::observe::collect::note_here;
use crate::ports::{with_timeout, HttpClient, Platform};
use crate::upstream::failover;

/// How much of a provider's error body the caller is shown.
const ERROR_EXCERPT: usize = 300;

/// Calls `model` once, trying its regions in order.
pub(crate) async fn call<P: Platform>(
    p: &P,
    model: &Model,
    region: Option<&str>,
    ask: &Ask<'_>,
    limit: usize,
) -> Result<Turn, GatewayError> {
    // The name is `collect::MODEL_CALL_SPAN`, which usage rows look for.
    let span = tracing::info_span!(
        "chat",
        otel.kind = "client",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = model.provider.otel_name(),
        "gen_ai.request.model" = %model.model,
        "mcp_edge.model" = %model.name,
    );
    let turn =
        tracing::Instrument::instrument(attempts(p, model, region, ask, limit), span.clone()).await;
    span.in_scope(|| match &turn {
        Ok(t) => {
            note_here(
                "gen_ai.usage.input_tokens",
                Attr::Int(t.input_tokens as i64),
            );
            note_here(
                "gen_ai.usage.output_tokens",
                Attr::Int(t.output_tokens as i64),
            );
            note_here(
                "gen_ai.response.finish_reasons",
                t.finish.as_openai().to_string().into(),
            );
        }
        Err(_) => note_here("error.type", "provider_error".into()),
    });
    turn
}

async fn attempts<P: Platform>(
    p: &P,
    model: &Model,
    region: Option<&str>,
    ask: &Ask<'_>,
    limit: usize,
) -> Result<Turn, GatewayError> {
    let failed = |message: String| GatewayError::Provider {
        model: model.name.clone(),
        message,
    };
    // Fail closed: a model whose key is named but missing is not called
    // without it.
    let key = match &model.secret {
        None => None,
        Some(name) => Some(
            p.secret(name)
                .await
                .ok_or_else(|| failed(format!("its key (secret '{name}') is not set")))?,
        ),
    };
    let body = serde_json::to_vec(&provider::body(model.provider, ask)).expect("serializes");
    let mut failures = Vec::new();
    for endpoint in failover::order_endpoints(&model.endpoints, region, None) {
        let url = format!(
            "{}{}",
            endpoint.url.trim_end_matches('/'),
            provider::path(model.provider)
        );
        let mut request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        for (name, value) in provider::key_headers(model.provider, key.as_deref()) {
            request = request.header(name, value);
        }
        let Ok(request) = request.body(body.clone()) else {
            return Err(failed(format!(
                "bad endpoint URL in region {}",
                endpoint.region
            )));
        };
        note_here("server.address", url_host(&url).into());
        note_here("mcp_edge.region", endpoint.region.clone().into());
        let outcome = match with_timeout(p.clock(), model.timeout_ms, p.http().send(request)).await
        {
            None => Err(format!("no answer in {} ms", model.timeout_ms)),
            Some(Err(e)) => Err(e.0),
            Some(Ok(r)) => Ok(r),
        };
        let response = match outcome {
            Ok(r) => r,
            Err(why) => {
                failures.push(format!("{}: {why}", endpoint.region));
                continue;
            }
        };
        let status = response.status();
        let read = with_timeout(
            p.clock(),
            model.timeout_ms,
            response.into_body().collect(limit),
        )
        .await;
        let bytes = match read {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                failures.push(format!("{}: {e}", endpoint.region));
                continue;
            }
            None => {
                failures.push(format!(
                    "{}: the answer did not end in time",
                    endpoint.region
                ));
                continue;
            }
        };
        if status.is_success() {
            return provider::parse(model.provider, &bytes).map_err(failed);
        }
        let why = format!(
            "{}: HTTP {} {}",
            endpoint.region,
            status.as_u16(),
            excerpt(&bytes)
        );
        if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            tracing::warn!(model = %model.name, "model failover: {why}");
            failures.push(why);
            continue;
        }
        return Err(failed(why));
    }
    Err(failed(failures.join("; ")))
}

/// The host of a URL, for `server.address`.
fn url_host(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_default()
}

/// The provider's error message when it says one, else its body; cut short.
fn excerpt(body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let said = v.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["message"].as_str())
            .map(str::to_string)
    });
    let text = said.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut cut: String = text.chars().take(ERROR_EXCERPT).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}
