//! Human approval of risky tool calls: which calls need it (the policy's
//! `approval` section), the approval record every store keeps, and the state
//! transitions every store applies the same way (pending, then approved or
//! rejected by an approver, then consumed exactly once by the call).
//!
//! A record is bound to who asked, the server, the tool and a hash of the
//! arguments: its id is derived from them, so retrying the same call finds
//! the same record and a call with other arguments finds none.

use super::subjects::{SubjectSpec, Subjects};
use crate::config::glob::Glob;
use crate::config::Server;
use crate::identity::{sha256_hex, Principal};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The policy's `approval` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// Who may approve or reject pending calls.
    pub approvers: SubjectSpec,
    /// Calls that always need approval.
    #[serde(default)]
    pub tools: Vec<ToolsSpec>,
    /// Also require approval for tools their server marks
    /// `destructiveHint: true`.
    #[serde(default)]
    pub destructive_hint: bool,
    /// How long a pending or approved call stays valid.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// How long to wait for the user's answer to an elicitation.
    #[serde(default = "default_elicitation_timeout")]
    pub elicitation_timeout_secs: u64,
}

fn default_ttl() -> u64 {
    900
}

fn default_elicitation_timeout() -> u64 {
    120
}

/// Servers and tools (globs; empty lists mean any).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsSpec {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub tools: Vec<String>,
}

/// The checked `approval` section.
#[derive(Debug, Clone)]
pub struct Approval {
    approvers: Subjects,
    tools: Vec<(Vec<Glob>, Vec<Glob>)>,
    destructive_hint: bool,
    pub ttl_ms: u64,
    pub elicitation_timeout_ms: u64,
}

impl Approval {
    pub fn parse(spec: &ApprovalSpec) -> Result<Approval, String> {
        let what = "approval";
        let globs = |list: &[String], field: &str| -> Result<Vec<Glob>, String> {
            list.iter()
                .map(|p| Glob::new(p).map_err(|e| format!("{what}: {field}: {e}")))
                .collect()
        };
        let mut tools = Vec::new();
        for t in &spec.tools {
            tools.push((globs(&t.servers, "servers")?, globs(&t.tools, "tools")?));
        }
        if spec.ttl_secs == 0 || spec.elicitation_timeout_secs == 0 {
            return Err(format!(
                "{what}: ttl_secs and elicitation_timeout_secs must be positive"
            ));
        }
        Ok(Approval {
            approvers: Subjects::parse(&spec.approvers, "approval: approvers")?,
            tools,
            destructive_hint: spec.destructive_hint,
            ttl_ms: spec.ttl_secs.saturating_mul(1000),
            elicitation_timeout_ms: spec.elicitation_timeout_secs.saturating_mul(1000),
        })
    }

    /// Whether calling `tool` on `server` needs a human's approval;
    /// `destructive` is the server's `destructiveHint` for the tool.
    pub fn required(&self, server: &Server, tool: &str, destructive: bool) -> bool {
        let any =
            |globs: &[Glob], name: &str| globs.is_empty() || globs.iter().any(|g| g.matches(name));
        (self.destructive_hint && destructive)
            || self
                .tools
                .iter()
                .any(|(servers, tools)| any(servers, &server.id) && any(tools, tool))
    }

    /// Whether the server's `destructiveHint` matters (the catalog is read).
    pub fn uses_destructive_hint(&self) -> bool {
        self.destructive_hint
    }

    pub fn is_approver(&self, p: &Principal) -> bool {
        self.approvers.matches(p)
    }
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
}

/// How the decision is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// An approver decides through the approval endpoint.
    Approver,
    /// The user decides in their MCP client (elicitation).
    Elicitation,
}

/// One call waiting for, or carrying, a human decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub channel: Channel,
    /// Who made the call (`via|subject`, as sessions are bound).
    pub requester: String,
    pub server: String,
    pub tool: String,
    /// The arguments as the caller sent them, for the approver to read.
    pub arguments: Value,
    pub arguments_sha256: String,
    pub status: Status,
    pub created_ms: u64,
    /// After this the record is gone; approving extends it by the TTL so the
    /// caller has time to retry.
    pub expires_ms: u64,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_ms: Option<u64>,
}

/// A human decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

/// A decision as a store applies it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub by: String,
    pub now_ms: u64,
    /// How long an approved record stays usable from now.
    pub ttl_ms: u64,
}

/// What deciding did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decided {
    /// No live record under that id.
    NotFound,
    /// The decision took effect.
    Applied { record: ApprovalRecord },
    /// Someone decided first; the record as it stands.
    AlreadyDecided { record: ApprovalRecord },
}

