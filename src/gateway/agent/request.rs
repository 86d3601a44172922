//! A chat request as the OpenAI Chat Completions API defines it, in the
//! part the SDKs send: `model`, `messages`, the caller's own `tools`,
//! `tool_choice`, `max_tokens` (or `max_completion_tokens`), `temperature`,
//! `stream`; plus the gateway's extension `mcp_edge`, which names the MCP
//! servers or tools to offer (the OpenAI SDKs send it with `extra_body`).
//!
//! Messages are kept as JSON, checked only as far as the loop needs: each
//! has a known `role`; `tool` messages name the call they answer. Anything
//! else the provider judges.

use crate::error::GatewayError;
use serde::Deserialize;
use serde_json::Value;

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
}

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
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
