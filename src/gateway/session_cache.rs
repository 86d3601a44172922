//! A short-lived, isolate-local cache in front of the session store.
//!
//! On Workers every session lookup is a Durable Object round trip, the largest
//! cost the gateway adds to a `tools/call` (see bench/RESULTS.md). Records are
//! kept here for `SESSION_CACHE_MS` (default 1000 ms): writes go through to
//! the store and update the cache, a DELETE through this isolate evicts at
//! once, so within one isolate the cache is exact. A session deleted through
//! *another* isolate can still be accepted here until its entry ages out;
//! `SESSION_CACHE_MS=0` turns the cache off for deployments that need every
//! isolate to see a DELETE immediately.
//!
//! It is a decorator of the [`Sessions`] port, so adapters know nothing of it.

use super::own_writes::{OverlayKv, OwnWrites};
use crate::cache::Bounded;
use crate::ports::{Clock, Platform, PortError, SessionRecord, Sessions, UpstreamChange};
use std::rc::Rc;

/// The cached records, shared by every request of an isolate.
#[derive(Default)]
pub(crate) struct SessionCache {
    ttl_ms: u64,
    entries: Bounded<String, SessionRecord>,
    /// The latest change of each session this isolate made or dropped (a
    /// number from `changes`): a record read from the store while one came
    /// (a DELETE, a change only the store could decide) may be stale by the
    /// time it arrives, and is not cached then. Per session, so no caller
    /// can keep other sessions' records out of the cache.
    marks: Bounded<String, u64>,
    changes: std::cell::Cell<u64>,
}

/// How long a change mark is kept: far longer than any store read.
const MARK_MS: u64 = 60_000;

impl SessionCache {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        SessionCache {
            ttl_ms,
            entries: Bounded::default(),
            marks: Bounded::default(),
            changes: Default::default(),
        }
    }

    fn fresh(&self, id: &str, now: u64) -> Option<SessionRecord> {
        self.entries.get(id, now)
    }

    fn put(&self, record: &SessionRecord, now: u64) {
        if self.ttl_ms > 0 {
            let until = now.saturating_add(self.ttl_ms);
            self.entries
                .insert(record.id.clone(), record.clone(), until, now);
        }
    }

    /// The mark of `id`'s latest change (none lately: `None`).
    fn mark(&self, id: &str, now: u64) -> Option<u64> {
        self.marks.get(id, now)
    }

    fn changed(&self, id: &str, now: u64) {
        self.changes.set(self.changes.get() + 1);
        self.marks
            .insert(id.to_string(), self.changes.get(), now + MARK_MS, now);
    }

    fn update(&self, id: &str, change: &UpstreamChange, now: u64) {
        self.changed(id, now);
        self.entries.update(id, |record| record.apply(change));
    }

    pub(super) fn evict(&self, id: &str, now: u64) {
        self.changed(id, now);
        self.entries.remove(id);
    }
}

/// The session store seen through the cache.
#[derive(Clone)]
pub(crate) struct CachedSessions<S, C> {
    pub inner: S,
    pub clock: C,
    pub cache: Rc<SessionCache>,
}

impl<S: Sessions, C: Clock> Sessions for CachedSessions<S, C> {
    async fn create(&self, record: &SessionRecord) -> Result<(), PortError> {
        self.inner.create(record).await?;
        self.cache.put(record, self.clock.now_ms());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        let now = self.clock.now_ms();
        if let Some(record) = self.cache.fresh(id, now) {
            return Ok(Some(record));
        }
        let mark = self.cache.mark(id, now);
        let record = self.inner.get(id).await?;
        match &record {
            // Not if the session changed while the store was read: the
            // record may be one a DELETE has ended since.
            Some(r) if self.cache.mark(id, self.clock.now_ms()) == mark => self.cache.put(r, now),
            Some(_) => {}
            None => self.cache.entries.remove(id),
        }
        Ok(record)
    }

