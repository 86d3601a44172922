//! The approval record every store keeps, the hash and id that bind it to
//! one call, and the transitions every store applies the same way.

use super::Decider;
use crate::identity::sha256_hex;
use serde::{Deserialize, Serialize};

/// Records stored before deciders existed were all for approvers.
fn approvers() -> Decider {
    Decider::Approvers
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
    /// Who decides it.
    #[serde(default = "approvers")]
    pub decider: Decider,
    /// Random per opening: claims on a reopened id never meet the old ones.
    #[serde(default)]
    pub nonce: String,
    /// Who made the call ([`Principal::key`], as sessions are bound).
    pub requester: String,
    /// The requester's subject as their identity source names it: an
    /// approver with the same subject, whatever credential they present,
    /// is taken for the requester (a second credential is no second pair
    /// of eyes).
    #[serde(default)]
    pub requester_subject: String,
    pub server: String,
    pub tool: String,
    /// The arguments as the caller sent them (JSON text, exactly as
    /// forwarded), for the decider to read.
    #[serde(deserialize_with = "json_text")]
    pub arguments: String,
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
    // The wire name predates the variant's: Durable Objects of an older
    // deployment still answer with it.
    #[serde(rename = "already_decided")]
    Already { record: ApprovalRecord },
}

/// The hash that binds a record to its arguments: the digest of the JSON
/// text forwarded (key order and whitespace ignored, numbers as written;
/// see [`canonical`](crate::protocol::canonical)), so no two different
/// calls share a hash.
pub(crate) fn arguments_sha256(arguments_json: &str) -> Result<String, String> {
    crate::protocol::canonical::digest_hex(arguments_json)
}

/// Reads stored arguments: JSON text, or (records from before) a JSON value.
fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(text) => Ok(text),
        other => Ok(other.to_string()),
    }
}

/// The id of the approver-channel record for one call: the same requester,
/// server, tool and arguments always give the same id.
pub(crate) fn call_id(requester: &str, server: &str, tool: &str, arguments_sha256: &str) -> String {
    let bound = format!("{requester}\n{server}\n{tool}\n{arguments_sha256}");
    format!("ap_{}", &sha256_hex(bound.as_bytes())[..40])
}

impl ApprovalRecord {
    pub(crate) fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_ms
    }

    /// The record as the approval endpoint shows it: the arguments as JSON
    /// exactly as they will be forwarded (not re-encoded through floats).
    pub(crate) fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct View<'a> {
            id: &'a str,
            channel: Channel,
            decider: Decider,
            requester: &'a str,
            server: &'a str,
            tool: &'a str,
            arguments: &'a serde_json::value::RawValue,
            arguments_sha256: &'a str,
            status: Status,
            created_ms: u64,
            expires_ms: u64,
            decided_by: Option<&'a str>,
            decided_ms: Option<u64>,
        }
        let fallback;
        let arguments: &serde_json::value::RawValue = match serde_json::from_str(&self.arguments) {
            Ok(raw) => raw,
            Err(_) => {
                fallback =
                    serde_json::value::to_raw_value(&self.arguments).expect("a string serializes");
                &fallback
            }
        };
        serde_json::to_vec(&View {
            id: &self.id,
            channel: self.channel,
            decider: self.decider,
            requester: &self.requester,
            server: &self.server,
            tool: &self.tool,
            arguments,
            arguments_sha256: &self.arguments_sha256,
            status: self.status,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            decided_by: self.decided_by.as_deref(),
            decided_ms: self.decided_ms,
        })
        .expect("a record serializes")
    }
}

/// The transitions, applied by every store to the record it holds (`None`
/// when it holds none). Stores run them atomically where the platform can.
pub(crate) mod transition {
    use super::*;

    /// Opening: a live record under the id stays; otherwise `fresh` is stored.
    pub(crate) fn open(
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
    pub(crate) fn decide(held: Option<ApprovalRecord>, d: &Decision) -> Decided {
        match held {
            Some(r) if !r.is_live(d.now_ms) => Decided::NotFound,
            None => Decided::NotFound,
            Some(r) if r.status != Status::Pending => Decided::Already { record: r },
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
    pub(crate) fn consume(held: Option<&ApprovalRecord>, now_ms: u64) -> bool {
        held.is_some_and(|r| r.is_live(now_ms) && r.status == Status::Approved)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::transition::*;
    use super::*;

    /// A pending approver-decided record, created at `now`.
    pub(in crate::governance::approval) fn sample(now: u64) -> ApprovalRecord {
        let args = r#"{"id": 7}"#;
        let hash = arguments_sha256(args).unwrap();
        ApprovalRecord {
            id: call_id("apikey|bob", "notes", "delete", &hash),
            channel: Channel::Approver,
            decider: Decider::Approvers,
            nonce: "n".into(),
            requester: "apikey|bob".into(),
            requester_subject: "bob".into(),
            server: "notes".into(),
            tool: "delete".into(),
            arguments: args.into(),
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
    fn ids_bind_requester_tool_and_exact_arguments_but_not_key_order() {
        let h = |args: &str| arguments_sha256(args).unwrap();
        let a = h(r#"{"x": 1, "y": [1, {"b": 2, "a": 1}]}"#);
        assert_eq!(a, h(r#"{"y":[1,{"a":1,"b":2}],"x":1}"#));
        let c = h(r#"{"x": 2, "y": [1, {"a": 1, "b": 2}]}"#);
        assert_ne!(a, c);
        assert_ne!(
            h(r#"{"n": 100000000000000000001}"#),
            h(r#"{"n": 100000000000000000000}"#),
            "large integers are not collapsed"
        );
        assert_ne!(h(r#"{"n": 1e20}"#), h(r#"{"n": 100000000000000000000}"#));
        assert!(arguments_sha256(r#"{"a":1,"a":2}"#).is_err());
        assert_ne!(call_id("r", "s", "t", &a), call_id("r", "s", "t", &c));
        assert_ne!(call_id("r", "s", "t", &a), call_id("q", "s", "t", &a));
        assert_ne!(call_id("r", "s", "t", &a), call_id("r", "s", "u", &a));
    }

    #[test]
    fn stored_arguments_read_as_text_or_value() {
        let mut v = serde_json::to_value(sample(0)).unwrap();
        assert_eq!(v["arguments"], r#"{"id": 7}"#);
        v["arguments"] = serde_json::json!({"id": 7});
        let old: ApprovalRecord = serde_json::from_value(v).unwrap();
        assert_eq!(old.arguments, r#"{"id":7}"#);
    }

    #[test]
    fn a_pending_record_is_decided_once_and_consumed_once() {
        let r = sample(0);
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
        assert!(matches!(again, Decided::Already { .. }));
        assert!(consume(Some(&approved), 20));
        assert!(!consume(None, 20), "after use the store holds nothing");
    }

    #[test]
    fn rejected_and_expired_records_are_not_usable() {
        let r = sample(0);
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
        assert_eq!(open(Some(approved), &sample(2000), 2000).created_ms, 2000);
    }

    #[test]
    fn the_store_answers_keep_their_wire_names() {
        // The Workers approval object sends these as JSON; a deployment
        // rolling over runs old and new code side by side.
        let record = sample(1);
        let already = serde_json::to_value(Decided::Already {
            record: record.clone(),
        })
        .unwrap();
        assert_eq!(already["outcome"], "already_decided");
        let applied = serde_json::to_value(Decided::Applied { record }).unwrap();
        assert_eq!(applied["outcome"], "applied");
        let none = serde_json::to_value(Decided::NotFound).unwrap();
        assert_eq!(none["outcome"], "not_found");
    }
}
