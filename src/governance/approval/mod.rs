//! Human approval of risky tool calls: which calls need it (the policy's
//! `approval` section), who decides (the requesting user, or approvers the
//! policy names), the approval record every store keeps, and the state
//! transitions every store applies the same way (pending, then approved or
//! rejected, then consumed exactly once by the call).
//!
//! A record is bound to who asked, the server, the tool and a digest of the
//! arguments' JSON (see `protocol::canonical`): its id is derived from them,
//! so retrying the same call finds the same record and a call with other
//! arguments finds none.
//!
//! Who decides is part of the record. Where the policy names approvers, the
//! requester's own answer never counts: not through elicitation, not through
//! the approval endpoint, not even when the requester is an approver too.

mod record;

pub(crate) use record::*;

use super::subjects::{SubjectSpec, Subjects};
use crate::config::glob::Globs;
use crate::config::Server;
use crate::identity::Principal;
use serde::{Deserialize, Serialize};

/// The policy's `approval` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalSpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    /// Who may approve or reject calls held for approvers.
    #[serde(default)]
    pub approvers: Option<SubjectSpec>,
    /// Who decides by default: `approvers` when approvers are named, else
    /// `user` (the requesting user confirms).
    #[serde(default)]
    pub decided_by: Option<Decider>,
    /// Calls that always need approval.
    #[serde(default)]
    pub tools: Vec<ToolsSpec>,
    /// Also require approval for tools their server marks
    /// `destructiveHint: true` (decided as `decided_by` says).
    #[serde(default)]
    pub destructive_hint: bool,
    /// How long a pending or approved call stays valid.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// How long a call waits for a decision while its client holds the
    /// question (elicitation).
    #[serde(default = "default_elicitation_timeout")]
    pub elicitation_timeout_secs: u64,
}

fn default_ttl() -> u64 {
    900
}

fn default_elicitation_timeout() -> u64 {
    120
}

/// Servers and tools (globs; empty lists mean any), and who decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolsSpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub decided_by: Option<Decider>,
}

/// Who decides a held call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decider {
    /// The requesting user confirms (in their client, or at the approval
    /// endpoint); approvers may decide too.
    User,
    /// Only approvers the policy names, never the requester.
    Approvers,
}

/// The checked `approval` section.
#[derive(Debug, Clone)]
pub struct Approval {
    approvers: Option<Subjects>,
    tools: Vec<(Globs, Globs, Decider)>,
    destructive_hint: Option<Decider>,
    pub ttl_ms: u64,
    pub elicitation_timeout_ms: u64,
}

impl Approval {
    pub(crate) fn parse(spec: &ApprovalSpec) -> Result<Approval, String> {
        let what = "approval";
        let globs = |list: &[String], field: &str| Globs::parse(list, &format!("{what}: {field}"));
        let approvers = spec
            .approvers
            .as_ref()
            .map(|a| Subjects::parse(a, "approval: approvers"))
            .transpose()?;
        let default = spec.decided_by.unwrap_or(match approvers {
            Some(_) => Decider::Approvers,
            None => Decider::User,
        });
        let mut tools = Vec::new();
        for t in &spec.tools {
            let decider = t.decided_by.unwrap_or(default);
            tools.push((
                globs(&t.servers, "servers")?,
                globs(&t.tools, "tools")?,
                decider,
            ));
        }
        let destructive_hint = spec.destructive_hint.then_some(default);
        let needs_approvers = tools.iter().any(|t| t.2 == Decider::Approvers)
            || destructive_hint == Some(Decider::Approvers);
        if needs_approvers && approvers.is_none() {
            return Err(format!(
                "{what}: calls decided_by approvers need an approvers list"
            ));
        }
        if spec.ttl_secs == 0 || spec.elicitation_timeout_secs == 0 {
            return Err(format!(
                "{what}: ttl_secs and elicitation_timeout_secs must be positive"
            ));
        }
        Ok(Approval {
            approvers,
            tools,
            destructive_hint,
            ttl_ms: spec.ttl_secs.saturating_mul(1000),
            elicitation_timeout_ms: spec.elicitation_timeout_secs.saturating_mul(1000),
        })
    }

    /// Whether calling `tool` on `server` needs a human's approval, and who
    /// decides; `destructive` is the server's `destructiveHint` for the tool.
    /// When several entries match, approvers win over the user.
    pub(crate) fn required(
        &self,
        server: &Server,
        tool: &str,
        destructive: bool,
    ) -> Option<Decider> {
        let hint = self.destructive_hint.filter(|_| destructive);
        let listed = self
            .tools
            .iter()
            .filter(|(servers, tools, _)| servers.allows(&server.id) && tools.allows(tool))
            .map(|t| t.2);
        hint.into_iter().chain(listed).max_by_key(|d| match d {
            Decider::User => 0,
            Decider::Approvers => 1,
        })
    }