/// The hash that binds a record to its arguments: SHA-256 of the arguments'
/// canonical JSON (object keys sorted), so key order does not matter.
pub fn arguments_sha256(arguments: &Value) -> String {
    sha256_hex(canonical(arguments).as_bytes())
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::from(k.as_str()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The id of the approver-channel record for one call: the same requester,
/// server, tool and arguments always give the same id.
pub fn call_id(requester: &str, server: &str, tool: &str, arguments_sha256: &str) -> String {
    let bound = format!("{requester}\n{server}\n{tool}\n{arguments_sha256}");
    format!("ap_{}", &sha256_hex(bound.as_bytes())[..40])
}

impl ApprovalRecord {
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }
}

/// The transitions, applied by every store to the record it holds (`None`
/// when it holds none). Stores run them atomically where the platform can.
pub mod transition {
    use super::*;

    /// Opening: a live record under the id stays; otherwise `fresh` is stored.
    pub fn open(
        held: Option<ApprovalRecord>,
        fresh: &ApprovalRecord,
        now_ms: u64,
    ) -> ApprovalRecord {
        match held {
            Some(r) if r.is_live(now_ms) => r,
            _ => fresh.clone(),
        }
    }

    /// Deciding: only a live pending record changes.
    pub fn decide(held: Option<ApprovalRecord>, d: &Decision) -> Decided {
        match held {
            Some(r) if !r.is_live(d.now_ms) => Decided::NotFound,
            None => Decided::NotFound,
            Some(r) if r.status != Status::Pending => Decided::AlreadyDecided { record: r },
            Some(mut r) => {
                r.status = match d.verdict {
                    Verdict::Approve => Status::Approved,
                    Verdict::Reject => Status::Rejected,
                };
                r.decided_by = Some(d.by.clone());
                r.decided_ms = Some(d.now_ms);
                if d.verdict == Verdict::Approve {
                    r.expires_ms = d.now_ms.saturating_add(d.ttl_ms);
                }
                Decided::Applied { record: r }
            }
        }
    }

    /// Consuming: a live approved record is used up (the store deletes it);
    /// `true` for exactly one caller.
    pub fn consume(held: Option<&ApprovalRecord>, now_ms: u64) -> bool {
        held.is_some_and(|r| r.is_live(now_ms) && r.status == Status::Approved)
    }
}

#[cfg(test)]
mod tests {
    use super::transition::*;
    use super::*;
    use serde_json::json;

    fn record(now: u64) -> ApprovalRecord {
        let args = json!({"id": 7});
        let hash = arguments_sha256(&args);
        ApprovalRecord {
            id: call_id("apikey|bob", "notes", "delete", &hash),
            channel: Channel::Approver,
            requester: "apikey|bob".into(),
            server: "notes".into(),
            tool: "delete".into(),
            arguments: args,
            arguments_sha256: hash,
            status: Status::Pending,
            created_ms: now,
            expires_ms: now + 1000,
            decided_by: None,
            decided_ms: None,
        }
    }

    fn decision(verdict: Verdict, now_ms: u64) -> Decision {
        Decision {
            verdict,
            by: "apikey|ann".into(),
            now_ms,
            ttl_ms: 5000,
        }
    }

    #[test]
    fn ids_bind_requester_tool_and_arguments_but_not_key_order() {
        let a = arguments_sha256(&json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}));
        let b = arguments_sha256(&json!({"y": [1, {"a": 1, "b": 2}], "x": 1}));
        assert_eq!(a, b);
        let c = arguments_sha256(&json!({"x": 2, "y": [1, {"a": 1, "b": 2}]}));
        assert_ne!(a, c);
        assert_ne!(call_id("r", "s", "t", &a), call_id("r", "s", "t", &c));
        assert_ne!(call_id("r", "s", "t", &a), call_id("q", "s", "t", &a));
        assert_ne!(call_id("r", "s", "t", &a), call_id("r", "s", "u", &a));
    }

    #[test]
    fn a_pending_record_is_decided_once_and_consumed_once() {
        let r = record(0);
        let held = open(None, &r, 0);
        assert_eq!(held.status, Status::Pending);
        assert!(!consume(Some(&held), 10), "pending is not usable");
        let Decided::Applied { record: approved } =
            decide(Some(held), &decision(Verdict::Approve, 10))
        else {
            panic!("pending record not decided")
        };
        assert_eq!(approved.decided_by.as_deref(), Some("apikey|ann"));
        assert_eq!(
            approved.expires_ms, 5010,
            "approval extends the record by the TTL"
        );
        let again = decide(Some(approved.clone()), &decision(Verdict::Reject, 20));
        assert!(matches!(again, Decided::AlreadyDecided { .. }));
        assert!(consume(Some(&approved), 20));
        assert!(!consume(None, 20), "after use the store holds nothing");
    }

    #[test]
    fn rejected_and_expired_records_are_not_usable() {
        let r = record(0);
        let Decided::Applied { record: rejected } =
            decide(Some(r.clone()), &decision(Verdict::Reject, 5))
        else {
            panic!()
        };
        assert!(!consume(Some(&rejected), 6));
        assert_eq!(
            decide(Some(r.clone()), &decision(Verdict::Approve, 1000)),
            Decided::NotFound
        );
        let mut approved = r.clone();
        approved.status = Status::Approved;
        assert!(!consume(Some(&approved), 1000), "expired");
        // An expired record is replaced when the call is made again.
        assert_eq!(open(Some(approved), &record(2000), 2000).created_ms, 2000);
    }

    #[test]
    fn approval_sections_parse_and_match() {
        let spec: ApprovalSpec = serde_json::from_value(json!({
            "approvers": {"roles": ["approver"]},
            "tools": [{"servers": ["db"], "tools": ["drop_*"]}],
            "destructive_hint": true
        }))
        .unwrap();
        let a = Approval::parse(&spec).unwrap();
        let db =
            Server::parse("db", r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#).unwrap();
        assert!(a.required(&db, "drop_table", false));
        assert!(!a.required(&db, "select", false));
        assert!(a.required(&db, "select", true), "destructiveHint opted in");
        assert_eq!(a.ttl_ms, 900_000);
        let nobody: ApprovalSpec = serde_json::from_value(json!({"approvers": {}})).unwrap();
        assert!(Approval::parse(&nobody)
            .unwrap_err()
            .contains("names nobody"));
    }
}
