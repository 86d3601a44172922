//! The request pipeline: fixed phases, each able to end the request early.
//!
//! 1. ingest: route by path, `Origin`, CORS, method, body checks;
//! 2. authenticate: credential -> principal, or 401/403 ([`authn`]); what the
//!    principal may not use becomes invisible;
//! 3. parse: the JSON-RPC envelope;
//! 4. session: `initialize` opens one, everything else must name a live one
//!    opened by the same principal;
//! 5. dispatch: the aggregated endpoint merges and routes, the per-server
//!    endpoint passes through ([`endpoint`]); a `tools/call` first passes the
//!    [`guard`] (arguments, limits, a [`hold`] for human approval, put to
//!    the decider by [`ask`]);
//! 6. respond: JSON or a relayed SSE stream; errors become HTTP status plus a
//!    JSON-RPC error in one place ([`GatewayError::into_response`]).

mod admin;
mod agent;
pub(crate) mod aggregate;
mod answer;
mod approvals_endpoint;
pub(crate) mod ask;
pub(crate) mod authenticator;
pub(crate) mod authn;
pub(crate) mod catalog;
mod connect;
mod counters;
mod discovery;
mod endpoint;
pub(crate) mod entry_sets;
pub(crate) mod guard;
pub(crate) mod hold;
pub(crate) mod ingest;
mod initialize;
pub(crate) mod list_cache;
pub mod merge;
mod modern;
pub mod naming;
mod own_writes;
pub(crate) mod passthrough;
pub(crate) mod policy_store;
mod resources;
pub(crate) mod respond;
mod server_stream;
pub(crate) mod session;
mod session_cache;
mod traced;

use crate::body::Body;
use crate::config::{Models, Registry, Settings};
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::ports::Platform;
use crate::protocol::jsonrpc::Id;
use crate::protocol::trace_context::Traced;
use crate::protocol::version::Era;
use crate::upstream::eras::Eras;
use crate::upstream::minter::Minter;
pub use admin::kinds::check_document;
use authenticator::Authenticator;
use authn::Identity;
use catalog::Catalog;
use entry_sets::EntrySetCache;
use http::{Method, Response};
use ingest::Route;
use policy_store::PolicyStore;
use session_cache::{CachedPlatform, SessionCache};
use std::rc::Rc;

/// Where the request entered the edge, as the platform reports it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Cloudflare data-center code, such as `FRA`.
    pub colo: Option<String>,
    /// Continent code, such as `EU`.
    pub continent: Option<String>,
    /// The client's address as the platform vouches for it
    /// (`CF-Connecting-IP` on Workers, the peer address on Spin); anonymous
    /// callers are told apart by it.
    pub client_addr: Option<String>,
}

/// The gateway: settings plus isolate-lived caches. One per isolate; every
/// request borrows it together with the platform's ports.
pub struct Gateway {
    pub settings: Settings,
    registry: EntrySetCache<Registry>,
    /// The agent API's models.
    models: EntrySetCache<Models>,
    sessions: Rc<SessionCache>,
    authenticator: Authenticator,
    minter: Rc<Minter>,
    /// Which era each upstream endpoint speaks.
    eras: Rc<Eras>,
    policy: PolicyStore,
    catalog: Catalog,
    /// Rate-limit counters that refused lately.
    refusals: counters::Refusals,
    /// Upstream list pages, as their cache hints allow.
    lists: Rc<list_cache::ListCache>,
    /// What the admin API wrote from this instance, laid over KV.
    own_writes: Rc<own_writes::OwnWrites>,
    /// Whether the missing-`PUBLIC_URL` warning was logged (once per isolate).
    public_url_warned: std::cell::Cell<bool>,
}

/// A request's view of the gateway, once the caller is known.
struct Ctx<'a, P: Platform> {
    gw: &'a Gateway,
    p: &'a P,
    route: Route,
    region: Option<String>,
    /// The servers this caller may see.
    registry: Rc<Registry>,
    identity: Identity,
    /// What the caller may see and call (registry filters, then the policy).
    gate: Gate,
    /// The trace the request goes into, and the gateway's span in it.
    traced: Traced,
    /// The most of one upstream answer this request reads
    /// (`MAX_UPSTREAM_BYTES`; less for the agent API's tool calls).
    upstream_limit: usize,
}

