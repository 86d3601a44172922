//! One model turn's tool calls: run side by side through the pipeline,
//! each reported to a streaming caller as it starts and finishes, within
//! bounds a model (or its provider) cannot push the gateway past:
//!
//! - of a turn's calls the first [`MAX_CALLS_PER_TURN`] run and the rest,
//!   up to [`MAX_CALLS_RECORDED`], are answered with an error (the run
//!   drops any beyond that before they are recorded);
//! - each result the model reads is cut at [`MAX_RESULT_BYTES`], and the
//!   results of a whole run share [`RUN_RESULT_BYTES`]: the conversation is
//!   sent to the provider again at every step, so its size is what each
//!   step costs in memory and in the provider's tokens.

use super::super::Ctx;
use super::answer::Progress;
use super::provider::Call;
use super::tools::ToolResult;
use crate::ports::Platform;
use futures_util::future::join_all;
use serde_json::json;

/// Tool calls of one turn that run (side by side).
pub(crate) const MAX_CALLS_PER_TURN: usize = 16;
/// Tool calls of one turn that are answered at all.
pub(crate) const MAX_CALLS_RECORDED: usize = 64;
/// The most of one tool result the model reads.
pub(crate) const MAX_RESULT_BYTES: usize = 64 * 1024;
/// The most tool output one run feeds the model, all results together.
pub(crate) const RUN_RESULT_BYTES: usize = 1024 * 1024;

/// What is left of a run's tool-output allowance.
pub(crate) struct Budget(usize);

impl Default for Budget {
    fn default() -> Self {
        Budget(RUN_RESULT_BYTES)
    }
}

impl Budget {
    /// `result` as the model gets it: cut to what one result and what is
    /// left of the run may hold.
    fn take(&mut self, mut result: ToolResult) -> ToolResult {
        if self.0 == 0 {
            result.text = format!(
                "Error: not shown: this run's tool output ({RUN_RESULT_BYTES} bytes) is spent"
            );
            result.is_error = true;
            return result;
        }
        let room = MAX_RESULT_BYTES.min(self.0);
        if result.text.len() > room {
            let total = result.text.len();
            let mut end = room;
            while !result.text.is_char_boundary(end) {
                end -= 1;
            }
            result.text.truncate(end);
            result.text.push_str(&format!(
                "\n[cut: the result is {total} bytes; shown: {end}]"
            ));
        }
        self.0 = self.0.saturating_sub(result.text.len());
        result
    }
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// Runs `calls` (at most [`MAX_CALLS_RECORDED`]), their results in the
    /// same order.
    pub(super) async fn run_turn(
        &self,
        calls: &[Call],
        offered: &[String],
        progress: Option<&Progress>,
        budget: &mut Budget,
    ) -> Vec<ToolResult> {
        let results = join_all(calls.iter().enumerate().map(|(i, c)| async move {
            let what = json!({"id": c.id, "name": c.name});
            if let Some(p) = progress {
                // The arguments as the model wrote them: a UI shows the call
                // as it starts (the playground's chat).
                let mut started = what.clone();
                started["arguments"] = c.arguments.clone().into();
                p.tool(started, "tool_call.started");
            }
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
        results.into_iter().map(|r| budget.take(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> ToolResult {
        ToolResult {
            text: "é".repeat(n / 2),
            is_error: false,
            approval: None,
        }
    }

    #[test]
    fn results_are_cut_and_the_run_shares_one_allowance() {
        let mut b = Budget::default();
        let cut = b.take(text(200_000));
        assert!(
            cut.text.len() < MAX_RESULT_BYTES + 100
                && cut.text.contains("[cut: the result is 200000 bytes")
        );
        let mut taken = 1;
        while b.0 > 0 {
            b.take(text(200_000));
            taken += 1;
        }
        assert!((15..=17).contains(&taken), "{taken}");
        let spent = b.take(text(10));
        assert!(spent.is_error && spent.text.contains("spent"));
    }
}
