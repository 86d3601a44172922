//! Configuration documents' version history on Spin: each document's kept
//! revisions in one value of the `sessions` store (`history/{key}`).
//!
//! An append must not let two writers both win. Spin's compare-and-swap
//! cannot be relied on for that (on the SQLite store a swap of a key that
//! did not exist upserts, and older versions do not compare at all), so,
//! as approvals do, each version is claimed first with a `wasi:keyvalue`
//! atomic increment (`histclaim/{key}/{version}`): only the writer that
//! raises it to 1 writes the list; any other is told it lost. Claims are
//! noted in the expiry index and swept after [`CLAIM_MS`]: a writer that
//! died between its claim and its write blocks that document's next
//! version no longer than that.

use super::kv::Index;
use crate::adapters::expiry_index;
use crate::ports::{append_conflict, keep_revision, Appended, Clock, History, PortError, Revision};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use spin_sdk::key_value::Store;
use std::rc::Rc;

const PREFIX: &str = "history/";
pub const CLAIM_PREFIX: &str = "histclaim/";
/// How long a version's claim is kept.
const CLAIM_MS: u64 = 60_000;

fn port_error(op: &str, e: impl std::fmt::Debug) -> PortError {
    PortError(format!("config history {op}: {e:?}"))
}

/// The `History` port on the `sessions` store.
#[derive(Clone)]
pub struct SpinHistory(Result<Rc<Store>, String>);

impl SpinHistory {
    pub fn new(store: Result<Rc<Store>, String>) -> Self {
        SpinHistory(store)
    }

    fn store(&self) -> Result<&Store, PortError> {
        self.0.as_deref().map_err(|e| PortError(e.clone()))
    }

    /// Kept revisions, oldest first.
    async fn kept(&self, key: &str) -> Result<Vec<Revision>, PortError> {
        let value = self
            .store()?
            .get(format!("{PREFIX}{key}"))
            .await
            .map_err(|e| port_error("get", e))?;
        match value {
            None => Ok(Vec::new()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PortError(format!("config history of {key} is corrupt: {e}"))),
        }
    }
}

impl History for SpinHistory {
    async fn revisions(&self, key: &str) -> Result<Vec<Revision>, PortError> {
        let mut kept = self.kept(key).await?;
        kept.reverse();
        Ok(kept)
    }

    async fn append(
        &self,
        key: &str,
        expected: Option<u64>,
        revision: &Revision,
    ) -> Result<Appended, PortError> {
        let mut kept = self.kept(key).await?;
        if let Some(conflict) = append_conflict(&kept, expected) {
            return Ok(conflict);
        }
        let bucket = store::open(super::kv::SESSION_STORE).map_err(|e| port_error("open", e))?;
        let claim = format!("{CLAIM_PREFIX}{key}/{}", revision.version);
        // Noted for the sweep before it is taken: a claim the index did not
        // get would block the document's next version for good.
        let until = super::SpinClock.now_ms() + CLAIM_MS;
        expiry_index::register(&Index(self.store()?), &claim, until).await?;
        let n = atomics::increment(&bucket, &claim, 1).map_err(|e| port_error("claim", e))?;
        if n != 1 {
            // Another writer took this version (and may not have written
            // it yet): it came first.
            return Ok(Appended::Conflict(Some(revision.version)));
        }
        keep_revision(&mut kept, revision.clone());
        let value = serde_json::to_vec(&kept).expect("revisions serialize");
        self.store()?
            .set(format!("{PREFIX}{key}"), &value)
            .await
            .map_err(|e| port_error("set", e))?;
        Ok(Appended::Done)
    }
}