    async fn set_upstream(&self, id: &str, change: &UpstreamChange) -> Result<bool, PortError> {
        let exists = self.inner.set_upstream(id, change).await?;
        // A change made only if the server holds no session yet may have
        // lost to another isolate's, which this cache has not seen: only the
        // store knows which one is kept, so the next read asks it.
        if exists && !change.unless_held {
            self.cache.update(id, change, self.clock.now_ms());
        } else {
            self.cache.evict(id, self.clock.now_ms());
        }
        Ok(exists)
    }

    // Evicted before the write and again after it: a read that starts
    // while the write is under way must not cache what it replaces.
    async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError> {
        self.cache.evict(id, self.clock.now_ms());
        let done = self.inner.set_log_level(id, level).await;
        self.cache.evict(id, self.clock.now_ms());
        done
    }

    async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        self.cache.evict(id, self.clock.now_ms());
        let done = self.inner.delete(id).await;
        self.cache.evict(id, self.clock.now_ms());
        done
    }
}

/// A platform whose session store is seen through the isolate's cache. It
/// shares the platform rather than borrowing it, so work that outlives the
/// handler (a stream still being written) can keep a copy.
pub(crate) struct CachedPlatform<P: Platform> {
    inner: Rc<P>,
    sessions: CachedSessions<P::Sessions, P::Clock>,
    /// KV with this instance's own admin writes laid over it.
    kv: Rc<OverlayKv<P>>,
}

impl<P: Platform> Clone for CachedPlatform<P> {
    fn clone(&self) -> Self {
        CachedPlatform {
            inner: self.inner.clone(),
            sessions: self.sessions.clone(),
            kv: self.kv.clone(),
        }
    }
}

impl<P: Platform> CachedPlatform<P> {
    pub(crate) fn new(inner: Rc<P>, cache: Rc<SessionCache>, writes: Rc<OwnWrites>) -> Self {
        let sessions = CachedSessions {
            inner: inner.sessions().clone(),
            clock: inner.clock().clone(),
            cache,
        };
        let kv = Rc::new(OverlayKv {
            inner: inner.clone(),
            writes,
        });
        CachedPlatform {
            inner,
            sessions,
            kv,
        }
    }
}

impl<P: Platform> Platform for CachedPlatform<P> {
    type Kv = OverlayKv<P>;
    type Sessions = CachedSessions<P::Sessions, P::Clock>;
    type Http = P::Http;
    type Clock = P::Clock;
    type Limiter = P::Limiter;
    type Approvals = P::Approvals;
    type Connections = P::Connections;
    type Usage = P::Usage;
    type History = P::History;

    fn kv(&self) -> &Self::Kv {
        &self.kv
    }
    fn history(&self) -> &Self::History {
        self.inner.history()
    }
    fn limiter(&self) -> &Self::Limiter {
        self.inner.limiter()
    }
    fn approvals(&self) -> &Self::Approvals {
        self.inner.approvals()
    }
    fn connections(&self) -> &Self::Connections {
        self.inner.connections()
    }
    fn usage(&self) -> &Self::Usage {
        self.inner.usage()
    }
    fn sessions(&self) -> &Self::Sessions {
        &self.sessions
    }
    fn http(&self) -> &Self::Http {
        self.inner.http()
    }
    fn clock(&self) -> &Self::Clock {
        self.inner.clock()
    }
    fn random_bytes(&self, buf: &mut [u8]) {
        self.inner.random_bytes(buf)
    }
    fn defer(&self, work: futures_util::future::LocalBoxFuture<'static, ()>) {
        self.inner.defer(work)
    }
    async fn secret(&self, name: &str) -> Option<String> {
        self.inner.secret(name).await
    }
    async fn shared_get(&self, key: &str) -> Option<String> {
        self.inner.shared_get(key).await
    }
    async fn shared_put(&self, key: &str, value: &str) {
        self.inner.shared_put(key, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemorySessions, TokioClock};
    use crate::ports::UpstreamSession;

    fn upstream(id: &str) -> UpstreamChange {
        UpstreamChange {
            server: "alpha".into(),
            upstream: Some(UpstreamSession {
                url: "http://alpha.test/mcp".into(),
                session_id: Some(id.into()),
                protocol_version: "2025-11-25".into(),
            }),
            unless_held: true,
        }
    }

    fn record(id: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            endpoint: "/mcp".into(),
            owner: "key|a".into(),
            protocol_version: "2025-11-25".into(),
            created_ms: 0,
            expires_ms: u64::MAX,
            client_params: None,
            elicitation: false,
            elicitation_url: false,
            log_level: None,
            upstreams: Default::default(),
        }
    }

