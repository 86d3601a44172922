//! The audit trail: one structured event per decision the gateway takes,
//! written to the platform log as one line under the `audit` target, a JSON
//! object whose `event` names the decision. Each line is written inside the
//! request's span, so it names the trace (`request{trace_id=…}`).
//!
//! An event names the caller (subject, how it proved it, teams), the
//! server and tool, and what was decided and why (the policy rule, the
//! limit); never a token, an API key, a secret or an argument value.

use serde::Serialize;

/// One decision.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Audit<'a> {
    /// A caller proved who it is (or came anonymously where that is open).
    Authenticated {
        subject: &'a str,
        via: &'a str,
        teams: &'a [String],
    },
    /// A caller was turned away before anything else (HTTP `status`).
    Refused { status: u16, reason: &'a str },
    /// A tool call met the registry's tool filter and the access policy:
    /// `rule` is the policy rule that decided (`registry` for the server's
    /// own filter; none when no rule matched and the default denied).
    Policy {
        decision: Allowed,
        rule: Option<&'a str>,
        subject: &'a str,
        via: &'a str,
        server: &'a str,
        tool: &'a str,
    },
    /// A call refused by a rate limit or quota.
    Limited {
        limit: &'a str,
        subject: &'a str,
        via: &'a str,
        server: &'a str,
        tool: &'a str,
        retry_after_ms: u64,
    },
    /// Personal data redacted from one message a server sent: how many
    /// matches of each kind (never what matched).
    Redacted {
        server: &'a str,
        counts: std::collections::BTreeMap<&'static str, u32>,
    },
    /// An upstream region failed and the next was tried; `why` is the kind
    /// of failure (`unreachable`, `timeout`, `http_503`, ...), never the
    /// upstream's own words.
    Failover {
        server: &'a str,
        from: &'a str,
        to: &'a str,
        why: &'a str,
    },
    /// A call held for approval, and who may decide it (`user`: the caller
    /// in its client; `user or approvers`; `approvers`).
    ApprovalRequested {
        approval: &'a str,
        requester: &'a str,
        server: &'a str,
        tool: &'a str,
        decider: &'a str,
    },
    /// An approval decided, by whom, through which channel (`elicitation`,
    /// `input_required`, `endpoint`), and the call it was for where the
    /// channel knows it; `action` is the user's answer to a question
    /// (`accept`, `decline`, `cancel`).
    ApprovalDecided {
        approval: &'a str,
        approved: bool,
        by: &'a str,
        channel: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        requester: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool: Option<&'a str>,
    },
    /// An approval spent on the call it was for (`how`: `forwarded`, or
    /// `carried` into a multi-round call's next round).
    ApprovalUsed {
        approval: &'a str,
        requester: &'a str,
        server: &'a str,
        tool: &'a str,
        how: &'a str,
    },
    /// A user's connection to an OAuth-protected server: `connected`,
    /// `refreshed`, `refresh_failed`, `connect_failed`, `revoked`; `by` is
    /// who revoked it (the user or an admin); `why` an OAuth error code or
    /// the gateway's short reason. Never a token.
    Connection {
        #[serde(rename = "what")]
        event: &'a str,
        principal: &'a str,
        server: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<&'a str>,
    },
    /// A configuration document changed through the admin API: which one
    /// (`servers/x`, `policy`, `apikeys/{hash prefix}`), its new version,
    /// what was done, and by whom. Never the document's content.
    ConfigChanged {
        document: &'a str,
        version: u64,
        action: &'a str,
        subject: &'a str,
        via: &'a str,
    },
}

/// What a policy decision came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Allowed {
    Allow,
    Deny,
}

/// The kind of an upstream failure as the trail names it: the upstream's
/// own words (an error message that may echo arguments) and addresses stay
/// out.
pub(crate) fn failure_kind(message: &str) -> String {
    if let Some(code) = message.strip_prefix("HTTP ") {
        let code: String = code.chars().take_while(char::is_ascii_digit).collect();
        return format!("http_{code}");
    }
    if message.starts_with("timed out") {
        return "timeout".into();
    }
    if message.starts_with("unreachable") {
        return "unreachable".into();
    }
    "failed".into()
}

/// Records what a redaction of one message from `server` replaced, if
/// anything.
pub(crate) fn redactions(server: &str, tally: &crate::governance::pii::Tally) {
    if !tally.is_empty() {
        record(&Audit::Redacted {
            server,
            counts: tally.counts().into_iter().collect(),
        });
    }
}

/// The longest caller-chosen value kept, in bytes: audit fields and span
/// attribute values (a tool name, a resource URI, a request id) are cut there.
/// It lives here, below the collector, so the collector's cut is this one.
pub(crate) const MAX_VALUE: usize = 256;

/// `text` cut to [`MAX_VALUE`] bytes at a character boundary: the one cut
/// for audit fields and attribute values.
pub(crate) fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_VALUE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Writes `event` to the audit trail.
pub(crate) fn record(event: &Audit<'_>) {
    let line = serde_json::to_string(event).expect("an audit event serializes");
    tracing::info!(target: "audit", "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_json_object_named_by_its_kind() {
        let e = Audit::Policy {
            decision: Allowed::Deny,
            rule: Some("no-purge"),
            subject: "alice",
            via: "apikey",
            server: "notes",
            tool: "purge",
        };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "policy", "decision": "deny", "rule": "no-purge",
                "subject": "alice", "via": "apikey", "server": "notes", "tool": "purge"})
        );
    }

    #[test]
    fn a_failure_is_named_by_its_kind_only() {
        assert_eq!(
            failure_kind("HTTP 503: cannot mail gina@corp.example"),
            "http_503"
        );
        assert_eq!(failure_kind("timed out after 1000 ms"), "timeout");
        assert_eq!(
            failure_kind("unreachable: connection refused: http://x.test/mcp?key=s"),
            "unreachable"
        );
        assert_eq!(failure_kind("anything else"), "failed");
    }
}
