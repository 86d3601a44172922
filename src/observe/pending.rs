//! Usage rows waiting in an instance that serves many calls (a Workers
//! isolate), merged by day and key, so the store takes one write per row
//! and flush instead of one per call. Only the Workers adapter uses it: a
//! Spin instance serves one request.
#![cfg_attr(not(feature = "workers"), allow(dead_code))]

use crate::ports::{UsageCount, UsageKey};
use std::collections::BTreeMap;

/// Rows waiting to be written, merged by day and key: one write per row
/// and flush instead of one per call, for a store where every write is a round trip
/// (a Durable Object call costs about as much CPU as the call it counts;
/// issue 14). The first row added after a flush schedules the next one
/// ([`Pending::add`] says so); the counts are sums, so merging loses nothing.
#[derive(Default)]
pub struct Pending {
    rows: BTreeMap<(String, UsageKey), UsageCount>,
    /// When the scheduled flush was scheduled (ms), if one is.
    scheduled: Option<u64>,
}

/// A scheduled flush not run this long after (its work was dropped) is
/// taken for dead: the next add schedules another.
const STALE_MS: u64 = 10_000;

/// The most rows kept waiting; past it, a new row is written at once.
const MAX_PENDING: usize = 4096;

/// What an add asks of its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// No flush was scheduled: wait, then write [`Pending::take`].
    Flush,
    /// The scheduled flush writes it.
    Waiting,
    /// Too many rows wait: write this one alone now.
    Alone,
}

impl Pending {
    /// Adds `count` to `key`'s row of `day`, at `now_ms`.
    pub fn add(&mut self, day: &str, key: &UsageKey, count: &UsageCount, now_ms: u64) -> Added {
        let slot = (day.to_string(), key.clone());
        if let Some(row) = self.rows.get_mut(&slot) {
            row.add(count);
        } else if self.rows.len() < MAX_PENDING {
            self.rows.insert(slot, *count);
        } else {
            return Added::Alone;
        }
        match self.scheduled {
            Some(at) if now_ms.saturating_sub(at) < STALE_MS => Added::Waiting,
            _ => {
                self.scheduled = Some(now_ms);
                Added::Flush
            }
        }
    }

    /// Every waiting row, leaving none and no flush scheduled.
    pub fn take(&mut self) -> Vec<(String, UsageKey, UsageCount)> {
        self.scheduled = None;
        std::mem::take(&mut self.rows)
            .into_iter()
            .map(|((day, key), count)| (day, key, count))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tool: &str) -> UsageKey {
        UsageKey {
            team: "eng".into(),
            principal: "api_key|alice".into(),
            server: "notes".into(),
            tool: tool.into(),
        }
    }

    #[test]
    fn pending_rows_merge_and_one_add_per_flush_schedules_it() {
        let mut p = Pending::default();
        let one = UsageCount {
            calls: 1,
            errors: 0,
            upstream_ms: 5,
            ..Default::default()
        };
        let failed = UsageCount {
            calls: 1,
            errors: 1,
            upstream_ms: 7,
            ..Default::default()
        };
        assert_eq!(p.add("2026-12-03", &key("echo"), &one, 0), Added::Flush);
        assert_eq!(
            p.add("2026-12-03", &key("echo"), &failed, 0),
            Added::Waiting
        );
        assert_eq!(p.add("2026-12-03", &key("purge"), &one, 0), Added::Waiting);
        assert_eq!(p.add("2026-12-04", &key("echo"), &one, 0), Added::Waiting);
        let rows = p.take();
        assert_eq!(rows.len(), 3);
        let echo = UsageCount {
            calls: 2,
            errors: 1,
            upstream_ms: 12,
            ..Default::default()
        };
        assert!(rows.contains(&("2026-12-03".into(), key("echo"), echo)));
        assert!(p.take().is_empty());
        assert_eq!(p.add("2026-12-03", &key("echo"), &one, 0), Added::Flush);
        // Full: a new row is written alone, a waiting one still merges.
        for i in 1..MAX_PENDING {
            assert_eq!(
                p.add("2026-12-03", &key(&i.to_string()), &one, 0),
                Added::Waiting
            );
        }
        assert_eq!(p.add("2026-12-03", &key("new"), &one, 0), Added::Alone);
        assert_eq!(p.add("2026-12-03", &key("echo"), &one, 0), Added::Waiting);
        assert_eq!(p.take().len(), MAX_PENDING);
        // A flush whose work was dropped does not hold rows forever.
        assert_eq!(p.add("2026-12-03", &key("echo"), &one, 0), Added::Flush);
        assert_eq!(
            p.add("2026-12-03", &key("echo"), &one, 9_999),
            Added::Waiting
        );
        assert_eq!(
            p.add("2026-12-03", &key("echo"), &one, 10_000),
            Added::Flush
        );
        assert_eq!(p.take()[0].2.calls, 3);
    }
}
