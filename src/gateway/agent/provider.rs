//! The two wires a model provider speaks, translated to and from the one
//! the loop keeps: OpenAI Chat Completions messages.
//!
//! - OpenAI-compatible: `POST {base}/chat/completions`, `Authorization:
//!   Bearer {key}`; the conversation goes as it is.
//! - Anthropic Messages: `POST {base}/v1/messages`, `x-api-key`,
//!   `anthropic-version: 2023-06-01`; system messages become `system`,
//!   assistant tool calls `tool_use` blocks, tool messages `tool_result`
//!   blocks in a user turn, and turns of one role are merged (the API wants
//!   them alternating).
//!
//! Pure: building bodies and reading answers; sending is [`super::model_call`].

use crate::config::Provider;
use serde_json::{json, Map, Value};

/// Completion tokens asked for when neither the caller nor the model entry
/// says (Anthropic requires a number).
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The most tokens one model call is taken to have used, whatever its
/// provider says.
pub(crate) const MAX_TOKENS_PER_CALL: u64 = 100_000_000;

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them: a JSON object in text.
    pub arguments: String,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Finish {
    Stop,
    ToolCalls,
    Length,
    Other(String),
}

impl Finish {
    /// As OpenAI's `finish_reason` says it.
    pub(crate) fn as_openai(&self) -> &str {
        match self {
            Finish::Stop => "stop",
            Finish::ToolCalls => "tool_calls",
            Finish::Length => "length",
            Finish::Other(s) => s,
        }
    }
}

/// One answer of the model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Turn {
    pub text: Option<String>,
    pub calls: Vec<Call>,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Turn {
    /// The assistant message that records this turn in the conversation.
    pub(crate) fn message(&self) -> Value {
        let mut m = json!({"role": "assistant", "content": self.text});
        if !self.calls.is_empty() {
            m["tool_calls"] = self.calls.iter().map(call_json).collect();
        }
        m
    }
}

/// A call as OpenAI's `tool_calls` lists it.
pub(crate) fn call_json(c: &Call) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

/// What one model call sends, beyond the conversation.
pub(crate) struct Ask<'a> {
    pub model: &'a str,
    pub messages: &'a [Value],
    /// Function tools, OpenAI's shape.
    pub tools: &'a [Value],
    pub tool_choice: Option<&'a Value>,
    pub max_tokens: Option<u64>,
    /// The member the OpenAI wire names the token cap with.
    pub token_field: &'a str,
    pub temperature: Option<f64>,
    /// The caller's sampling and format members, to pass on.
    pub passed: &'a Map<String, Value>,
}

/// The path under the endpoint's base URL.
pub(crate) fn path(provider: Provider) -> &'static str {
    match provider {
        Provider::Openai => "/chat/completions",
        Provider::Anthropic => "/v1/messages",
    }
}

/// The headers carrying the provider key.
pub(crate) fn key_headers(provider: Provider, key: Option<&str>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match provider {
        Provider::Openai => {
            if let Some(k) = key {
                out.push(("authorization", format!("Bearer {k}")));
            }
        }
        Provider::Anthropic => {
            if let Some(k) = key {
                out.push(("x-api-key", k.to_string()));
            }
            out.push(("anthropic-version", ANTHROPIC_VERSION.to_string()));
        }
    }
    out
}

/// The request body.
pub(crate) fn body(provider: Provider, ask: &Ask) -> Value {
    match provider {
        Provider::Openai => {
            // The caller's members first: what the gateway writes after
            // them wins, whatever they are.
            let mut b = Value::Object(ask.passed.clone());
            if ask.tools.is_empty() {
                // OpenAI refuses it without tools.
                b.as_object_mut().map(|o| o.remove("parallel_tool_calls"));
            }
            b["model"] = ask.model.into();
            b["messages"] = ask.messages.into();
            b["stream"] = false.into();
            if !ask.tools.is_empty() {
                b["tools"] = ask.tools.into();
                if let Some(c) = ask.tool_choice {
                    b["tool_choice"] = c.clone();
                }
            }
            if let Some(n) = ask.max_tokens {
                b[ask.token_field] = n.into();
            }
            if let Some(t) = ask.temperature {
                b["temperature"] = t.into();
            }
            b
        }
        Provider::Anthropic => anthropic_body(ask),
    }
}

