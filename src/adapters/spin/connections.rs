//! Connections on Spin, in the `sessions` key-value store:
//!
//! - `conn/{owner}/{server}`: a record (the owner's key base64url-encoded,
//!   so it cannot hold a `/`); tokens sealed (`identity/vault.rs`);
//! - `connect/{state digest}`: a connect in flight, noted in the expiry
//!   index and swept when it expires.
//!
//! The store has no compare-and-swap, so the writes that must happen once
//! are claimed first with a `wasi:keyvalue` atomic increment, as approvals
//! do: a generation-checked replace claims `connclaim/{owner}/{server}/{new
//! generation}` (generations start random per connect, so claims of two
//! connects never meet), a take claims `connect-claim/{state digest}`, a
//! connect link is spent by claiming `connect-once/{its digest}`. Only
//! the caller that raises the claim to 1 goes on. Claims are noted in the
//! expiry index. Listing reads the store's keys (`/connections` and the
//! admin view only, never on a call's path).

use super::kv::Index;
use crate::adapters::expiry_index::{self, IndexStore};
use crate::ports::{ConnectionRecord, Connections, PendingConnect, PortError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use spin_sdk::key_value::Store;
use std::rc::Rc;

pub const RECORD_PREFIX: &str = "conn/";
const PENDING_PREFIX: &str = "connect/";
/// How long a replace's claim is kept (no refresh waits longer).
const CLAIM_KEEP_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Clone)]
pub struct SpinConnections(Result<Rc<Store>, String>);

fn port_error(op: &str, e: impl std::fmt::Debug) -> PortError {
    PortError(format!("connection store {op}: {e:?}"))
}

fn record_key(owner: &str, server: &str) -> String {
    format!("{RECORD_PREFIX}{}/{server}", URL_SAFE_NO_PAD.encode(owner))
}

impl SpinConnections {
    /// Shares the session store handle.
    pub fn new(store: Result<Rc<Store>, String>) -> Self {
        SpinConnections(store)
    }

    fn store(&self) -> Result<&Store, PortError> {
        self.0.as_deref().map_err(|e| PortError(e.clone()))
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, PortError> {
        match self
            .store()?
            .get(key)
            .await
            .map_err(|e| port_error("get", e))?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| PortError(format!("{key} is corrupt: {e}"))),
        }
    }

    async fn write(&self, key: &str, value: &impl serde::Serialize) -> Result<(), PortError> {
        let value = serde_json::to_vec(value).expect("serializes");
        self.store()?
            .set(key, &value)
            .await
            .map_err(|e| port_error("set", e))
    }

    /// Whether this caller is the first to raise `key`.
    async fn claim_key(&self, key: &str, keep_until_ms: u64) -> Result<bool, PortError> {
        let index = Index(self.store()?);
        let first = index.increment(key, 1)? == 1;
        if first {
            expiry_index::register(&index, key, keep_until_ms).await?;
        }
        Ok(first)
    }
}

impl Connections for SpinConnections {
    async fn get(&self, owner: &str, server: &str) -> Result<Option<ConnectionRecord>, PortError> {
        self.read(&record_key(owner, server)).await
    }
    async fn put(&self, record: &ConnectionRecord) -> Result<(), PortError> {
        self.write(&record_key(&record.owner, &record.server), record)
            .await
    }
    async fn replace(&self, record: &ConnectionRecord, expected: u64) -> Result<bool, PortError> {
        let key = record_key(&record.owner, &record.server);
        let now = crate::ports::Clock::now_ms(&super::SpinClock);
        if !self
            .claim_key(
                &format!("connclaim/{key}/{}", record.generation),
                now + CLAIM_KEEP_MS,
            )
            .await?
        {
            return Ok(false);
        }
        let current: Option<ConnectionRecord> = self.read(&key).await?;
        if current.map(|c| c.generation) != Some(expected) {
            return Ok(false);
        }
        self.write(&key, record).await?;
        Ok(true)
    }
    async fn remove(
        &self,
        owner: &str,
        server: &str,
    ) -> Result<Option<ConnectionRecord>, PortError> {
        let key = record_key(owner, server);
        let removed = self.read(&key).await?;
        self.store()?
            .delete(&key)
            .await
            .map_err(|e| port_error("delete", e))?;
        Ok(removed)
    }
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectionRecord>, PortError> {
        let prefix = match owner {
            Some(o) => format!("{RECORD_PREFIX}{}/", URL_SAFE_NO_PAD.encode(o)),
            None => RECORD_PREFIX.to_string(),
        };
        let keys: Vec<String> = self
            .store()?
            .get_keys()
            .await
            .collect()
            .await
            .map_err(|e| port_error("get-keys", e))?;
        let mut records = Vec::new();
        for key in keys.iter().filter(|k| k.starts_with(&prefix)).take(limit) {
            if let Some(record) = self.read(key).await? {
                records.push(record);
            }
        }
        Ok(records)
    }
    async fn hold(&self, state: &str, pending: &PendingConnect) -> Result<(), PortError> {
        let key = format!("{PENDING_PREFIX}{state}");
        self.write(&key, pending).await?;
        expiry_index::register(&Index(self.store()?), &key, pending.expires_ms).await
    }
    async fn take(&self, state: &str, now_ms: u64) -> Result<Option<PendingConnect>, PortError> {
        let key = format!("{PENDING_PREFIX}{state}");
        let Some(pending) = self.read::<PendingConnect>(&key).await? else {
            return Ok(None);
        };
        if !self
            .claim_key(&format!("connect-claim/{state}"), pending.expires_ms)
            .await?
        {
            return Ok(None);
        }
        self.store()?
            .delete(&key)
            .await
            .map_err(|e| port_error("delete", e))?;
        Ok(Some(pending).filter(|p| now_ms < p.expires_ms))
    }
    async fn claim(&self, key: &str, expires_ms: u64) -> Result<bool, PortError> {
        self.claim_key(&format!("connect-once/{key}"), expires_ms)
            .await
    }
}
