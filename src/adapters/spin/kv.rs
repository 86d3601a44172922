//! The `Kv` and `Sessions` ports on Spin's key-value stores, and the
//! expiry index every expiring key of the `sessions` store is noted in.
//!
//! The registry lives in the `default` store (keys `servers/{id}`). Sessions
//! live in the `sessions` store (keys `session/{id}`, the record as JSON),
//! beside rate-limit counters and approvals (see `limits`, `approvals`).
//! Consistency is the store's: exact on a single instance (Spin's default
//! SQLite store), and as consistent as the configured backend across
//! instances (see README, "Sessions on Spin"). Recording an upstream session is
//! a read-modify-write: two concurrent first calls of one client session to two
//! different upstreams may keep only one of them, which costs one extra
//! upstream `initialize` later, never a wrong answer.

use super::snapshot::{Entries, Snapshot};
use crate::adapters::expiry_index::{self, IndexStore};
use crate::identity::config::APIKEY_PREFIX;
use crate::ports::{Clock, Kv, PortError, SessionRecord, Sessions, UpstreamChange};
use futures_util::lock::Mutex;
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use spin_sdk::key_value::Store;
use std::rc::Rc;

const REGISTRY_STORE: &str = "default";
/// Sessions, rate-limit counters, approvals and the shared cache.
pub(super) const SESSION_STORE: &str = "sessions";
const SESSION_PREFIX: &str = "session/";

async fn open(label: &str) -> Result<Rc<Store>, String> {
    Store::open(label)
        .await
        .map(Rc::new)
        .map_err(|e| format!("key-value store '{label}': {e:?}"))
}

fn port_error(store: &str, op: &str, e: impl std::fmt::Debug) -> PortError {
    PortError(format!("key-value {store} {op}: {e:?}"))
}

/// The registry store, read through the instance-shared [`Snapshot`]:
/// listing and reading are served from its copy of the store's entries,
/// except API keys, which are read one by one as callers present them.
pub struct SpinKv {
    store: Result<Rc<Store>, String>,
    snapshot: Rc<Snapshot>,
    ttl_ms: u64,
    /// The entries, once this request has them: one read per request
    /// whatever the TTL (with `REGISTRY_TTL_SECS=0` the snapshot's copy is
    /// never fresh).
    entries: std::cell::RefCell<Option<Rc<Entries>>>,
}

impl SpinKv {
    pub async fn open(snapshot: Rc<Snapshot>, ttl_ms: u64) -> Self {
        SpinKv {
            store: open(REGISTRY_STORE).await,
            snapshot,
            ttl_ms,
            entries: Default::default(),
        }
    }

    fn store(&self) -> Result<&Store, PortError> {
        self.store.as_deref().map_err(|e| PortError(e.clone()))
    }

    async fn keys(&self) -> Result<Vec<String>, PortError> {
        self.store()?
            .get_keys()
            .await
            .collect()
            .await
            .map_err(|e| port_error(REGISTRY_STORE, "get-keys", e))
    }

    /// Every entry of the store but the API keys, read now.
    async fn read_all(&self) -> Result<Entries, PortError> {
        let store = self.store()?;
        let keys: Vec<String> = self
            .keys()
            .await?
            .into_iter()
            .filter(|k| !k.starts_with(APIKEY_PREFIX))
            .collect();
        let values = futures_util::future::join_all(keys.iter().map(|k| store.get(k))).await;
        let mut entries = Entries::new();
        for (key, value) in keys.into_iter().zip(values) {
            // A key listed but deleted since is skipped.
            if let Some(v) = value.map_err(|e| port_error(REGISTRY_STORE, "get", e))? {
                entries.insert(key, String::from_utf8_lossy(&v).into_owned());
            }
        }
        Ok(entries)
    }

    async fn entries(&self) -> Result<Rc<Entries>, PortError> {
        if let Some(entries) = self.entries.borrow().clone() {
            return Ok(entries);
        }
        let now = super::SpinClock.now_ms();
        let entries = self
            .snapshot
            .registry(now, self.ttl_ms, self.read_all())
            .await?;
        *self.entries.borrow_mut() = Some(entries.clone());
        Ok(entries)
    }
}

impl Kv for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        if key.starts_with(APIKEY_PREFIX) {
            let value = self
                .store()?
                .get(key)
                .await
                .map_err(|e| port_error(REGISTRY_STORE, "get", e))?;
            return Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(self.entries().await?.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        if prefix.starts_with(APIKEY_PREFIX) || APIKEY_PREFIX.starts_with(prefix) {
            // The snapshot has no API keys: listed from the store.
            let keys = self.keys().await?;
            return Ok(keys.into_iter().filter(|k| k.starts_with(prefix)).collect());
        }
        let entries = self.entries().await?;
        Ok(entries
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Writes through to the store, and drops the registry part of the
    /// snapshot at once (not after the response): the next request, in any
    /// instance, reads the store again.
    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.store()?
            .set(key, value.as_bytes())
            .await
            .map_err(|e| port_error(REGISTRY_STORE, "set", e))?;
        self.changed().await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.store()?
            .delete(key)
            .await
            .map_err(|e| port_error(REGISTRY_STORE, "delete", e))?;
        self.changed().await;
        Ok(())
    }
}

impl SpinKv {
    /// After a write: this request and the snapshot forget the entries.
    async fn changed(&self) {
        *self.entries.borrow_mut() = None;
        self.snapshot.forget_registry().await;
    }
}

/// The session store.
#[derive(Clone)]
pub struct SpinSessions(Result<Rc<Store>, String>, Rc<Mutex<()>>);

/// Claims of a server's first upstream session in a client session.
const UPSTREAM_CLAIM_PREFIX: &str = "upclaim/";

impl SpinSessions {
    pub async fn open() -> Self {
        SpinSessions(open(SESSION_STORE).await, Rc::default())
    }

