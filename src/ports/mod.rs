//! Ports: the small traits through which the core reaches its platform.
//!
//! Methods are plain `async fn` without `Send` bounds (wasm is single-threaded).
//! Adapters implement them for Workers, Spin and memory; the core is generic over
//! a [`Platform`] that bundles one of each.

use crate::body::Body;
use crate::governance::approval::{ApprovalRecord, Decided, Decision};
use crate::governance::gcra;
use crate::governance::gcra::Quota;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod connections;
pub use connections::{ConnectionRecord, Connections, PendingConnect};

/// A platform operation failed (KV unreachable, Durable Object error, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError(pub String);

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store the gateway cannot reach is a reason to refuse, never to go on
/// without what it holds (fail closed).
impl From<PortError> for crate::GatewayError {
    fn from(e: PortError) -> Self {
        crate::GatewayError::Unavailable(e.0)
    }
}

/// Edge key-value storage: the registry, the policy document, trusted
/// issuers and API keys. Eventually consistent: a write reaches other
/// locations later (on Workers up to about a minute), which is why the
/// admin API also remembers its own writes for a while (`gateway/admin`).
#[allow(async_fn_in_trait)]
pub trait Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError>;
    /// All keys starting with `prefix`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError>;
    /// Stores `value` under `key` (the admin API only).
    async fn put(&self, key: &str, value: &str) -> Result<(), PortError>;
    /// Removes `key`; removing a missing key is no error.
    async fn delete(&self, key: &str) -> Result<(), PortError>;
}

/// Every entry under `prefix`, as `(key, value)`, read in parallel. A key
/// listed but gone by the time it is read was deleted meanwhile and is
/// skipped; any failed read fails the whole load (the caller keeps what it
/// had rather than serve half a set).
pub(crate) async fn load_prefix<K: Kv>(
    kv: &K,
    prefix: &str,
) -> Result<Vec<(String, String)>, PortError> {
    let keys = kv.list(prefix).await?;
    let values = futures_util::future::join_all(keys.iter().map(|k| kv.get(k))).await;
    let mut entries = Vec::with_capacity(keys.len());
    for (key, value) in keys.into_iter().zip(values) {
        if let Some(value) = value? {
            entries.push((key, value));
        }
    }
    Ok(entries)
}

/// A client session as the gateway stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    /// The endpoint the session was opened on (`/mcp` or `/servers/{id}/mcp`);
    /// a session is only valid there.
    pub endpoint: String,
    /// Who opened the session (`via|subject`); nobody else may use it.
    #[serde(default)]
    pub owner: String,
    pub protocol_version: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    /// The client's `initialize` params (capabilities, clientInfo), replayed to
    /// upstreams initialized later on this session's behalf.
    #[serde(default)]
    pub client_params: Option<serde_json::Value>,
    /// Whether the client declared form elicitation (the gateway may then
    /// ask the user to confirm a call the user decides).
    #[serde(default)]
    pub elicitation: bool,
    /// Whether the client declared URL elicitation (the gateway may then
    /// send the user to an approval that approvers decide).
    #[serde(default)]
    pub elicitation_url: bool,
    /// Upstream sessions opened for this client session, by server id.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSession>,
    /// The least severe log level the client asked for with
    /// `logging/setLevel` on `/mcp`: told to servers met later, and what
    /// the gateway lets through whatever an upstream sends.
    #[serde(default)]
    pub log_level: Option<String>,
}

impl SessionRecord {
    /// Records (or with `None`, forgets) one upstream session; what every
    /// session store does inside its `set_upstream`.
    pub(crate) fn apply(&mut self, change: &UpstreamChange) {
        match &change.upstream {
            Some(_) if change.unless_held && self.upstreams.contains_key(&change.server) => None,
            Some(up) => self.upstreams.insert(change.server.clone(), up.clone()),
            None => self.upstreams.remove(&change.server),
        };
    }
}

/// A change to the upstream session a client session holds for one server
/// (also the body the Workers session object takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamChange {
    pub server: String,
    /// The new upstream session; `None` forgets it.
    pub upstream: Option<UpstreamSession>,
    /// Only if the client session holds none for the server yet: a server
    /// met by two requests at once (a call and the GET stream) keeps the
    /// session recorded first, and both use it.
    #[serde(default)]
    pub unless_held: bool,
}

/// The gateway's session with one upstream, on behalf of one client session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamSession {
    /// The endpoint URL the session lives on (sessions do not cross regions).
    pub url: String,
    /// `Mcp-Session-Id` the upstream issued; `None` for a stateless upstream.
    pub session_id: Option<String>,
    /// Revision negotiated with the upstream.
    pub protocol_version: String,
}

