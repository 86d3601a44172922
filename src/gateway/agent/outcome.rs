//! What the agent's loop came to: the final message, how it ended, and
//! what the answer's `mcp_edge` extension reports ([`super::answer`]).

use crate::error::GatewayError;
use serde_json::Value;

/// What the loop came to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The final assistant message (`content`, and `tool_calls` of the
    /// caller's own tools).
    pub message: Value,
    pub finish: String,
    /// Model calls made.
    pub steps: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Each tool call run: `{id, name, is_error}` (and the approval it
    /// awaits), in order.
    pub tool_calls: Vec<Value>,
    /// Pending approvals the answer waits for.
    pub approvals: Vec<Value>,
    /// Why the loop stopped before the model's answer, if it did.
    pub stopped: Option<&'static str>,
    /// What the loop added to the conversation before the final message:
    /// the model's tool-call turns and the tools' results.
    pub messages: Vec<Value>,
    /// Tools offered to the model, and how many the cap left out.
    pub offered: usize,
    pub offered_dropped: usize,
}

/// A run that failed, and whether it had run tool calls by then (its
/// answer then tells the SDKs not to retry: [`super::answer::failed`]).
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: GatewayError,
    pub after_tools: bool,
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Self {
        Failure {
            error,
            after_tools: false,
        }
    }
}
