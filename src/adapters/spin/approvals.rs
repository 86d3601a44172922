//! Approval records on Spin, in the `sessions` key-value store (keys
//! `approval/{id}`, the record as JSON). The store has no compare-and-swap,
//! so the two transitions that must happen once, deciding and consuming, are
//! claimed first with a `wasi:keyvalue` atomic increment on a claim key of
//! that very opening of the record (`apclaim/{nonce}.{op}`, the nonce drawn
//! when the record was opened): only the caller that raises it to 1 goes
//! on, whenever the others come. That is exact on one instance and as exact
//! as the store's atomics across instances (see README). Records and claims
//! are noted in the expiry index and removed by the session sweep.
//!
//! The inbox (`GET /approvals`): each record opened takes the next slot of
//! an atomic counter (`apinbox/n`) and is noted there (`apinbox/{slot}`,
//! its id; swept when the record expires). The inbox reads the newest
//! [`INBOX_SCAN`] slots back from the counter, each record from its own
//! key, which alone says whether it is still pending: no read-modify-write
//! of a shared list, so two instances opening at once both land.

use super::kv::Index;
use crate::adapters::expiry_index;
use crate::adapters::expiry_index::IndexStore;
use crate::governance::approval::{transition, ApprovalRecord, Channel, Decided, Decision, Status};
use crate::ports::{Approvals, PortError};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use spin_sdk::key_value::Store;
use std::rc::Rc;

pub const RECORD_PREFIX: &str = "approval/";
pub const CLAIM_PREFIX: &str = "apclaim/";
pub const INBOX_PREFIX: &str = "apinbox/";
const INBOX_COUNTER: &str = "apinbox/n";
/// The newest slots the inbox reads.
const INBOX_SCAN: i64 = 200;

#[derive(Clone)]
pub struct SpinApprovals(Result<Rc<Store>, String>);

fn port_error(op: &str, e: impl std::fmt::Debug) -> PortError {
    PortError(format!("approval store {op}: {e:?}"))
}

impl SpinApprovals {
    /// Shares the session store handle (same store, no second open).
    pub fn new(store: Result<Rc<Store>, String>) -> Self {
        SpinApprovals(store)
    }

    fn store(&self) -> Result<&Store, PortError> {
        self.0.as_deref().map_err(|e| PortError(e.clone()))
    }

    async fn read(&self, id: &str) -> Result<Option<ApprovalRecord>, PortError> {
        let value = self
            .store()?
            .get(format!("{RECORD_PREFIX}{id}"))
            .await
            .map_err(|e| port_error("get", e))?;
        match value {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| PortError(format!("approval {id} is corrupt: {e}"))),
        }
    }

    async fn write(&self, record: &ApprovalRecord) -> Result<(), PortError> {
        let value = serde_json::to_vec(record).expect("record serializes");
        let key = format!("{RECORD_PREFIX}{}", record.id);
        let store = self.store()?;
        store
            .set(&key, &value)
            .await
            .map_err(|e| port_error("set", e))?;
        expiry_index::register(&Index(store), &key, record.expires_ms).await
    }

    /// Notes a record just opened in the next inbox slot.
    async fn note(&self, record: &ApprovalRecord) -> Result<(), PortError> {
        let index = Index(self.store()?);
        let slot = index.increment(INBOX_COUNTER, 1)?;
        let key = format!("{INBOX_PREFIX}{slot}");
        index.set(&key, record.id.as_bytes()).await?;
        expiry_index::register(&index, &key, record.expires_ms).await
    }

    /// `true` for the first caller to claim `op` on this opening of the
    /// record: one key per (nonce, op), so two decisions at any two moments
    /// meet on the same counter, and a reopened id (a new nonce) starts
    /// fresh. The claim is noted to expire at `end_ms`.
    async fn claim(
        &self,
        record: &ApprovalRecord,
        op: &str,
        end_ms: u64,
    ) -> Result<bool, PortError> {
        let bucket = store::open(super::kv::SESSION_STORE).map_err(|e| port_error("open", e))?;
        // Records from before nonces existed fall back to their creation time.
        let nonce = match record.nonce.as_str() {
            "" => format!("{}.{}", record.id, record.created_ms),
            n => n.to_string(),
        };
        let key = format!("{CLAIM_PREFIX}{nonce}.{op}");
        let n = atomics::increment(&bucket, &key, 1).map_err(|e| port_error("increment", e))?;
        if n == 1 {
            expiry_index::register(&Index(self.store()?), &key, end_ms).await?;
        }
        Ok(n == 1)
    }
}

impl Approvals for SpinApprovals {
    async fn open(&self, fresh: &ApprovalRecord, now_ms: u64) -> Result<ApprovalRecord, PortError> {
        let held = self.read(&fresh.id).await?;
        let record = transition::open(held.clone(), fresh, now_ms);
        let stored = held.as_ref() != Some(&record);
        if stored {
            self.write(&record).await?;
        }
        // Only calls waiting for an approver, and only when this opening
        // stored it.
        if stored && record.channel == Channel::Approver && record.nonce == fresh.nonce {
            // A record the inbox missed is still decided at its address.
            if let Err(e) = self.note(&record).await {
                tracing::warn!(approval = %record.id, "approval not noted in the inbox: {e}");
            }
        }
        Ok(record)
    }

    async fn pending(&self, now_ms: u64, limit: usize) -> Result<Vec<ApprovalRecord>, PortError> {
        let index = Index(self.store()?);
        let newest = index.increment(INBOX_COUNTER, 0)?;
        let mut pending = Vec::new();
        let mut slot = newest;
        while slot > 0 && slot > newest - INBOX_SCAN && pending.len() < limit {
            let noted = index.get(&format!("{INBOX_PREFIX}{slot}")).await?;
            slot -= 1;
            let Some(id) = noted.and_then(|v| String::from_utf8(v).ok()) else {
                continue;
            };
            let record = match self.get(&id, now_ms).await {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!(approval = %id, "inbox: record not read: {e}");
                    continue;
                }
            };
            if let Some(record) = record {
                if record.status == Status::Pending
                    && !pending.iter().any(|r: &ApprovalRecord| r.id == id)
                {
                    pending.push(record);
                }
            }
        }
        Ok(pending)
    }

    async fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>, PortError> {
        Ok(self.read(id).await?.filter(|r| r.is_live(now_ms)))
    }

    async fn decide(&self, id: &str, decision: &Decision) -> Result<Decided, PortError> {
        let held = self.read(id).await?;
        let decided = transition::decide(held.clone(), decision);
        let Decided::Applied { record } = &decided else {
            return Ok(decided);
        };
        // Every record this decision can leave behind ends by then.
        let end = decision.now_ms.saturating_add(decision.ttl_ms);
        if !self.claim(record, "decide", end).await? {
            // Someone else decided a moment ago: report the record as it
            // stands (still pending if their write has not landed yet).
            let now = self
                .read(id)
                .await?
                .or(held)
                .unwrap_or_else(|| record.clone());
            return Ok(Decided::Already { record: now });
        }
        self.write(record).await?;
        Ok(decided)
    }

    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError> {
        let Some(record) = self.read(id).await? else {
            return Ok(false);
        };
        if !transition::consume(Some(&record), now_ms)
            || !self.claim(&record, "consume", record.expires_ms).await?
        {
            return Ok(false);
        }
        self.store()?
            .delete(format!("{RECORD_PREFIX}{id}"))
            .await
            .map_err(|e| port_error("delete", e))?;
        Ok(true)
    }
}