/// Client sessions, readable from any isolate (Durable Object on Workers).
#[allow(async_fn_in_trait)]
pub trait Sessions {
    async fn create(&self, record: &SessionRecord) -> Result<(), PortError>;
    async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError>;
    /// Records (or with `None`, forgets) an upstream session. Atomic per client
    /// session. Returns `false` when the client session no longer exists.
    async fn set_upstream(&self, id: &str, change: &UpstreamChange) -> Result<bool, PortError>;
    /// Records the log level the client set (`logging/setLevel`). Returns
    /// `false` when the client session no longer exists.
    async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError>;
    /// Deletes the session and returns what it held.
    async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError>;
}

/// Why an upstream request produced no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError(pub String);

/// Outbound HTTP: to upstream MCP servers, and to issuers' JWKS.
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// Sends the request; resolves when response headers arrive. The body may
    /// still be streaming.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Body>, SendError>;
}

/// Rate-limit and quota counters. The arithmetic is the core's
/// ([`crate::governance::gcra`]); the adapter only stores state, exactly under
/// concurrency where the platform allows.
///
/// A policy's counters live in homes ([`Take`]): the counters of one subject
/// (a principal, a team, a server, a tool) share one, so however many limits
/// name that subject, one round trip checks them all (one Durable Object per
/// home on Workers). A lone counter (`check`) is its own home.
#[allow(async_fn_in_trait)]
pub trait Limiter {
    /// Checks the lone counter `key` and, when allowed, consumes `cost` from it.
    async fn check(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<gcra::Decision, PortError>;
    /// Checks `takes`, counters that all live in `home`, as one: either
    /// every one allows and each consumes its cost, or none consumes
    /// anything. The decisions come in order; they may stop at the first
    /// refusal (the ones after it were not asked).
    async fn check_together(
        &self,
        home: &str,
        takes: &[Take<'_>],
        now_ms: u64,
    ) -> Result<Vec<gcra::Decision>, PortError>;
    /// Adds `take.cost` to a counter of `home` whatever it holds
    /// ([`gcra::charge`]): what a call used, known only after it (a model
    /// call's tokens).
    async fn charge(&self, home: &str, take: &Take<'_>, now_ms: u64) -> Result<(), PortError>;
    /// Gives back `take.cost` that an allowed `check_together` at
    /// `checked_ms` took from a counter of `home` ([`gcra::release`]): the
    /// call it was for was refused by a counter of another home.
    async fn release(&self, home: &str, take: &Take<'_>, checked_ms: u64) -> Result<(), PortError>;
}

/// One counter of a home, and what a call costs it.
#[derive(Debug, Clone, Copy)]
pub struct Take<'a> {
    /// The counter's own key (unique among all homes).
    pub key: &'a str,
    pub quota: Quota,
    pub cost: u64,
}

/// `check_together` for limiters without homes: each counter in turn, and
/// on a refusal what the ones before took is given back (a concurrent caller
/// may see those units taken meanwhile, never more than one call's).
pub async fn check_in_turn<L: Limiter + ?Sized>(
    limiter: &L,
    home: &str,
    takes: &[Take<'_>],
    now_ms: u64,
) -> Result<Vec<gcra::Decision>, PortError> {
    let mut decisions = Vec::with_capacity(takes.len());
    for take in takes {
        let decision = limiter.check(take.key, take.quota, take.cost, now_ms).await;
        let refused = !matches!(decision, Ok(gcra::Decision::Allow));
        if refused {
            for taken in takes[..decisions.len()].iter().filter(|t| t.cost > 0) {
                if let Err(e) = limiter.release(home, taken, now_ms).await {
                    tracing::warn!("could not release a refused call's unit: {e}");
                }
            }
        }
        decisions.push(decision?);
        if refused {
            break;
        }
    }
    Ok(decisions)
}

/// Approval records (human approval of tool calls), readable and decidable
/// from any isolate. Each operation applies one of the core's
/// [`transition`](crate::governance::approval::transition)s to the record
/// held under the id, atomically where the platform can (a Durable Object per
/// record on Workers).
#[allow(async_fn_in_trait)]
pub trait Approvals {
    /// The live record under `fresh.id`, or `fresh`, stored, when there is none.
    async fn open(&self, fresh: &ApprovalRecord, now_ms: u64) -> Result<ApprovalRecord, PortError>;
    /// The live record under `id`.
    async fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>, PortError>;
    /// Applies a decision to a pending record.
    async fn decide(&self, id: &str, decision: &Decision) -> Result<Decided, PortError>;
    /// Uses up an approved record: `true` for exactly one caller.
    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError>;
    /// The live pending records opened most recently, newest first, at most
    /// `limit` (the approvals inbox; who may see which is the core's
    /// business).
    async fn pending(&self, now_ms: u64, limit: usize) -> Result<Vec<ApprovalRecord>, PortError>;
}

/// One version of a configuration document (a registry entry, an issuer,
/// an API key's record, the policy), as the admin API keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// 1, 2, 3, ... per document; 0 is the document as found in KV before
    /// its first change through the admin API.
    pub version: u64,
    /// The document's text; `None`: deleted in this version.
    pub document: Option<String>,
    /// Who made the change (`via|subject`).
    pub author: String,
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// What the change was: `create`, `replace`, `delete`, `rollback to N`, ...
    pub action: String,
}

/// Revisions kept per document (the newest); older ones are dropped.
pub const REVISIONS_KEPT: usize = 20;

/// How an [`History::append`] ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Appended {
    /// The revision is the document's newest.
    Done,
    /// Another change came first: the version now newest (`None`: the
    /// document has no history).
    Conflict(Option<u64>),
}

/// The append rule every [`History`] keeps, on its kept revisions (oldest
/// first): the conflict to answer unless the newest version is `expected`.
pub(crate) fn append_conflict(kept: &[Revision], expected: Option<u64>) -> Option<Appended> {
    let newest = kept.last().map(|r| r.version);
    (newest != expected).then_some(Appended::Conflict(newest))
}

/// Adds `revision` to the kept revisions, the oldest going past
/// [`REVISIONS_KEPT`].
pub(crate) fn keep_revision(kept: &mut Vec<Revision>, revision: Revision) {
    kept.push(revision);
    if kept.len() > REVISIONS_KEPT {
        kept.remove(0);
    }
}

/// Configuration documents' version history: linear per document and
/// strongly consistent (a Durable Object per document on Workers, a
/// compare-and-swap on Spin), so two admins changing one document at once
/// cannot both win (`If-Match`, 412). KV holds what the gateway serves; this
/// holds what the admin API wrote, in order.
#[allow(async_fn_in_trait)]
pub trait History {
    /// The document's kept revisions, newest first (empty: no history).
    async fn revisions(&self, key: &str) -> Result<Vec<Revision>, PortError>;
    /// Appends `revision` (whose version is one more than `expected`, or 0
    /// or 1 when there is no history) if the newest version is `expected`
    /// (`None`: the document has no history yet).
    async fn append(
        &self,
        key: &str,
        expected: Option<u64>,
        revision: &Revision,
    ) -> Result<Appended, PortError>;
}

/// One row of usage: who (team, principal) used what (server, tool).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UsageKey {
    /// The principal's teams, sorted and comma-joined (empty: none), so a
    /// call counts once whatever teams its caller is in.
    pub team: String,
    /// The principal key (`{via}|{subject}`).
    pub principal: String,
    pub server: String,
    /// The tool as the server names it.
    pub tool: String,
}

/// What a row counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCount {
    pub calls: u64,
    pub errors: u64,
    /// Time spent waiting on the upstream (every attempt), in milliseconds.
    pub upstream_ms: u64,
    /// A model's tokens (agent API rows only), as its provider reports them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub input_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UsageCount {
    pub fn add(&mut self, other: &UsageCount) {
        self.calls = self.calls.saturating_add(other.calls);
        self.errors = self.errors.saturating_add(other.errors);
        self.upstream_ms = self.upstream_ms.saturating_add(other.upstream_ms);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// Usage per UTC day (`YYYY-MM-DD`), for attribution: what each team and
/// principal called on which server, recorded after each `tools/call`.
/// Exact on Workers (a day's rows spread over Durable Objects); see each
/// adapter.
#[allow(async_fn_in_trait)]
pub trait Usage {
    /// Adds `count` to the row `key` of `day`.
    async fn add(&self, day: &str, key: &UsageKey, count: &UsageCount) -> Result<(), PortError>;
    /// Every row of `day`.
    async fn day(&self, day: &str) -> Result<Vec<(UsageKey, UsageCount)>, PortError>;
}

/// Time.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    async fn sleep(&self, ms: u64);
}

/// Races `work` against the clock; `None` when time ran out first.
pub(crate) async fn with_timeout<C: Clock, F: std::future::Future>(
    clock: &C,
    ms: u64,
    work: F,
) -> Option<F::Output> {
    use futures_util::future::{select, Either};
    let work = std::pin::pin!(work);
    let sleep = std::pin::pin!(clock.sleep(ms));
    match select(work, sleep).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// One platform: a set of ports plus randomness and after-response work.
pub trait Platform {
    type Kv: Kv;
    type Sessions: Sessions + Clone + 'static;
    type Http: HttpClient + Clone + 'static;
    type Clock: Clock + Clone + 'static;
    type Limiter: Limiter;
    type Approvals: Approvals + Clone + 'static;
    type Connections: Connections;
    type Usage: Usage;
    type History: History;

    fn kv(&self) -> &Self::Kv;
    fn history(&self) -> &Self::History;
    fn sessions(&self) -> &Self::Sessions;
    fn limiter(&self) -> &Self::Limiter;
    fn approvals(&self) -> &Self::Approvals;
    fn connections(&self) -> &Self::Connections;
    fn usage(&self) -> &Self::Usage;
    fn http(&self) -> &Self::Http;
    fn clock(&self) -> &Self::Clock;
    /// Fills `buf` from a CSPRNG.
    fn random_bytes(&self, buf: &mut [u8]);
    /// Runs `work` after the response is sent (Workers `waitUntil`).
    fn defer(&self, work: LocalBoxFuture<'static, ()>);
    /// A secret by name (Workers secret, Spin variable), if set.
    #[allow(async_fn_in_trait)]
    async fn secret(&self, name: &str) -> Option<String>;
    /// A value from the cache every instance shares (see `Runtime`).
    #[allow(async_fn_in_trait)]
    async fn shared_get(&self, key: &str) -> Option<String>;
    /// Puts a value in the cache every instance shares.
    #[allow(async_fn_in_trait)]
    async fn shared_put(&self, key: &str, value: &str);
}

/// What a runtime offers besides the ports: randomness, after-response work
/// and secrets.
#[allow(async_fn_in_trait)]
pub(crate) trait Runtime {
    /// Fills `buf` from a CSPRNG.
    fn random_bytes(&self, buf: &mut [u8]);
    /// Runs `work` after the response is sent.
    fn defer(&self, work: LocalBoxFuture<'static, ()>);
    /// A secret by name, if set.
    async fn secret(&self, name: &str) -> Option<String>;
    /// A small best-effort cache shared by every instance, for what would
    /// otherwise be redone on each request where instances live for one
    /// request (Spin). Where an instance serves many requests (Workers
    /// isolates) the gateway's own memory does the job: none by default.
    async fn shared_get(&self, _key: &str) -> Option<String> {
        None
    }
    async fn shared_put(&self, _key: &str, _value: &str) {}
}

/// A platform assembled from one adapter per port: every adapter builds its
/// platform as a `Ports<...>` and writes no accessor boilerplate.
#[derive(Default)]
pub struct Ports<K, S, U, C, L, A, G, R, H, N> {
    pub kv: K,
    pub history: H,
    pub sessions: S,
    pub http: U,
    pub clock: C,
    pub limiter: L,
    pub approvals: A,
    pub usage: G,
    pub runtime: R,
    pub connections: N,
}

impl<K, S, U, C, L, A, G, R, H, N> Platform for Ports<K, S, U, C, L, A, G, R, H, N>
where
    N: Connections,
    H: History,
    K: Kv,
    S: Sessions + Clone + 'static,
    U: HttpClient + Clone + 'static,
    C: Clock + Clone + 'static,
    L: Limiter,
    A: Approvals + Clone + 'static,
    G: Usage,
    R: Runtime,
{
    type Kv = K;
    type Sessions = S;
    type Http = U;
    type Clock = C;
    type Limiter = L;
    type Approvals = A;
    type Connections = N;
    type Usage = G;
    type History = H;

    fn kv(&self) -> &K {
        &self.kv
    }
    fn history(&self) -> &H {
        &self.history
    }
    fn sessions(&self) -> &S {
        &self.sessions
    }
    fn limiter(&self) -> &L {
        &self.limiter
    }
    fn approvals(&self) -> &A {
        &self.approvals
    }
    fn connections(&self) -> &N {
        &self.connections
    }
    fn usage(&self) -> &G {
        &self.usage
    }
    fn http(&self) -> &U {
        &self.http
    }
    fn clock(&self) -> &C {
        &self.clock
    }
    fn random_bytes(&self, buf: &mut [u8]) {
        self.runtime.random_bytes(buf)
    }
    fn defer(&self, work: LocalBoxFuture<'static, ()>) {
        self.runtime.defer(work)
    }
    async fn secret(&self, name: &str) -> Option<String> {
        self.runtime.secret(name).await
    }
    async fn shared_get(&self, key: &str) -> Option<String> {
        self.runtime.shared_get(key).await
    }
    async fn shared_put(&self, key: &str, value: &str) {
        self.runtime.shared_put(key, value).await
    }
}
