//! What one caller may see and call: each server's registry tool filter, then
//! the access policy. Everything the gate refuses is invisible: absent from
//! lists, "unknown" when called.

use super::pii::Kind;
use super::policy::Policy;
use crate::config::{Model, Server};
use crate::identity::Principal;
use std::rc::Rc;

#[derive(Clone)]
pub struct Gate {
    pub principal: Principal,
    /// `None` when no policy document exists (governance off).
    pub policy: Option<Rc<Policy>>,
}

impl Gate {
    /// Whether the caller may see and call `tool` on `server`.
    pub(crate) fn tool(&self, server: &Server, tool: &str) -> bool {
        self.decide_tool(server, tool).0
    }

    /// The same, with what decided it: `registry` for the server's own tool
    /// filter, else the policy rule (none: no rule applied, or no policy).
    pub(crate) fn decide_tool(&self, server: &Server, tool: &str) -> (bool, Option<&str>) {
        if !server.tools.allows(tool) {
            return (false, Some("registry"));
        }
        match &self.policy {
            None => (true, None),
            Some(p) => p.decide_tool(&self.principal, server, tool),
        }
    }

    /// Whether the caller may see `server` at all.
    pub(crate) fn server(&self, server: &Server) -> bool {
        (!self.principal.is_anonymous() || server.anonymous)
            && self
                .policy
                .as_ref()
                .is_none_or(|p| p.allows_server(&self.principal, server))
    }

    /// Whether the caller may use the agent API's `model`.
    pub(crate) fn model(&self, model: &Model) -> bool {
        (!self.principal.is_anonymous() || model.anonymous)
            && self
                .policy
                .as_ref()
                .is_none_or(|p| p.allows_model(&self.principal, &model.name))
    }

    /// Personal data to redact from a result of `server` (`tool` for a tool
    /// call, `None` for a resource read).
    pub(crate) fn redaction(&self, server: &Server, tool: Option<&str>) -> Vec<Kind> {
        self.policy
            .as_ref()
            .map(|p| p.redaction(server, tool))
            .unwrap_or_default()
    }

    /// Whether nothing filters this server's tools (lists can pass unparsed).
    pub(crate) fn is_open(&self, server: &Server) -> bool {
        server.tools.is_open() && self.policy.is_none()
    }
}
