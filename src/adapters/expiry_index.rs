//! An expiry index for key-value stores without TTLs (Spin's): every key
//! written with an end of life is also noted under the minute it expires,
//! and the sweep visits only the minutes that have passed, deleting what
//! was noted there. It never lists the store, so its cost follows the
//! number of expired entries, not the number of keys.
//!
//! Layout, beside the data in the same store:
//! - `sweep/{minute}/n`: an atomic counter, the number of slots used;
//! - `sweep/{minute}/{slot}`: one noted key per slot;
//! - `sweep/cursor`: the first minute not swept yet.
//!
//! A record whose end moves later (an approval extended when approved) is
//! noted again at its new end; when the sweep meets its earlier note it
//! reads the record's `expires_ms` and leaves it while it is still live.
//! Platform-free, so it is tested natively; the Spin adapter implements
//! [`IndexStore`] on its store and atomics.

use crate::ports::PortError;

/// Minutes of expiry share one bucket.
pub(crate) const BUCKET_MS: u64 = 60_000;
/// At most this many minutes are swept per run (a day); a later run goes on.
pub(crate) const MAX_BUCKETS_PER_RUN: u64 = 1_440;
const PREFIX: &str = "sweep/";
const CURSOR: &str = "sweep/cursor";

/// What the index needs of a store.
#[allow(async_fn_in_trait)]
pub(crate) trait IndexStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError>;
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), PortError>;
    async fn delete(&self, key: &str) -> Result<(), PortError>;
    /// Adds `by` to the counter `key` (created at 0) and returns the new value.
    fn increment(&self, key: &str, by: i64) -> Result<i64, PortError>;
}

/// Notes that `key` expires at `expires_ms`.
pub(crate) async fn register<S: IndexStore>(
    s: &S,
    key: &str,
    expires_ms: u64,
) -> Result<(), PortError> {
    let bucket = expires_ms / BUCKET_MS;
    let slot = s.increment(&format!("{PREFIX}{bucket}/n"), 1)?;
    s.set(&format!("{PREFIX}{bucket}/{slot}"), key.as_bytes())
        .await
}

/// Deletes what expired before `now_ms` and returns how many keys went.
pub(crate) async fn sweep<S: IndexStore>(s: &S, now_ms: u64) -> Result<usize, PortError> {
    let current = now_ms / BUCKET_MS;
    let start = match s.get(CURSOR).await? {
        Some(v) => String::from_utf8_lossy(&v)
            .parse::<u64>()
            .unwrap_or(current),
        None => current.saturating_sub(MAX_BUCKETS_PER_RUN),
    };
    let end = current.min(start.saturating_add(MAX_BUCKETS_PER_RUN));
    let mut removed = 0;
    for bucket in start..end {
        let counter = format!("{PREFIX}{bucket}/n");
        // Most minutes noted nothing: one read, nothing created.
        if s.get(&counter).await?.is_none() {
            continue;
        }
        // Adding 0 reads the counter whatever the backend's encoding.
        let slots = s.increment(&counter, 0)?.max(0);
        for slot in 1..=slots {
            let note = format!("{PREFIX}{bucket}/{slot}");
            if let Some(key) = s.get(&note).await? {
                let key = String::from_utf8_lossy(&key).into_owned();
                if !still_live(s, &key, now_ms).await? {
                    s.delete(&key).await?;
                    removed += 1;
                }
                s.delete(&note).await?;
            }
        }
        s.delete(&counter).await?;
    }
    if end > start {
        s.set(CURSOR, end.to_string().as_bytes()).await?;
    }
    Ok(removed)
}

