//! Own writes: what this instance wrote to KV through the admin API is
//! read back from memory for [`OWN_WRITES_MS`], whatever KV answers.
//!
//! Workers KV is eventually consistent: a write can take about a minute to
//! be seen everywhere, including (in the worst case) by the location that
//! made it. An operator who registers a server and lists it at once must
//! see it, so the instance that wrote lays its writes over KV's answers
//! (`get`, and `list`: a written key is added, a deleted one removed) until
//! KV has surely caught up. Other instances see the change when their
//! caches expire and KV reaches them (README, "Consistency").

use crate::ports::{Clock, Kv, Platform, PortError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// How long an own write overrides KV: past Workers KV's propagation time.
pub(crate) const OWN_WRITES_MS: u64 = 65_000;
/// Writes remembered at most (the oldest goes first).
const MAX_WRITES: usize = 256;

/// Key to (value, or `None` for deleted; remembered until).
#[derive(Default)]
pub(crate) struct OwnWrites(RefCell<BTreeMap<String, (Option<String>, u64)>>);

impl OwnWrites {
    fn note(&self, key: &str, value: Option<&str>, now_ms: u64) {
        let mut writes = self.0.borrow_mut();
        writes.retain(|_, (_, until)| *until > now_ms);
        if writes.len() >= MAX_WRITES && !writes.contains_key(key) {
            let oldest = writes
                .iter()
                .min_by_key(|(_, (_, until))| *until)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                writes.remove(&oldest);
            }
        }
        writes.insert(
            key.to_string(),
            (value.map(str::to_string), now_ms + OWN_WRITES_MS),
        );
    }

    /// `Some(value)` when this instance wrote `key` lately.
    fn get(&self, key: &str, now_ms: u64) -> Option<Option<String>> {
        match self.0.borrow().get(key) {
            Some((value, until)) if *until > now_ms => Some(value.clone()),
            _ => None,
        }
    }

    /// Keys under `prefix` written lately, each with whether it exists.
    fn under(&self, prefix: &str, now_ms: u64) -> Vec<(String, bool)> {
        self.0
            .borrow()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, (_, until))| *until > now_ms)
            .map(|(k, (v, _))| (k.clone(), v.is_some()))
            .collect()
    }
}

/// A platform's KV with this instance's own writes laid over it.
pub(crate) struct OverlayKv<P: Platform> {
    pub(crate) inner: Rc<P>,
    pub(crate) writes: Rc<OwnWrites>,
}

impl<P: Platform> Kv for OverlayKv<P> {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        match self.writes.get(key, self.inner.clock().now_ms()) {
            Some(value) => Ok(value),
            None => self.inner.kv().get(key).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        let mut keys = self.inner.kv().list(prefix).await?;
        for (key, exists) in self.writes.under(prefix, self.inner.clock().now_ms()) {
            match (exists, keys.iter().position(|k| *k == key)) {
                (true, None) => keys.push(key),
                (false, Some(i)) => {
                    keys.remove(i);
                }
                _ => {}
            }
        }
        Ok(keys)
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.inner.kv().put(key, value).await?;
        self.writes
            .note(key, Some(value), self.inner.clock().now_ms());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.inner.kv().delete(key).await?;
        self.writes.note(key, None, self.inner.clock().now_ms());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_expire_and_stay_bounded() {
        let w = OwnWrites::default();
        w.note("servers/a", Some("1"), 0);
        w.note("servers/b", None, 0);
        assert_eq!(w.get("servers/a", 1), Some(Some("1".into())));
        assert_eq!(w.get("servers/b", 1), Some(None));
        assert_eq!(
            w.under("servers/", 1),
            vec![("servers/a".into(), true), ("servers/b".into(), false)]
        );
        assert!(w.under("serverz", 1).is_empty());
        assert_eq!(w.get("servers/a", OWN_WRITES_MS), None);
        for i in 0..MAX_WRITES + 10 {
            w.note(&format!("k{i}"), Some("v"), 10 + i as u64);
        }
        assert_eq!(w.0.borrow().len(), MAX_WRITES);
        assert_eq!(w.get("k0", 20), None, "the oldest went first");
    }
}
