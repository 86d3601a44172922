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
//!
//! An era the operator declares in the server's entry wins over all of it:
//! it is never probed for nor forgotten (a discover is still sent where its
//! result, the server's capabilities, is wanted).

use crate::cache::Bounded;
use crate::config::{Era, Server};

/// The longest an era is remembered, whatever the upstream says.
const MAX_KEEP_MS: u64 = 24 * 3600 * 1000;

/// What an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    /// Sessions only (`server/discover` is not a method it knows).
    Legacy,
    /// The modern era, and maybe sessions too (all a `server/discover`
    /// result can say): a modern client is relayed in the modern era, a
    /// legacy one meets it with `initialize` (so server-to-client requests
    /// and GET streams keep working).
    Dual,
    /// 2026-07-28 only (learned when `initialize` was refused): every
    /// client is relayed in the modern era.
    Modern,
}

/// What the isolate knows of each endpoint's era.
pub(crate) struct Eras {
    known: Bounded<String, Speaks>,
    floor_ms: u64,
}

impl Eras {
    pub(crate) fn new(floor_ms: u64) -> Self {
        Eras {
            known: Bounded::default(),
            floor_ms,
        }
    }

    /// What `url`, an endpoint of `server`, speaks; `None` when it must be
    /// asked.
    pub(crate) fn get(&self, server: &Server, url: &str, now_ms: u64) -> Option<Speaks> {
        match server.era {
            Some(Era::Legacy) => Some(Speaks::Legacy),
            Some(Era::Dual) => Some(Speaks::Dual),
            Some(Era::Modern) => Some(Speaks::Modern),
            None => self.known.get(url, now_ms),
        }
    }

    /// Remembers what `url` speaks, for `ttl_ms` (at least the floor).
    pub(crate) fn learn(&self, url: &str, speaks: Speaks, ttl_ms: Option<u64>, now_ms: u64) {
        // An upstream's own hint is capped at a day: a hostile or mistaken
        // answer must not pin an endpoint's era for good.
        let keep = ttl_ms.unwrap_or(0).min(MAX_KEEP_MS).max(self.floor_ms);
        self.known
            .insert(url.to_string(), speaks, now_ms.saturating_add(keep), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(era: &str) -> Server {
        let entry = format!(r#"{{{era}"endpoints":[{{"region":"us","url":"http://a/"}}]}}"#);
        Server::parse("s", &entry).unwrap()
    }

    #[test]
    fn an_era_is_kept_for_its_ttl_but_never_less_than_the_floor() {
        let eras = Eras::new(1_000);
        let s = server("");
        assert_eq!(eras.get(&s, "u", 0), None);
        eras.learn("u", Speaks::Modern, Some(0), 0);
        assert_eq!(eras.get(&s, "u", 999), Some(Speaks::Modern));
        assert_eq!(eras.get(&s, "u", 1_000), None);
        eras.learn("v", Speaks::Legacy, Some(5_000), 0);
        assert_eq!(eras.get(&s, "v", 4_999), Some(Speaks::Legacy));
        assert_eq!(eras.get(&s, "v", 5_000), None);
    }

    #[test]
    fn a_declared_era_wins_and_is_never_forgotten() {
        let eras = Eras::new(1_000);
        eras.learn("u", Speaks::Legacy, None, 0);
        assert_eq!(
            eras.get(&server(r#""era":"dual","#), "u", 0),
            Some(Speaks::Dual)
        );
        assert_eq!(
            eras.get(&server(r#""era":"modern","#), "w", u64::MAX),
            Some(Speaks::Modern)
        );
        assert_eq!(
            eras.get(&server(r#""era":"legacy","#), "w", 0),
            Some(Speaks::Legacy)
        );
    }
}
