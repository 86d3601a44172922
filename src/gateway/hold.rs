//! Human approval of a tool call, as the pipeline runs it. Who decides comes
//! from the policy ([`Decider`]):
//!
//! - A call already approved (same requester, tool and arguments) is used up
//!   and forwarded, exactly once.
//! - **The user decides**: a client that declared form elicitation is asked
//!   in an event stream (`elicitation/create`; the answer arrives as a
//!   separate POST, possibly at another isolate) and the call runs only on
//!   an explicit `accept`. Otherwise a pending record is stored that the
//!   requester (or an approver) confirms at the approval endpoint.
//! - **Approvers decide**: the requester's answer never counts. A client
//!   that declared URL elicitation is shown the approval's address
//!   (`mode: "url"`) and the stream waits for an approver's decision; any
//!   other client gets a pending record and a tool error naming the address.
//!
//! - **The next round of an approved call**: when an upstream answers an
//!   approved call with `input_required`, the state the client gets back
//!   (sealed, [`crate::identity::sealed`]) carries a one-use grant, so the
//!   retry goes on without being asked again ([`Carried`]).
//!
//! How many questions one caller may hold open at once is bounded (the
//! stream and its polling cost the gateway while it waits): past
//! `APPROVAL_WAITS_PER_CALLER` within one wait period, calls get the pending
//! record instead of a question. Every decision is logged (target `audit`).

use super::ask::{self, audit_use, pending_result, Ask, AskMode, ElicitationModes};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::approval::{
    self as rules, Approval, ApprovalRecord, Channel, Decided, Decider, Decision, Status, Verdict,
};
use crate::governance::gcra::Quota;
use crate::governance::gcra::{Decision as Limit, Rate};
use crate::identity::Principal;
use crate::observe::audit::{self, Audit};
use crate::ports::{Approvals, Clock, Limiter, Platform};
use crate::upstream::Upstreams;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use std::cell::Cell;

/// Who asks for a held call, and how they can be asked.
pub(crate) struct Requester<'a> {
    /// `via|subject`, as sessions are bound: approvals are bound to it.
    pub key: String,
    pub principal: &'a Principal,
    /// Which elicitation modes the client declared.
    pub elicitation: ElicitationModes,
    /// The gateway's public base URL (the approval endpoint's address).
    pub base: String,
    /// How often a call waiting for a user's answer looks for it.
    pub poll_ms: u64,
    /// How many approval questions one caller may hold open at once.
    pub max_waits: u64,
    /// A modern client's answer to the question it was asked by an
    /// `input_required` result, on the retry of the same call.
    pub retry: Option<Retry>,
    /// The grant a continued call's sealed state carries.
    pub carried: Option<Carried>,
    /// Who approved the call this request runs, once it was approved (a
    /// state sealed for its next round then carries a grant).
    pub approved: Cell<Option<Decider>>,
}

/// The approval of a call carried into the call's next round (an upstream
/// asked for input after the call was approved): a grant named in the
/// state the client hands back, usable once, by the decider that approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Carried {
    /// `u` or `a` (who approved) and 24 random base64url characters.
    pub grant: String,
    /// When the state carrying it expires.
    pub until_ms: u64,
}

impl Carried {
    /// A fresh grant for a call `decider` approved.
    pub(crate) fn grant<P: Platform>(p: &P, decider: Decider) -> String {
        let who = match decider {
            Decider::User => 'u',
            Decider::Approvers => 'a',
        };
        format!("{who}{}", random_id(p, 18))
    }

    fn decider(&self) -> Option<Decider> {
        match self.grant.as_bytes().first() {
            Some(b'u') => Some(Decider::User),
            Some(b'a') => Some(Decider::Approvers),
            _ => None,
        }
    }
}

/// The retry of a call the gateway answered with `input_required`: the
/// `requestState` it returned and whether the user accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Retry {
    pub state: String,
    pub accepted: bool,
}

/// What the guard decided (and, for a held call, what [`check`] decided).
pub(crate) enum Outcome {
    /// Forward the call.
    Forward,
    /// Answer with this `CallToolResult` instead (a pending or rejected
    /// approval, as a tool error the agent can read).
    Answer(Value),
    /// Ask first (elicitation); forward only once the decider approved.
    Ask(Box<Ask>),
}

/// One held call, as [`check`] sees it.
pub(crate) struct Held<'a> {
    pub server: &'a Server,
    pub tool: &'a str,
    /// The arguments' JSON text, exactly as forwarded.
    pub arguments: &'a str,
    pub decider: Decider,
}

