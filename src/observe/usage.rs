//! Usage for attribution: what one `tools/call` adds to its UTC day's row
//! for the caller's teams and principal, the server and the tool (a call,
//! an error, the time its upstream attempts took), read off the request's
//! finished batch and added to the [`Usage`](crate::ports::Usage) store
//! after the response.

use super::batch::{Batch, Kind};
use crate::ports::{UsageCount, UsageKey};

/// `(day, row, what to add)` for a finished `tools/call` that reached the
/// guard (so its server and tool are known); `None` for anything else.
pub(crate) fn row(batch: &Batch) -> Option<(String, UsageKey, UsageCount)> {
    let root = batch.root()?;
    if root.str("mcp.method.name") != Some("tools/call") {
        return None;
    }
    let server = root.str("mcp_edge.server.id")?;
    let tool = root.str("mcp_edge.tool.name")?;
    let principal = format!(
        "{}|{}",
        root.str("mcp_edge.auth.via").unwrap_or(""),
        root.str("enduser.id").unwrap_or("")
    );
    let upstream_ns: u64 = batch
        .spans
        .iter()
        // The call's own attempts (not the catalog's listing).
        .filter(|s| s.kind == Kind::Client && s.str("mcp.method.name") == Some("tools/call"))
        .map(|s| s.end_ns - s.start_ns)
        .sum();
    let day = day_of(root.end_ns)?;
    let key = UsageKey {
        team: root.str("mcp_edge.teams").unwrap_or("").to_string(),
        principal,
        server: server.to_string(),
        tool: tool.to_string(),
    };
    let count = UsageCount {
        calls: 1,
        errors: u64::from(root.attr("error.type").is_some()),
        upstream_ms: upstream_ns / 1_000_000,
    };
    Some((day, key, count))
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
