//! Approval records on Spin, in the `sessions` key-value store (keys
//! `approval/{id}`, the record as JSON). The store has no compare-and-swap,
//! so the two transitions that must happen once, deciding and consuming, are
//! claimed first with a `wasi:keyvalue` atomic increment on a claim key of
//! that very record (`apclaim/{id}.{created}.{op}/{end}`): only the caller
//! that raises it to 1 goes on. That is exact on one instance and as exact as
//! the store's atomics across instances (see README). Expired records and
//! claims are removed by the session sweep.

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
        self.store()?
            .set(&format!("{RECORD_PREFIX}{}", record.id), &value)
            .await
            .map_err(|e| port_error("set", e))
    }

    /// `true` for the first caller to claim `op` on this very record (a
    /// reopened id has a new `created_ms`, hence fresh claims). The claim key
    /// carries its own end so the sweep can drop it.
    fn claim(&self, record: &ApprovalRecord, op: &str, end_ms: u64) -> Result<bool, PortError> {
        let bucket = store::open(super::kv::SESSION_STORE).map_err(|e| port_error("open", e))?;
        let key = format!(
            "{CLAIM_PREFIX}{}.{}.{op}/{end_ms}",
            record.id, record.created_ms
        );
        let n = atomics::increment(&bucket, &key, 1).map_err(|e| port_error("increment", e))?;
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
        if !self.claim(record, "decide", end)? {
            // Someone else decided a moment ago: report the record as it
            // stands (still pending if their write has not landed yet).
            let now = self
                .read(id)
                .await?
                .or(held)
                .unwrap_or_else(|| record.clone());
            return Ok(Decided::AlreadyDecided { record: now });
        }
        self.write(record).await?;
        Ok(decided)
    }

    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError> {
        let Some(record) = self.read(id).await? else {
            return Ok(false);
        };
        if !transition::consume(Some(&record), now_ms)
            || !self.claim(&record, "consume", record.expires_ms)?
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
