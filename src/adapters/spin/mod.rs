//! The Fermyon Spin adapter: a WASI Preview 3 HTTP component on spin-sdk 7.
//! The registry is read from the `default` key-value store (`servers/{id}`,
//! the same entries as the Workers KV namespace), sessions live in the
//! `sessions` store with rate-limit counters and approval records, upstream
//! calls go through `wasi:http` client, settings come
//! from Spin variables (lower-case names of the Workers `[vars]`), and the
//! playground's files are served from the component (`super::assets`).
//! Only type conversion lives here.

mod approvals;
mod body;
mod connections;
mod history;
mod kv;
mod limits;
mod snapshot;
mod upstream;
mod usage;

use crate::config::Settings;
use crate::gateway::{Gateway, RequestMeta};
use crate::ports::{Clock, Ports, Runtime};
use futures_util::future::LocalBoxFuture;
use http_body_util::BodyExt;
use spin_sdk::http::Request;
use spin_sdk::wasip3;
use std::collections::BTreeMap;
use std::rc::Rc;

thread_local! {
    /// One gateway per instance: its registry cache lives as long as Spin
    /// keeps the instance (one request, or many when instances are reused).
    static GATEWAY: std::cell::OnceCell<Result<Rc<Gateway>, String>> = const { std::cell::OnceCell::new() };
}

/// The Spin platform for one request.
pub type SpinPlatform = Ports<
    kv::SpinKv,
    kv::SpinSessions,
    upstream::WasiHttpUpstream,
    SpinClock,
    limits::AtomicLimiter,
    approvals::SpinApprovals,
    usage::AtomicUsage,
    SpinRuntime,
    history::SpinHistory,
    connections::SpinConnections,
>;

/// `wasi:clocks` system and monotonic clocks.
#[derive(Clone, Copy, Default)]
pub struct SpinClock;

impl Clock for SpinClock {
    fn now_ms(&self) -> u64 {
        let now = wasip3::clocks::system_clock::now();
        (now.seconds.max(0) as u64) * 1000 + u64::from(now.nanoseconds) / 1_000_000
    }
    async fn sleep(&self, ms: u64) {
        wasip3::clocks::monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await
    }
}

/// `wasi:random` and spawned tasks.
pub struct SpinRuntime {
    /// The shared cache lives in the snapshot ([`snapshot`]).
    snapshot: Rc<snapshot::Snapshot>,
    /// Work to start once the response is complete ([`body::SpinBody`]).
    deferred: body::Deferred,
}

impl Runtime for SpinRuntime {
    fn random_bytes(&self, buf: &mut [u8]) {
        let bytes = wasip3::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes[..buf.len()]);
    }
    fn defer(&self, work: LocalBoxFuture<'static, ()>) {
        // Started when the response body is dropped (complete); a p3
        // component keeps running spawned tasks after that.
        self.deferred.push(work);
    }
    async fn secret(&self, name: &str) -> Option<String> {
        // Spin variables are lower-case; secrets are variables marked secret.
        spin_sdk::variables::get(name.to_ascii_lowercase())
            .await
            .ok()
            .filter(|v| !v.is_empty())
    }
    // An instance lives for one request: what the gateway would keep in
    // memory across requests (the tool catalog) goes to the snapshot.
    async fn shared_get(&self, key: &str) -> Option<String> {
        self.snapshot.cache_get(key).await
    }
    async fn shared_put(&self, key: &str, value: &str) {
        self.snapshot
            .cache_put(key, value, SpinClock.now_ms())
            .await
    }
}

/// The wall clock in nanoseconds since the Unix epoch (WASI `wall-clock`).
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads every setting from Spin variables (declared in spin.toml, lower case).
async fn settings() -> Result<Settings, String> {
    let mut values = BTreeMap::new();
    for name in Settings::VARIABLES {
        if let Ok(v) = spin_sdk::variables::get(name.to_ascii_lowercase()).await {
            if !v.is_empty() {
                values.insert(*name, v);
            }
        }
    }
    Settings::from_vars(|name| values.get(name).cloned())
}

async fn gateway() -> Result<Rc<Gateway>, String> {
    if let Some(gw) = GATEWAY.with(|cell| cell.get().cloned()) {
        return gw;
    }
    crate::adapters::log::init(std::io::stderr, now_ns);
    let built = settings().await.map(|s| Rc::new(Gateway::new(s)));
    GATEWAY.with(|cell| cell.get_or_init(|| built).clone())
}

#[spin_sdk::http_service]
async fn handle(req: Request) -> http::Response<body::SpinBody> {
    // The playground's files, as Workers Static Assets serves them there
    // (before the gateway, whatever its configuration).
    if let Some(file) = super::assets::serve(req.method(), req.uri().path()) {
        return body::to_spin(file.map(crate::body::Body::Full));
    }
    let gw = match gateway().await {
        Ok(gw) => gw,
        Err(e) => {
            let err = crate::GatewayError::Internal(format!("configuration: {e}"));
            return body::to_spin(
                err.into_response_in(crate::protocol::version::Era::Legacy, None),
            );
        }
    };
    let (parts, incoming) = req.into_parts();
    let bytes = match read_body(incoming, gw.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let err = crate::GatewayError::InvalidRequest(format!(
                "could not read the request body: {e}"
            ));
            return body::to_spin(
                err.into_response_in(crate::protocol::version::Era::Legacy, None),
            );
        }
    };
    let sessions = kv::SpinSessions::open().await;
    let deferred = body::Deferred::default();
    let snapshot = snapshot::Snapshot::new(sessions.handle(), deferred.clone());
    let platform = SpinPlatform {
        kv: kv::SpinKv::open(snapshot.clone(), gw.settings.registry_ttl_ms).await,
        approvals: approvals::SpinApprovals::new(sessions.handle()),
        history: history::SpinHistory::new(sessions.handle()),
        connections: connections::SpinConnections::new(sessions.handle()),
        runtime: SpinRuntime {
            snapshot,
            deferred: deferred.clone(),
        },
        sessions,
        http: upstream::WasiHttpUpstream,
        clock: SpinClock,
        limiter: limits::AtomicLimiter,
        usage: usage::AtomicUsage,
    };
    // Spin reports no edge location (the default region applies), and the
    // peer address in `spin-client-addr`, which the host sets itself.
    let meta = RequestMeta {
        client_addr: client_addr(&parts.headers),
        ..RequestMeta::default()
    };
    let response = gw
        .handle(
            &Rc::new(platform),
            http::Request::from_parts(parts, bytes),
            &meta,
        )
        .await;
    body::to_spin_then(response, deferred)
}

/// The client's IP address from Spin's `spin-client-addr` (`ip:port`): the
/// port changes with every connection, so only the address identifies a
/// caller. Spin appends its own value after the headers the client sent,
/// so only the last value is Spin's; a client's own `spin-client-addr`
/// comes first and is ignored.
fn client_addr(headers: &http::HeaderMap) -> Option<String> {
    let value = headers
        .get_all("spin-client-addr")
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    let addr = value
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| value.to_string());
    Some(addr).filter(|a| !a.is_empty())
}

/// Reads at most `limit + 1` bytes (enough for the core to answer 413).
async fn read_body<B>(mut incoming: B, limit: usize) -> Result<Vec<u8>, String>
where
    B: http_body::Body + Unpin,
    B::Error: std::fmt::Display,
{
    let mut out = Vec::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(bytes::Buf::chunk(&data));
            if out.len() > limit {
                break;
            }
        }
    }
    Ok(out)
}
