//! Approval records on Spin, in the `sessions` key-value store (keys
//! `approval/{id}`, the record as JSON). The store has no compare-and-swap,
//! so the two transitions that must happen once, deciding and consuming, are
//! claimed first with a `wasi:keyvalue` atomic increment on a claim key of
//! that very opening of the record (`apclaim/{nonce}.{op}`, the nonce drawn
//! when the record was opened): only the caller that raises it to 1 goes
//! on, whenever the others come. That is exact on one instance and as exact
//! as the store's atomics across instances (see README). Records and claims
//! are noted in the expiry index and removed by the session sweep.

use super::kv::Index;
use crate::adapters::expiry_index;
use crate::governance::approval::{transition, ApprovalRecord, Decided, Decision};
use crate::ports::{Approvals, PortError};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use spin_sdk::key_value::Store;
use std::rc::Rc;

pub const RECORD_PREFIX: &str = "approval/";
pub const CLAIM_PREFIX: &str = "apclaim/";

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
        if held.as_ref() != Some(&record) {
            self.write(&record).await?;
        }
        Ok(record)
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
