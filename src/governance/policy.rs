//! Access policies: who may use which server groups, servers and tools.
//!
//! One document in KV (`policy`), parsed as a whole: a document with any bad
//! rule is rejected entirely and the last good one stays in force. Rules bind
//! subjects (users, teams, roles, service accounts, anonymous callers, or
//! everyone) to server groups, servers and tools (exact names or globs), with
//! `allow` or `deny`. Deny wins; what no rule allows is denied. With no
//! document at all, governance is off and every authenticated caller may use
//! everything (as before policies existed).

use super::approval::{Approval, ApprovalSpec};
use super::limits::{Limit, LimitSpec};
use super::pii::Kind;
use super::subjects::{SubjectSpec, Subjects};
use crate::config::glob::Globs;
use crate::config::Server;
use crate::identity::Principal;
use serde::Deserialize;

/// The KV key of the policy document.
pub(crate) const POLICY_KEY: &str = "policy";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicySpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default)]
    pub limits: Vec<LimitSpec>,
    #[serde(default)]
    pub redact: Vec<RedactSpec>,
    /// Which calls need a human's approval, and who gives it.
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
}

/// Which results to redact personal data from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedactSpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    /// Servers (globs); empty: all.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Tools (globs); empty: all tools and resource reads.
    #[serde(default)]
    pub tools: Vec<String>,
    /// `email`, `phone`, `card`, `ssn`, `iban`; empty: all.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// A checked redaction rule.
#[derive(Debug, Clone)]
pub struct Redact {
    servers: Globs,
    tools: Globs,
    kinds: Vec<Kind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    pub name: Option<String>,
    pub effect: Effect,
    pub subjects: SubjectSpec,
    /// Server groups (environments) the rule covers; empty: any.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Server ids (globs); empty: any.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Tool names as the server knows them (globs); empty: any.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Models of the agent API (globs). A rule naming models covers only
    /// them, never a server: it names no groups, servers or tools.
    #[serde(default)]
    pub models: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub effect: Effect,
    subjects: Subjects,
    groups: Globs,
    servers: Globs,
    tools: Globs,
    /// Some: a rule about models (`models`), which reaches no server.
    models: Option<Globs>,
}

/// A checked policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub limits: Vec<Limit>,
    pub redact: Vec<Redact>,
    pub approval: Option<Approval>,
}

fn globs(list: &[String], what: &str, rule: &str) -> Result<Globs, String> {
    Globs::parse(list, &format!("rule '{rule}': {what}"))
}

impl Policy {
    /// Parses a whole document; any bad rule rejects it.
    pub fn parse(json: &str) -> Result<Policy, String> {
        let spec: PolicySpec =
            serde_json::from_str(json).map_err(|e| format!("invalid policy document: {e}"))?;
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (i, r) in spec.rules.into_iter().enumerate() {
            let name = r.name.unwrap_or_else(|| format!("#{i}"));
            // The audit trail names the registry's own tool filter so.
            if name == "registry" {
                return Err("rule name 'registry' is reserved".into());
            }
            let about_servers =
                !(r.groups.is_empty() && r.servers.is_empty() && r.tools.is_empty());
            if !r.models.is_empty() && about_servers {
                return Err(format!(
                    "rule '{name}' names models and servers: a rule covers either models or servers"
                ));
            }
            let models = match r.models.is_empty() {
                true => None,
                false => Some(globs(&r.models, "models", &name)?),
            };
            rules.push(Rule {
                models,
                subjects: Subjects::parse(&r.subjects, &format!("rule '{name}'"))?,
                groups: globs(&r.groups, "groups", &name)?,
                servers: globs(&r.servers, "servers", &name)?,
                tools: globs(&r.tools, "tools", &name)?,
                effect: r.effect,
                name,
            });
        }
        let limits = spec
            .limits
            .into_iter()
            .map(Limit::from_spec)
            .collect::<Result<Vec<_>, _>>()?;
        super::limits::check_unique(&limits)?;
        let mut redact = Vec::new();
        for (i, r) in spec.redact.into_iter().enumerate() {
            let what = format!("redact #{i}");
            let mut kinds = Vec::new();
            for k in &r.kinds {
                kinds.push(Kind::parse(k).ok_or_else(|| format!("{what}: unknown kind '{k}'"))?);
            }
            if kinds.is_empty() {
                kinds = Kind::ALL.to_vec();
            }
            redact.push(Redact {
                servers: globs(&r.servers, "servers", &what)?,
                tools: globs(&r.tools, "tools", &what)?,
                kinds,
            });
        }
        let approval = spec.approval.as_ref().map(Approval::parse).transpose()?;
        Ok(Policy {
            rules,
            limits,
            redact,
            approval,
        })
    }