    fn held(record: Option<SessionRecord>) -> Option<String> {
        record?.upstreams.get("alpha")?.session_id.clone()
    }

    /// Two isolates (two caches, one store) meet a server at once: each
    /// reads back the session the store kept, not the one it offered.
    #[tokio::test]
    async fn a_lost_first_session_is_read_back_from_the_store() {
        let store = MemorySessions::default();
        store.create(&record("s1")).await.unwrap();
        let isolate = || CachedSessions {
            inner: store.clone(),
            clock: TokioClock::default(),
            cache: Rc::new(SessionCache::new(60_000)),
        };
        let (a, b) = (isolate(), isolate());
        // Both read the record before either met the server.
        assert_eq!(held(a.get("s1").await.unwrap()), None);
        assert_eq!(held(b.get("s1").await.unwrap()), None);
        a.set_upstream("s1", &upstream("first")).await.unwrap();
        b.set_upstream("s1", &upstream("second")).await.unwrap();
        assert_eq!(held(a.get("s1").await.unwrap()).as_deref(), Some("first"));
        assert_eq!(held(b.get("s1").await.unwrap()).as_deref(), Some("first"));
        // A plain change is the store's too, and cached as made.
        let plain = UpstreamChange {
            unless_held: false,
            ..upstream("third")
        };
        b.set_upstream("s1", &plain).await.unwrap();
        assert_eq!(held(b.get("s1").await.unwrap()).as_deref(), Some("third"));
    }

    /// A store whose reads arrive late: the record is read when asked,
    /// handed back a turn later.
    #[derive(Clone)]
    struct Late(MemorySessions);

    impl Sessions for Late {
        async fn create(&self, record: &SessionRecord) -> Result<(), PortError> {
            self.0.create(record).await
        }
        async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
            let record = self.0.get(id).await;
            tokio::task::yield_now().await;
            record
        }
        async fn set_upstream(&self, id: &str, c: &UpstreamChange) -> Result<bool, PortError> {
            self.0.set_upstream(id, c).await
        }
        async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError> {
            self.0.set_log_level(id, level).await
        }
        async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
            tokio::task::yield_now().await;
            self.0.delete(id).await
        }
    }

    /// A read that started before a DELETE and ends after it does not put
    /// the ended session back in the cache.
    #[tokio::test]
    async fn a_read_overtaken_by_a_delete_is_not_cached() {
        let store = Late(MemorySessions::default());
        store.create(&record("s2")).await.unwrap();
        let cached = CachedSessions {
            inner: store,
            clock: TokioClock::default(),
            cache: Rc::new(SessionCache::new(60_000)),
        };
        let (read, deleted) = tokio::join!(cached.get("s2"), cached.delete("s2"));
        assert!(read.unwrap().is_some(), "read before the delete");
        assert!(deleted.unwrap().is_some());
        assert_eq!(cached.get("s2").await.unwrap(), None, "ended for good");
        // The other way round: the delete starts first, the read reads
        // before the store has deleted.
        cached.inner.create(&record("s3")).await.unwrap();
        let (deleted, read) = tokio::join!(cached.delete("s3"), cached.get("s3"));
        assert!(deleted.unwrap().is_some());
        assert!(read.unwrap().is_some(), "read before the store deleted");
        assert_eq!(cached.get("s3").await.unwrap(), None, "ended for good");
        // Another session's changes do not keep this one out of the cache.
        cached.inner.create(&record("s4")).await.unwrap();
        let (_, _) = tokio::join!(cached.get("s4"), cached.delete("s5"));
        let reads = cached.inner.0.reads();
        cached.get("s4").await.unwrap();
        assert_eq!(cached.inner.0.reads(), reads, "s4 was cached");
    }
}
