//! A chat request as the OpenAI Chat Completions API defines it, in the
//! part the SDKs send: `model`, `messages`, the caller's own `tools`,
//! `tool_choice`, `max_tokens` (or `max_completion_tokens`), `temperature`,
//! `stream`, and the sampling and format members passed on to the provider
//! ([`PASSED`]); plus the gateway's extension `mcp_edge`, which names the
//! MCP servers or tools to offer (the OpenAI SDKs send it with
//! `extra_body`). Any other member is refused (400), as OpenAI refuses
//! one it does not know, rather than silently dropped.
//!
//! Messages are kept as JSON, checked only as far as the loop needs: each
//! has a known `role`; `tool` messages name the call they answer. Anything
//! else the provider judges.

use crate::error::GatewayError;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The most messages one request may carry.
const MAX_MESSAGES: usize = 1024;
/// The most tools a caller may bring of its own.
const MAX_OWN_TOOLS: usize = 128;
/// The most servers or tools the extension may name.
const MAX_NAMED: usize = 256;

#[derive(Debug, Deserialize)]
struct Wire {
    model: String,
    messages: Vec<Value>,
    #[serde(default)]
    tools: Vec<Value>,
    tool_choice: Option<Value>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    #[serde(default)]
    stream: bool,
    mcp_edge: Option<Extension>,
    /// Every other member: passed on, ignored or refused (below).
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Members passed on to the provider as the caller sent them (the
/// Anthropic wire takes `stop` and `top_p` of them, see `provider`).
const PASSED: [&str; 13] = [
    "stop",
    "top_p",
    "seed",
    "response_format",
    "parallel_tool_calls",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "reasoning_effort",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "user",
];
/// Members that change nothing here: the stream's last chunk always
/// carries `usage`; nothing is stored.
const IGNORED: [&str; 3] = ["stream_options", "store", "metadata"];

/// The gateway's extension: which MCP tools to offer the model.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Extension {
    /// Only these servers' tools (ids); none: every server's.
    pub servers: Option<Vec<String>>,
    /// Only these tools (names as on `/mcp`); none: every tool.
    pub tools: Option<Vec<String>>,
}

/// A checked chat request.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest {
    /// The model's name in the gateway's registry.
    pub model: String,
    pub messages: Vec<Value>,
    /// The caller's own function tools (`{"type":"function","function":{..}}`),
    /// offered to the model and, when it asks for them, returned unrun.
    pub own_tools: Vec<Value>,
    pub tool_choice: Option<Value>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub stream: bool,
    pub offer: Extension,
    /// The members of [`PASSED`] the caller sent.
    pub passed: Map<String, Value>,
}

/// The name of a caller's own function tool.
pub(crate) fn function_name(tool: &Value) -> Option<&str> {
    tool.get("function")?.get("name")?.as_str()
}