    /// Whether `who` may call `tool` on `server`: deny wins, default deny.
    pub fn allows_tool(&self, who: &Principal, server: &Server, tool: &str) -> bool {
        self.decide_tool(who, server, tool).0
    }

    /// The same, with the rule that decided: the first deny rule that
    /// applies, else the first allow rule; none when no rule applies (the
    /// default denies).
    pub(crate) fn decide_tool(
        &self,
        who: &Principal,
        server: &Server,
        tool: &str,
    ) -> (bool, Option<&str>) {
        let applies =
            |r: &&Rule| r.subject_matches(who) && r.server_matches(server) && r.tool_matches(tool);
        let mut allowed_by = None;
        for r in self.rules.iter().filter(applies) {
            match r.effect {
                Effect::Deny => return (false, Some(&r.name)),
                Effect::Allow => {
                    allowed_by.get_or_insert(r.name.as_str());
                }
            }
        }
        (allowed_by.is_some(), allowed_by)
    }

    /// The kinds of personal data to redact from a result of `server`:
    /// `tool` for a tool call, `None` for a resource read.
    pub(crate) fn redaction(&self, server: &Server, tool: Option<&str>) -> Vec<Kind> {
        let mut kinds: Vec<Kind> = Vec::new();
        for r in &self.redact {
            let server_ok = r.servers.allows(&server.id);
            let tool_ok = r.tools.is_empty() || tool.is_some_and(|t| r.tools.lists(t));
            if server_ok && tool_ok {
                for k in &r.kinds {
                    if !kinds.contains(k) {
                        kinds.push(*k);
                    }
                }
            }
        }
        kinds
    }

    /// Whether `who` may use the agent API's model `name`: a rule naming
    /// it allows, deny wins, and what no rule names is denied.
    pub(crate) fn allows_model(&self, who: &Principal, name: &str) -> bool {
        let mut allowed = false;
        for r in &self.rules {
            let names = r.models.as_ref().is_some_and(|m| m.lists(name));
            if names && r.subject_matches(who) {
                match r.effect {
                    Effect::Deny => return false,
                    Effect::Allow => allowed = true,
                }
            }
        }
        allowed
    }

    /// Whether `who` may see `server` at all: some allow rule reaches it and no
    /// deny rule takes the whole server away.
    pub(crate) fn allows_server(&self, who: &Principal, server: &Server) -> bool {
        let reaching = |r: &&Rule| r.subject_matches(who) && r.server_matches(server);
        let whole_server_denied = self
            .rules
            .iter()
            .filter(reaching)
            .any(|r| r.effect == Effect::Deny && r.tools.is_empty());
        !whole_server_denied
            && self
                .rules
                .iter()
                .filter(reaching)
                .any(|r| r.effect == Effect::Allow)
    }
}

impl Rule {
    fn subject_matches(&self, who: &Principal) -> bool {
        self.subjects.matches(who)
    }

    fn server_matches(&self, s: &Server) -> bool {
        self.models.is_none() && self.groups.allows(&s.group) && self.servers.allows(&s.id)
    }

    fn tool_matches(&self, tool: &str) -> bool {
        self.tools.allows(tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: &str, group: &str) -> Server {
        let entry =
            format!(r#"{{"group":"{group}","endpoints":[{{"region":"us","url":"http://x/"}}]}}"#);
        Server::parse(id, &entry).unwrap()
    }

    fn who(subject: &str, teams: &[&str], roles: &[&str], via: &str) -> Principal {
        Principal {
            subject: subject.into(),
            teams: teams.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            scopes: vec![],
            via: via.into(),
            client: None,
        }
    }

    const DOC: &str = r#"{"rules":[
        {"name":"eng-dev","effect":"allow","subjects":{"teams":["eng"]},"groups":["dev"]},
        {"name":"sre-prod","effect":"allow","subjects":{"roles":["sre"]},"groups":["prod"]},
        {"name":"no-drops","effect":"deny","subjects":{"everyone":true},"tools":["drop_*"]},
        {"name":"ci","effect":"allow","subjects":{"service_accounts":["ci-*"]},"servers":["github"],"tools":["read_*"]},
        {"name":"contractor-out","effect":"deny","subjects":{"users":["eve"]},"servers":["github"]}
    ]}"#;

