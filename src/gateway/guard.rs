//! The checks a `tools/call` passes before anything reaches the upstream,
//! in this order:
//!
//! 1. the gate: the registry's tool filter and the access policy (a tool
//!    the caller may not call is unknown to it, -32602), recorded in the
//!    audit trail with the rule that decided;
//! 2. the arguments against the tool's `inputSchema` (-32602 naming the
//!    failing path);
//! 3. rate limits and quotas (429);
//! 4. human approval, when the policy requires it for this tool (see
//!    [`hold`](super::hold)).
//!
//! Both MCP endpoints run the same guard, so a tool is governed the same way
//! whichever endpoint it is called through.

use super::ask::{self, Forwarding};
use super::catalog::{Catalog, ToolInfo};
use super::hold::{self, Outcome, Requester};
use super::modern::question;
use super::respond;
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::observe::audit::{self, Allowed, Audit};
use crate::observe::collect::note_here;
use crate::ports::Platform;
use crate::upstream::Upstreams;
use http::Response;
use serde_json::value::RawValue;
use serde_json::Value;
use std::rc::Rc;

/// Everything the guard needs to know about the caller and the session.
pub(crate) struct CallGuard<'a> {
    pub gate: &'a Gate,
    pub catalog: &'a Catalog,
    /// Limits that refused lately, in this isolate.
    pub refusals: &'a super::counters::Refusals,
    pub validate_arguments: bool,
    /// Who calls, should the call be held for approval.
    pub requester: Requester<'a>,
    /// A modern (2026-07-28) request: questions become `input_required`.
    pub modern: bool,
    /// A modern client that declared URL elicitation: a connect prompt
    /// becomes an `input_required` URL elicitation.
    pub connect_by_url: bool,
}

impl CallGuard<'_> {
    /// Runs the checks for a call of `tool` on `server` with `arguments`;
    /// errors name the tool as the client called it (`shown`).
    pub(crate) async fn check<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        (tool, shown): (&str, &str),
        arguments: Option<&RawValue>,
    ) -> Result<Outcome, GatewayError> {
        crate::observe::notes::server(&server.id);
        let policy = tracing::info_span!("policy").entered();
        let (allowed, rule) = self.gate.decide_tool(server, tool);
        note_here(
            "mcp_edge.policy.decision",
            if allowed { "allow" } else { "deny" }.into(),
        );
        if let Some(rule) = rule {
            note_here("mcp_edge.policy.rule", rule.into());
        }
        audit::record(&Audit::Policy {
            decision: if allowed {
                Allowed::Allow
            } else {
                Allowed::Deny
            },
            rule,
            subject: &self.gate.principal.subject,
            via: &self.gate.principal.via,
            server: &server.id,
            tool,
        });
        if !allowed {
            note_here("error.type", "denied".into());
            crate::observe::notes::tool(None);
            return Err(GatewayError::InvalidParams(format!(
                "Unknown tool: {shown}"
            )));
        }
        drop(policy);
        let approval = self.gate.policy.as_ref().and_then(|p| p.approval.clone());
        let needs_info =
            self.validate_arguments || approval.as_ref().is_some_and(|a| a.uses_destructive_hint());
        let info: Option<Rc<ToolInfo>> = if needs_info {
            // The server's own words in a failed listing are its content.
            self.catalog.tool(ups, server, tool).await.map_err(|e| {
                crate::observe::notes::tool(None);
                respond::redact_error(e, &self.gate.redaction(server, None))
            })?
        } else {
            None
        };
        // The tool as usage and metrics name it: a name the server does
        // not list is the caller's to choose, and is not kept.
        // (Nor is one nobody looked up: argument validation off.)
        crate::observe::notes::tool(info.is_some().then_some(tool));
        let args: Value = match arguments {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| GatewayError::InvalidParams(format!("arguments: {e}")))?,
            None => Value::Object(Default::default()),
        };
        if self.validate_arguments {
            if let Some(schema) = info.as_ref().and_then(|i| i.schema(&server.id)) {
                let _span = tracing::info_span!("validate_arguments").entered();
                schema.validate(&args).map_err(|v| {
                    note_here("error.type", "invalid_arguments".into());
                    GatewayError::InvalidArguments {
                        tool: shown.to_string(),
                        path: v.path,
                        message: v.message,
                    }
                })?;
            }
        }
        super::counters::check_call(ups.platform, (self.gate, self.refusals), server, tool).await?;
        let destructive = info.as_ref().is_some_and(|i| i.destructive);
        let Some(a) = approval else {
            return Ok(Outcome::Forward);
        };
        match a.required(server, tool, destructive) {
            Some(decider) => {
                let held = hold::Held {
                    server,
                    tool,
                    arguments: arguments.map_or("{}", |raw| raw.get()),
                    decider,
                };
                // The approval phase: how the call stands when it ends
                // (forwarded, answered in its place, or a question put).
                let span = tracing::info_span!("approval", "mcp_edge.approval.decider" = ?decider);
                let checked = hold::check(ups, &self.requester, &a, held);
                let outcome = tracing::Instrument::instrument(checked, span.clone()).await?;
                let stands = match &outcome {
                    Outcome::Forward => "approved",
                    Outcome::Answer(_) => "answered",
                    Outcome::Ask(_) => "asked",
                };
                span.in_scope(|| note_here("mcp_edge.approval.outcome", stands.into()));
                Ok(outcome)
            }
            None => Ok(Outcome::Forward),
        }
    }
}

