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
//! that asks for a tool it was not offered is told so the same way.

use super::super::{counters, Ctx};
use super::answer::Progress;
use super::model_call;
use super::outcome::Outcome;
use super::provider::{call_json, Ask, Call, Finish, Turn};
use super::request::{function_name, ChatRequest};
use super::tools::ToolResult;
use crate::config::Model;
use crate::error::GatewayError;
use crate::ports::Platform;
use futures_util::future::join_all;
use serde_json::{json, Value};

/// Tool calls of one model turn that run (side by side); the rest are
/// answered with an error.
pub(crate) const MAX_CALLS_PER_TURN: usize = 16;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    pub(super) async fn run_loop(
        &self,
        model: &Model,
        req: &ChatRequest,
        progress: Option<&Progress>,
    ) -> Result<Outcome, GatewayError> {
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
            )));
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
        while out.steps < model.max_steps {
            let ask = Ask {
                model: &model.model,
                messages: &messages,
                tools: &tools,
                tool_choice: req.tool_choice.as_ref(),
                max_tokens,
                temperature: req.temperature,
            };
            // The policy's model limits, before each call; its tokens after.
            let gate = (&self.gate, &self.gw.refusals);
            let metered = counters::check_model_call(self.p, gate, &model.name).await?;
            let limit = self.gw.settings.max_upstream_bytes;
            let turn = model_call::call(self.p, model, self.region.as_deref(), &ask, limit).await?;
            if !metered.is_empty() {
                let used = turn.input_tokens.saturating_add(turn.output_tokens);
                counters::charge_tokens(self.p, &metered, used).await;
            }
            out.steps += 1;
            out.input_tokens += turn.input_tokens;
            out.output_tokens += turn.output_tokens;
            if turn.calls.is_empty() {
                out.message =
                    json!({"role": "assistant", "content": turn.text.unwrap_or_default()});
                out.finish = turn.finish.as_openai().to_string();
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
                return Ok(out);
            }
            messages.push(turn.message());
            let offered = &gateway_tools;
            let results = join_all(turn.calls.iter().enumerate().map(|(i, c)| async move {
                let what = json!({"id": c.id, "name": c.name});
                if let Some(p) = progress {
                    p.tool(what.clone(), "tool_call.started");
                }
                // A model (or its provider) asking for thousands of calls at
                // once gets the first few run and is told about the rest.
                let result = match i < MAX_CALLS_PER_TURN {
                    true => self.run_tool(&c.id, &c.name, &c.arguments, offered).await,
                    false => ToolResult {
                        text: format!(
                            "Error: not run: at most {MAX_CALLS_PER_TURN} tool calls run per turn"
                        ),
                        is_error: true,
                        approval: None,
                    },
                };
                if let Some(p) = progress {
                    let mut what = what;
                    what["is_error"] = result.is_error.into();
                    if let Some(a) = &result.approval {
                        what["approval"] = a.clone();
                    }
                    p.tool(what, "tool_call.finished");
                }
                result
            }))
            .await;
            for (call, result) in turn.calls.iter().zip(results) {
                let mut record =
                    json!({"id": call.id, "name": call.name, "is_error": result.is_error});
                if let Some(a) = &result.approval {
                    record["approval"] = a.clone();
                    out.approvals.push(json!({
                        "id": a["id"], "url": a["url"], "decider": a["decider"],
                        "expires_ms": a["expires_ms"], "tool": call.name, "tool_call_id": call.id,
                    }));
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
                return Ok(out);
            }
        }
        out.message = json!({"role": "assistant", "content": format!(
            "Stopped after {} model calls (this model's max_steps) before the model answered.",
            model.max_steps
        )});
        out.finish = Finish::Length.as_openai().to_string();
        out.stopped = Some("max_steps");
        Ok(out)
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
