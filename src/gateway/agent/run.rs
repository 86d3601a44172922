//! The loop: call the model with the conversation and the tools offered;
//! run the tool calls it asks for (side by side) through the pipeline;
//! append their results; again, until the model answers without tool
//! calls or the model's `max_steps` is reached.
//!
//! It ends early in two cases:
//! - the model asks for one of the caller's own tools: the turn's calls of
//!   the caller's are returned unrun (`finish_reason: "tool_calls"`), as an
//!   OpenAI API would; the gateway's calls of that turn are not run (the
//!   caller answers its calls and the model asks again for the rest);
//! - a call waits for a human's approval: the loop answers with what awaits
//!   approval and where. The approval is bound to the caller, the tool and
//!   its arguments: once approved, the next request whose model makes the
//!   same call runs it, once.
//!
//! A tool's error goes back to the model as the tool's result; a model
//! that asks for a tool it was not offered is told so the same way. What
//! the loop added to the conversation (the model's tool calls and their
//! results) is returned too (`mcp_edge.messages`), so a caller can keep it.

use super::super::{counters, Ctx};
use super::answer::Progress;
use super::model_call;
use super::outcome::{Failure, Outcome};
use super::provider::{call_json, Ask, Call, Finish, Turn};
use super::request::{function_name, ChatRequest};
use super::turn;
use crate::config::Model;
use crate::error::GatewayError;
use crate::ports::Platform;
use serde_json::{json, Value};

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    pub(super) async fn run_loop(
        &self,
        model: &Model,
        req: &ChatRequest,
        progress: Option<&Progress>,
    ) -> Result<Outcome, Failure> {
        let (mut tools, dropped) = self.offered_tools(&req.offer, model.max_tools).await?;
        let gateway_tools: Vec<String> = tools
            .iter()
            .filter_map(|t| function_name(t).map(str::to_string))
            .collect();
        if let Some(clash) = req
            .own_tools
            .iter()
            .filter_map(function_name)
            .find(|n| gateway_tools.iter().any(|g| g == n))
        {
            return Err(GatewayError::InvalidRequest(format!(
                "tools: '{clash}' is also the name of a gateway tool; rename yours"
            ))
            .into());
        }
        tools.extend(req.own_tools.iter().cloned());
        let max_tokens = match (req.max_tokens, model.max_tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut out = Outcome {
            offered: gateway_tools.len(),
            offered_dropped: dropped,
            ..Outcome::default()
        };
        let mut messages = req.messages.clone();
        let mut budget = turn::Budget::default();
        while out.steps < model.max_steps {
            let ask = Ask {
                model: &model.model,
                messages: &messages,
                tools: &tools,
                tool_choice: choice_at(req.tool_choice.as_ref(), out.steps),
                max_tokens,
                token_field: model.max_tokens_field,
                temperature: req.temperature,
                passed: &req.passed,
            };
            // The policy's model limits, before each call; its tokens after.
            let gate = (&self.gate, &self.gw.refusals);
            let after_tools = !out.tool_calls.is_empty();
            let failed = |error| Failure { error, after_tools };
            let metered = counters::check_model_call(self.p, gate, &model.name)
                .await
                .map_err(failed)?;
            let limit = self.gw.settings.max_upstream_bytes;
            let mut turn = model_call::call(self.p, model, self.region.as_deref(), &ask, limit)
                .await
                .map_err(failed)?;
            if !metered.is_empty() {
                let used = turn.input_tokens.saturating_add(turn.output_tokens);
                counters::charge_tokens(self.p, &metered, used).await;
            }
            out.steps += 1;
            out.input_tokens = out.input_tokens.saturating_add(turn.input_tokens);
            out.output_tokens = out.output_tokens.saturating_add(turn.output_tokens);
            // Calls past this are not even answered (a provider's answer
            // may hold a great many).
            turn.calls.truncate(turn::MAX_CALLS_RECORDED);
            if turn.calls.is_empty() {
                out.message =
                    json!({"role": "assistant", "content": turn.text.unwrap_or_default()});
                out.finish = turn.finish.as_openai().to_string();
                out.messages = messages.split_off(req.messages.len());
                return Ok(out);
            }
            let own: Vec<&Call> = turn
                .calls
                .iter()
                .filter(|c| !gateway_tools.contains(&c.name) && is_own(req, &c.name))
                .collect();
            if !own.is_empty() {
                out.message = json!({
                    "role": "assistant",
                    "content": turn.text,
                    "tool_calls": own.iter().map(|c| call_json(c)).collect::<Vec<_>>(),
                });
                out.finish = Finish::ToolCalls.as_openai().to_string();
                out.messages = messages.split_off(req.messages.len());
                return Ok(out);
            }
            messages.push(turn.message());
            let results = self
                .run_turn(&turn.calls, &gateway_tools, progress, &mut budget)
                .await;
            for (call, result) in turn.calls.iter().zip(results) {
                let mut record =
                    json!({"id": call.id, "name": call.name, "is_error": result.is_error});
                if let Some(a) = &result.approval {
                    record["approval"] = a.clone();
                    let mut pending = a.clone();
                    pending["tool"] = call.name.clone().into();
                    pending["tool_call_id"] = call.id.clone().into();
                    out.approvals.push(pending);
                }
                out.tool_calls.push(record);
                messages
                    .push(json!({"role": "tool", "tool_call_id": call.id, "content": result.text}));
            }
            if !out.approvals.is_empty() {
                out.message =
                    json!({"role": "assistant", "content": awaiting(&turn, &out.approvals)});
                out.finish = Finish::Stop.as_openai().to_string();
                out.stopped = Some("approval");
                out.messages = messages.split_off(req.messages.len());
                return Ok(out);
            }
        }
        out.message = json!({"role": "assistant", "content": format!(
            "Stopped after {} model calls (this model's max_steps) before the model answered.",
            model.max_steps
        )});
        out.finish = Finish::Length.as_openai().to_string();
        out.stopped = Some("max_steps");
        out.messages = messages.split_off(req.messages.len());
        Ok(out)
    }
}

/// The caller's `tool_choice` for step `step`: a choice that forces a tool
/// call holds for the first step only (kept, the model could never answer;
/// OpenAI's own agent SDK resets it so); `"none"` holds throughout.
fn choice_at(choice: Option<&Value>, step: u32) -> Option<&Value> {
    match choice {
        Some(c) if step == 0 || c == "none" => Some(c),
        _ => None,
    }
}

fn is_own(req: &ChatRequest, name: &str) -> bool {
    req.own_tools.iter().any(|t| function_name(t) == Some(name))
}

/// The answer when calls wait for approval: what, where, and how it goes on.
fn awaiting(turn: &Turn, approvals: &[Value]) -> String {
    let mut text = String::new();
    if let Some(t) = turn.text.as_deref().filter(|t| !t.is_empty()) {
        text.push_str(t);
        text.push_str("\n\n");
    }
    for a in approvals {
        text.push_str(&format!(
            "The call to {} awaits a human's approval (approval {}): approve it at {} \
             (POST {{\"decision\":\"approve\"}}). ",
            a["tool"].as_str().unwrap_or(""),
            a["id"].as_str().unwrap_or(""),
            a["url"].as_str().unwrap_or(""),
        ));
    }
    text.push_str(
        "Once it is approved, send the conversation again: the same call then runs, once.",
    );
    text
}
