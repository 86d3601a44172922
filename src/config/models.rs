//! The model registry: which language models the agent API
//! (`/v1/chat/completions`) may call, where they run and how the gateway
//! reaches them.
//!
//! Each model is one KV entry under `models/{name}` holding a [`ModelSpec`].
//! Like servers, entries are parsed one by one: a bad entry is left out
//! (listed in [`Models::problems`]) and never takes the others down. The
//! provider's key is named, never stored: `secret` names the platform secret
//! that holds it, and the gateway's own settings and secrets are refused
//! there (whoever writes the registry must not be able to send the signing
//! key to a provider URL of their choosing).

use super::registry::{self, Endpoint, EndpointSpec};
use serde::Deserialize;
use std::rc::Rc;

/// The KV key prefix of model entries.
pub(crate) const KEY_PREFIX: &str = "models/";

/// Steps (model calls) one request may take by default, and at most.
const DEFAULT_MAX_STEPS: u32 = 8;
const MAX_MAX_STEPS: u32 = 32;
/// Tools offered to the model by default, and at most (providers cap the
/// list: OpenAI at 128 functions).
const DEFAULT_MAX_TOOLS: usize = 64;
const MAX_MAX_TOOLS: usize = 128;
/// Time the provider has to answer one model call, by default and at most.
const DEFAULT_TIMEOUT_MS: u64 = 60_000;
const MAX_TIMEOUT_MS: u64 = 300_000;

/// The wire a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI Chat Completions (`POST {base}/chat/completions`), as spoken
    /// by OpenAI and most compatible servers.
    Openai,
    /// Anthropic Messages (`POST {base}/v1/messages`).
    Anthropic,
}

impl Provider {
    /// `gen_ai.provider.name` (OpenTelemetry GenAI semantic conventions).
    pub fn otel_name(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
        }
    }
}

/// A model entry as stored in KV.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSpec {
    /// Defaults to the name in the KV key; when given, it must match it.
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub provider: Provider,
    /// The provider's base URLs per region, in fallback order.
    pub endpoints: Vec<EndpointSpec>,
    /// The secret (Workers secret / Spin variable) holding the provider key;
    /// none: the provider needs no key (a local model server).
    pub secret: Option<String>,
    /// The provider's id of the model, such as `gpt-4.1-mini`.
    pub model: String,
    pub max_steps: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_tools: Option<usize>,
    pub timeout_ms: Option<u64>,
    /// Whether callers without credentials may use it (off by default).
    #[serde(default)]
    pub anonymous: bool,
    /// How the OpenAI wire names the token cap: `max_completion_tokens`
    /// (OpenAI's, the default) or `max_tokens` (older compatible servers).
    pub max_tokens_field: Option<String>,
}

/// A checked model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The name callers ask for (`model` in their request).
    pub name: String,
    pub description: String,
    pub provider: Provider,
    pub endpoints: Vec<Endpoint>,
    pub secret: Option<String>,
    /// The provider's model id.
    pub model: String,
    /// Model calls one request may make.
    pub max_steps: u32,
    /// The most completion tokens a call may ask for (a caller's
    /// `max_tokens` is capped by it).
    pub max_tokens: Option<u64>,
    /// The most tools offered to the model.
    pub max_tools: usize,
    pub timeout_ms: u64,
    pub anonymous: bool,
    pub max_tokens_field: &'static str,
}

