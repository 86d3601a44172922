//! Human approval of a tool call, as the pipeline runs it.
//!
//! - A call an approver already approved (same requester, tool and
//!   arguments) is used up and forwarded, exactly once.
//! - If the client declared the elicitation capability, the gateway answers
//!   with an event stream whose first event asks the user
//!   (`elicitation/create`); the client's answer arrives as a separate POST
//!   (possibly at another isolate), is recorded in the approval store, and
//!   the waiting stream forwards the call only on an explicit `accept`.
//! - Otherwise a pending approval is stored with a TTL and the call is
//!   answered with a tool error that tells the agent how to get it approved
//!   (the approval endpoint) and to retry the same call.
//!
//! Every decision is logged with who made it (target `audit`).

use super::guard::{CallGuard, Outcome};
use super::respond;
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::approval::{
    self as rules, Approval, ApprovalRecord, Channel, Decided, Decision, Status, Verdict,
};
use crate::governance::pii::Kind;
use crate::ports::{Approvals, Clock, Platform};
use crate::protocol::jsonrpc::{self, Id};
use crate::protocol::sse;
use crate::upstream::client::Detached;
use crate::upstream::Upstreams;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::stream::{self, StreamExt};
use http::Response;
use serde_json::{json, Value};
use std::rc::Rc;

/// Ids of the gateway's own `elicitation/create` requests start with this,
/// so the client's answers can be told apart from answers meant for an
/// upstream.
pub const ELICIT_ID_PREFIX: &str = "mcp-edge-approval:";

/// A question for the user, waiting to be sent.
pub struct Ask {
    record: ApprovalRecord,
    timeout_ms: u64,
    poll_ms: u64,
}

/// The call to make once approved.
pub struct Forwarding {
    pub server: Rc<Server>,
    pub message: Vec<u8>,
    pub id: Id,
    pub redact: Vec<Kind>,
}

/// Decides how approval proceeds for a call that needs it.
pub async fn check<P: Platform>(
    ups: &Upstreams<'_, P>,
    guard: &CallGuard<'_>,
    approval: &Approval,
    server: &Server,
    tool: &str,
    arguments: Value,
) -> Result<Outcome, GatewayError> {
    let p = ups.platform;
    let now = p.clock().now_ms();
    let hash = rules::arguments_sha256(&arguments);
    let call = rules::call_id(&guard.requester, &server.id, tool, &hash);
    let record = |id: String, channel, ttl_ms: u64| ApprovalRecord {
        id,
        channel,
        requester: guard.requester.clone(),
        server: server.id.clone(),
        tool: tool.to_string(),
        arguments: arguments.clone(),
        arguments_sha256: hash.clone(),
        status: Status::Pending,
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms),
        decided_by: None,
        decided_ms: None,
    };
    if p.approvals().consume(&call, now).await? {
        audit_use(&call, &guard.requester, server, tool);
        return Ok(Outcome::Forward);
    }
    if guard.elicitation {
        let mut bytes = [0u8; 18];
        p.random_bytes(&mut bytes);
        let fresh = record(
            format!("el_{}", URL_SAFE_NO_PAD.encode(bytes)),
            Channel::Elicitation,
            approval.elicitation_timeout_ms,
        );
        let held = p.approvals().open(&fresh, now).await?;
        tracing::info!(target: "audit", approval = %held.id, requester = %guard.requester, server = %server.id, tool, "approval asked of the user (elicitation)");
        return Ok(Outcome::Ask(Ask {
            record: held,
            timeout_ms: approval.elicitation_timeout_ms,
            poll_ms: guard.poll_ms,
        }));
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
        audit_use(&call, &guard.requester, server, tool);
        return Ok(Outcome::Forward);
    }
    if held.created_ms == now && held.status == Status::Pending {
        tracing::info!(target: "audit", approval = %held.id, requester = %guard.requester, server = %server.id, tool, "approval requested");
    }
    Ok(Outcome::Answer(pending_result(&held, &guard.base, now)))
}

fn audit_use(id: &str, requester: &str, server: &Server, tool: &str) {
    tracing::info!(target: "audit", approval = %id, requester, server = %server.id, tool, "approved call forwarded");
}

/// The tool error a call waiting for (or refused) approval is answered with.
fn pending_result(r: &ApprovalRecord, base: &str, now_ms: u64) -> Value {
    let url = format!("{base}/approvals/{}", r.id);
    let secs = r.expires_ms.saturating_sub(now_ms).div_ceil(1000);
    let text = match r.status {
        Status::Rejected => format!(
            "Approval {} for calling {} on {} was rejected by {}. Do not retry this call.",
            r.id,
            r.tool,
            r.server,
            r.decided_by.as_deref().unwrap_or("an approver")
        ),
        _ => format!(
            "This call needs a human's approval before it runs; it was not made. Approval id: {id} \
             (pending, valid for {secs} s). Ask an approver to approve it: POST {url} with \
             {{\"decision\":\"approve\"}}. Once approved, make the same call again with the same \
             arguments; it will then run once.",
            id = r.id
        ),
    };
    json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": { "mcp-edge/approval": {
            "id": r.id, "status": r.status, "url": url, "expires_ms": r.expires_ms
        } }
    })
}

