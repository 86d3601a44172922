//! The Cloudflare Workers adapter: the fetch entry point and the ports on
//! Workers APIs. KV holds the registry (`REGISTRY` binding), a Durable Object
//! per session holds sessions (`SESSIONS` binding), one per rate-limit counter
//! holds counters (`LIMITS`), one per approval holds approval records
//! (`APPROVALS`), one per configuration document its version history
//! (`HISTORY`, the admin API), one per principal its connections to OAuth
//! servers (`CONNECTIONS`), `fetch` reaches upstreams, `waitUntil` runs after-response
//! work. Only type conversion lives here.

mod approvals;
mod connections;
mod durable;
mod history;
mod kv;
mod limits;
mod log;
mod sessions;
mod upstream;
mod usage;

pub use approvals::ApprovalStore;
pub use connections::ConnectionStore;
pub use history::ConfigHistory;
pub use limits::RateCounter;
pub use sessions::SessionStore;
pub use usage::UsageStore;

use crate::body::Body;
use crate::config::Settings;
use crate::gateway::{Gateway, RequestMeta};
use crate::ports::{Clock, Ports, Runtime};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use std::rc::Rc;
use worker::{event, Context, Env};

thread_local! {
    /// One gateway per isolate: its registry cache outlives single requests.
    static GATEWAY: std::cell::OnceCell<Result<Rc<Gateway>, String>> = const { std::cell::OnceCell::new() };
}

/// The Workers platform for one request.
pub type WorkersPlatform = Ports<
    kv::WorkersKv,
    sessions::DurableSessions,
    upstream::FetchUpstream,
    WorkersClock,
    limits::DurableLimiter,
    approvals::DurableApprovals,
    usage::DurableUsage,
    WorkersRuntime,
    history::DurableHistory,
    connections::DurableConnections,
>;

/// `Date.now()` and `setTimeout`.
#[derive(Clone, Copy, Default)]
pub struct WorkersClock;

impl Clock for WorkersClock {
    fn now_ms(&self) -> u64 {
        worker::Date::now().as_millis()
    }
    async fn sleep(&self, ms: u64) {
        worker::Delay::from(std::time::Duration::from_millis(ms)).await
    }
}

/// `crypto.getRandomValues`, `ctx.waitUntil`, and secrets (Workers secrets,
/// or plain vars for local development).
pub struct WorkersRuntime(Rc<Context>, Env);

impl Runtime for WorkersRuntime {
    fn random_bytes(&self, buf: &mut [u8]) {
        // crypto.getRandomValues through getrandom's wasm_js backend.
        getrandom::fill(buf).expect("crypto.getRandomValues");
    }
    fn defer(&self, work: LocalBoxFuture<'static, ()>) {
        self.0.wait_until(work);
    }
    async fn secret(&self, name: &str) -> Option<String> {
        self.1
            .secret(name)
            .or_else(|_| self.1.var(name))
            .ok()
            .map(|v| v.to_string())
    }
}

fn gateway(env: &Env) -> Result<Rc<Gateway>, String> {
    GATEWAY.with(|cell| {
        cell.get_or_init(|| {
            log::init();
            let settings = Settings::from_vars(|name| env.var(name).ok().map(|v| v.to_string()))?;
            Ok(Rc::new(Gateway::new(settings)))
        })
        .clone()
    })
}

#[event(fetch)]
async fn fetch(
    mut req: worker::Request,
    env: Env,
    ctx: Context,
) -> worker::Result<worker::Response> {
    let gw = match gateway(&env) {
        Ok(gw) => gw,
        Err(e) => {
            let err = crate::GatewayError::Internal(format!("configuration: {e}"));
            return to_worker(err.into_response_in(crate::protocol::version::Era::Legacy, None));
        }
    };
    log::handler_started(&ctx);
    serve(&gw, &mut req, env, Rc::new(ctx)).await
}

