//! Which era each upstream endpoint speaks, learned with `server/discover`
//! and kept for a while in the isolate.
//!
//! An upstream's era is a property of its deployment, so it is asked once per
//! endpoint and remembered for the discover result's `ttlMs`, but never less
//! than `floor_ms` (the registry's reload period): a server that says its
//! answer must not be cached (`ttlMs: 0`) would otherwise be probed before
//! every call. A legacy endpoint is remembered as long, so the probe it fails
//! costs one extra request per endpoint and period, not one per session.
//! Where the isolate does not outlive a request (Spin), the era also travels
//! in the client's session record ([`super::modern::session`]).

use crate::cache::Bounded;

/// What the isolate knows of each endpoint's era.
pub(crate) struct Eras {
    known: Bounded<String, bool>,
    floor_ms: u64,
}

impl Eras {
    pub(crate) fn new(floor_ms: u64) -> Self {
        Eras {
            known: Bounded::default(),
            floor_ms,
        }
    }

    /// `Some(true)` for a modern endpoint, `Some(false)` for a legacy one,
    /// `None` when it must be asked.
    pub(crate) fn get(&self, url: &str, now_ms: u64) -> Option<bool> {
        self.known.get(url, now_ms)
    }

    /// Remembers what `url` speaks, for `ttl_ms` (at least the floor).
    pub(crate) fn learn(&self, url: &str, modern: bool, ttl_ms: Option<u64>, now_ms: u64) {
        let keep = ttl_ms.unwrap_or(0).max(self.floor_ms);
        self.known
            .insert(url.to_string(), modern, now_ms.saturating_add(keep), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_era_is_kept_for_its_ttl_but_never_less_than_the_floor() {
        let eras = Eras::new(1_000);
        assert_eq!(eras.get("u", 0), None);
        eras.learn("u", true, Some(0), 0);
        assert_eq!(eras.get("u", 999), Some(true));
        assert_eq!(eras.get("u", 1_000), None);
        eras.learn("v", false, Some(5_000), 0);
        assert_eq!(eras.get("v", 4_999), Some(false));
        assert_eq!(eras.get("v", 5_000), None);
    }
}