impl CallGuard<'_> {
    /// Carries out what the guard decided for `call`: forward it, answer in
    /// its place, or ask first. A legacy client is asked on the call's event
    /// stream, which forwards once the decider approved; a modern one gets
    /// an `input_required` result and answers on its retry.
    pub(crate) async fn carry_out<P: Platform + Clone + 'static>(
        &self,
        outcome: Outcome,
        ups: &Upstreams<'_, P>,
        call: Forwarding,
    ) -> Result<Response<Body>, GatewayError> {
        match outcome {
            Outcome::Forward => ask::forward(ups, &call).await,
            Outcome::Answer(result) => Ok(respond::result(&call.id, &result)),
            Outcome::Ask(question) if self.modern => {
                let mut answer = respond::result(&call.id, &question::input_required(&question));
                answer.extensions_mut().insert(question::OwnQuestion);
                Ok(answer)
            }
            Outcome::Ask(question) => Ok(ask::ask_then_forward(*question, ups.detach(), call)),
        }
    }

    /// A tool call's answer, but for a server that needs the user's own
    /// account (the connect prompt):
    /// - a legacy client that declared URL elicitation gets the URL
    ///   elicitation error (-32042, `error.rs`; 2025-11-25
    ///   `client/elicitation.mdx`);
    /// - a modern client that declared it, an `input_required` URL
    ///   elicitation (`question::connect_required`);
    /// - every other caller, a tool error naming the connect URL, which a
    ///   model can relay to its user.
    pub(crate) fn connect_as_tool_error(
        &self,
        id: &crate::protocol::jsonrpc::Id,
        answer: Result<Response<Body>, GatewayError>,
    ) -> Result<Response<Body>, GatewayError> {
        let e = match answer {
            Err(e @ GatewayError::ConnectRequired { .. }) => e,
            other => return other,
        };
        if !self.modern && self.requester.elicitation.url {
            return Err(e);
        }
        let message = e.to_string();
        let GatewayError::ConnectRequired {
            server,
            url,
            reason,
        } = e
        else {
            unreachable!("matched above")
        };
        if self.modern && self.connect_by_url {
            let ask = question::connect_required(&server, &url, &message);
            let mut answer = respond::result(id, &ask);
            answer.extensions_mut().insert(question::OwnQuestion);
            return Ok(answer);
        }
        Ok(respond::result(id, &connect_result(&server, &url, &reason)))
    }
}

/// The tool error a call gets when its server needs the user to connect
/// first: the message names the URL, and `_meta` carries it for clients
/// that act on it.
fn connect_result(server: &str, url: &str, reason: &str) -> Value {
    let text = format!(
        "Server '{server}' needs your own account: {reason}. Open {url} to connect it, then try again."
    );
    serde_json::json!({
        "content": [{"type": "text", "text": text}],
        "isError": true,
        "_meta": {"mcp-edge/connect": {"server": server, "url": url}},
    })
}
