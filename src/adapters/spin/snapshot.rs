//! One key of the `sessions` store, `cache/snapshot`, holds what a Spin
//! instance would otherwise read key by key on every request (an instance
//! lives for one request):
//! - the registry store's entries as last read (servers, trusted issuers,
//!   the policy; API keys are read one by one, as callers present them),
//!   reused for `REGISTRY_TTL_SECS` exactly as a Workers isolate reuses its
//!   copy in memory;
//! - the shared cache (`Runtime::shared_get`: tool catalogs).
//!
//! A steady-state call then reads this one key, plus its session record if
//! it has one (issue 14: at most two key-value operations on a call's path;
//! before, a list and a read per registry key, the policy and the catalog).
//!
//! It is a cache, so best effort: a snapshot that cannot be read or parsed is
//! ignored (the registry store is read, as without one). What a request
//! refreshes is written back once, after its response ([`body::Deferred`]),
//! whatever it refreshed; writes replace the whole value, so of two
//! instances writing at once one's version stays and what the other
//! refreshed is refreshed again later, never served wrong. The registry
//! part is never used older than the TTL, and a registry store that cannot
//! be read then refuses (503), as before. The cache part holds at most
//! [`MAX_CACHED`] values and [`MAX_CACHED_BYTES`] of them, the oldest
//! going first.
//!
//! [`body::Deferred`]: super::body::Deferred

use crate::ports::PortError;
use futures_util::lock::Mutex;
use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

/// The snapshot's key in the `sessions` store (under the cache's prefix).
const KEY: &str = "cache/snapshot";
/// Shared-cache values kept at most; the oldest goes first.
const MAX_CACHED: usize = 256;
/// Their text at most, together.
const MAX_CACHED_BYTES: usize = 2 * 1024 * 1024;

/// The registry store's entries, key to value.
pub(super) type Entries = BTreeMap<String, String>;

#[derive(Serialize, Deserialize, Default)]
struct Stored {
    #[serde(default)]
    registry: Option<Registry>,
    #[serde(default)]
    cache: BTreeMap<String, Cached>,
}

#[derive(Serialize, Deserialize)]
struct Registry {
    /// When the registry store was read (ms since the epoch).
    read_ms: u64,
    entries: Rc<Entries>,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    put_ms: u64,
    value: String,
}

/// The snapshot as this request sees it: read at most once, written back
/// whole when a part of it is refreshed.
pub struct Snapshot {
    store: Result<Rc<Store>, String>,
    /// `None` until read.
    state: Mutex<Option<Stored>>,
    /// Where the write-back goes: run after the response.
    deferred: super::body::Deferred,
    /// A write-back is scheduled.
    dirty: std::cell::Cell<bool>,
}

impl Snapshot {
    pub fn new(store: Result<Rc<Store>, String>, deferred: super::body::Deferred) -> Rc<Self> {
        Rc::new(Snapshot {
            store,
            state: Mutex::new(None),
            deferred,
            dirty: std::cell::Cell::new(false),
        })
    }

    /// Schedules one write-back of the whole snapshot after the response.
    fn changed(self: &Rc<Self>) {
        if self.dirty.replace(true) {
            return;
        }
        let me = self.clone();
        self.deferred.push(Box::pin(async move {
            let state = me.state.lock().await;
            // Changes made from here on schedule another write-back.
            me.dirty.set(false);
            if let Some(stored) = state.as_ref() {
                me.write(stored).await;
            }
        }));
    }

    /// The snapshot, read on first use (a missing, unreadable or corrupt
    /// one reads as empty).
    async fn read<'a>(&self, state: &'a mut Option<Stored>) -> &'a mut Stored {
        if state.is_none() {
            let stored = match &self.store {
                Ok(store) => match store.get(KEY).await {
                    Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                        .map_err(|e| tracing::warn!("cached snapshot ignored: {e}"))
                        .unwrap_or_default(),
                    Ok(None) => Stored::default(),
                    Err(e) => {
                        tracing::warn!("cached snapshot unreadable: {e:?}");
                        Stored::default()
                    }
                },
                Err(_) => Stored::default(),
            };
            *state = Some(stored);
        }
        state.get_or_insert_with(Stored::default)
    }

    async fn write(&self, stored: &Stored) {
        let Ok(store) = &self.store else { return };
        let value = serde_json::to_vec(stored).expect("snapshot serializes");
        if let Err(e) = store.set(KEY, &value).await {
            tracing::warn!("cached snapshot not written: {e:?}");
        }
    }

    /// The registry store's entries: the snapshot's when read less than
    /// `ttl_ms` ago, otherwise `load`ed now and kept in the snapshot.
    pub async fn registry<F>(
        self: &Rc<Self>,
        now_ms: u64,
        ttl_ms: u64,
        load: F,
    ) -> Result<Rc<Entries>, PortError>
    where
        F: Future<Output = Result<Entries, PortError>>,
    {
        let mut state = self.state.lock().await;
        let stored = self.read(&mut state).await;
        if let Some(registry) = &stored.registry {
            // A snapshot from the future (a clock step) is not trusted.
            if registry.read_ms <= now_ms && now_ms - registry.read_ms < ttl_ms {
                return Ok(registry.entries.clone());
            }
        }
        let entries = Rc::new(load.await?);
        stored.registry = Some(Registry {
            read_ms: now_ms,
            entries: entries.clone(),
        });
        self.changed();
        Ok(entries)
    }

    /// Drops the registry part and writes the snapshot back now: the
    /// registry store was just changed (the admin API).
    pub async fn forget_registry(&self) {
        let mut state = self.state.lock().await;
        let stored = self.read(&mut state).await;
        if stored.registry.take().is_some() {
            self.write(stored).await;
        }
    }

    /// A shared-cache value.
    pub async fn cache_get(&self, key: &str) -> Option<String> {
        let mut state = self.state.lock().await;
        let cached = self.read(&mut state).await.cache.get(key)?;
        Some(cached.value.clone())
    }

    /// Puts a shared-cache value (written back after the response).
    pub async fn cache_put(self: &Rc<Self>, key: &str, value: &str, now_ms: u64) {
        let mut state = self.state.lock().await;
        let cache = &mut self.read(&mut state).await.cache;
        let cached = Cached {
            put_ms: now_ms,
            value: value.to_string(),
        };
        cache.insert(key.to_string(), cached);
        let mut bytes: usize = cache.iter().map(|(k, v)| k.len() + v.value.len()).sum();
        while cache.len() > MAX_CACHED || bytes > MAX_CACHED_BYTES {
            let oldest = cache
                .iter()
                .min_by_key(|(_, c)| c.put_ms)
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            if let Some(gone) = cache.remove(&k) {
                bytes -= k.len() + gone.value.len();
            }
        }
        self.changed();
    }
}