async fn serve(
    gw: &Rc<Gateway>,
    req: &mut worker::Request,
    env: Env,
    ctx: Rc<Context>,
) -> worker::Result<worker::Response> {
    let meta = request_meta(req);
    let request = to_http(req, gw.settings.max_body_bytes).await?;
    let platform = WorkersPlatform {
        kv: kv::WorkersKv::new(env.kv("REGISTRY")?),
        sessions: sessions::DurableSessions::new(env.durable_object("SESSIONS")?),
        http: upstream::FetchUpstream,
        clock: WorkersClock,
        limiter: limits::DurableLimiter::new(env.durable_object("LIMITS")?),
        approvals: approvals::DurableApprovals::new(env.durable_object("APPROVALS")?),
        usage: usage::DurableUsage::new(env.durable_object("USAGE")?),
        history: history::DurableHistory::new(env.durable_object("HISTORY")?),
        connections: connections::DurableConnections::new(env.durable_object("CONNECTIONS")?),
        runtime: WorkersRuntime(ctx, env.clone()),
    };
    to_worker(gw.handle(&Rc::new(platform), request, &meta).await)
}

/// The edge location from `request.cf`, when the runtime provides it, and
/// the client address from `CF-Connecting-IP`, which Cloudflare sets on
/// every request (a client cannot choose it).
fn request_meta(req: &worker::Request) -> RequestMeta {
    let client_addr = req
        .headers()
        .get("cf-connecting-ip")
        .ok()
        .flatten()
        .filter(|a| !a.is_empty());
    match req.cf() {
        Some(cf) => RequestMeta {
            colo: Some(cf.colo()).filter(|c| !c.is_empty()),
            continent: cf.continent(),
            client_addr,
        },
        None => RequestMeta {
            client_addr,
            ..RequestMeta::default()
        },
    }
}

/// Converts the request. A body whose declared length fits the limit is read
/// with one `arrayBuffer()` call; one of unknown or excessive length is
/// streamed and cut after `limit + 1` bytes, enough for the core to answer 413
/// without buffering an unbounded upload.
async fn to_http(
    req: &mut worker::Request,
    limit: usize,
) -> worker::Result<http::Request<Vec<u8>>> {
    // The URL as the JS string: `Request::url()` would pull the url crate and
    // its IDNA tables (about 190 KB of wasm) into the bundle.
    let mut builder = http::Request::builder()
        .method(req.method().as_ref())
        .uri(req.inner().url());
    for (name, value) in req.headers().entries() {
        builder = builder.header(name, value);
    }
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<usize>().ok());
    let body = if req.inner().body().is_none() {
        Vec::new()
    } else if declared.is_some_and(|n| n <= limit) {
        req.bytes().await?
    } else {
        let mut out = Vec::new();
        let mut stream = req.stream()?;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() > limit {
                break;
            }
        }
        out
    };
    builder
        .body(body)
        .map_err(|e| worker::Error::RustError(format!("bad request: {e}")))
}

/// Headers for workerd. A value that is not visible ASCII (the `http` crate
/// accepts bytes 0x80-0xFF, a tool name an upstream or a caller chose can
/// carry them) is dropped and logged: `worker::Headers::from` would unwrap
/// it, and a panic aborts the isolate with every request in it.
pub(super) fn headers(map: &http::HeaderMap) -> worker::Headers {
    let out = worker::Headers::new();
    for (name, value) in map {
        match value.to_str() {
            Ok(v) => {
                let _ = out.append(name.as_str(), v);
            }
            Err(_) => {
                tracing::warn!(header = %name, "a header value that is not ASCII text was dropped")
            }
        }
    }
    out
}

/// Converts the core's response; streamed bodies stay streamed.
fn to_worker(response: http::Response<Body>) -> worker::Result<worker::Response> {
    let (parts, body) = response.into_parts();
    let builder = worker::ResponseBuilder::new()
        .with_status(parts.status.as_u16())
        .with_headers(headers(&parts.headers));
    let stream = match body {
        Body::Full(bytes) if bytes.is_empty() => return Ok(builder.empty()),
        Body::Full(bytes) => return Ok(builder.fixed(bytes)),
        // An upstream's body forwarded unread goes back out as the same stream.
        Body::Native(native) => match upstream::native_stream(native) {
            Ok(js) => return Ok(builder.stream(js)),
            Err(other) => Body::Native(other).into_stream(),
        },
        Body::Stream(stream) => stream,
    };
    builder.from_stream(stream.map(|c| c.map_err(worker::Error::RustError)))
}