    fn store(&self) -> Result<&Store, PortError> {
        self.0.as_deref().map_err(|e| PortError(e.clone()))
    }

    async fn put(&self, record: &SessionRecord) -> Result<(), PortError> {
        let value = serde_json::to_vec(record).expect("record serializes");
        let key = format!("{SESSION_PREFIX}{}", record.id);
        self.store()?
            .set(&key, &value)
            .await
            .map_err(|e| port_error(SESSION_STORE, "set", e))
    }

    /// The store handle, shared with the approval store and the runtime's
    /// shared cache (one open per request).
    pub fn handle(&self) -> Result<Rc<Store>, String> {
        self.0.clone()
    }

    /// Deletes expired sessions and approvals, ended rate-limit windows and
    /// approval claims. The store has no TTL, so without this they would stay
    /// forever; the expiry index says what ended, so the store is never
    /// listed.
    async fn sweep(&self, now_ms: u64) -> Result<usize, PortError> {
        expiry_index::sweep(&Index(self.store()?), now_ms).await
    }
}

/// The `sessions` store as the expiry index uses it: values through
/// `spin:key-value`, counters through `wasi:keyvalue` atomics.
pub struct Index<'a>(pub &'a Store);

impl IndexStore for Index<'_> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
        self.0
            .get(key)
            .await
            .map_err(|e| port_error(SESSION_STORE, "get", e))
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
        self.0
            .set(key, value)
            .await
            .map_err(|e| port_error(SESSION_STORE, "set", e))
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| port_error(SESSION_STORE, "delete", e))
    }
    fn increment(&self, key: &str, by: i64) -> Result<i64, PortError> {
        let bucket =
            store::open(SESSION_STORE).map_err(|e| port_error(SESSION_STORE, "open", e))?;
        atomics::increment(&bucket, key, by).map_err(|e| port_error(SESSION_STORE, "increment", e))
    }
}

impl Sessions for SpinSessions {
    async fn create(&self, record: &SessionRecord) -> Result<(), PortError> {
        self.put(record).await?;
        let key = format!("{SESSION_PREFIX}{}", record.id);
        expiry_index::register(&Index(self.store()?), &key, record.expires_ms).await?;
        // Session ids are uniformly random, so this sweeps on about one
        // session creation in 64, off the latency path.
        if record.id.starts_with('A') {
            let me = self.clone();
            let now = record.created_ms;
            spin_sdk::wit_bindgen::spawn(async move {
                match me.sweep(now).await {
                    Ok(n) if n > 0 => tracing::info!("swept {n} expired sessions"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("session sweep failed: {e}"),
                }
            });
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        let value = self
            .store()?
            .get(format!("{SESSION_PREFIX}{id}"))
            .await
            .map_err(|e| port_error(SESSION_STORE, "get", e))?;
        match value {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| PortError(format!("session {id} is corrupt: {e}"))),
        }
    }

    /// A read, a change and a write of the whole record: one at a time in
    /// this instance, so two servers met at once by one request are both
    /// kept. Across instances a server's first session is claimed with an
    /// atomic counter: only the first claimer writes (the others read its
    /// session back, `upstream/opening.rs`).
    async fn set_upstream(&self, id: &str, change: &UpstreamChange) -> Result<bool, PortError> {
        let _turn = self.1.lock().await;
        let Some(mut record) = self.get(id).await? else {
            return Ok(false);
        };
        if change.unless_held && !record.upstreams.contains_key(&change.server) {
            let claim = format!("{UPSTREAM_CLAIM_PREFIX}{id}/{}", change.server);
            let index = Index(self.store()?);
            let n = index.increment(&claim, 1)?;
            if n == 1 {
                expiry_index::register(&index, &claim, record.expires_ms).await?;
            } else {
                return Ok(true);
            }
        }
        record.apply(change);
        self.put(&record).await?;
        Ok(true)
    }

    /// A read, a change and a write, one at a time in this instance like
    /// [`Self::set_upstream`].
    async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError> {
        let _turn = self.1.lock().await;
        let Some(mut record) = self.get(id).await? else {
            return Ok(false);
        };
        record.log_level = Some(level.to_string());
        self.put(&record).await?;
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        let record = self.get(id).await?;
        if record.is_some() {
            self.store()?
                .delete(format!("{SESSION_PREFIX}{id}"))
                .await
                .map_err(|e| port_error(SESSION_STORE, "delete", e))?;
        }
        Ok(record)
    }
}