fn anthropic_body(ask: &Ask) -> Value {
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for m in ask.messages {
        let role = m["role"].as_str().unwrap_or("user");
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(text_of(&m["content"]));
                continue;
            }
            "assistant" => {
                let mut blocks = text_blocks(&m["content"]);
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    let arguments = c["function"]["arguments"].as_str().unwrap_or("{}");
                    let input: Value = serde_json::from_str(arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    blocks.push(json!({"type": "tool_use", "id": c["id"], "name": c["function"]["name"], "input": input}));
                }
                ("assistant", blocks)
            }
            "tool" => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": text_of(&m["content"])}),
                ],
            ),
            _ => ("user", text_blocks(&m["content"])),
        };
        match turns.last_mut() {
            Some((last, existing)) if last == role => existing.extend(blocks),
            _ => turns.push((role.to_string(), blocks)),
        }
    }
    // The API wants the first turn the user's, and no turn empty.
    if turns.first().is_none_or(|(role, _)| role != "user") {
        turns.insert(0, ("user".into(), Vec::new()));
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut content)| {
            if content.is_empty() {
                content.push(json!({"type": "text", "text": "(empty)"}));
            }
            json!({"role": role, "content": content})
        })
        .collect();
    let mut b = json!({
        "model": ask.model,
        "messages": messages,
        "max_tokens": ask.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
    });
    if !system.is_empty() {
        b["system"] = system.join("\n\n").into();
    }
    if !ask.tools.is_empty() {
        let tools: Vec<Value> = ask
            .tools
            .iter()
            .map(|t| {
                let f = &t["function"];
                let schema = match &f["parameters"] {
                    Value::Object(o) => Value::Object(o.clone()),
                    _ => json!({"type": "object"}),
                };
                json!({"name": f["name"], "description": f["description"].as_str().unwrap_or(""), "input_schema": schema})
            })
            .collect();
        b["tools"] = tools.into();
        if let Some(choice) = ask.tool_choice.and_then(anthropic_choice) {
            b["tool_choice"] = choice;
        }
    }
    if let Some(t) = ask.temperature {
        // Anthropic's range is 0..=1.
        b["temperature"] = t.min(1.0).into();
    }
    if let Some(p) = ask.passed.get("top_p") {
        b["top_p"] = p.clone();
    }
    match ask.passed.get("stop") {
        Some(Value::String(s)) => b["stop_sequences"] = json!([s]),
        Some(Value::Array(list)) => b["stop_sequences"] = Value::Array(list.clone()),
        _ => {}
    }
    b
}

/// What a provider cannot do of what the caller asked, if anything.
pub(crate) fn refuses(provider: Provider, passed: &Map<String, Value>) -> Option<&'static str> {
    match provider {
        Provider::Anthropic if passed.contains_key("response_format") => Some("response_format"),
        _ => None,
    }
}

/// OpenAI's `tool_choice` in Anthropic's words.
fn anthropic_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => None,
        },
        Value::Object(o) => {
            let name = o.get("function")?.get("name")?.as_str()?;
            Some(json!({"type": "tool", "name": name}))
        }
        _ => None,
    }
}

/// A message's text: a string, or its text parts joined.
pub(crate) fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn text_blocks(content: &Value) -> Vec<Value> {
    let text = text_of(content);
    match text.is_empty() {
        true => Vec::new(),
        false => vec![json!({"type": "text", "text": text})],
    }
}