/// A noted record that has since been given a later end (`expires_ms` in
/// its JSON) stays; anything else noted has reached its end.
async fn still_live<S: IndexStore>(s: &S, key: &str, now_ms: u64) -> Result<bool, PortError> {
    #[derive(serde::Deserialize)]
    struct Expiring {
        expires_ms: u64,
    }
    let Some(value) = s.get(key).await? else {
        return Ok(false);
    };
    Ok(serde_json::from_slice::<Expiring>(&value).is_ok_and(|r| r.expires_ms > now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Store {
        map: RefCell<BTreeMap<String, Vec<u8>>>,
        counters: RefCell<BTreeMap<String, i64>>,
        reads: Cell<usize>,
    }

    impl IndexStore for Store {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, PortError> {
            self.reads.set(self.reads.get() + 1);
            if let Some(n) = self.counters.borrow().get(key) {
                return Ok(Some(n.to_le_bytes().to_vec()));
            }
            Ok(self.map.borrow().get(key).cloned())
        }
        async fn set(&self, key: &str, value: &[u8]) -> Result<(), PortError> {
            self.map.borrow_mut().insert(key.into(), value.to_vec());
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<(), PortError> {
            self.map.borrow_mut().remove(key);
            self.counters.borrow_mut().remove(key);
            Ok(())
        }
        fn increment(&self, key: &str, by: i64) -> Result<i64, PortError> {
            let mut c = self.counters.borrow_mut();
            let v = c.entry(key.into()).or_insert(0);
            *v += by;
            Ok(*v)
        }
    }

    const T0: u64 = 1_800_000_000_000;

    #[tokio::test]
    async fn sweeps_what_expired_without_reading_anything_else() {
        let s = Store::default();
        for i in 0..5_000 {
            s.set(
                &format!("session/live{i}"),
                b"{\"expires_ms\":9999999999999}",
            )
            .await
            .unwrap();
        }
        s.set("session/old", b"{\"expires_ms\":0}").await.unwrap();
        s.set("rl/x/123", b"\x01\0\0\0\0\0\0\0").await.unwrap();
        register(&s, "session/old", T0 + 1_000).await.unwrap();
        register(&s, "rl/x/123", T0 + 2_000).await.unwrap();
        register(&s, "session/later", T0 + 10 * BUCKET_MS)
            .await
            .unwrap();
        s.set(CURSOR, (T0 / BUCKET_MS).to_string().as_bytes())
            .await
            .unwrap();
        s.reads.set(0);
        let removed = sweep(&s, T0 + 2 * BUCKET_MS).await.unwrap();
        assert_eq!(removed, 2);
        assert!(s.map.borrow().get("session/old").is_none());
        assert!(s.map.borrow().get("rl/x/123").is_none());
        assert!(s.map.borrow().contains_key("session/live0"));
        assert!(
            s.reads.get() < 12,
            "{} reads for 2 expired keys among 5,000",
            s.reads.get()
        );
        // The later note stays for its own minute.
        assert_eq!(sweep(&s, T0 + 2 * BUCKET_MS).await.unwrap(), 0);
        assert!(s.map.borrow().keys().any(|k| k.starts_with("sweep/")));
    }

    #[tokio::test]
    async fn a_record_given_a_later_end_survives_its_first_note() {
        let s = Store::default();
        s.set(CURSOR, (T0 / BUCKET_MS).to_string().as_bytes())
            .await
            .unwrap();
        let later = T0 + 5 * BUCKET_MS;
        s.set(
            "approval/a",
            format!("{{\"expires_ms\":{later}}}").as_bytes(),
        )
        .await
        .unwrap();
        register(&s, "approval/a", T0 + 1_000).await.unwrap();
        register(&s, "approval/a", later).await.unwrap();
        assert_eq!(sweep(&s, T0 + 2 * BUCKET_MS).await.unwrap(), 0);
        assert!(s.map.borrow().contains_key("approval/a"));
        assert_eq!(sweep(&s, later + BUCKET_MS).await.unwrap(), 1);
        assert!(!s.map.borrow().contains_key("approval/a"));
        assert!(
            s.map.borrow().keys().all(|k| k == CURSOR),
            "the index cleans up after itself: {:?}",
            s.map.borrow().keys().collect::<Vec<_>>()
        );
    }
}