/// Answers with an event stream: the question first, then, once the user
/// answered (or the wait timed out), the call's result or a tool error.
pub fn ask_then_forward<P: Platform + Clone + 'static>(
    ask: Ask,
    detached: Detached<P>,
    call: Forwarding,
) -> Response<Body> {
    let r = &ask.record;
    let question = json!({
        "jsonrpc": "2.0",
        "id": format!("{ELICIT_ID_PREFIX}{}", r.id),
        "method": "elicitation/create",
        "params": {
            "message": format!(
                "Allow the tool '{}' on server '{}' to run with these arguments? {}",
                r.tool, r.server, preview(&r.arguments)
            ),
            "requestedSchema": { "type": "object", "properties": {} }
        }
    });
    let first = sse::encode_message(question.to_string().as_bytes());
    let rest = async move {
        let outcome = wait(&detached.platform, &ask).await;
        let id = call.id.clone();
        let error = |e: GatewayError| one(sse::encode_message(&e.to_rpc_body(Some(&id))));
        match outcome {
            Err(e) => error(e),
            Ok(Some(r)) if r.status == Status::Approved => {
                let now = detached.platform.clock().now_ms();
                match detached.platform.approvals().consume(&r.id, now).await {
                    Ok(true) => {
                        audit_use(&r.id, &r.requester, &call.server, &r.tool);
                        match forward(&detached.upstreams(), &call).await {
                            Ok(resp) => into_events(resp, detached.link.max_bytes).await,
                            Err(e) => error(e),
                        }
                    }
                    Ok(false) => tool_error(
                        &id,
                        "The approval was already used; the call was not made again.",
                    ),
                    Err(e) => error(e.into()),
                }
            }
            Ok(Some(_)) => tool_error(&id, "The user declined this call; it was not made."),
            Ok(None) => tool_error(
                &id,
                &format!(
                    "No answer from the user within {} s; the call was not made.",
                    ask.timeout_ms / 1000
                ),
            ),
        }
    };
    let body = stream::once(async move { Ok(first) })
        .chain(stream::once(rest).flatten())
        .boxed_local();
    respond::sse(Body::Stream(body))
}

/// Sends the call and relays the answer (redacted as the policy asks).
pub async fn forward<P: Platform>(
    ups: &Upstreams<'_, P>,
    call: &Forwarding,
) -> Result<Response<Body>, GatewayError> {
    let answer = ups
        .send(&call.server, &call.message)
        .await
        .map_err(|e| respond::redact_error(e, &call.redact))?;
    let limit = ups.link.max_bytes;
    respond::forward(answer, &call.id, &call.server.id, &call.redact, limit).await
}

/// Waits for the decision on an elicitation record: `None` on timeout.
async fn wait<P: Platform>(p: &P, ask: &Ask) -> Result<Option<ApprovalRecord>, GatewayError> {
    let deadline = ask.record.created_ms.saturating_add(ask.timeout_ms);
    loop {
        let now = p.clock().now_ms();
        match p.approvals().get(&ask.record.id, now).await? {
            Some(r) if r.status != Status::Pending => return Ok(Some(r)),
            None => return Ok(None),
            Some(_) if now >= deadline => return Ok(None),
            Some(_) => p.clock().sleep(ask.poll_ms).await,
        }
    }
}

/// A gateway response as events of the stream already open.
async fn into_events(resp: Response<Body>, limit: usize) -> ByteStream {
    let is_sse = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = resp.into_body();
    if is_sse {
        return body.into_stream();
    }
    match body.collect(limit).await {
        Ok(bytes) => one(sse::encode_message(&bytes)),
        Err(e) => stream::once(async move { Err(e) }).boxed_local(),
    }
}

fn one(bytes: Vec<u8>) -> ByteStream {
    stream::once(async move { Ok(bytes) }).boxed_local()
}

fn tool_error(id: &Id, text: &str) -> ByteStream {
    let result = json!({ "content": [{ "type": "text", "text": text }], "isError": true });
    one(sse::encode_message(&jsonrpc::result_body(id, &result)))
}

/// The arguments as the user sees them in the question (bounded).
fn preview(arguments: &Value) -> String {
    let text = arguments.to_string();
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Records the client's answer to one of the gateway's elicitation requests.
/// Returns `false` when `id` is not one of the gateway's (the answer is
/// meant for an upstream). Answers from anyone but the requester are ignored.
pub async fn answer<P: Platform>(
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
    if record.requester != requester || record.channel != Channel::Elicitation {
        tracing::warn!(
            approval,
            "answer from someone other than the requester ignored"
        );
        return Ok(true);
    }
    let action = result
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str)
        .unwrap_or("cancel");
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
        tracing::info!(target: "audit", approval, decision = ?verdict, by = requester, channel = "elicitation", action, "approval decided");
    }
    Ok(true)
}
