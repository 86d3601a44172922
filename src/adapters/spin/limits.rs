//! Rate-limit counters on Spin: `wasi:keyvalue` atomic increments in the
//! `sessions` store. Each counter counts in fixed windows (`rl/{key}/{end}`,
//! the window's end in ms), so the count inside a window is exact under
//! concurrency, but a caller can get up to twice the limit across a window
//! boundary, which the core's GCRA (used on Workers) does not allow. Daily
//! quotas are exact (one window per UTC day). Old windows are removed by the
//! session sweep.

use crate::governance::gcra::{day_of, Decision, DAY_MS};
use crate::governance::limits::Quota;
use crate::ports::{Limiter, PortError};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

pub const PREFIX: &str = "rl/";

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
        let (limit, window_end) = match quota {
            Quota::Rate(rate) => (rate.limit, (now_ms / rate.window_ms + 1) * rate.window_ms),
            Quota::Daily(limit) => (limit, (day_of(now_ms) + 1) * DAY_MS),
        };
        let bucket = store::open(super::kv::SESSION_STORE)
            .map_err(|e| PortError(format!("rate limiter store: {e:?}")))?;
        let count =
            atomics::increment(&bucket, &format!("{PREFIX}{key}/{window_end}"), cost as i64)
                .map_err(|e| PortError(format!("rate limiter increment: {e:?}")))?;
        Ok(if count as u64 <= limit {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after_ms: window_end - now_ms,
            }
        })
    }
}

/// Whether a counter key (`{prefix}{name}/{end}`, rate-limit windows and
/// approval claims alike) has reached its end.
pub fn ended(key: &str, prefix: &str, now_ms: u64) -> bool {
    key.strip_prefix(prefix)
        .and_then(|k| k.rsplit_once('/'))
        .and_then(|(_, end)| end.parse::<u64>().ok())
        .is_some_and(|end| end <= now_ms)
}
