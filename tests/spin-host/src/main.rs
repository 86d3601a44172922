//! `spin-host`: a small Spin-compatible HTTP host for tests.
//!
//! The `spin` CLI cannot be installed on the machines that test mcp-edge, so
//! this binary stands in for `spin up` with a single HTTP component built with
//! spin-sdk 7 (a WASI Preview 3 component exporting `wasi:http/handler@0.3.0`):
//!
//! ```text
//! spin-host --component PATH.wasm --listen 127.0.0.1:PORT
//!           [--kv-store LABEL]... [--kv-seed FILE.json]... [--var name=value]...
//!           [--allow-outbound URL-PREFIX]...
//! ```
//!
//! * Every request gets a fresh component instance in its own `Store`, as in
//!   Spin, so requests run concurrently and share nothing but the key-value
//!   store. Response bodies are streamed: each chunk the component writes is
//!   sent to the client (HTTP/1.1 chunked) as soon as it is produced. An
//!   instance lives on after its response body is done while it still has
//!   tasks running (work a component spawned to do after the response, such
//!   as exporting telemetry), at most [`AFTER_RESPONSE`].
//! * Outbound HTTP (`wasi:http/client@0.3.0`) goes out through
//!   wasmtime-wasi-http; with `--allow-outbound` only URLs starting with one
//!   of the prefixes are allowed, others fail with `HTTP-request-denied`
//!   (like Spin's `allowed_outbound_hosts`). Without the flag, all are allowed.
//! * `spin:key-value` (store `default`, plus each `--kv-store LABEL`, as a
//!   runtime config file would declare them; `--kv-seed` fills `default`),
//!   `spin:variables` and
//!   `wasi:keyvalue` store/atomics: see [`spin_apis`].
//! * `GET /.spin-host/kv-ops` is answered by the host, not the component:
//!   how many key-value operations each store has served so far, by the
//!   key's first segment (`{"default:servers": 12, "sessions:cache": 3}`),
//!   so a benchmark can count what a request costs in store round trips.
//! * `GET /.spin-host/kv-dump` is answered by the host too: every entry of
//!   every store as stored, bytes and all (one `label\tkey\tvalue` line
//!   each), so a test can check what the component keeps at rest.
//! * Component stdout and stderr go to this process's stderr; the only line
//!   on stdout is `listening on http://ADDR`, printed once requests can be
//!   served (test harnesses wait for it).
//!
//! It is a test harness, not a product: no TLS on the listener, no limits, no
//! graceful shutdown (kill it).

mod spin_apis;

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use wasmtime::component::{Accessor, Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use spin_apis::{Shared, SpinView};

/// The body type wasmtime-wasi-http produces and consumes.
type WasiBody = wasmtime_wasi_http::WasiBody;

struct Args {
    component: String,
    listen: SocketAddr,
    kv_stores: Vec<String>,
    kv_seeds: Vec<String>,
    vars: Vec<(String, String)>,
    allow_outbound: Vec<String>,
}

const USAGE: &str = "usage: spin-host --component PATH.wasm --listen ADDR:PORT \
[--kv-store LABEL]... [--kv-seed FILE.json]... [--var name=value]... [--allow-outbound URL-PREFIX]...";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut component, mut listen) = (None, None);
    let (mut kv_seeds, mut vars, mut allow_outbound) = (vec![], vec![], vec![]);
    let mut kv_stores = vec![];
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--component" => component = Some(value),
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                )
            }
            "--kv-store" => kv_stores.push(value),
            "--kv-seed" => kv_seeds.push(value),
            "--var" => {
                let (name, val) = value
                    .split_once('=')
                    .ok_or(format!("--var {value}: expected name=value"))?;
                if !spin_apis::valid_variable_name(name) {
                    return Err(format!("--var {name}: not a valid Spin variable name (lower-case letters, digits, single underscores)"));
                }
                vars.push((name.to_string(), val.to_string()));
            }
            "--allow-outbound" => allow_outbound.push(value),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(Args {
        component: component.ok_or(format!("--component is required\n{USAGE}"))?,
        listen: listen.ok_or(format!("--listen is required\n{USAGE}"))?,
        kv_stores,
        kv_seeds,
        vars,
        allow_outbound,
    })
}

