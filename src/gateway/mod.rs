//! The request pipeline: fixed phases, each able to end the request early.
//!
//! 1. ingest: route by path, `Origin`, CORS, method, body checks;
//! 2. parse: the JSON-RPC envelope;
//! 3. session: `initialize` opens one, everything else must name a live one;
//! 4. dispatch: the aggregated endpoint merges and routes, the per-server
//!    endpoint passes through;
//! 5. respond: JSON or a relayed SSE stream; errors become HTTP status plus a
//!    JSON-RPC error in one place ([`GatewayError::into_response`]).

pub mod aggregate;
pub mod ingest;
pub mod merge;
pub mod passthrough;
pub mod registry_cache;
pub mod respond;
pub mod session;
pub mod session_cache;

use crate::body::Body;
use crate::config::{Registry, Server, Settings};
use crate::error::GatewayError;
use crate::ports::Platform;
use crate::protocol::jsonrpc::{self, Id, Message, Request};
use crate::protocol::version;
use crate::upstream::{Link, Upstreams};
use http::{Method, Response};
use ingest::Route;
use registry_cache::RegistryCache;
use serde::Deserialize;
use session_cache::{CachedPlatform, SessionCache};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Where the request entered the edge, as the platform reports it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Cloudflare data-center code, such as `FRA`.
    pub colo: Option<String>,
    /// Continent code, such as `EU`.
    pub continent: Option<String>,
}

/// The gateway: settings plus isolate-lived caches. One per isolate; every
/// request borrows it together with the platform's ports.
pub struct Gateway {
    pub settings: Settings,
    registry: RegistryCache,
    sessions: Rc<SessionCache>,
}

/// A request's view of the gateway.
struct Ctx<'a, P: Platform> {
    gw: &'a Gateway,
    p: &'a P,
    route: Route,
    region: Option<String>,
}

impl Gateway {
    pub fn new(settings: Settings) -> Self {
        let registry = RegistryCache::new(settings.registry_ttl_ms);
        let sessions = Rc::new(SessionCache::new(settings.session_cache_ms));
        Gateway {
            settings,
            registry,
            sessions,
        }
    }

    /// Forgets the cached registry so the next request reloads it.
    pub fn invalidate_registry(&self) {
        self.registry.invalidate();
    }

    /// Handles one HTTP request end to end. Never panics on bad input: every
    /// failure is an HTTP status with a JSON-RPC error body.
    pub async fn handle<P: Platform>(
        &self,
        p: &P,
        req: http::Request<Vec<u8>>,
        meta: &RequestMeta,
    ) -> Response<Body> {
        let headers = req.headers().clone();
        let p = CachedPlatform::new(p, self.sessions.clone());
        let mut response = match self.handle_inner(&p, req, meta).await {
            Ok(r) => r,
            Err((e, id)) => e.into_response(id.as_ref()),
        };
        ingest::add_cors(&headers, &mut response);
        response
    }

    async fn handle_inner<P: Platform>(
        &self,
        p: &P,
        req: http::Request<Vec<u8>>,
        meta: &RequestMeta,
    ) -> Result<Response<Body>, (GatewayError, Option<Id>)> {
        let route = Route::parse(req.uri().path()).map_err(|e| (e, None))?;
        ingest::check_origin(req.headers(), &self.settings).map_err(|e| (e, None))?;
        if route == Route::Health {
            return Ok(respond::json(b"{\"status\":\"ok\"}".to_vec()));
        }
        let region = self
            .settings
            .region_for(meta.colo.as_deref(), meta.continent.as_deref());
        let ctx = Ctx {
            gw: self,
            p,
            route,
            region,
        };
        match *req.method() {
            Method::POST => ctx.post(req).await,
            Method::DELETE => ctx.delete(req.headers()).await.map_err(|e| (e, None)),
            Method::GET => ctx.get(req.headers()).await.map_err(|e| (e, None)),
            Method::OPTIONS => Ok(ingest::preflight()),
            _ => Err((
                GatewayError::MethodNotAllowed {
                    allow: "GET, POST, DELETE",
                },
                None,
            )),
        }
    }
}

