//! Rate-limit math as pure functions of (state, now, cost): the Generic Cell
//! Rate Algorithm for requests per window, and a fixed UTC-day counter for
//! daily quotas. Platforms only store the state (a Durable Object on Workers,
//! the key-value store on Spin); the arithmetic is here, unit tested.

/// A rate: `limit` requests per `window_ms`, bursts of up to `limit` allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub window_ms: u64,
}

/// What a counter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Rate(Rate),
    Daily(u64),
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied; the same request would be allowed after this long.
    Deny {
        retry_after_ms: u64,
    },
}

impl Rate {
    /// Time each request "costs" in the bucket.
    fn emission_ms(self) -> u64 {
        (self.window_ms / self.limit.max(1)).max(1)
    }
}

/// GCRA. `tat` is the stored theoretical arrival time (`None` for a fresh
/// key). Returns the decision and the new `tat` to store (unchanged on deny).
pub(crate) fn gcra(
    tat: Option<u64>,
    now_ms: u64,
    cost: u64,
    rate: Rate,
) -> (Decision, Option<u64>) {
    let emission = rate.emission_ms();
    let tat = tat.unwrap_or(now_ms).max(now_ms);
    let new_tat = tat.saturating_add(cost.saturating_mul(emission));
    // The burst tolerance lets `limit` requests through at once.
    // A check of cost 0 (a token counter, charged after the call with the
    // exact time its tokens take, [`charge`]) may go on while the arrival
    // time is within one window of now.
    let tolerance = match cost {
        0 => rate.window_ms,
        _ => emission.saturating_mul(rate.limit.max(1)),
    };
    let allow_at = new_tat.saturating_sub(tolerance);
    if now_ms < allow_at {
        (
            Decision::Deny {
                retry_after_ms: allow_at - now_ms,
            },
            None,
        )
    } else {
        (Decision::Allow, Some(new_tat))
    }
}

/// Milliseconds in a day.
pub(crate) const DAY_MS: u64 = 86_400_000;

/// The UTC day a time falls in (daily quotas reset at midnight UTC).
pub(crate) fn day_of(now_ms: u64) -> u64 {
    now_ms / DAY_MS
}

/// A daily quota: `used` so far today; returns the decision and the new count.
pub(crate) fn daily(used: u64, now_ms: u64, cost: u64, quota: u64) -> (Decision, u64) {
    if used.saturating_add(cost) > quota {
        let next_midnight = (day_of(now_ms) + 1) * DAY_MS;
        (
            Decision::Deny {
                retry_after_ms: next_midnight - now_ms,
            },
            used,
        )
    } else {
        (Decision::Allow, used + cost)
    }
}

/// Bits of a daily counter's state that hold the count (the rest: the day).
const COUNT_BITS: u32 = 40;

/// One step of any counter: the stored state (`None` for a fresh key) in, the
/// decision and the state to store out (`None`: leave it as it is). Rates
/// store their theoretical arrival time; daily quotas store the day and the
/// count in one number, so a new day starts from zero by itself. Every
/// platform's limiter stores exactly this one `u64` per key.
pub fn step(quota: Quota, state: Option<u64>, now_ms: u64, cost: u64) -> (Decision, Option<u64>) {
    match quota {
        Quota::Rate(rate) => gcra(state, now_ms, cost, rate),
        Quota::Daily(limit) => {
            let today = day_of(now_ms);
            let used = state
                .filter(|s| s >> COUNT_BITS == today)
                .map_or(0, |s| s & ((1 << COUNT_BITS) - 1));
            let (decision, used) = daily(used, now_ms, cost, limit);
            (decision, Some((today << COUNT_BITS) | used))
        }
    }
}