/// Per-request store data: WASI, wasi:http and the Spin interfaces.
struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    outbound: Outbound,
    shared: Arc<Shared>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

fn spin_view(host: &mut Host) -> SpinView<'_> {
    SpinView {
        shared: &host.shared,
        table: &mut host.table,
    }
}

/// Outbound-request policy (the `send_request` hook of wasmtime-wasi-http).
struct Outbound {
    allow: Arc<Vec<String>>,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    hyper::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                ),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        let url = request.uri().to_string();
        if !self.allow.is_empty()
            && !self
                .allow
                .iter()
                .any(|prefix| url.starts_with(prefix.as_str()))
        {
            eprintln!(
                "spin-host: refused outbound request to {url} (not under any --allow-outbound)"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // Same as the hook's default implementation.
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = _> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// Everything the per-request tasks share.
struct App {
    engine: Engine,
    pre: ServicePre<Host>,
    shared: Arc<Shared>,
    allow: Arc<Vec<String>>,
}

impl App {
    fn new_store(&self) -> Store<Host> {
        // Component stdout and stderr both go to our stderr: our stdout only
        // carries the "listening on" line.
        let wasi = WasiCtx::builder()
            .stdout(tokio::io::stderr())
            .stderr(tokio::io::stderr())
            .build();
        let host = Host {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            outbound: Outbound {
                allow: self.allow.clone(),
            },
            shared: self.shared.clone(),
        };
        Store::new(&self.engine, host)
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(args)) {
        eprintln!("spin-host: {e:?}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> wasmtime::Result<()> {
    let mut kv = std::collections::BTreeMap::new();
    for path in &args.kv_seeds {
        let n = spin_apis::load_seed(path, &mut kv)
            .map_err(|e| wasmtime::format_err!("--kv-seed {e}"))?;
        eprintln!("spin-host: seeded {n} keys from {path}");
    }
    // `default` always exists (seeded); other labels start empty.
    let mut stores = vec![("default".to_string(), Mutex::new(kv))];
    for label in args.kv_stores.into_iter().filter(|l| l != "default") {
        stores.push((label, Mutex::new(Default::default())));
    }
    let shared = Arc::new(Shared {
        ops: Default::default(),
        stores,
        vars: args.vars.into_iter().collect(),
    });

    let mut config = Config::new();
    config.wasm_component_model_async(true);
    // Like Spin: instances come from a pool of pre-reserved slots, so a
    // request does not pay for mapping and unmapping fresh linear memory.
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    let engine = Engine::new(&config)?;

    // The imports a spin-sdk 7 component has: WASI 0.2 (Rust std's stdio,
    // environment, ... via the wasip2 target) *and* WASI 0.3 (clocks, cli,
    // random, http), plus the Spin interfaces.
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    spin_apis::add_to_linker(&mut linker, spin_view)?;

    let started = std::time::Instant::now();
    let component = Component::from_file(&engine, &args.component)
        .map_err(|e| e.context(format!("loading {}", args.component)))?;
    let pre = ServicePre::new(linker.instantiate_pre(&component)?)?;
    eprintln!(
        "spin-host: compiled {} in {:.1?}",
        args.component,
        started.elapsed()
    );

    let app = Arc::new(App {
        engine,
        pre,
        shared,
        allow: Arc::new(args.allow_outbound),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;

    loop {
        let (stream, peer) = listener.accept().await?;
        // Without TCP_NODELAY, a response written in more than one segment
        // waits for the client's delayed ACK (about 40 ms on Linux).
        stream.set_nodelay(true)?;
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(app.clone(), peer, req));
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                eprintln!("spin-host: connection error: {e}");
            }
        });
    }
}

type ResponseBody = http_body_util::Either<Guarded, Full<Bytes>>;

/// Serves one request; failures become a 500 with the reason (also logged).
async fn handle(
    app: Arc<App>,
    peer: std::net::SocketAddr,
    mut req: hyper::Request<Incoming>,
) -> Result<hyper::Response<ResponseBody>, Infallible> {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    if method == hyper::Method::GET && uri.path() == "/.spin-host/kv-ops" {
        let mut response = hyper::Response::new(Full::new(Bytes::from(app.shared.ops_json())));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(response.map(http_body_util::Either::Right));
    }
    if method == hyper::Method::GET && uri.path() == "/.spin-host/kv-dump" {
        let response = hyper::Response::new(Full::new(Bytes::from(app.shared.dump())));
        return Ok(response.map(http_body_util::Either::Right));
    }
    // Like Spin, tell the component who is calling: `spin-client-addr` is
    // the peer address, appended after the headers the client sent (Spin's
    // trigger keeps the client's headers and adds its own after them), so a
    // client's forged value stays in the request, first.
    if let Ok(value) = hyper::header::HeaderValue::from_str(&peer.to_string()) {
        req.headers_mut().append("spin-client-addr", value);
    }
    Ok(match call_component(app, req).await {
        Ok(response) => response.map(http_body_util::Either::Left),
        Err(e) => {
            eprintln!("spin-host: {method} {uri}: {e:?}");
            let mut response =
                hyper::Response::new(Full::new(Bytes::from(format!("spin-host: {e:#}\n"))));
            *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            response.map(http_body_util::Either::Right)
        }
    })
}

/// How long an instance may keep working after its response is done (as
/// Workers' `waitUntil` allows 30 seconds).
const AFTER_RESPONSE: std::time::Duration = std::time::Duration::from_secs(30);

/// Instantiates the component and calls `wasi:http/handler.handle`.
///
/// The store lives in its own task running wasmtime's concurrent event loop
/// (`run_concurrent`). That loop has to keep running after `handle` returns,
/// because the component produces the response body afterwards (from tasks it
/// spawned); so the task only ends once hyper drops the body ([`Guarded`]),
/// i.e. when the body is complete or the client went away.
async fn call_component(
    app: Arc<App>,
    mut req: hyper::Request<Incoming>,
) -> wasmtime::Result<hyper::Response<Guarded>> {
    // Like Spin, give the component an absolute URI (http://HOST/path?query,
    // HOST from the Host header), not just the request target.
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok());
    let host = host.unwrap_or("localhost").to_string();
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = format!("http://{host}{target}").parse()?;

    let mut store = app.new_store();
    let service = app.pre.instantiate_async(&mut store).await?;
    let (response_tx, response_rx) = oneshot::channel();

    // The hooks passed here only filter forbidden headers; the defaults do.
    let (request, request_io) =
        wasmtime_wasi_http::p3::Request::from_http(wasmtime_wasi_http::default_hooks(), req);

    tokio::spawn(async move {
        let result = store
            .run_concurrent(
                async move |accessor: &Accessor<Host>| -> wasmtime::Result<()> {
                    let response = match service.handle(accessor, request).await? {
                        Ok(response) => response,
                        Err(code) => {
                            let _ = response_tx.send(Err(wasmtime::format_err!(
                                "component returned error {code:?}"
                            )));
                            return Ok(());
                        }
                    };
                    let response = accessor.with(|mut s| response.into_http(&mut s, request_io))?;
                    let (done_tx, done_rx) = oneshot::channel();
                    let response = response.map(|body| Guarded {
                        body,
                        _done: done_tx,
                    });
                    if response_tx.send(Ok(response)).is_ok() {
                        let _ = done_rx.await; // resolves when the body is dropped
                    }
                    // Work the component does after its response: the store
                    // runs until no task of the component is left.
                    let idle = std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx));
                    if tokio::time::timeout(AFTER_RESPONSE, idle).await.is_err() {
                        eprintln!("spin-host: work after a response cut after {AFTER_RESPONSE:?}");
                    }
                    Ok(())
                },
            )
            .await;
        if let Err(e) = result.and_then(|r| r) {
            // A trap before the response is ready also drops `response_tx`,
            // which call_component reports as a 500.
            eprintln!("spin-host: component failed: {e:?}");
        }
    });

    response_rx.await.unwrap_or_else(|_| {
        Err(wasmtime::format_err!(
            "component failed before responding (see log)"
        ))
    })
}

/// The component's response body, plus a sender whose drop tells the store's
/// task that hyper is finished with the body.
struct Guarded {
    body: WasiBody,
    _done: oneshot::Sender<()>,
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
