//! Configuration documents' version history on Spin: each document's kept
//! revisions in one value of the `sessions` store (`history/{key}`),
//! appended with a `wasi:keyvalue` compare-and-swap, so of two admins
//! writing one document at once exactly one wins, across instances as far
//! as the store's atomics reach (exact on Spin's default SQLite store).

use crate::ports::{Appended, History, PortError, Revision, REVISIONS_KEPT};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

const PREFIX: &str = "history/";

fn port_error(op: &str, e: impl std::fmt::Debug) -> PortError {
    PortError(format!("config history {op}: {e:?}"))
}

/// The `History` port on the `sessions` store.
#[derive(Clone, Copy, Default)]
pub struct SpinHistory;

/// Kept revisions from a stored value, oldest first.
fn decode(value: Option<Vec<u8>>, key: &str) -> Result<Vec<Revision>, PortError> {
    match value {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| PortError(format!("config history of {key} is corrupt: {e}"))),
    }
}

impl History for SpinHistory {
    async fn revisions(&self, key: &str) -> Result<Vec<Revision>, PortError> {
        let bucket = store::open(super::kv::SESSION_STORE).map_err(|e| port_error("open", e))?;
        let value = bucket
            .get(&format!("{PREFIX}{key}"))
            .map_err(|e| port_error("get", e))?;
        let mut kept = decode(value, key)?;
        kept.reverse();
        Ok(kept)
    }

    async fn append(
        &self,
        key: &str,
        expected: Option<u64>,
        revision: &Revision,
    ) -> Result<Appended, PortError> {
        let bucket = store::open(super::kv::SESSION_STORE).map_err(|e| port_error("open", e))?;
        let cas = atomics::Cas::new(&bucket, &format!("{PREFIX}{key}"))
            .map_err(|e| port_error("cas", e))?;
        let mut kept = decode(cas.current().map_err(|e| port_error("cas", e))?, key)?;
        let newest = kept.last().map(|r| r.version);
        if newest != expected {
            return Ok(Appended::Conflict(newest));
        }
        kept.push(revision.clone());
        if kept.len() > REVISIONS_KEPT {
            kept.remove(0);
        }
        let value = serde_json::to_vec(&kept).expect("revisions serialize");
        match atomics::swap(cas, &value) {
            Ok(()) => Ok(Appended::Done),
            // Changed since it was read: whoever came first won.
            Err(atomics::CasError::CasFailed(again)) => {
                let now = decode(again.current().map_err(|e| port_error("cas", e))?, key)?;
                Ok(Appended::Conflict(now.last().map(|r| r.version)))
            }
            Err(atomics::CasError::StoreError(e)) => Err(port_error("swap", e)),
        }
    }
}
