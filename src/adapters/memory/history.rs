//! Configuration documents' version history in a map: one process stands
//! in for the Durable Object (Workers) or the compare-and-swap (Spin), so a
//! check and its append happen without another change between them.

use crate::ports::{append_conflict, keep_revision, Appended, History, PortError, Revision};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Each document's revisions, oldest first.
#[derive(Clone, Default)]
pub struct MemoryHistory(Rc<RefCell<BTreeMap<String, Vec<Revision>>>>);

impl History for MemoryHistory {
    async fn revisions(&self, key: &str) -> Result<Vec<Revision>, PortError> {
        let read = self
            .0
            .borrow()
            .get(key)
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default();
        // The answer's way back from the store: requests in flight
        // interleave here, as they do around a Durable Object (what one
        // read may be changed by the time it is used; tests race writers).
        tokio::task::yield_now().await;
        Ok(read)
    }

    async fn append(
        &self,
        key: &str,
        expected: Option<u64>,
        revision: &Revision,
    ) -> Result<Appended, PortError> {
        let mut all = self.0.borrow_mut();
        let kept = all.entry(key.to_string()).or_default();
        if let Some(conflict) = append_conflict(kept, expected) {
            return Ok(conflict);
        }
        keep_revision(kept, revision.clone());
        Ok(Appended::Done)
    }
}
