//! The two kinds of isolate-lived cache the gateway keeps, one of each.
//!
//! - [`KeepLastGood`]: one value read from a store (the registry, the trusted
//!   issuers, the policy), reloaded after a TTL. When a reload fails, the
//!   value this instance last read stays in force; when there never was one,
//!   the request is refused (fail closed: "could not read what grants access"
//!   never means "nothing to enforce").
//! - [`Bounded`]: many small entries (API-key lookups, verified tokens,
//!   minted tokens, session records), each with its own expiry, never more
//!   than [`MAX_ENTRIES`] so a stream of distinct keys cannot grow an
//!   isolate's memory without end.
//!
//! Both are single-threaded (`RefCell`): an isolate serves one request at a
//! time per event-loop turn, and nothing here is held across an `.await`.

use crate::error::GatewayError;
use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;

/// Entries a [`Bounded`] map holds at most.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// One value loaded from a store, reloaded after `ttl_ms`, kept when a
/// reload fails.
pub(crate) struct KeepLastGood<T> {
    /// What the value is, for log lines and the 503 message.
    what: &'static str,
    ttl_ms: u64,
    /// The value and when it was loaded; `0` marks it stale (see
    /// [`KeepLastGood::invalidate`]).
    slot: RefCell<Option<(Rc<T>, u64)>>,
}

impl<T> KeepLastGood<T> {
    pub(crate) fn new(what: &'static str, ttl_ms: u64) -> Self {
        KeepLastGood {
            what,
            ttl_ms,
            slot: RefCell::new(None),
        }
    }

    /// The value, reloaded with `load` when older than the TTL. `load` gets
    /// the previous value, so it can keep it when the stored text did not
    /// change or no longer parses. A failed load keeps the previous value;
    /// with none, the answer is 503.
    pub(crate) async fn get<E, F>(
        &self,
        now_ms: u64,
        load: impl FnOnce(Option<Rc<T>>) -> F,
    ) -> Result<Rc<T>, GatewayError>
    where
        E: Display,
        F: Future<Output = Result<Rc<T>, E>>,
    {
        let cached = self.slot.borrow().clone();
        if let Some((value, at)) = &cached {
            if *at > 0 && now_ms.saturating_sub(*at) < self.ttl_ms {
                return Ok(value.clone());
            }
        }
        let previous = cached.map(|(value, _)| value);
        match load(previous.clone()).await {
            Ok(value) => {
                *self.slot.borrow_mut() = Some((value.clone(), now_ms.max(1)));
                Ok(value)
            }
            Err(e) => match previous {
                Some(value) => {
                    tracing::warn!("{} reload failed, keeping the previous one: {e}", self.what);
                    Ok(value)
                }
                None => {
                    tracing::error!(
                        "{} could not be loaded; refusing the request: {e}",
                        self.what
                    );
                    Err(GatewayError::Unavailable(format!(
                        "{} could not be loaded: {e}",
                        self.what
                    )))
                }
            },
        }
    }

    /// Drops the value: the next request reloads it, and with no fallback a
    /// failing store means 503.
    pub(crate) fn forget(&self) {
        *self.slot.borrow_mut() = None;
    }

    /// Marks the value stale: the next request reloads it, and still falls
    /// back on it if the store fails.
    pub(crate) fn invalidate(&self) {
        if let Some((_, at)) = self.slot.borrow_mut().as_mut() {
            *at = 0;
        }
    }
}

/// A map of entries that expire, holding at most [`MAX_ENTRIES`]: when full,
/// expired entries go first, then all of them.
pub(crate) struct Bounded<K, V> {
    entries: RefCell<HashMap<K, (V, u64)>>,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Bounded {
            entries: RefCell::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> Bounded<K, V> {
    /// The entry's value while `now_ms` is before its expiry.
    pub(crate) fn get<Q>(&self, key: &Q, now_ms: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.borrow();
        let (value, expires_ms) = entries.get(key)?;
        (now_ms < *expires_ms).then(|| value.clone())
    }

    /// Stores `value` until `expires_ms`.
    pub(crate) fn insert(&self, key: K, value: V, expires_ms: u64, now_ms: u64) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (_, expires)| now_ms < *expires);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (value, expires_ms));
    }

    /// Changes a stored value in place, keeping its expiry.
    pub(crate) fn update<Q>(&self, key: &Q, change: impl FnOnce(&mut V))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some((value, _)) = self.entries.borrow_mut().get_mut(key) {
            change(value);
        }
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.borrow_mut().remove(key);
    }

    pub(crate) fn clear(&self) {
        self.entries.borrow_mut().clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        futures_util::FutureExt::now_or_never(f).expect("ready")
    }

    #[test]
    fn a_failed_reload_keeps_the_last_good_value_and_none_is_a_503() {
        let cache = KeepLastGood::<u32>::new("the thing", 100);
        let failed = block_on(cache.get(10, |_| async { Err::<Rc<u32>, _>("down") }));
        assert_eq!(
            failed.unwrap_err(),
            GatewayError::Unavailable("the thing could not be loaded: down".into())
        );
        let v = block_on(cache.get(10, |_| async { Ok::<_, &str>(Rc::new(1)) }));
        assert_eq!(*v.unwrap(), 1);
        // Fresh: not reloaded.
        let v = block_on(cache.get(50, |_| async { Ok::<_, &str>(Rc::new(2)) }));
        assert_eq!(*v.unwrap(), 1);
        // Stale and the store fails: the last good value.
        let v = block_on(cache.get(500, |_| async { Err::<Rc<u32>, _>("down") }));
        assert_eq!(*v.unwrap(), 1);
        // Invalidated: reloaded, and the loader sees the previous value.
        cache.invalidate();
        let v = block_on(cache.get(501, |prev| async move {
            Ok::<_, &str>(Rc::new(*prev.unwrap() + 10))
        }));
        assert_eq!(*v.unwrap(), 11);
        // Forgotten: nothing to fall back on, so a failing store is a 503.
        cache.forget();
        let failed = block_on(cache.get(502, |_| async { Err::<Rc<u32>, _>("down") }));
        assert!(matches!(failed, Err(GatewayError::Unavailable(_))));
    }

    #[test]
    fn bounded_entries_expire_and_the_map_never_passes_its_bound() {
        let map = Bounded::<String, u32>::default();
        map.insert("a".into(), 1, 100, 0);
        assert_eq!(map.get("a", 99), Some(1));
        assert_eq!(map.get("a", 100), None);
        map.update("a", |v| *v = 7);
        assert_eq!(map.get("a", 0), Some(7));
        for i in 0..MAX_ENTRIES + 5 {
            map.insert(format!("k{i}"), 0, 1_000, 500);
        }
        assert!(map.len() <= MAX_ENTRIES);
        // Expired entries went first: the live ones inserted last remain.
        assert_eq!(map.get(&format!("k{}", MAX_ENTRIES + 4), 600), Some(0));
        map.remove("k0");
        assert_eq!(map.get("k0", 600), None);
    }
}