/// A model name: 1-64 of `[A-Za-z0-9._-]`, not starting with a dot.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Model {
    /// Parses one KV entry; `key_name` is the name from `models/{name}`.
    pub fn parse(key_name: &str, json: &str) -> Result<Model, String> {
        let spec: ModelSpec =
            serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
        let name = spec.name.unwrap_or_else(|| key_name.to_string());
        if name != key_name {
            return Err(format!(
                "name '{name}' does not match its key '{KEY_PREFIX}{key_name}'"
            ));
        }
        if !valid_name(&name) {
            return Err(format!(
                "name '{name}' must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'"
            ));
        }
        let endpoints = registry::parse_endpoints(spec.endpoints)?;
        if spec.model.trim().is_empty() {
            return Err("model (the provider's model id) is empty".into());
        }
        if let Some(secret) = &spec.secret {
            if secret.trim().is_empty() {
                return Err("secret is empty".into());
            }
            if super::Settings::is_own(secret) {
                return Err(format!(
                    "secret '{secret}' is one of the gateway's own settings or secrets"
                ));
            }
        }
        let max_steps = spec.max_steps.unwrap_or(DEFAULT_MAX_STEPS);
        if !(1..=MAX_MAX_STEPS).contains(&max_steps) {
            return Err(format!(
                "max_steps must be 1..={MAX_MAX_STEPS}, got {max_steps}"
            ));
        }
        let max_tools = spec.max_tools.unwrap_or(DEFAULT_MAX_TOOLS);
        if !(1..=MAX_MAX_TOOLS).contains(&max_tools) {
            return Err(format!(
                "max_tools must be 1..={MAX_MAX_TOOLS}, got {max_tools}"
            ));
        }
        if spec.max_tokens == Some(0) {
            return Err("max_tokens must be at least 1".into());
        }
        let timeout_ms = spec.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(format!(
                "timeout_ms must be 1..={MAX_TIMEOUT_MS}, got {timeout_ms}"
            ));
        }
        let max_tokens_field = match spec.max_tokens_field.as_deref() {
            None | Some("max_completion_tokens") => "max_completion_tokens",
            Some("max_tokens") => "max_tokens",
            Some(other) => {
                return Err(format!(
                    "max_tokens_field must be max_completion_tokens or max_tokens, got '{other}'"
                ))
            }
        };
        Ok(Model {
            max_tokens_field,
            name,
            description: spec.description,
            provider: spec.provider,
            endpoints,
            secret: spec.secret,
            model: spec.model,
            max_steps,
            max_tokens: spec.max_tokens,
            max_tools,
            timeout_ms,
            anonymous: spec.anonymous,
        })
    }
}

/// The parsed model registry: good models by name, and what was wrong with
/// the rest.
#[derive(Debug, Clone, Default)]
pub struct Models {
    pub models: Vec<Rc<Model>>,
    pub problems: Vec<String>,
}

impl Models {
    /// Builds it from `(key, value)` KV entries.
    pub fn from_entries<I: IntoIterator<Item = (String, String)>>(entries: I) -> Models {
        let mut set = Models::default();
        for (key, value) in entries {
            let name = key.strip_prefix(KEY_PREFIX).unwrap_or(&key);
            match Model::parse(name, &value) {
                Ok(model) => set.models.push(Rc::new(model)),
                Err(why) => set.problems.push(format!("{key}: {why}")),
            }
        }
        set.models.sort_by(|a, b| a.name.cmp(&b.name));
        set
    }

    pub fn get(&self, name: &str) -> Option<&Rc<Model>> {
        self.models.iter().find(|m| m.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        r#"{"provider":"openai","model":"m","endpoints":[{"region":"eu","url":"http://a/v1"}]}"#;

    #[test]
    fn defaults_and_checks() {
        let m = Model::parse("demo", OK).unwrap();
        assert_eq!((m.max_steps, m.max_tools, m.anonymous), (8, 64, false));
        let bad = |json: &str| Model::parse("demo", json).unwrap_err();
        let with = |extra: &str| format!("{},{extra}}}", &OK[..OK.len() - 1]);
        assert!(bad(&OK.replace("\"m\"", "\" \"")).contains("model"));
        assert!(bad(&with(r#""max_steps":0"#)).contains("max_steps"));
        assert!(bad(&with(r#""secret":"UPSTREAM_SIGNING_KEY""#)).contains("own"));
        assert!(bad(&OK.replace("openai", "bard")).contains("invalid JSON"));
        assert!(Model::parse("other", &OK.replace('{', r#"{"name":"demo","#)).is_err());
        assert!(Model::parse(".x", OK).is_err());
    }

    #[test]
    fn a_bad_entry_is_left_out() {
        let set = Models::from_entries([
            ("models/b".to_string(), OK.to_string()),
            ("models/a".to_string(), "{".to_string()),
        ]);
        assert_eq!(set.models.len(), 1);
        assert_eq!(set.problems.len(), 1);
        assert!(set.get("b").is_some());
    }
}
