//! Usage for attribution: what one `tools/call` adds to its UTC day's row
//! for the caller's teams and principal, the server and the tool (a call,
//! an error, the time its upstream attempts took), read off the request's
//! finished batch and added to the [`Usage`](crate::ports::Usage) store
//! after the response.

use super::batch::{Batch, Kind};
use crate::ports::{UsageCount, UsageKey};

use super::collect::{MODEL_CALL_SPAN, TOOL_CALL_SPAN};

/// `(day, row, what to add)` for each tool call a finished request made
/// that reached the guard (so its server and tool are known): the request
/// itself when it is a `tools/call`, each tool call of an agent request;
/// and each model call of an agent request (server `models/{name}`, no
/// tool, its tokens).
pub(crate) fn rows(batch: &Batch) -> Vec<(String, UsageKey, UsageCount)> {
    let Some(root) = batch.root() else {
        return Vec::new();
    };
    let Some(day) = day_of(root.end_ns) else {
        return Vec::new();
    };
    let key = |server: &str, tool: &str| UsageKey {
        team: root.str("mcp_edge.teams").unwrap_or("").to_string(),
        principal: format!(
            "{}|{}",
            root.str("mcp_edge.auth.via").unwrap_or(""),
            root.str("enduser.id").unwrap_or("")
        ),
        server: server.to_string(),
        tool: tool.to_string(),
    };
    let calls = std::iter::once(root).chain(
        batch
            .spans
            .iter()
            .filter(|s| s.name == TOOL_CALL_SPAN && s.parent.is_some()),
    );
    let mut out = Vec::new();
    for call in calls {
        if call.str("mcp.method.name") != Some("tools/call") {
            continue;
        }
        let (Some(server), Some(tool)) = (
            call.str("mcp_edge.server.id"),
            call.str("mcp_edge.tool.name"),
        ) else {
            continue;
        };
        let upstream_ns: u64 = batch
            .spans
            .iter()
            // The call's own attempts (not the catalog's listing).
            .filter(|s| s.kind == Kind::Client && s.str("mcp.method.name") == Some("tools/call"))
            .filter(|s| call.parent.is_none() || s.parent == Some(call.id))
            .map(|s| s.end_ns - s.start_ns)
            .sum();
        let count = UsageCount {
            calls: 1,
            errors: u64::from(call.attr("error.type").is_some()),
            upstream_ms: upstream_ns / 1_000_000,
            ..UsageCount::default()
        };
        out.push((day.clone(), key(server, tool), count));
    }
    for model in batch.spans.iter().filter(|s| s.name == MODEL_CALL_SPAN) {
        let Some(name) = model.str("mcp_edge.model") else {
            continue;
        };
        let tokens = |k: &str| match model.attr(k) {
            Some(super::batch::Attr::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        let count = UsageCount {
            calls: 1,
            errors: u64::from(model.attr("error.type").is_some()),
            upstream_ms: (model.end_ns - model.start_ns) / 1_000_000,
            input_tokens: tokens("gen_ai.usage.input_tokens"),
            output_tokens: tokens("gen_ai.usage.output_tokens"),
        };
        out.push((day.clone(), key(&format!("models/{name}"), ""), count));
    }
    out
}

/// The UTC day (`YYYY-MM-DD`) of a time in nanoseconds since the epoch.
pub(crate) fn day_of(ns: u64) -> Option<String> {
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    Some(
        chrono::DateTime::from_timestamp(secs, 0)?
            .date_naive()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0).as_deref(), Some("1970-01-01"));
        // 2026-12-03T23:59:59Z and a second later.
        assert_eq!(
            day_of(1_796_342_399 * 1_000_000_000).as_deref(),
            Some("2026-12-03")
        );
        assert_eq!(
            day_of(1_796_342_400 * 1_000_000_000).as_deref(),
            Some("2026-12-04")
        );
    }
}
