//! In-process ports for native tests and benchmarks: KV and sessions in maps, a
//! clock on tokio time (so tests can pause it), upstream HTTP dispatched to
//! in-process handlers such as [`MockServer`], and deferred work collected until
//! the test runs it.

mod connections;
mod history;
mod kv;
mod mock_asks;
mod mock_listen;
mod mock_server;
mod mock_tools;

pub use connections::MemoryConnections;
pub use history::MemoryHistory;
pub use kv::MemoryKv;
pub use mock_server::{MockServer, Seen};

use crate::body::Body;
use crate::governance::approval::{transition, ApprovalRecord, Decided, Decision, Status};
use crate::governance::gcra;
use crate::governance::gcra::Quota;
use crate::ports::{
    Approvals, Clock, HttpClient, Limiter, PortError, Ports, Runtime, SendError, SessionRecord,
    Sessions, Take, UpstreamChange, Usage, UsageCount, UsageKey,
};
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Sessions in a map (one process stands in for the Durable Object).
#[derive(Clone, Default)]
pub struct MemorySessions(
    Rc<RefCell<HashMap<String, SessionRecord>>>,
    Rc<std::cell::Cell<usize>>,
);

impl MemorySessions {
    /// How many `get`s reached the store (tests of the isolate cache).
    pub fn reads(&self) -> usize {
        self.1.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn snapshot(&self, id: &str) -> Option<SessionRecord> {
        self.0.borrow().get(id).cloned()
    }
}

impl Sessions for MemorySessions {
    async fn create(&self, record: &SessionRecord) -> Result<(), PortError> {
        self.0
            .borrow_mut()
            .insert(record.id.clone(), record.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        self.1.set(self.1.get() + 1);
        Ok(self.0.borrow().get(id).cloned())
    }
    async fn set_upstream(&self, id: &str, change: &UpstreamChange) -> Result<bool, PortError> {
        let mut map = self.0.borrow_mut();
        let Some(record) = map.get_mut(id) else {
            return Ok(false);
        };
        record.apply(change);
        Ok(true)
    }
    async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError> {
        let mut map = self.0.borrow_mut();
        let Some(record) = map.get_mut(id) else {
            return Ok(false);
        };
        record.log_level = Some(level.to_string());
        Ok(true)
    }
    async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        Ok(self.0.borrow_mut().remove(id))
    }
}

/// Counters in a map: one process, so exact. Each check waits one poll
/// before it counts, as a round trip would, so tests can see how many
/// checks a call has in flight at once ([`MemoryLimiter::most_at_once`]).
#[derive(Clone, Default)]
pub struct MemoryLimiter {
    counters: Rc<RefCell<HashMap<String, u64>>>,
    /// Checks in flight now, and the most there ever were.
    in_flight: Rc<std::cell::Cell<(usize, usize)>>,
    /// Checks made.
    checks: Rc<std::cell::Cell<usize>>,
}

impl MemoryLimiter {
    /// The most checks that were ever in flight at once.
    pub fn most_at_once(&self) -> usize {
        self.in_flight.get().1
    }
    /// How many checks were made.
    pub fn checks(&self) -> usize {
        self.checks.get()
    }
}

/// Pending once, then ready: a round trip's worth of waiting.
struct OnePoll(bool);

impl std::future::Future for OnePoll {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

impl MemoryLimiter {
    /// One round trip's worth of waiting, counted.
    async fn round_trip(&self) {
        self.checks.set(self.checks.get() + 1);
        let (now, most) = self.in_flight.get();
        self.in_flight.set((now + 1, most.max(now + 1)));
        OnePoll(false).await;
        let (now, most) = self.in_flight.get();
        self.in_flight.set((now - 1, most));
    }
}

impl Limiter for MemoryLimiter {
    async fn check(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<gcra::Decision, PortError> {
        let take = Take { key, quota, cost };
        let mut decisions = self.check_together(key, &[take], now_ms).await?;
        Ok(decisions.remove(0))
    }
    /// One round trip for the whole home, as a Durable Object.
    async fn check_together(
        &self,
        _home: &str,
        takes: &[Take<'_>],
        now_ms: u64,
    ) -> Result<Vec<gcra::Decision>, PortError> {
        self.round_trip().await;
        let mut counters = self.counters.borrow_mut();
        let (decisions, next) = gcra::step_together(
            takes.iter().map(|t| (t.key, t.quota, t.cost)),
            |key| counters.get(key).copied(),
            now_ms,
        );
        for (key, state) in next {
            counters.insert(key.to_string(), state);
        }
        Ok(decisions)
    }
    async fn charge(&self, _home: &str, t: &Take<'_>, now_ms: u64) -> Result<(), PortError> {
        let mut counters = self.counters.borrow_mut();
        let state = gcra::charge(t.quota, counters.get(t.key).copied(), now_ms, t.cost);
        counters.insert(t.key.to_string(), state);
        Ok(())
    }
    async fn release(&self, _home: &str, t: &Take<'_>, checked_ms: u64) -> Result<(), PortError> {
        let mut counters = self.counters.borrow_mut();
        if let Some(state) =
            gcra::release(t.quota, counters.get(t.key).copied(), checked_ms, t.cost)
        {
            counters.insert(t.key.to_string(), state);
        }
        Ok(())
    }
}

/// Approval records in a map, each operation one atomic transition.
#[derive(Clone, Default)]
pub struct MemoryApprovals(Rc<RefCell<HashMap<String, ApprovalRecord>>>);

impl Approvals for MemoryApprovals {
    async fn open(&self, fresh: &ApprovalRecord, now_ms: u64) -> Result<ApprovalRecord, PortError> {
        let mut map = self.0.borrow_mut();
        let record = transition::open(map.remove(&fresh.id), fresh, now_ms);
        map.insert(record.id.clone(), record.clone());
        Ok(record)
    }
    async fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>, PortError> {
        Ok(self
            .0
            .borrow()
            .get(id)
            .filter(|r| r.is_live(now_ms))
            .cloned())
    }
    async fn decide(&self, id: &str, decision: &Decision) -> Result<Decided, PortError> {
        let mut map = self.0.borrow_mut();
        let decided = transition::decide(map.get(id).cloned(), decision);
        if let Decided::Applied { record } = &decided {
            map.insert(id.to_string(), record.clone());
        }
        Ok(decided)
    }
    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError> {
        let mut map = self.0.borrow_mut();
        let used = transition::consume(map.get(id), now_ms);
        if used {
            map.remove(id);
        }
        Ok(used)
    }
    async fn pending(&self, now_ms: u64, limit: usize) -> Result<Vec<ApprovalRecord>, PortError> {
        let mut pending: Vec<ApprovalRecord> = self
            .0
            .borrow()
            .values()
            .filter(|r| r.is_live(now_ms) && r.status == Status::Pending)
            .cloned()
            .collect();
        pending.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        pending.truncate(limit);
        Ok(pending)
    }
}

type Handler = Rc<dyn Fn(http::Request<Vec<u8>>) -> LocalBoxFuture<'static, http::Response<Body>>>;

/// Upstream HTTP routed to handlers by URL; an unmounted URL refuses the
/// connection, like a server that is down.
#[derive(Clone)]
pub struct MemoryUpstream {
    routes: Rc<RefCell<HashMap<String, Handler>>>,
    sent: Rc<RefCell<Vec<String>>>,
    recording: Rc<std::cell::Cell<bool>>,
}

impl Default for MemoryUpstream {
    fn default() -> Self {
        MemoryUpstream {
            routes: Rc::default(),
            sent: Rc::default(),
            recording: Rc::new(std::cell::Cell::new(true)),
        }
    }
}

impl MemoryUpstream {
    /// Serves `url` with a mock MCP server.
    pub fn mount(&self, url: &str, server: Rc<MockServer>) {
        self.mount_fn(url, move |req| {
            let server = server.clone();
            Box::pin(async move { server.handle(req).await })
        });
    }

    /// Serves `url` with any handler (benchmarks use canned answers, so they
    /// measure the gateway rather than a mock server).
    pub fn mount_fn<F>(&self, url: &str, handler: F)
    where
        F: Fn(http::Request<Vec<u8>>) -> LocalBoxFuture<'static, http::Response<Body>> + 'static,
    {
        self.routes
            .borrow_mut()
            .insert(url.to_string(), Rc::new(handler));
    }

    /// Whether to keep the log that [`MemoryUpstream::sent`] returns (on by
    /// default; benchmarks turn it off so it does not grow).
    pub fn record_sent(&self, on: bool) {
        self.recording.set(on);
    }

    /// Takes `url` down: connections are refused from now on.
    pub fn unmount(&self, url: &str) {
        self.routes.borrow_mut().remove(url);
    }

    /// Every request sent so far, as `METHOD url`.
    pub fn sent(&self) -> Vec<String> {
        self.sent.borrow().clone()
    }
}

impl HttpClient for MemoryUpstream {
    async fn send(&self, req: http::Request<Vec<u8>>) -> Result<http::Response<Body>, SendError> {
        let url = req.uri().to_string();
        self.sent
            .borrow_mut()
            .push(format!("{} {url}", req.method()));
        let handler = self.routes.borrow().get(&url).cloned();
        match handler {
            Some(h) => Ok(h(req).await),
            None => Err(SendError(format!("connection refused: {url}"))),
        }
    }
}

/// Wall-clock milliseconds that follow tokio's clock, so `tokio::time::pause`
/// and `advance` move it too.
#[derive(Clone)]
pub struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        TokioClock {
            base_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await
    }
}

/// After-response work collected until the test runs it; OS randomness;
/// secrets from a map tests fill; a shared cache tests can read.
#[derive(Default)]
pub struct MemoryRuntime {
    deferred: RefCell<Vec<LocalBoxFuture<'static, ()>>>,
    pub secrets: RefCell<HashMap<String, String>>,
    pub shared: RefCell<HashMap<String, String>>,
}

impl Runtime for MemoryRuntime {
    fn random_bytes(&self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("OS randomness");
    }
    fn defer(&self, work: LocalBoxFuture<'static, ()>) {
        self.deferred.borrow_mut().push(work);
    }
    async fn secret(&self, name: &str) -> Option<String> {
        self.secrets.borrow().get(name).cloned()
    }
    async fn shared_get(&self, key: &str) -> Option<String> {
        self.shared.borrow().get(key).cloned()
    }
    async fn shared_put(&self, key: &str, value: &str) {
        self.shared
            .borrow_mut()
            .insert(key.to_string(), value.to_string());
    }
}

/// Usage rows in memory, exact (one thread).
#[derive(Default, Clone)]
pub struct MemoryUsage(Rc<RefCell<BTreeMap<(String, UsageKey), UsageCount>>>);

impl Usage for MemoryUsage {
    async fn add(&self, day: &str, key: &UsageKey, count: &UsageCount) -> Result<(), PortError> {
        self.0
            .borrow_mut()
            .entry((day.to_string(), key.clone()))
            .or_default()
            .add(count);
        Ok(())
    }
    async fn day(&self, day: &str) -> Result<Vec<(UsageKey, UsageCount)>, PortError> {
        Ok(self
            .0
            .borrow()
            .iter()
            .filter(|((d, _), _)| d == day)
            .map(|((_, k), c)| (k.clone(), *c))
            .collect())
    }
}

/// The memory platform.
pub type MemoryPlatform = Ports<
    MemoryKv,
    MemorySessions,
    MemoryUpstream,
    TokioClock,
    MemoryLimiter,
    MemoryApprovals,
    MemoryUsage,
    MemoryRuntime,
    MemoryHistory,
    MemoryConnections,
>;

impl MemoryPlatform {
    /// Runs the after-response work queued so far.
    pub async fn run_deferred(&self) {
        let work: Vec<_> = self.runtime.deferred.borrow_mut().drain(..).collect();
        futures_util::future::join_all(work).await;
    }
}
