//! Rate-limit counters on Spin: `wasi:keyvalue` atomic increments in the
//! `sessions` store. Each counter counts in fixed windows (`rl/{key}/{end}`,
//! the window's end in ms), so the count inside a window is exact under
//! concurrency, but a caller can get up to twice the limit across a window
//! boundary, which the core's GCRA (used on Workers) does not allow. Daily
//! quotas are exact (one window per UTC day). The first count of a window
//! notes the window's key in the expiry index; the session sweep removes it
//! once the window ended. A refused call's unit is taken back at once, and
//! a call refused by another limit gives its units back (`release`), so a
//! window's count is the calls it allowed; a tally beside it
//! (`…/firsts`) makes sure a count that falls back to zero is not noted
//! again.

use super::kv::Index;
use crate::adapters::expiry_index;
use crate::governance::gcra::Quota;
use crate::governance::gcra::{day_of, Decision, DAY_MS};
use crate::ports::{check_in_turn, Clock, Limiter, PortError, Take};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

pub const PREFIX: &str = "rl/";
/// Beside a window's counter, how often it counted its first unit (see
/// `check`): only the first time is the window noted for the sweep.
const FIRSTS: &str = "/firsts";

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
        let counter = window_key(key, window_end);
        let count = increment(&counter, cost as i64)?;
        if count == cost as i64 {
            // A first unit: the window's very first, or one after its count
            // fell back to zero (given back). Only the very first notes the
            // window (and this tally) for the sweep, so a count bouncing off
            // zero adds nothing to the index.
            note_window(&counter, window_end).await;
        }
        // A count below zero (a unit given back after a sweep) counts as 0.
        if count <= i64::try_from(limit).unwrap_or(i64::MAX) {
            return Ok(Decision::Allow);
        }
        // Refused: the unit is given back, so the count is what was allowed.
        // Checked beside a call's other limits, a count left over the limit
        // would refuse the next callers for units nobody used.
        if let Err(e) = increment(&counter, -(cost as i64)) {
            tracing::warn!("rate limiter: a refused unit was not given back: {}", e.0);
        }
        Ok(Decision::Deny {
            retry_after_ms: window_end - now_ms,
        })
    }

    /// Homes are not needed here: every counter is its own atomic key.
    async fn check_together(
        &self,
        home: &str,
        takes: &[Take<'_>],
        now_ms: u64,
    ) -> Result<Vec<Decision>, PortError> {
        check_in_turn(self, home, takes, now_ms).await
    }

    /// Counted into the current window whatever it holds (a check of cost 0
    /// then refuses once the count is past the limit).
    async fn charge(&self, _home: &str, take: &Take<'_>, now_ms: u64) -> Result<(), PortError> {
        let (_, window_end) = window(take.quota, now_ms);
        let counter = window_key(take.key, window_end);
        let by = i64::try_from(take.cost).unwrap_or(i64::MAX);
        if increment(&counter, by)? == by {
            note_window(&counter, window_end).await;
        }
        Ok(())
    }

    /// Exact: the same window's count goes down by what the check added (a
    /// window that has ended is never read again).
    async fn release(
        &self,
        _home: &str,
        take: &Take<'_>,
        checked_ms: u64,
    ) -> Result<(), PortError> {
        let (_, window_end) = window(take.quota, checked_ms);
        // An ended window is never read again (and may be swept already).
        if super::SpinClock.now_ms() >= window_end {
            return Ok(());
        }
        let counter = window_key(take.key, window_end);
        increment(&counter, -(take.cost as i64)).map(drop)
    }
}

/// Notes `counter`'s window for the sweep, once per window. Best effort: a
/// failure leaves keys unswept, never a call refused for it.
async fn note_window(counter: &str, window_end: u64) {
    let firsts = format!("{counter}{FIRSTS}");
    let noted = async {
        if increment(&firsts, 1)? != 1 {
            return Ok(());
        }
        let sessions = spin_sdk::key_value::Store::open(super::kv::SESSION_STORE)
            .await
            .map_err(|e| PortError(format!("{e:?}")))?;
        expiry_index::register(&Index(&sessions), counter, window_end).await?;
        expiry_index::register(&Index(&sessions), &firsts, window_end).await
    };
    if let Err(e) = noted.await {
        tracing::warn!("rate limiter: window not noted for the sweep: {}", e.0);
    }
}

/// The key of counter `key`'s window ending at `window_end`.
fn window_key(key: &str, window_end: u64) -> String {
    format!("{PREFIX}{key}/{window_end}")
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
