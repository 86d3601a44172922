//! Rate-limit counters on Spin: `wasi:keyvalue` atomic increments in the
//! `sessions` store. Each counter counts in fixed windows (`rl/{key}/{end}`,
//! the window's end in ms), so the count inside a window is exact under
//! concurrency, but a caller can get up to twice the limit across a window
//! boundary, which the core's GCRA (used on Workers) does not allow. Daily
//! quotas are exact (one window per UTC day). The first count of a window
//! notes the window's key in the expiry index; the session sweep removes it
//! once the window ended. A refused call's unit is taken back at once, and
//! a call refused by another limit gives its units back (`release`), so a
//! window's count is the calls it allowed.

use super::kv::Index;
use crate::adapters::expiry_index;
use crate::governance::gcra::Quota;
use crate::governance::gcra::{day_of, Decision, DAY_MS};
use crate::ports::{Limiter, PortError};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

pub const PREFIX: &str = "rl/";
/// Added to a window's counter at its first count (see `check`); counts
/// stay far below it.
const MARK: i64 = 1 << 40;

#[derive(Clone, Copy, Default)]
pub struct AtomicLimiter;

impl Limiter for AtomicLimiter {
    async fn check(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<Decision, PortError> {
        let (limit, window_end) = window(quota, now_ms);
        let counter = format!("{PREFIX}{key}/{window_end}");
        let count = increment(&counter, cost as i64)?;
        if count as u64 == cost {
            // The window's first count: marked, so a count that falls back
            // to zero (released, undone) never looks first again and the
            // window is noted in the expiry index once.
            increment(&counter, MARK)?;
            if let Ok(sessions) = spin_sdk::key_value::Store::open(super::kv::SESSION_STORE).await {
                expiry_index::register(&Index(&sessions), &counter, window_end).await?;
            }
        }
        let used = if count >= MARK { count - MARK } else { count };
        if used as u64 <= limit {
            return Ok(Decision::Allow);
        }
        // Refused: the unit is given back, so the count is what was allowed.
        // Checked beside a call's other limits, a count left over the limit
        // would refuse the next callers for units nobody used.
        increment(&counter, -(cost as i64))?;
        Ok(Decision::Deny {
            retry_after_ms: window_end - now_ms,
        })
    }

    /// Exact: the same window's count goes down by what the check added (a
    /// window that has ended is never read again).
    async fn release(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        checked_ms: u64,
    ) -> Result<(), PortError> {
        let (_, window_end) = window(quota, checked_ms);
        increment(&format!("{PREFIX}{key}/{window_end}"), -(cost as i64)).map(drop)
    }
}

/// The limit and the end of the fixed window `now_ms` falls in.
fn window(quota: Quota, now_ms: u64) -> (u64, u64) {
    match quota {
        Quota::Rate(rate) => (rate.limit, (now_ms / rate.window_ms + 1) * rate.window_ms),
        Quota::Daily(limit) => (limit, (day_of(now_ms) + 1) * DAY_MS),
    }
}

/// Adds `delta` to `counter` atomically; the count after.
fn increment(counter: &str, delta: i64) -> Result<i64, PortError> {
    let bucket = store::open(super::kv::SESSION_STORE)
        .map_err(|e| PortError(format!("rate limiter store: {e:?}")))?;
    atomics::increment(&bucket, counter, delta)
        .map_err(|e| PortError(format!("rate limiter increment: {e:?}")))
}