/// Decides how approval proceeds for a call that needs it.
pub(crate) async fn check<P: Platform>(
    ups: &Upstreams<'_, P>,
    who: &Requester<'_>,
    approval: &Approval,
    held: Held<'_>,
) -> Result<Outcome, GatewayError> {
    let p = ups.platform;
    let (server, tool, decider) = (held.server, held.tool, held.decider);
    let now = p.clock().now_ms();
    let hash = rules::arguments_sha256(held.arguments)
        .map_err(|e| GatewayError::InvalidParams(format!("arguments: {e}")))?;
    let call = rules::call_id(&who.key, &server.id, tool, &hash);
    if let Some(retry) = &who.retry {
        return answered(p, who, &held, &hash, retry, approval).await;
    }
    if let Some(carried) = who
        .carried
        .as_ref()
        .filter(|c| c.decider() == Some(decider))
    {
        return carry(p, who, &held, &hash, carried).await;
    }
    let record = |id: String, channel, ttl_ms: u64| {
        let nonce = random_id(p, 12);
        pending_record(who, &held, (&hash, nonce), (id, channel), (now, ttl_ms))
    };
    if p.approvals().consume(&call, now).await? {
        audit_use(&call, &who.key, server, tool);
        who.approved.set(Some(decider));
        return Ok(Outcome::Forward);
    }
    let can_ask = match decider {
        Decider::User => who.elicitation.form,
        Decider::Approvers => who.elicitation.url,
    };
    let ask = can_ask && may_hold_a_question(p, who, approval, now).await?;
    let base_ask = |record: ApprovalRecord, mode| Ask {
        base: who.base.clone(),
        record,
        mode,
        timeout_ms: approval.elicitation_timeout_ms,
        poll_ms: who.poll_ms,
    };
    if ask && decider == Decider::User {
        let fresh = record(
            format!("el_{}", random_id(p, 18)),
            Channel::Elicitation,
            approval.elicitation_timeout_ms,
        );
        let held = p.approvals().open(&fresh, now).await?;
        audit::record(&Audit::ApprovalRequested {
            approval: &held.id,
            requester: &who.key,
            server: &server.id,
            tool,
            decider: "user",
        });
        return Ok(Outcome::Ask(Box::new(base_ask(held, AskMode::Form))));
    }
    let held = p
        .approvals()
        .open(
            &record(call.clone(), Channel::Approver, approval.ttl_ms),
            now,
        )
        .await?;
    // Approved between the two steps above: use it now.
    if held.status == Status::Approved && p.approvals().consume(&call, now).await? {
        audit_use(&call, &who.key, server, tool);
        who.approved.set(Some(decider));
        return Ok(Outcome::Forward);
    }
    if held.created_ms == now && held.status == Status::Pending {
        audit::record(&Audit::ApprovalRequested {
            approval: &held.id,
            requester: &who.key,
            server: &server.id,
            tool,
            decider: match decider {
                Decider::User => "user or approvers",
                Decider::Approvers => "approvers",
            },
        });
    }
    if ask && held.status == Status::Pending {
        return Ok(Outcome::Ask(Box::new(base_ask(held, AskMode::Url))));
    }
    Ok(Outcome::Answer(pending_result(&held, &who.base, now)))
}

/// A pending record of `held` for `who`, under `id`, live for `ttl_ms`
/// from `now`.
fn pending_record(
    who: &Requester<'_>,
    held: &Held<'_>,
    (hash, nonce): (&str, String),
    (id, channel): (String, Channel),
    (now, ttl_ms): (u64, u64),
) -> ApprovalRecord {
    ApprovalRecord {
        id,
        channel,
        decider: held.decider,
        nonce,
        requester: who.key.clone(),
        requester_subject: match &who.principal {
            who if who.is_anonymous() => String::new(),
            who => who.subject.clone(),
        },
        server: held.server.id.clone(),
        tool: held.tool.to_string(),
        arguments: held.arguments.to_string(),
        arguments_sha256: hash.to_string(),
        status: Status::Pending,
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms),
        decided_by: None,
        decided_ms: None,
    }
}