/// Gives back `cost` that an allowed [`step`] at `checked_ms` took: the
/// state out (`None`: leave it as it is). Used when a call is refused by
/// another limit after this one allowed it, so a refused call consumes
/// nothing (`gateway/counters.rs` checks every limit at once).
///
/// A daily count goes down by `cost` on the day it was taken (a count taken
/// on an earlier day was already forgotten at midnight): exact. A rate's
/// allowed step added `cost` emission intervals to its arrival time, which
/// are taken off again: exact when no step came between, or when the steps
/// between found the counter busy. Steps between that found it idle would,
/// without the released one, have started from their own later arrival, so
/// the release credits back that gap too: at most the time between the
/// check and its release (one round trip), and never more than the cost.
pub fn release(quota: Quota, state: Option<u64>, checked_ms: u64, cost: u64) -> Option<u64> {
    let state = state?;
    match quota {
        Quota::Rate(rate) => Some(state.saturating_sub(cost.saturating_mul(rate.emission_ms()))),
        Quota::Daily(_) => {
            let day = day_of(checked_ms);
            if state >> COUNT_BITS != day {
                return None;
            }
            let used = state & ((1 << COUNT_BITS) - 1);
            Some((day << COUNT_BITS) | used.saturating_sub(cost))
        }
    }
}

/// Adds `cost` to a counter whatever it holds: the state out. For what is
/// known only after the work it counts (a model call's tokens): the call
/// was let through by a [`step`] of cost 0 (allowed while the counter is
/// not past its quota), and is charged here, so the counter may end past
/// its quota by the last call's cost; the calls after wait until it is
/// back (a rate: its arrival time within one window of now; a day: the
/// next one).
pub fn charge(quota: Quota, state: Option<u64>, now_ms: u64, cost: u64) -> u64 {
    match quota {
        // Exact for any ratio: a token is a fraction of a millisecond where
        // the limit exceeds the window's milliseconds.
        Quota::Rate(rate) => {
            let per = u128::from(cost) * u128::from(rate.window_ms);
            let ms = per.div_ceil(u128::from(rate.limit.max(1)));
            state
                .unwrap_or(now_ms)
                .max(now_ms)
                .saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
        }
        Quota::Daily(_) => {
            let today = day_of(now_ms);
            let used = state
                .filter(|s| s >> COUNT_BITS == today)
                .map_or(0, |s| s & ((1 << COUNT_BITS) - 1));
            let used = used.saturating_add(cost).min((1 << COUNT_BITS) - 1);
            (today << COUNT_BITS) | used
        }
    }
}

