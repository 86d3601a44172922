//! The approval endpoint, `/approvals/{id}`: how approvers see and decide
//! pending calls.
//!
//! - `GET` returns the record (to an approver, or to the caller who made the
//!   call); anyone else gets 404, as for an id that does not exist.
//! - `POST {"decision": "approve" | "reject"}` decides a pending record. A
//!   call held for approvers is decided by subjects the policy names as
//!   `approval.approvers`, never by its requester (an approver included);
//!   a call the user decides by its requester or an approver (403
//!   otherwise). A record decided already answers 409 with the decision as
//!   it stands; an expired or unknown one 404.
//!
//! - `GET /approvals`, the inbox: the live pending approvals the caller may
//!   decide and those of its own calls, newest first, at most
//!   [`INBOX_LIMIT`]; each with its requester, server, tool, the arguments'
//!   digest (in full at its own address), expiry and address.
//!
//! Callers authenticate as on the MCP endpoints (API key or JWT); every
//! decision is logged (target `audit`) with who made it.

use super::respond;
use super::Ctx;
use crate::body::Body;
use crate::error::GatewayError;
use crate::governance::approval::{Channel, Decided, Decision, Verdict};
use crate::observe::audit::{self, Audit};
use crate::ports::{Approvals, Clock, Platform};
use http::{Method, Response};
use serde::Deserialize;

/// The most approvals the inbox lists.
pub(crate) const INBOX_LIMIT: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Verdict,
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `GET /approvals`: what awaits a decision that this caller may make,
    /// or made the call for.
    pub(super) async fn inbox(&self, method: &Method) -> Result<Response<Body>, GatewayError> {
        if method != Method::GET {
            return Err(GatewayError::MethodNotAllowed { allow: "GET" });
        }
        if self.identity.principal.is_anonymous() {
            return Err(GatewayError::Unauthorized {
                message: "authentication required".into(),
                challenge: None,
            });
        }
        let approval = self.gate.policy.as_ref().and_then(|p| p.approval.clone());
        let principal = &self.identity.principal;
        let me = self.owner();
        let now = self.p.clock().now_ms();
        let base = &self.identity.base;
        let items: Vec<serde_json::Value> = self
            .p
            .approvals()
            .pending(now, INBOX_LIMIT)
            .await?
            .into_iter()
            // Questions put to a client (elicitation) are not the inbox's.
            .filter(|r| r.channel == Channel::Approver)
            .filter_map(|r| {
                let yours = r.requester == me;
                let decide = approval
                    .as_ref()
                    .is_some_and(|a| a.may_decide(&r, principal).is_ok());
                (yours || decide).then(|| {
                    serde_json::json!({
                        "id": r.id,
                        "url": format!("{base}/approvals/{}", r.id),
                        "requester": r.requester_subject,
                        "server": r.server,
                        "tool": r.tool,
                        "arguments_sha256": r.arguments_sha256,
                        "decider": r.decider,
                        "created_ms": r.created_ms,
                        "expires_ms": r.expires_ms,
                        "yours": yours,
                        "you_may_decide": decide,
                    })
                })
            })
            .collect();
        let body = serde_json::json!({ "approvals": items });
        Ok(respond::private(respond::json(
            serde_json::to_vec(&body).expect("inbox serializes"),
        )))
    }

    pub(super) async fn approval(
        &self,
        id: &str,
        req: http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, GatewayError> {
        if self.identity.principal.is_anonymous() {
            return Err(GatewayError::Unauthorized {
                message: "authentication required".into(),
                challenge: None,
            });
        }
        let verdict = match *req.method() {
            Method::GET => None,
            Method::POST => {
                let body: DecisionBody = serde_json::from_slice(req.body()).map_err(|e| {
                    GatewayError::InvalidRequest(format!(
                        "expected {{\"decision\": \"approve\" | \"reject\"}}: {e}"
                    ))
                })?;
                Some(body.decision)
            }
            _ => return Err(GatewayError::MethodNotAllowed { allow: "GET, POST" }),
        };
        let approval = self.gate.policy.as_ref().and_then(|p| p.approval.clone());
        let principal = &self.identity.principal;
        let approver = approval.as_ref().is_some_and(|a| a.is_approver(principal));
        let me = self.owner();
        let now = self.p.clock().now_ms();
        let not_found = || GatewayError::NotFound(format!("no pending approval '{id}'"));
        // Only an approver or the requester learns that the record exists.
        let record = self
            .p
            .approvals()
            .get(id, now)
            .await?
            .filter(|r| approver || r.requester == me)
            .ok_or_else(not_found)?;
        let (Some(verdict), Some(approval)) = (verdict, approval) else {
            return Ok(respond::private(respond::json(record.to_json())));
        };
        approval
            .may_decide(&record, principal)
            .map_err(|message| GatewayError::Forbidden {
                message: message.to_string(),
                challenge: None,
            })?;
        let decision = Decision {
            verdict,
            by: me.clone(),
            now_ms: now,
            ttl_ms: approval.ttl_ms,
        };
        match self.p.approvals().decide(id, &decision).await? {
            Decided::Applied { record } => {
                audit::record(&Audit::ApprovalDecided {
                    approval: id,
                    approved: verdict == Verdict::Approve,
                    by: &me,
                    channel: "endpoint",
                    action: None,
                    requester: Some(&record.requester),
                    server: Some(&record.server),
                    tool: Some(&record.tool),
                });
                Ok(respond::private(respond::json(record.to_json())))
            }
            Decided::Already { record } => Err(GatewayError::Conflict(format!(
                "approval '{id}' was already {} by {}",
                serde_json::to_value(record.status)
                    .expect("status serializes")
                    .as_str()
                    .unwrap_or("decided"),
                record.decided_by.as_deref().unwrap_or("someone")
            ))),
            Decided::NotFound => Err(not_found()),
        }
    }
}