impl ChatRequest {
    /// Parses and checks a request body.
    pub(crate) fn parse(body: &[u8]) -> Result<ChatRequest, GatewayError> {
        let bad = |why: String| GatewayError::InvalidRequest(why);
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| bad(format!("not a chat request: {e}")))?;
        if wire.messages.is_empty() {
            return Err(bad("messages is empty".into()));
        }
        if wire.messages.len() > MAX_MESSAGES {
            return Err(bad(format!("more than {MAX_MESSAGES} messages")));
        }
        for (i, m) in wire.messages.iter().enumerate() {
            check_message(m).map_err(|why| bad(format!("messages[{i}]: {why}")))?;
        }
        if wire.tools.len() > MAX_OWN_TOOLS {
            return Err(bad(format!("more than {MAX_OWN_TOOLS} tools")));
        }
        for (i, t) in wire.tools.iter().enumerate() {
            let typed = t.get("type").and_then(Value::as_str) == Some("function");
            if !typed || function_name(t).is_none_or(|n| !valid_function_name(n)) {
                return Err(bad(format!(
                    "tools[{i}]: a tool is {{\"type\":\"function\",\"function\":{{\"name\":..}}}} \
                     with a name of 1-64 characters of [A-Za-z0-9_-]"
                )));
            }
        }
        if let Some(t) = wire.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(bad(format!("temperature must be 0..=2, got {t}")));
            }
        }
        let offer = wire.mcp_edge.unwrap_or_default();
        let named =
            offer.servers.as_ref().map_or(0, Vec::len) + offer.tools.as_ref().map_or(0, Vec::len);
        if named > MAX_NAMED {
            return Err(bad(format!(
                "mcp_edge names more than {MAX_NAMED} servers and tools"
            )));
        }
        let mut passed = Map::new();
        for (key, value) in wire.rest {
            match key.as_str() {
                k if PASSED.contains(&k) => {
                    passed.insert(key, value);
                }
                k if IGNORED.contains(&k) => {}
                // One choice is all the loop makes.
                "n" if value == 1 || value.is_null() => {}
                "logprobs" if value == false || value.is_null() => {}
                _ => {
                    return Err(bad(format!(
                        "'{key}' is not supported by the agent API (it takes: model, messages, \
                         tools, tool_choice, max_tokens, max_completion_tokens, temperature, \
                         stream, mcp_edge, {})",
                        PASSED.join(", ")
                    )))
                }
            }
        }
        let max_tokens = wire.max_completion_tokens.or(wire.max_tokens);
        if max_tokens == Some(0) {
            return Err(bad("max_tokens must be at least 1".into()));
        }
        Ok(ChatRequest {
            model: wire.model,
            messages: wire.messages,
            own_tools: wire.tools,
            tool_choice: wire.tool_choice,
            max_tokens,
            temperature: wire.temperature,
            stream: wire.stream,
            offer,
            passed,
        })
    }
}

/// A function name both providers accept.
pub(crate) fn valid_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_message(m: &Value) -> Result<(), String> {
    let role = m
        .get("role")
        .and_then(Value::as_str)
        .ok_or("a message needs a role")?;
    match role {
        "system" | "developer" | "user" | "assistant" => Ok(()),
        "tool" => match m.get("tool_call_id").and_then(Value::as_str) {
            Some(_) => Ok(()),
            None => Err("a tool message needs tool_call_id".into()),
        },
        other => Err(format!("unknown role '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, GatewayError> {
        ChatRequest::parse(v.to_string().as_bytes())
    }

    #[test]
    fn reads_what_the_sdks_send() {
        let r = parse(serde_json::json!({
            "model": "demo", "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 9, "stream": true,
            "tools": [{"type": "function", "function": {"name": "mine", "parameters": {}}}],
            "mcp_edge": {"servers": ["notes"]}
        }))
        .unwrap();
        assert_eq!(
            (r.max_tokens, r.stream, r.own_tools.len()),
            (Some(9), true, 1)
        );
        assert_eq!(r.offer.servers.unwrap(), ["notes"]);
        let r = parse(serde_json::json!({
            "model": "demo", "messages": [{"role": "user", "content": "hi"}],
            "stop": ["x"], "n": 1, "stream_options": {"include_usage": true}, "seed": 3
        }))
        .unwrap();
        assert_eq!(r.passed.len(), 2, "{:?}", r.passed);
    }

    #[test]
    fn refuses_what_the_loop_cannot_follow() {
        let msg = |m: Value| serde_json::json!({"model": "m", "messages": [m]});
        for bad in [
            serde_json::json!({"model": "m", "messages": []}),
            msg(serde_json::json!({"content": "no role"})),
            msg(serde_json::json!({"role": "tool", "content": "x"})),
            msg(serde_json::json!({"role": "wizard"})),
            serde_json::json!({"model": "m", "messages": [{"role": "user"}], "tools": [{"type": "x"}]}),
            serde_json::json!({"model": "m", "messages": [{"role": "user"}], "temperature": 3}),
            serde_json::json!({"model": "m", "messages": [{"role": "user"}], "mcp_edge": {"x": 1}}),
            serde_json::json!({"model": "m", "messages": [{"role": "user"}], "n": 2}),
            serde_json::json!({"model": "m", "messages": [{"role": "user"}], "functions": []}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