/// The retry of a call asked about with `input_required`. The state names
/// a question record the gateway keeps; it counts only for that record's
/// caller, server, tool and arguments, while the question is open, once
/// (`basic/patterns/mrtr.mdx` of 2026-07-28: state is attacker-controlled,
/// bound to the principal, the request and an expiry). Anything else is
/// -32602.
async fn answered<P: Platform>(
    p: &P,
    who: &Requester<'_>,
    held: &Held<'_>,
    hash: &str,
    retry: &Retry,
    approval: &Approval,
) -> Result<Outcome, GatewayError> {
    // One answer for every state that does not fit, so a caller learns
    // nothing of records that are not theirs.
    let invalid = || {
        GatewayError::InvalidParams(
            "requestState is not valid for this call (unknown, expired, used, or another call's)"
                .into(),
        )
    };
    // Only question ids the gateway mints reach the store.
    let (id, nonce) = retry.state.split_once('.').ok_or_else(invalid)?;
    if !is_question_id(id) {
        return Err(invalid());
    }
    let now = p.clock().now_ms();
    let record = p.approvals().get(id, now).await?.ok_or_else(invalid)?;
    // The policy in force now must still leave this call to the user.
    let ours = held.decider == Decider::User
        && record.nonce == nonce
        && record.requester == who.key
        && record.server == held.server.id
        && record.tool == held.tool
        && record.arguments_sha256 == hash
        && record.channel == Channel::Elicitation
        && record.decider == Decider::User;
    if !ours {
        tracing::warn!(approval = %record.id, requester = %who.key, "requestState for another call refused");
        return Err(invalid());
    }
    let verdict = if retry.accepted {
        Verdict::Approve
    } else {
        Verdict::Reject
    };
    let decision = Decision {
        verdict,
        by: who.key.clone(),
        now_ms: now,
        ttl_ms: approval.ttl_ms,
    };
    match p.approvals().decide(id, &decision).await? {
        Decided::Applied { record } => {
            audit::record(&Audit::ApprovalDecided {
                approval: &record.id,
                approved: verdict == Verdict::Approve,
                by: &who.key,
                channel: "input_required",
                action: None,
                requester: Some(&who.key),
                server: Some(&held.server.id),
                tool: Some(held.tool),
            });
            match verdict {
                // Used up at once: the approval runs this one call.
                Verdict::Approve if p.approvals().consume(id, now).await? => {
                    audit_use(id, &who.key, held.server, held.tool);
                    who.approved.set(Some(Decider::User));
                    Ok(Outcome::Forward)
                }
                Verdict::Approve => Err(invalid()),
                Verdict::Reject => Ok(Outcome::Answer(ask::error_result(ask::DECLINED))),
            }
        }
        Decided::Already { .. } | Decided::NotFound => Err(invalid()),
    }
}

/// The next round of an approved call: its grant is used up by deciding
/// a record stored under it. The record's nonce is the grant itself, so
/// however many retries race to store it, they decide one record and the
/// store lets exactly one decision apply (atomically on Workers, by a
/// claim on the nonce on Spin); a later replay finds it decided. The record
/// lives as long as the state that names it, and a minute more.
async fn carry<P: Platform>(
    p: &P,
    who: &Requester<'_>,
    held: &Held<'_>,
    hash: &str,
    carried: &Carried,
) -> Result<Outcome, GatewayError> {
    let now = p.clock().now_ms();
    let ttl_ms = carried.until_ms.saturating_sub(now).saturating_add(60_000);
    let id = format!("ct_{}", carried.grant);
    let fresh = pending_record(
        who,
        held,
        (hash, carried.grant.clone()),
        (id.clone(), Channel::Elicitation),
        (now, ttl_ms),
    );
    p.approvals().open(&fresh, now).await?;
    let decision = Decision {
        verdict: Verdict::Approve,
        by: who.key.clone(),
        now_ms: now,
        ttl_ms,
    };
    let Decided::Applied { record } = p.approvals().decide(&id, &decision).await? else {
        tracing::warn!(approval = %id, requester = %who.key, "a carried approval used again refused");
        return Err(GatewayError::InvalidParams(
            "requestState is not valid for this call (unknown, expired, used, or another call's)"
                .into(),
        ));
    };
    audit::record(&Audit::ApprovalUsed {
        approval: &record.id,
        requester: &who.key,
        server: &held.server.id,
        tool: held.tool,
        how: "carried",
    });
    who.approved.set(Some(held.decider));
    Ok(Outcome::Forward)
}

/// Whether `id` has the shape of a question id the gateway mints (`el_`
/// and 24 base64url characters, see [`check`]).
fn is_question_id(id: &str) -> bool {
    id.strip_prefix("el_").is_some_and(|rest| {
        rest.len() == 24
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether the caller may hold one more question open: at most
/// `max_waits` started within one wait period (so at most that many open at
/// once), counted per caller like a rate limit.
async fn may_hold_a_question<P: Platform>(
    p: &P,
    who: &Requester<'_>,
    approval: &Approval,
    now: u64,
) -> Result<bool, GatewayError> {
    if who.max_waits == 0 {
        return Ok(false);
    }
    let quota = Quota::Rate(Rate {
        limit: who.max_waits,
        window_ms: approval.elicitation_timeout_ms,
    });
    let key = format!("approval-waits/{}", who.key);
    match p.limiter().check(&key, quota, 1, now).await? {
        Limit::Allow => Ok(true),
        Limit::Deny { retry_after_ms } => {
            tracing::info!(requester = %who.key, retry_after_ms, "too many open approval questions; answering with a pending approval");
            Ok(false)
        }
    }
}

fn random_id<P: Platform>(p: &P, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    p.random_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}
