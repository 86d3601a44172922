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
    scheduled: bool,
}

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
    /// Adds `count` to `key`'s row of `day`.
    pub fn add(&mut self, day: &str, key: &UsageKey, count: &UsageCount) -> Added {
        let slot = (day.to_string(), key.clone());
        if let Some(row) = self.rows.get_mut(&slot) {
            row.add(count);
        } else if self.rows.len() < MAX_PENDING {
            self.rows.insert(slot, *count);
        } else {
            return Added::Alone;
        }
        if std::mem::replace(&mut self.scheduled, true) {
            Added::Waiting
        } else {
            Added::Flush
        }
    }

    /// Every waiting row, leaving none and no flush scheduled.
    pub fn take(&mut self) -> Vec<(String, UsageKey, UsageCount)> {
        self.scheduled = false;
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
        };
        let failed = UsageCount {
            calls: 1,
            errors: 1,
            upstream_ms: 7,
        };
        assert_eq!(p.add("2026-12-03", &key("echo"), &one), Added::Flush);
        assert_eq!(p.add("2026-12-03", &key("echo"), &failed), Added::Waiting);
        assert_eq!(p.add("2026-12-03", &key("purge"), &one), Added::Waiting);
        assert_eq!(p.add("2026-12-04", &key("echo"), &one), Added::Waiting);
        let rows = p.take();
        assert_eq!(rows.len(), 3);
        let echo = UsageCount {
            calls: 2,
            errors: 1,
            upstream_ms: 12,
        };
        assert!(rows.contains(&("2026-12-03".into(), key("echo"), echo)));
        assert!(p.take().is_empty());
        assert_eq!(p.add("2026-12-03", &key("echo"), &one), Added::Flush);
        // Full: a new row is written alone, a waiting one still merges.
        for i in 1..MAX_PENDING {
            assert_eq!(
                p.add("2026-12-03", &key(&i.to_string()), &one),
                Added::Waiting
            );
        }
        assert_eq!(p.add("2026-12-03", &key("new"), &one), Added::Alone);
        assert_eq!(p.add("2026-12-03", &key("echo"), &one), Added::Waiting);
        assert_eq!(p.take().len(), MAX_PENDING);
    }
}