impl Gateway {
    pub fn new(settings: Settings) -> Self {
        let registry = EntrySetCache::new(settings.registry_ttl_ms);
        let models = EntrySetCache::new(settings.registry_ttl_ms);
        let sessions = Rc::new(SessionCache::new(settings.session_cache_ms));
        let authenticator = Authenticator::new(settings.registry_ttl_ms);
        let policy = PolicyStore::new(settings.registry_ttl_ms);
        let catalog = Catalog::new(settings.tool_catalog_ttl_ms);
        let eras = Rc::new(Eras::new(settings.registry_ttl_ms));
        for problem in &settings.telemetry.problems {
            tracing::warn!("{problem}");
        }
        Gateway {
            settings,
            registry,
            models,
            sessions,
            authenticator,
            minter: Rc::default(),
            eras,
            policy,
            catalog,
            refusals: Default::default(),
            lists: Default::default(),
            own_writes: Default::default(),
            public_url_warned: std::cell::Cell::new(false),
        }
    }

    /// Logs, once, that the gateway serves a non-loopback host without
    /// `PUBLIC_URL`: resource URLs, default token audiences and the `iss` of
    /// minted credentials then follow the Host header, which callers choose.
    fn warn_without_public_url(&self, base: &str) {
        if !self.public_url_warned.replace(true) {
            tracing::warn!(
                base,
                "PUBLIC_URL is not set and this request is for a non-loopback host: resource URLs, \
                 token audiences and minted credentials follow the Host header; set PUBLIC_URL"
            );
        }
    }

    /// Whether the missing-`PUBLIC_URL` warning has been logged.
    pub fn warned_about_public_url(&self) -> bool {
        self.public_url_warned.get()
    }

    /// Makes the next request read the registry, the trusted issuers, the
    /// API keys and the policy from KV again (tests, admin reloads). The
    /// registry and issuers are dropped (KV failing then means 503); the
    /// policy last read stays the fallback, as on any policy reload.
    pub fn reload_config(&self) {
        self.registry.invalidate();
        self.models.invalidate();
        self.authenticator.invalidate();
        self.policy.invalidate();
        self.lists.clear();
    }

