//! The Cloudflare Workers adapter: the fetch entry point and the ports on
//! Workers APIs. KV holds the registry (`REGISTRY` binding), a Durable Object
//! per session holds sessions (`SESSIONS` binding), `fetch` reaches upstreams,
//! `waitUntil` runs after-response work. Only type conversion lives here.

mod kv;
mod log;
mod sessions;
mod upstream;

pub use sessions::SessionStore;

use crate::body::Body;
use crate::config::Settings;
use crate::gateway::{Gateway, RequestMeta};
use crate::ports::{Clock, Ports, Runtime};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use std::rc::Rc;
use worker::{event, Context, Env, HttpRequest};

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
    WorkersRuntime,
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

/// `crypto.getRandomValues` and `ctx.waitUntil`.
pub struct WorkersRuntime(Context);

impl Runtime for WorkersRuntime {
    fn random_bytes(&self, buf: &mut [u8]) {
        // crypto.getRandomValues through getrandom's wasm_js backend.
        getrandom::fill(buf).expect("crypto.getRandomValues");
    }
    fn defer(&self, work: LocalBoxFuture<'static, ()>) {
        self.0.wait_until(work);
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
async fn fetch(req: HttpRequest, env: Env, ctx: Context) -> worker::Result<worker::Response> {
    let gw = match gateway(&env) {
        Ok(gw) => gw,
        Err(e) => {
            let err = crate::GatewayError::Internal(format!("configuration: {e}"));
            return to_worker(err.into_response(None));
        }
    };
    let meta = request_meta(&req);
    let (parts, body) = req.into_parts();
    let body = read_body(body, gw.settings.max_body_bytes).await?;
    let platform = WorkersPlatform {
        kv: kv::WorkersKv::new(env.kv("REGISTRY")?),
        sessions: sessions::DurableSessions::new(env.durable_object("SESSIONS")?),
        upstream: upstream::FetchUpstream,
        clock: WorkersClock,
        runtime: WorkersRuntime(ctx),
    };
    let response = gw
        .handle(&platform, http::Request::from_parts(parts, body), &meta)
        .await;
    to_worker(response)
}

/// The edge location from `request.cf`, when the runtime provides it.
fn request_meta(req: &HttpRequest) -> RequestMeta {
    match req.extensions().get::<worker::Cf>() {
        Some(cf) => RequestMeta {
            colo: Some(cf.colo()).filter(|c| !c.is_empty()),
            continent: cf.continent(),
        },
        None => RequestMeta::default(),
    }
}

/// Reads at most `limit + 1` bytes: enough for the core to see the body is
/// too large without buffering an unbounded upload.
async fn read_body(mut body: worker::Body, limit: usize) -> worker::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
        if out.len() > limit {
            break;
        }
    }
    Ok(out)
}

/// Converts the core's response; streamed bodies stay streamed.
fn to_worker(response: http::Response<Body>) -> worker::Result<worker::Response> {
    let (parts, body) = response.into_parts();
    let builder = worker::ResponseBuilder::new()
        .with_status(parts.status.as_u16())
        .with_headers(worker::Headers::from(&parts.headers));
    match body {
        Body::Full(bytes) if bytes.is_empty() => Ok(builder.empty()),
        Body::Full(bytes) => Ok(builder.fixed(bytes)),
        Body::Stream(stream) => {
            builder.from_stream(stream.map(|c| c.map_err(worker::Error::RustError)))
        }
    }
}
