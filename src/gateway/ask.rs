//! Asking for a decision while the call waits: the event stream whose first
//! message is the question, the wait for the decision (read from the
//! approval store, where the answer or the approver's decision lands from
//! any isolate), then the call's result or a tool error on the same stream;
//! and forwarding a call once it may run.
//!
//! The question never hides what is being approved: a form question shows
//! the whole arguments, or, when they are too long to show, their size and
//! SHA-256 and the address where the requester reads them in full. A URL
//! question (`mode: "url"`, MCP 2025-11-25 elicitation) sends the user to
//! the approval's address for an approver; the user's own answer to it only
//! says whether they opened it (see
//! `docs/specification/2025-11-25/client/elicitation.mdx`).

use super::respond;
use crate::body::{Body, ByteStream};
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::approval::{ApprovalRecord, Decider, Status};
use crate::governance::pii::Kind;
use crate::observe::audit::{self, Audit};
use crate::observe::collect::note_here;
use crate::ports::{Approvals, Clock, Platform};
use crate::protocol::jsonrpc::{self, Id};
use crate::protocol::sse;
use crate::upstream::client::Detached;
use crate::upstream::relay::Scope;
use crate::upstream::Upstreams;
use futures_util::stream::{self, StreamExt};
use http::Response;
use serde_json::{json, Value};
use std::rc::Rc;

/// Ids of the gateway's own `elicitation/create` requests start with this,
/// so the client's answers can be told apart from answers meant for an
/// upstream.
pub(crate) const ELICIT_ID_PREFIX: &str = "mcp-edge-approval:";

/// The call to make once approved.
pub(crate) struct Forwarding {
    pub server: Rc<Server>,
    pub message: Vec<u8>,
    pub id: Id,
    pub redact: Vec<Kind>,
    /// On `/mcp`: the upstream's own requests reach the client under ids
    /// of the gateway's.
    pub aggregated: bool,
}

/// Sends the call and relays the answer (redacted as the policy asks).
pub(crate) async fn forward<P: Platform>(
    ups: &Upstreams<'_, P>,
    call: &Forwarding,
) -> Result<Response<Body>, GatewayError> {
    let answer = ups
        .send(&call.server, &call.message)
        .await
        .map_err(|e| respond::redact_error(e, &call.redact))?;
    let redact = (call.redact.as_slice(), Scope::Everything);
    let server = (call.server.id.as_str(), call.aggregated);
    respond::forward(answer, &call.id, server, redact, ups.client).await
}

/// Records that an approved call is forwarded.
pub(crate) fn audit_use(id: &str, requester: &str, server: &Server, tool: &str) {
    audit::record(&Audit::ApprovalUsed {
        approval: id,
        requester,
        server: &server.id,
        tool,
        how: "forwarded",
    });
}

/// Arguments longer than this (bytes of JSON) are shown by digest and address.
pub(crate) const MAX_SHOWN_ARGUMENTS: usize = 4096;

/// How the question is put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AskMode {
    /// The user answers in the client (form elicitation).
    Form,
    /// The user is sent to the approval's address; an approver decides.
    Url,
}

/// A question for the client, waiting to be sent.
pub(crate) struct Ask {
    pub record: ApprovalRecord,
    pub mode: AskMode,
    /// The gateway's public base URL.
    pub base: String,
    pub timeout_ms: u64,
    pub poll_ms: u64,
}

/// The elicitation modes a client declared (MCP 2025-11-25: `{}` alone
/// means form; `form` and `url` name the modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ElicitationModes {
    pub form: bool,
    pub url: bool,
}

impl ElicitationModes {
    /// From the client's `capabilities` (`initialize` params).
    pub(crate) fn from_capabilities(capabilities: &Value) -> Self {
        match capabilities.get("elicitation") {
            None | Some(Value::Null) => ElicitationModes::default(),
            Some(Value::Object(modes)) => ElicitationModes {
                form: modes.is_empty() || modes.contains_key("form"),
                url: modes.contains_key("url"),
            },
            Some(_) => ElicitationModes {
                form: true,
                url: false,
            },
        }
    }
}

/// An approval's address on the gateway at `base`.
pub(crate) fn approval_url(base: &str, id: &str) -> String {
    format!("{base}/approvals/{id}")
}

impl Ask {
    /// The approval's address on this gateway.
    fn url(&self) -> String {
        approval_url(&self.base, &self.record.id)
    }

    /// The params of the form question: what the user is asked to allow.
    pub(crate) fn form_params(&self) -> Value {
        json!({
            "mode": "form",
            "message": form_message(&self.record, &self.url()),
            "requestedSchema": { "type": "object", "properties": {} }
        })
    }

    /// The `elicitation/create` request.
    fn question(&self) -> Value {
        let r = &self.record;
        let params = match self.mode {
            AskMode::Form => self.form_params(),
            AskMode::Url => json!({
                "mode": "url",
                "elicitationId": r.id,
                "url": self.url(),
                "message": format!(
                    "The tool '{}' on server '{}' needs an approver's decision before it runs. \
                     An approver decides at this address; this call waits up to {} s.",
                    r.tool, r.server, self.timeout_ms / 1000
                ),
            }),
        };
        json!({
            "jsonrpc": "2.0",
            "id": format!("{ELICIT_ID_PREFIX}{}", r.id),
            "method": "elicitation/create",
            "params": params,
        })
    }
}