    /// Handles one HTTP request end to end. Never panics on bad input: every
    /// failure is an HTTP status with a JSON-RPC error body. The platform is
    /// shared because a streamed answer may still use it after this returns,
    /// and so is the gateway (the agent API's stream runs its loop).
    pub async fn handle<P: Platform + 'static>(
        self: &Rc<Self>,
        p: &Rc<P>,
        req: http::Request<Vec<u8>>,
        meta: &RequestMeta,
    ) -> Response<Body> {
        let headers = req.headers().clone();
        let era = Era::of_request(&headers);
        let traced = traced::of(p.as_ref(), &req, &self.settings.telemetry);
        // Every log line of the request names its trace; what the request
        // does is collected under it for export (`observe`).
        let span = traced::span(&traced);
        let batch = crate::observe::collect::attach(&span, &traced);
        span.in_scope(|| traced::describe(&req, era));
        let platform = p;
        let p = CachedPlatform::new(p.clone(), self.sessions.clone(), self.own_writes.clone());
        let handled = self.handle_inner(&p, req, meta, era, &traced);
        let (mut response, code) =
            match tracing::Instrument::instrument(handled, span.clone()).await {
                Ok(r) => (r, None),
                Err((e, id)) => {
                    let code = e.code_in(era);
                    (e.into_response_in(era, id.as_ref()), Some(code))
                }
            };
        span.in_scope(|| traced::ended(&response, code));
        ingest::add_cors(&headers, &mut response);
        if let Some(batch) = batch
            .as_ref()
            .filter(|_| crate::observe::summary::asked(&headers))
        {
            traced::summary(&mut response, batch);
        }
        traced::answer(&mut response, &traced, span);
        if let Some(batch) = batch {
            let telemetry = self.settings.telemetry.clone();
            platform.defer(Box::pin(crate::observe::after::after(
                platform.clone(),
                batch,
                telemetry,
            )));
        }
        response
    }

    async fn handle_inner<P: Platform + Clone + 'static>(
        self: &Rc<Self>,
        p: &P,
        req: http::Request<Vec<u8>>,
        meta: &RequestMeta,
        era: Era,
        traced: &Traced,
    ) -> Result<Response<Body>, (GatewayError, Option<Id>)> {
        let route = Route::parse(req.uri().path()).map_err(|e| (e, None))?;
        ingest::check_origin(
            req.headers(),
            req.uri().authority().map(|a| a.as_str()),
            &self.settings,
        )
        .map_err(|e| (e, None))?;
        let no_id = |e: GatewayError| (e, None);
        match (&route, req.method()) {
            (_, &Method::OPTIONS) => return Ok(ingest::preflight()),
            (Route::Health, _) => return Ok(respond::json(b"{\"status\":\"ok\"}".to_vec())),
            (Route::ResourceMetadata(endpoint), &Method::GET) => {
                return authn::metadata(self, p, endpoint, req.uri(), req.headers())
                    .await
                    .map_err(no_id)
            }
            (Route::Jwks, &Method::GET) => return authn::jwks(self, p).await.map_err(no_id),
            (Route::ResourceMetadata(_) | Route::Jwks, _) => {
                return Err(no_id(GatewayError::MethodNotAllowed { allow: "GET" }))
            }
            _ => {}
        }
        let registry = self.registry.get(p).await.map_err(no_id)?;
        if let Some(answer) = connect::before_auth(self, p, &route, &req, &registry).await {
            return answer.map_err(no_id);
        }
        let request = authn::Presented {
            route: &route,
            uri: req.uri(),
            headers: req.headers(),
            client_addr: meta.client_addr.as_deref(),
        };
        let identity = tracing::Instrument::instrument(
            authn::authenticate(self, p, &request, &registry),
            tracing::info_span!("authenticate"),
        )
        .await
        .map_err(no_id)?;
        crate::observe::notes::caller(&identity.principal);
        let region = self
            .settings
            .region_for(meta.colo.as_deref(), meta.continent.as_deref());
        let gate = Gate {
            principal: identity.principal.clone(),
            policy: self.policy.get(p).await.map_err(no_id)?,
        };
        let registry = authn::visible(&registry, &gate);
        let mut ctx = Ctx {
            gw: self,
            p,
            route,
            region,
            registry,
            identity,
            gate,
            traced: traced.clone(),
            upstream_limit: self.settings.max_upstream_bytes,
        };
        if let Route::Approval(id) = &ctx.route {
            return ctx.approval(id, req).await.map_err(no_id);
        }
        if ctx.route == Route::Approvals {
            return ctx.inbox(req.method()).await.map_err(no_id);
        }
        if let Route::Admin(rest) = &ctx.route {
            return ctx.admin(rest, &req).await.map_err(no_id);
        }
        if matches!(ctx.route, Route::Chat | Route::Models(_)) {
            // The agent's tools are `/mcp`'s: the request goes on as one there.
            let requested = std::mem::replace(&mut ctx.route, Route::Aggregate);
            ctx.upstream_limit = ctx.upstream_limit.min(agent::MAX_READ_BYTES);
            return ctx.agent(&requested, req, self).await.map_err(no_id);
        }
        if let Route::Registry(id) = &ctx.route {
            return ctx.discovery(id.as_deref(), &req).await.map_err(no_id);
        }
        match &ctx.route {
            Route::Connect(id) => return ctx.connect(id, req.method()).await.map_err(no_id),
            Route::Connections(id) => {
                return ctx
                    .connections(id.as_deref(), req.method())
                    .await
                    .map_err(no_id)
            }
            _ => {}
        }
        match (req.method().clone(), era) {
            (Method::POST, Era::Modern) => ctx.post_modern(req).await,
            // A modern client has no session to delete and no stream to open
            // (`subscriptions/listen` replaces the GET stream).
            (_, Era::Modern) => Err(no_id(GatewayError::MethodNotAllowed { allow: "POST" })),
            (Method::POST, Era::Legacy) => ctx.post(req).await,
            (Method::DELETE, Era::Legacy) => ctx.delete(req.headers()).await.map_err(no_id),
            (Method::GET, Era::Legacy) => ctx.get(req.headers()).await.map_err(no_id),
            _ => Err(no_id(GatewayError::MethodNotAllowed {
                allow: "GET, POST, DELETE",
            })),
        }
    }
}