    /// Whether the server's `destructiveHint` matters (the catalog is read).
    pub(crate) fn uses_destructive_hint(&self) -> bool {
        self.destructive_hint.is_some()
    }

    pub(crate) fn is_approver(&self, who: &Principal) -> bool {
        self.approvers.as_ref().is_some_and(|a| a.matches(who))
    }

    /// Whether `who` may decide `record`: an approver may decide any record
    /// but their own call held for approvers (theirs under any credential
    /// that names the same subject); the requester may confirm their own
    /// call only where the user decides.
    pub(crate) fn may_decide(
        &self,
        record: &ApprovalRecord,
        who: &Principal,
    ) -> Result<(), &'static str> {
        let requester = record.requester == who.key();
        let same_subject = !who.is_anonymous()
            && !record.requester_subject.is_empty()
            && record.requester_subject == who.subject;
        match record.decider {
            Decider::Approvers if requester || same_subject => {
                Err("the requester may not approve their own call; an approver decides it")
            }
            Decider::Approvers if !self.is_approver(who) => {
                Err("only approvers named in the policy may decide this call")
            }
            Decider::User if !requester && !self.is_approver(who) => {
                Err("only the requester or an approver may decide this call")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Approval, String> {
        Approval::parse(&serde_json::from_value(v).map_err(|e| e.to_string())?)
    }

    fn db() -> Server {
        Server::parse("db", r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#).unwrap()
    }

    fn who(subject: &str, roles: &[&str]) -> Principal {
        Principal {
            subject: subject.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            via: "apikey".into(),
            ..Principal::anonymous()
        }
    }

    #[test]
    fn approval_sections_parse_and_match() {
        let a = parse(json!({
            "approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["db"], "tools": ["drop_*"]}],
            "destructive_hint": true
        }))
        .unwrap();
        let db = db();
        assert_eq!(
            a.required(&db, "drop_table", false),
            Some(Decider::Approvers)
        );
        assert_eq!(a.required(&db, "select", false), None);
        assert_eq!(
            a.required(&db, "select", true),
            Some(Decider::Approvers),
            "destructiveHint opted in; approvers named, so approvers decide"
        );
        assert_eq!(a.ttl_ms, 900_000);
        assert!(parse(json!({"approvers": {}}))
            .unwrap_err()
            .contains("names nobody"));
    }

    #[test]
    fn who_decides_is_explicit_and_approvers_win() {
        let a = parse(json!({
            "approvers": {"roles": ["approver"]},
            "tools": [
                {"tools": ["archive"], "decided_by": "user"},
                {"tools": ["drop_*"]}
            ],
            "destructive_hint": true
        }))
        .unwrap();
        let db = db();
        assert_eq!(a.required(&db, "archive", false), Some(Decider::User));
        assert_eq!(
            a.required(&db, "archive", true),
            Some(Decider::Approvers),
            "a destructive tool held for approvers stays with approvers"
        );
        // Without approvers the user confirms; naming approvers is needed
        // for anything decided by them.
        let user = parse(json!({"destructive_hint": true})).unwrap();
        assert_eq!(user.required(&db, "x", true), Some(Decider::User));
        let e = parse(json!({"decided_by": "approvers", "destructive_hint": true})).unwrap_err();
        assert!(e.contains("need an approvers list"), "{e}");
    }

    #[test]
    fn requesters_never_decide_calls_held_for_approvers() {
        let a =
            parse(json!({"approvers": {"roles": ["approver"]}, "destructive_hint": true})).unwrap();
        let carol = who("carol", &["approver"]);
        let alice = who("alice", &[]);
        let mut record = record::tests::sample(0);
        record.requester = carol.key();
        record.requester_subject = carol.subject.clone();
        assert!(
            a.may_decide(&record, &carol).is_err(),
            "an approver may not approve their own call"
        );
        let carol_jwt = Principal {
            via: "jwt:https://id.test".into(),
            ..carol.clone()
        };
        assert!(
            a.may_decide(&record, &carol_jwt).is_err(),
            "not with another credential naming the same subject either"
        );
        assert!(a.may_decide(&record, &alice).is_err());
        record.requester = alice.key();
        record.requester_subject = alice.subject.clone();
        assert!(a.may_decide(&record, &carol).is_ok());
        assert!(a.may_decide(&record, &alice).is_err(), "the requester");
        record.decider = Decider::User;
        assert!(a.may_decide(&record, &alice).is_ok(), "the user confirms");
        assert!(a.may_decide(&record, &carol).is_ok());
        assert!(a.may_decide(&record, &who("bob", &[])).is_err());
    }
}
