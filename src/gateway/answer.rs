//! A legacy client's answer to one of the gateway's elicitation questions
//! (a separate POST, possibly at another isolate than the call waiting for
//! it, which polls the approval store). The answer decides the approval
//! record; the waiting call ([`super::ask`]) reads the decision.

use super::ask::ELICIT_ID_PREFIX;
use crate::error::GatewayError;
use crate::governance::approval::{Channel, Decided, Decider, Decision, Verdict};
use crate::observe::audit::{self, Audit};
use crate::ports::{Approvals, Clock, Platform};
use crate::protocol::jsonrpc::Id;
use serde_json::Value;

/// Records the client's answer to one of the gateway's elicitation requests.
/// Returns `false` when `id` is not one of the gateway's (the answer is
/// meant for an upstream). Only the requester's answer to a question the
/// user decides counts; answers from anyone else, and answers to URL
/// questions (which only say whether the user opened the address), are
/// ignored.
pub(crate) async fn answer<P: Platform>(
    p: &P,
    id: &Id,
    result: Option<&Value>,
    requester: &str,
    ttl_ms: u64,
) -> Result<bool, GatewayError> {
    let Id::Str(text) = id else { return Ok(false) };
    let Some(approval) = text.strip_prefix(ELICIT_ID_PREFIX) else {
        return Ok(false);
    };
    let now = p.clock().now_ms();
    let Some(record) = p.approvals().get(approval, now).await? else {
        tracing::info!(approval, "answer to an expired or unknown approval ignored");
        return Ok(true);
    };
    let action = result
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str)
        .unwrap_or("cancel");
    if record.channel != Channel::Elicitation || record.decider != Decider::User {
        tracing::info!(
            approval,
            action,
            "answer to a question approvers decide: not a decision"
        );
        return Ok(true);
    }
    if record.requester != requester {
        tracing::warn!(
            approval,
            "answer from someone other than the requester ignored"
        );
        return Ok(true);
    }
    let verdict = if action == "accept" {
        Verdict::Approve
    } else {
        Verdict::Reject
    };
    let decision = Decision {
        verdict,
        by: requester.to_string(),
        now_ms: now,
        ttl_ms,
    };
    if let Decided::Applied { .. } = p.approvals().decide(approval, &decision).await? {
        audit::record(&Audit::ApprovalDecided {
            approval,
            approved: verdict == Verdict::Approve,
            by: requester,
            channel: "elicitation",
            action: Some(action),
            requester: Some(requester),
            server: None,
            tool: None,
        });
    }
    Ok(true)
}
