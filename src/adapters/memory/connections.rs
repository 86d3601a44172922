//! Connections in maps (one process stands in for the Durable Objects):
//! writes and takes are atomic because nothing else runs between them.

use crate::ports::{ConnectionRecord, Connections, PendingConnect, PortError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

#[derive(Clone, Default)]
pub struct MemoryConnections {
    records: Rc<RefCell<BTreeMap<(String, String), ConnectionRecord>>>,
    pending: Rc<RefCell<BTreeMap<String, PendingConnect>>>,
    claimed: Rc<RefCell<std::collections::BTreeSet<String>>>,
}

impl MemoryConnections {
    /// Every stored byte, as a test would find it on disk: the records and
    /// the connects in flight, serialized.
    pub fn dump(&self) -> String {
        let records: Vec<_> = self.records.borrow().values().cloned().collect();
        let pending: Vec<_> = self.pending.borrow().values().cloned().collect();
        format!(
            "{}{}",
            serde_json::to_string(&records).expect("serializes"),
            serde_json::to_string(&pending).expect("serializes")
        )
    }
}

impl Connections for MemoryConnections {
    async fn get(&self, owner: &str, server: &str) -> Result<Option<ConnectionRecord>, PortError> {
        let key = (owner.to_string(), server.to_string());
        Ok(self.records.borrow().get(&key).cloned())
    }
    async fn put(&self, record: &ConnectionRecord) -> Result<(), PortError> {
        let key = (record.owner.clone(), record.server.clone());
        self.records.borrow_mut().insert(key, record.clone());
        Ok(())
    }
    async fn replace(&self, record: &ConnectionRecord, expected: u64) -> Result<bool, PortError> {
        let key = (record.owner.clone(), record.server.clone());
        let mut records = self.records.borrow_mut();
        match records.get(&key) {
            Some(now) if now.generation == expected => {
                records.insert(key, record.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn remove(
        &self,
        owner: &str,
        server: &str,
    ) -> Result<Option<ConnectionRecord>, PortError> {
        let key = (owner.to_string(), server.to_string());
        Ok(self.records.borrow_mut().remove(&key))
    }
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectionRecord>, PortError> {
        Ok(self
            .records
            .borrow()
            .values()
            .filter(|r| owner.is_none_or(|o| r.owner == o))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn hold(&self, state: &str, pending: &PendingConnect) -> Result<(), PortError> {
        self.pending
            .borrow_mut()
            .insert(state.to_string(), pending.clone());
        Ok(())
    }
    async fn take(&self, state: &str, now_ms: u64) -> Result<Option<PendingConnect>, PortError> {
        let taken = self.pending.borrow_mut().remove(state);
        Ok(taken.filter(|p| now_ms < p.expires_ms))
    }
    async fn claim(&self, key: &str, _expires_ms: u64) -> Result<bool, PortError> {
        Ok(self.claimed.borrow_mut().insert(key.to_string()))
    }
}