/// What the user is asked to allow: the whole arguments, or where to read
/// them when they are too long to show.
pub(crate) fn form_message(r: &ApprovalRecord, url: &str) -> String {
    let head = format!(
        "Allow the tool '{}' on server '{}' to run",
        r.tool, r.server
    );
    if r.arguments.len() <= MAX_SHOWN_ARGUMENTS {
        format!("{head} with these arguments? {}", r.arguments)
    } else {
        format!(
            "{head}? Its arguments are {} bytes of JSON (SHA-256 {}), too long to show here: \
             read them in full at {url} before you answer.",
            r.arguments.len(),
            r.arguments_sha256
        )
    }
}

/// The tool error a call waiting for (or refused) approval is answered with.
pub(crate) fn pending_result(r: &ApprovalRecord, base: &str, now_ms: u64) -> Value {
    let url = approval_url(base, &r.id);
    let secs = r.expires_ms.saturating_sub(now_ms).div_ceil(1000);
    let who = match r.decider {
        Decider::User => "Confirm it (you, or an approver)",
        Decider::Approvers => "Ask an approver to approve it (the requester cannot)",
    };
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
             (pending, valid for {secs} s). {who}: POST {url} with \
             {{\"decision\":\"approve\"}}. Once approved, make the same call again with the same \
             arguments; it will then run once.",
            id = r.id
        ),
    };
    json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": { "mcp-edge/approval": {
            "id": r.id, "status": r.status, "decider": r.decider, "url": url,
            "expires_ms": r.expires_ms
        } }
    })
}

/// Answers with an event stream: the question first, then, once decided
/// (or the wait timed out), the call's result or a tool error.
pub(crate) fn ask_then_forward<P: Platform + Clone + 'static>(
    ask: Ask,
    detached: Detached<P>,
    call: Forwarding,
) -> Response<Body> {
    let first = sse::encode_message(ask.question().to_string().as_bytes());
    let rest = async move {
        let p = &detached.platform;
        let deadline = p.clock().now_ms().saturating_add(ask.timeout_ms);
        // The wait for the decision, a span of the request's trace (this
        // runs as the answer's stream is read, inside the request's span).
        let channel = match ask.mode {
            AskMode::Form => "elicitation",
            AskMode::Url => "elicitation_url",
        };
        let span = tracing::info_span!("approval_wait", "mcp_edge.approval.channel" = channel);
        let outcome = tracing::Instrument::instrument(wait(p, &ask, deadline), span.clone()).await;
        let decided = match &outcome {
            Ok(Some(r)) if r.status == Status::Approved => "approved",
            Ok(Some(_)) => "not approved",
            Ok(None) => "no answer",
            Err(_) => "failed",
        };
        span.in_scope(|| note_here("mcp_edge.approval.outcome", decided.into()));
        drop(span);
        if matches!(outcome, Ok(Some(ref r)) if r.status != Status::Approved)
            || matches!(outcome, Ok(None))
        {
            // The call ends in a tool error of the gateway's own.
            crate::observe::collect::note("error.type", "tool_error".into());
        }
        let id = call.id.clone();
        let error = |e: GatewayError| one(sse::encode_message(&e.to_rpc_body(Some(&id))));
        match outcome {
            Err(e) => error(e),
            Ok(Some(r)) if r.status == Status::Approved => {
                let now = p.clock().now_ms();
                match p.approvals().consume(&r.id, now).await {
                    Ok(true) => {
                        audit_use(&r.id, &r.requester, &call.server, &r.tool);
                        let done = completion(&ask);
                        let answer = match forward(&detached.upstreams(), &call).await {
                            Ok(resp) => into_events(resp, detached.client.max_bytes).await,
                            Err(e) => error(e),
                        };
                        done.chain(answer).boxed_local()
                    }
                    Ok(false) => tool_error(
                        &id,
                        "The approval was already used; the call was not made again.",
                    ),
                    Err(e) => error(e.into()),
                }
            }
            // An approver's question not approved within the wait: the
            // approval as it stands (rejected, or still pending).
            Ok(decided) if ask.mode == AskMode::Url => {
                let record = decided.as_ref().unwrap_or(&ask.record);
                answer(
                    &id,
                    pending_result(record, &ask.base, p.clock().now_ms()),
                    &ask,
                )
            }
            Ok(Some(_)) => tool_error(&id, DECLINED),
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

/// Waits for the record's decision: `None` when the deadline passed (or the
/// record expired) first.
async fn wait<P: Platform>(
    p: &P,
    ask: &Ask,
    deadline: u64,
) -> Result<Option<ApprovalRecord>, GatewayError> {
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

/// `notifications/elicitation/complete` for a URL question, sent before the
/// call's result so the client can close what it showed.
fn completion(ask: &Ask) -> ByteStream {
    if ask.mode != AskMode::Url {
        return stream::empty().boxed_local();
    }
    let note = json!({
        "jsonrpc": "2.0",
        "method": "notifications/elicitation/complete",
        "params": { "elicitationId": ask.record.id }
    });
    one(sse::encode_message(note.to_string().as_bytes()))
}

/// A gateway response as events of the stream already open.
async fn into_events(resp: Response<Body>, limit: usize) -> ByteStream {
    let is_sse = crate::protocol::headers::is_event_stream(resp.headers());
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

fn answer(id: &Id, result: Value, ask: &Ask) -> ByteStream {
    tracing::info!(approval = %ask.record.id, "approval still pending when the wait ended");
    one(sse::encode_message(&jsonrpc::result_body(id, &result)))
}

/// What a call the user declined is answered with.
pub(crate) const DECLINED: &str = "The user declined this call; it was not made.";

/// A tool error saying `text`.
pub(crate) fn error_result(text: &str) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "isError": true })
}

fn tool_error(id: &Id, text: &str) -> ByteStream {
    one(sse::encode_message(&jsonrpc::result_body(
        id,
        &error_result(text),
    )))
}