impl<P: Platform> Ctx<'_, P> {
    async fn registry(&self) -> Result<Rc<Registry>, GatewayError> {
        self.gw.registry.get(self.p).await
    }

    /// The server a per-server route names.
    fn server(&self, registry: &Registry) -> Result<Option<Rc<Server>>, GatewayError> {
        match &self.route {
            Route::Server(id) => registry
                .get(id)
                .cloned()
                .map(Some)
                .ok_or_else(|| GatewayError::UnknownServer(id.clone())),
            _ => Ok(None),
        }
    }

    fn link(
        &self,
        session_id: Option<String>,
        version: &str,
        client_params: Option<serde_json::Value>,
    ) -> Link {
        Link {
            session_id,
            protocol_version: version.to_string(),
            client_params,
            region: self.region.clone(),
            upstreams: RefCell::new(BTreeMap::new()),
            max_bytes: self.gw.settings.max_upstream_bytes,
        }
    }

    async fn post(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, (GatewayError, Option<Id>)> {
        let (parts, body) = req.into_parts();
        ingest::check_post(&parts.headers, body.len(), &self.gw.settings).map_err(|e| (e, None))?;
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            let e = GatewayError::InvalidRequest(
                "JSON-RPC batches are not supported; send one message per POST".into(),
            );
            return Err((e, None));
        }
        let message = jsonrpc::parse_message(&body).map_err(|e| (e, jsonrpc::salvage_id(&body)))?;
        let id = match &message {
            Message::Request(r) => Some(r.id.clone()),
            _ => None,
        };
        let with_id = |e: GatewayError| (e, id.clone());
        let registry = self.registry().await.map_err(with_id)?;
        let server = self.server(&registry).map_err(with_id)?;
        if let Message::Request(r) = &message {
            if r.method == "initialize" {
                return self
                    .initialize(&registry, server.as_deref(), r)
                    .await
                    .map_err(with_id);
            }
        }
        let record = session::find(self.p, &parts.headers, &self.route.endpoint_name())
            .await
            .map_err(with_id)?;
        let link = self.link(
            Some(record.id.clone()),
            &record.protocol_version,
            record.client_params.clone(),
        );
        *link.upstreams.borrow_mut() = record.upstreams;
        let ups = Upstreams::new(self.p, &link);
        match (&message, server.as_deref()) {
            (Message::Request(r), None) => aggregate::request(&ups, &registry, r)
                .await
                .map_err(with_id),
            (Message::Request(r), Some(s)) => passthrough::request(&ups, s, r, &body)
                .await
                .map_err(with_id),
            (Message::Notification(n), None) => {
                aggregate::notify(&ups, &registry, &n.method, &body).await;
                Ok(respond::accepted())
            }
            (Message::Notification(n), Some(s)) => {
                passthrough::forward_one_way(&ups, s, Some(&n.method), &body)
                    .await
                    .map_err(with_id)?;
                Ok(respond::accepted())
            }
            (Message::Response(_), Some(s)) => {
                passthrough::forward_one_way(&ups, s, None, &body)
                    .await
                    .map_err(with_id)?;
                Ok(respond::accepted())
            }
            (Message::Response(r), None) => {
                // The aggregated endpoint offers upstreams no client capabilities,
                // so no upstream asked anything; nothing to route.
                tracing::debug!(id = %r.id, "client response on /mcp ignored");
                Ok(respond::accepted())
            }
        }
    }

    /// `initialize`: opens a client session. On `/mcp` the gateway answers for
    /// itself and meets upstreams lazily; on `/servers/{id}/mcp` it initializes
    /// the upstream now with the client's own params and answers with its result.
    async fn initialize(
        &self,
        registry: &Registry,
        server: Option<&Server>,
        req: &Request,
    ) -> Result<Response<Body>, GatewayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Params {
            protocol_version: String,
            #[serde(default)]
            capabilities: serde_json::Value,
            #[serde(default)]
            client_info: serde_json::Value,
        }
        let params: Params = req.params_as()?;
        let version = version::negotiate(&params.protocol_version);
        let id = session::new_id(self.p);
        let endpoint = self.route.endpoint_name();
        let ttl = self.gw.settings.session_ttl_ms;
        let (result, client_params, upstreams, version) = match server {
            None => (
                aggregate::initialize_result(version, registry),
                None,
                BTreeMap::new(),
                version,
            ),
            Some(server) => {
                let client_params = serde_json::json!({
                    "capabilities": params.capabilities,
                    "clientInfo": params.client_info,
                });
                let link = self.link(None, version, Some(client_params.clone()));
                let mut result = Upstreams::new(self.p, &link).initialize_now(server).await?;
                // Keep the upstream's choice when the gateway speaks it too, so
                // client and upstream agree on one revision end to end.
                let agreed = result
                    .get("protocolVersion")
                    .and_then(|v| v.as_str())
                    .filter(|v| version::is_supported(v))
                    .map(version::negotiate)
                    .unwrap_or(version);
                result["protocolVersion"] = agreed.into();
                (
                    result,
                    Some(client_params),
                    link.upstreams.into_inner(),
                    agreed,
                )
            }
        };
        session::open(
            self.p,
            id.clone(),
            endpoint,
            version,
            client_params,
            upstreams,
            ttl,
        )
        .await?;
        let mut response = respond::result(&req.id, &result);
        response.headers_mut().insert(
            respond::SESSION_HEADER,
            http::HeaderValue::from_str(&id).expect("base64url is a valid header value"),
        );
        Ok(response)
    }

    async fn delete(&self, headers: &http::HeaderMap) -> Result<Response<Body>, GatewayError> {
        session::close(self.p, headers, &self.route.endpoint_name()).await?;
        Ok(respond::ok_empty())
    }

    /// GET opens a server-to-client stream. `/mcp` offers none (405, which the
    /// spec allows); the per-server endpoint relays the upstream's own stream.
    async fn get(&self, headers: &http::HeaderMap) -> Result<Response<Body>, GatewayError> {
        let registry = self.registry().await?;
        let Some(server) = self.server(&registry)? else {
            return Err(GatewayError::MethodNotAllowed {
                allow: "POST, DELETE",
            });
        };
        let record = session::find(self.p, headers, &self.route.endpoint_name()).await?;
        let link = self.link(Some(record.id.clone()), &record.protocol_version, None);
        *link.upstreams.borrow_mut() = record.upstreams;
        let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
        let body = Upstreams::new(self.p, &link)
            .open_stream(&server, last_event_id)
            .await?;
        Ok(respond::sse(body))
    }
}