/// Steps the counters of one home as one ([`crate::ports::Limiter::check_together`]):
/// each `(key, quota, cost)` on the state the ones before it left (a key may
/// repeat), `stored` reading a key's state as kept. The decisions, and the
/// states to keep: all of them when every counter allowed, none otherwise
/// (a refused call takes nothing from any).
pub fn step_together<'k>(
    takes: impl IntoIterator<Item = (&'k str, Quota, u64)>,
    stored: impl Fn(&str) -> Option<u64>,
    now_ms: u64,
) -> (Vec<Decision>, Vec<(&'k str, u64)>) {
    let mut next: Vec<(&'k str, u64)> = Vec::new();
    let mut decisions = Vec::new();
    for (key, quota, cost) in takes {
        let current = match next.iter().rev().find(|(k, _)| *k == key) {
            Some((_, state)) => Some(*state),
            None => stored(key),
        };
        let (decision, state) = step(quota, current, now_ms, cost);
        if let Some(state) = state {
            next.push((key, state));
        }
        decisions.push(decision);
    }
    if decisions.iter().any(|d| *d != Decision::Allow) {
        next.clear();
    }
    (decisions, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charged_after_the_fact_a_counter_refuses_until_it_is_back_within_its_quota() {
        let rate = Rate {
            limit: 100,
            window_ms: 60_000,
        };
        let (d, _) = step(Quota::Rate(rate), None, 0, 0);
        assert_eq!(d, Decision::Allow);
        // 250 tokens at once: past the quota by 150.
        let state = charge(Quota::Rate(rate), None, 0, 250);
        let (d, kept) = step(Quota::Rate(rate), Some(state), 0, 0);
        assert_eq!(
            d,
            Decision::Deny {
                retry_after_ms: 90_000
            }
        );
        assert_eq!(kept, None, "a check of cost 0 takes nothing");
        assert_eq!(
            step(Quota::Rate(rate), Some(state), 90_000, 0).0,
            Decision::Allow
        );
        // A rate above one a millisecond: a million tokens a minute allow
        // a million now (and the call that found room for it) and a
        // million each minute after.
        let fast = Quota::Rate(Rate {
            limit: 1_000_000,
            window_ms: 60_000,
        });
        let mut state = None;
        let mut used = 0;
        for minute in 0..10u64 {
            while step(fast, state, minute * 60_000, 0).0 == Decision::Allow {
                state = Some(charge(fast, state, minute * 60_000, 100_000));
                used += 100_000;
            }
        }
        assert_eq!(
            used, 10_100_000,
            "a burst of the limit, then the limit each minute"
        );
        let daily = Quota::Daily(1000);
        let used = charge(daily, None, 5, 1200);
        assert!(matches!(
            step(daily, Some(used), 10, 0).0,
            Decision::Deny { .. }
        ));
        assert_eq!(
            step(daily, Some(used), DAY_MS, 0).0,
            Decision::Allow,
            "a new day"
        );
        let within = charge(daily, None, 5, 999);
        assert_eq!(step(daily, Some(within), 10, 0).0, Decision::Allow);
    }

    const TEN_PER_MINUTE: Rate = Rate {
        limit: 10,
        window_ms: 60_000,
    };

    fn run(rate: Rate, times: &[u64]) -> Vec<Decision> {
        let mut tat = None;
        times
            .iter()
            .map(|&t| {
                let (d, next) = gcra(tat, t, 1, rate);
                if next.is_some() {
                    tat = next;
                }
                d
            })
            .collect()
    }

    #[test]
    fn a_burst_of_exactly_limit_then_deny() {
        let d = run(TEN_PER_MINUTE, &[1_000; 11]);
        assert!(d[..10].iter().all(|d| *d == Decision::Allow));
        assert_eq!(
            d[10],
            Decision::Deny {
                retry_after_ms: 6_000
            }
        );
    }

    #[test]
    fn capacity_returns_at_the_emission_rate() {
        let mut times = vec![0; 10];
        times.push(5_999); // just before one emission interval: still denied
        times.push(6_000); // one slot back
        times.push(6_000); // and only one
        let d = run(TEN_PER_MINUTE, &times);
        assert_eq!(d[10], Decision::Deny { retry_after_ms: 1 });
        assert_eq!(d[11], Decision::Allow);
        assert!(matches!(d[12], Decision::Deny { .. }));
    }

    #[test]
    fn a_steady_stream_at_the_rate_is_never_denied() {
        let times: Vec<u64> = (0..100).map(|i| i * 6_000).collect();
        assert!(run(TEN_PER_MINUTE, &times)
            .iter()
            .all(|d| *d == Decision::Allow));
    }

    #[test]
    fn costs_and_denials_do_not_consume() {
        let (d, tat) = gcra(None, 0, 11, TEN_PER_MINUTE);
        assert!(
            matches!(d, Decision::Deny { .. }),
            "a cost above the limit never fits"
        );
        assert_eq!(tat, None);
        let (d, tat) = gcra(None, 0, 10, TEN_PER_MINUTE);
        assert_eq!((d, tat), (Decision::Allow, Some(60_000)));
    }

    #[test]
    fn step_keeps_one_number_per_counter() {
        let quota = Quota::Daily(2);
        let noon = 20_000 * DAY_MS + DAY_MS / 2;
        let (d1, s1) = step(quota, None, noon, 1);
        let (d2, s2) = step(quota, s1, noon, 1);
        let (d3, s3) = step(quota, s2, noon, 1);
        assert_eq!((d1, d2), (Decision::Allow, Decision::Allow));
        assert!(matches!(d3, Decision::Deny { .. }));
        let (d4, _) = step(quota, s3, noon + DAY_MS, 1);
        assert_eq!(d4, Decision::Allow, "a new day starts from zero");
        let rate = Quota::Rate(TEN_PER_MINUTE);
        assert_eq!(step(rate, None, 0, 1), (Decision::Allow, Some(6_000)));
    }

    #[test]
    fn daily_quotas_reset_at_midnight_utc() {
        let noon = 20_000 * DAY_MS + DAY_MS / 2;
        assert_eq!(daily(4, noon, 1, 5), (Decision::Allow, 5));
        assert_eq!(
            daily(5, noon, 1, 5),
            (
                Decision::Deny {
                    retry_after_ms: DAY_MS / 2
                },
                5
            )
        );
        assert_eq!(day_of(noon + DAY_MS / 2), day_of(noon) + 1);
    }

    #[test]
    fn a_released_step_leaves_the_state_as_if_it_never_happened() {
        let rate = Quota::Rate(Rate {
            limit: 2,
            window_ms: 1_000,
        });
        // Two allowed at t=0 fill the burst; releasing one lets one more in.
        let (_, s) = step(rate, None, 0, 1);
        let (_, s) = step(rate, s, 0, 1);
        assert!(matches!(step(rate, s, 0, 1).0, Decision::Deny { .. }));
        let s = release(rate, s, 0, 1);
        assert_eq!(step(rate, s, 0, 1).0, Decision::Allow);
        // Released after a later step on a busy counter: the state as if
        // only the later step had happened.
        let rate = Quota::Rate(Rate {
            limit: 10,
            window_ms: 5_000,
        });
        let (_, busy) = step(rate, None, 0, 1);
        let (_, a) = step(rate, busy, 100, 1);
        let (_, ab) = step(rate, a, 200, 1);
        let (_, b) = step(rate, busy, 200, 1);
        assert_eq!(release(rate, ab, 100, 1), b);
        // On an idle counter, the gap between the two (100 ms) is credited
        // too, and no more.
        let (_, a) = step(rate, None, 100, 1);
        let (_, ab) = step(rate, a, 200, 1);
        let (_, b) = step(rate, None, 200, 1);
        assert_eq!(release(rate, ab, 100, 1), b.map(|b| b - 100));
        // Daily: the count goes down on the same day only.
        let daily = Quota::Daily(1);
        let (_, s) = step(daily, None, 5, 1);
        assert!(matches!(step(daily, s, 6, 1).0, Decision::Deny { .. }));
        assert_eq!(
            step(daily, release(daily, s, 5, 1), 6, 1).0,
            Decision::Allow
        );
        let next_day = release(daily, s, DAY_MS + 5, 1);
        assert_eq!(next_day, None, "yesterday's count is already gone");
        assert_eq!(release(daily, None, 5, 1), None);
    }

    #[test]
    fn counters_of_one_home_take_all_or_nothing() {
        let rate = |limit| {
            Quota::Rate(Rate {
                limit,
                window_ms: 1000,
            })
        };
        let stored = |_: &str| None;
        // Both allow: both states are kept.
        let (d, next) = step_together([("a", rate(1), 1), ("b", rate(2), 1)], stored, 0);
        assert_eq!(d, [Decision::Allow, Decision::Allow]);
        assert_eq!(next.len(), 2);
        // The second is already spent: nothing is kept, the first names no refusal.
        let spent = step(rate(1), None, 0, 1).1;
        let (d, next) = step_together(
            [("a", rate(5), 1), ("b", rate(1), 1)],
            |k: &str| (k == "b").then_some(spent).flatten(),
            0,
        );
        assert_eq!(d[0], Decision::Allow);
        assert!(matches!(d[1], Decision::Deny { .. }));
        assert!(next.is_empty(), "a refused call takes nothing");
        // A repeated key steps on what the one before left.
        let (d, _) = step_together([("a", rate(1), 1), ("a", rate(1), 1)], stored, 0);
        assert!(matches!(d[1], Decision::Deny { .. }), "{d:?}");
    }
}