/// Reads the provider's answer.
pub(crate) fn parse(provider: Provider, body: &[u8]) -> Result<Turn, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    // Bounded: a provider's count feeds sums and the token limits.
    let count = |o: &Value, k: &str| {
        o.get(k)
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(MAX_TOKENS_PER_CALL)
    };
    match provider {
        Provider::Openai => {
            let choice = v["choices"].get(0).ok_or("the answer has no choices")?;
            let message = &choice["message"];
            let mut calls = Vec::new();
            for c in message["tool_calls"].as_array().into_iter().flatten() {
                calls.push(Call {
                    id: c["id"].as_str().ok_or("a tool call has no id")?.to_string(),
                    name: c["function"]["name"]
                        .as_str()
                        .ok_or("a tool call has no name")?
                        .to_string(),
                    arguments: match &c["function"]["arguments"] {
                        Value::String(s) => s.clone(),
                        Value::Null => "{}".into(),
                        other => other.to_string(),
                    },
                });
            }
            let finish = match choice["finish_reason"].as_str() {
                Some("stop") | None => Finish::Stop,
                Some("tool_calls") => Finish::ToolCalls,
                Some("length") => Finish::Length,
                Some(other) => Finish::Other(other.to_string()),
            };
            Ok(Turn {
                text: message["content"].as_str().map(str::to_string),
                calls,
                finish,
                input_tokens: count(&v["usage"], "prompt_tokens"),
                output_tokens: count(&v["usage"], "completion_tokens"),
            })
        }
        Provider::Anthropic => {
            let blocks = v["content"].as_array().ok_or("the answer has no content")?;
            let mut text = Vec::new();
            let mut calls = Vec::new();
            for b in blocks {
                match b["type"].as_str() {
                    Some("text") => text.push(b["text"].as_str().unwrap_or("")),
                    Some("tool_use") => calls.push(Call {
                        id: b["id"].as_str().ok_or("a tool_use has no id")?.to_string(),
                        name: b["name"]
                            .as_str()
                            .ok_or("a tool_use has no name")?
                            .to_string(),
                        arguments: match &b["input"] {
                            Value::Object(o) => Value::Object(o.clone()).to_string(),
                            _ => Value::Object(Map::new()).to_string(),
                        },
                    }),
                    _ => {}
                }
            }
            let finish = match v["stop_reason"].as_str() {
                Some("tool_use") => Finish::ToolCalls,
                Some("max_tokens") => Finish::Length,
                Some("end_turn") | Some("stop_sequence") | Some("pause_turn") | None => {
                    Finish::Stop
                }
                Some("refusal") => Finish::Other("content_filter".into()),
                Some(other) => Finish::Other(other.to_string()),
            };
            Ok(Turn {
                text: (!text.is_empty()).then(|| text.concat()),
                calls,
                finish,
                input_tokens: count(&v["usage"], "input_tokens"),
                output_tokens: count(&v["usage"], "output_tokens"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NOTHING: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

    fn ask<'a>(messages: &'a [Value], tools: &'a [Value]) -> Ask<'a> {
        Ask {
            model: "m",
            messages,
            tools,
            tool_choice: Some(&Value::Null),
            max_tokens: None,
            token_field: "max_completion_tokens",
            temperature: Some(1.5),
            passed: &NOTHING,
        }
    }

    #[test]
    fn anthropic_turns_start_with_the_user_and_are_never_empty() {
        let messages = [
            json!({"role": "assistant", "content": "Hi! How can I help?"}),
            json!({"role": "user", "content": ""}),
        ];
        let b = body(Provider::Anthropic, &ask(&messages, &[]));
        let turns = b["messages"].as_array().unwrap();
        assert_eq!(turns[0]["role"], "user");
        assert_eq!(turns[1]["role"], "assistant");
        assert_eq!(turns[2]["content"][0]["text"], "(empty)");
        let huge = json!({"content": [], "usage": {"input_tokens": u64::MAX}});
        let t = parse(Provider::Anthropic, huge.to_string().as_bytes()).unwrap();
        assert_eq!(t.input_tokens, MAX_TOKENS_PER_CALL);
    }

    #[test]
    fn anthropic_gets_system_tool_use_and_merged_tool_results() {
        let messages = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": [{"type": "text", "text": "sum?"}]}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "x__add", "arguments": "{\"a\":1}"}},
                {"id": "b", "type": "function", "function": {"name": "x__echo", "arguments": "not json"}}
            ]}),
            json!({"role": "tool", "tool_call_id": "a", "content": "3"}),
            json!({"role": "tool", "tool_call_id": "b", "content": "hi"}),
        ];
        let tools = [
            json!({"type": "function", "function": {"name": "x__add", "parameters": {"type": "object"}}}),
        ];
        let b = body(Provider::Anthropic, &ask(&messages, &tools));
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(b["temperature"], 1.0);
        let turns = b["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3, "{b}");
        assert_eq!(turns[1]["content"][0]["input"], json!({"a": 1}));
        assert_eq!(turns[1]["content"][1]["input"], json!({}));
        assert_eq!(turns[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(b["tools"][0]["input_schema"], json!({"type": "object"}));
    }

    #[test]
    fn answers_of_both_wires_read_alike() {
        let openai = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": "c1", "function": {"name": "t", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}});
        let anthropic = json!({"content": [{"type": "tool_use", "id": "c1", "name": "t", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}});
        let a = parse(Provider::Openai, openai.to_string().as_bytes()).unwrap();
        let b = parse(Provider::Anthropic, anthropic.to_string().as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.finish, Finish::ToolCalls);
        assert!(parse(Provider::Openai, b"{}").is_err());
        assert!(parse(Provider::Anthropic, b"[").is_err());
    }
}