    #[test]
    fn model_rules_cover_models_only() {
        let doc = r#"{"rules":[
            {"name":"m","effect":"allow","subjects":{"teams":["eng"]},"models":["demo*"]},
            {"name":"no-big","effect":"deny","subjects":{"users":["eve"]},"models":["demo-big"]}
        ]}"#;
        let p = Policy::parse(doc).unwrap();
        let alice = who("alice", &["eng"], &[], "jwt:x");
        let eve = who("eve", &["eng"], &[], "jwt:x");
        assert!(p.allows_model(&alice, "demo-big") && p.allows_model(&eve, "demo"));
        assert!(!p.allows_model(&eve, "demo-big"), "deny wins");
        assert!(!p.allows_model(&alice, "gpt"), "default deny");
        assert!(
            !p.allows_server(&alice, &server("notes", "dev")),
            "a model rule grants no server"
        );
        let mixed = r#"{"rules":[{"effect":"allow","subjects":{"everyone":true},"servers":["a"],"models":["m"]}]}"#;
        assert!(Policy::parse(mixed)
            .unwrap_err()
            .contains("either models or servers"));
    }

    #[test]
    fn allow_deny_and_glob_precedence() {
        let p = Policy::parse(DOC).unwrap();
        let (dev, prod, gh) = (
            server("notes", "dev"),
            server("db", "prod"),
            server("github", "dev"),
        );
        let alice = who("alice", &["eng"], &[], "jwt:x");
        assert!(p.allows_tool(&alice, &dev, "echo"));
        assert!(
            !p.allows_tool(&alice, &dev, "drop_table"),
            "deny wins over allow"
        );
        assert!(!p.allows_server(&alice, &prod), "default deny");
        let bob = who("bob", &[], &["sre"], "jwt:x");
        assert!(p.allows_tool(&bob, &prod, "query") && !p.allows_server(&bob, &dev));
        let ci = who("ci-deploy", &[], &[], "apikey");
        assert!(p.allows_tool(&ci, &gh, "read_file"));
        assert!(!p.allows_tool(&ci, &gh, "write_file"));
        assert!(p.allows_server(&ci, &gh) && !p.allows_server(&ci, &dev));
        let impostor = who("ci-deploy", &[], &[], "jwt:x");
        assert!(
            !p.allows_server(&impostor, &gh),
            "service-account rules match API keys only"
        );
        let eve = who("eve", &["eng"], &[], "jwt:x");
        assert!(
            !p.allows_server(&eve, &gh),
            "a tool-less deny takes the whole server away"
        );
        assert!(p.allows_server(&eve, &dev));
        assert!(!p.allows_server(&Principal::anonymous(), &dev));
        // What decided, for the audit trail.
        assert_eq!(p.decide_tool(&alice, &dev, "echo"), (true, Some("eng-dev")));
        assert_eq!(
            p.decide_tool(&alice, &dev, "drop_table"),
            (false, Some("no-drops"))
        );
        assert_eq!(p.decide_tool(&alice, &prod, "query"), (false, None));
    }

    #[test]
    fn a_bad_document_is_rejected_whole() {
        for (doc, want) in [
            (
                r#"{"rules":[{"effect":"allow","subjects":{}}]}"#,
                "subjects names nobody",
            ),
            (
                r#"{"rules":[{"effect":"permit","subjects":{"everyone":true}}]}"#,
                "unknown variant `permit`",
            ),
            (
                r#"{"rules":[{"effect":"allow","subjects":{"everyone":true},"tools":[""]}]}"#,
                "tools: empty pattern",
            ),
            (r#"{"rule":[]}"#, "unknown field `rule`"),
            (
                r#"{"rules":[{"name":"registry","effect":"allow","subjects":{"everyone":true}}]}"#,
                "'registry' is reserved",
            ),
            ("[", "invalid policy document"),
        ] {
            let e = Policy::parse(doc).unwrap_err();
            assert!(e.contains(want), "{doc}: {e}");
        }
    }
}
