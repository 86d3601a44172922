//! Discovery for callers: which servers this caller may use, and their tools
//! as this caller sees them.
//!
//! - `GET /registry`: every server the caller may see (registry filters,
//!   anonymous access, then the policy), with its description, group,
//!   endpoint on this gateway, regions, and how many of its tools the caller
//!   may call;
//! - `GET /registry/{id}`: the same for one server, with those tools: the
//!   name on `/servers/{id}/mcp`, the name on `/mcp` (the prefixed form,
//!   which `/mcp` accepts whatever its naming), description and
//!   annotations, as the server lists them.
//!
//! Authenticated like `/mcp` (the same credentials, the same 401). What a
//! caller may not use is invisible here as everywhere: a denied server, a
//! hidden tool and an unknown one look the same (404, or absent). An
//! upstream's failure is redacted as its content is. Answers are
//! `Cache-Control: private, no-store`: they are this caller's.
//!
//! Anonymous discovery is a read a web page could make with nothing but the
//! browser's own request (a same-origin GET carries no `Origin`): after DNS
//! rebinding, a page on an attacker's host name reaches a gateway on this
//! machine. So an anonymous caller is answered only under `PUBLIC_URL`'s
//! host (when it is set and not loopback: a proxy in front must pass `Host`
//! through), else only under a loopback one; under any other it gets 403.
//!
//! Tools come from the tool catalog (`catalog`), listed with this caller's
//! own view where the server can tell callers apart, and kept for
//! `TOOL_CATALOG_TTL_SECS`; a server that cannot be listed shows
//! `"tools": null` and why, never an error for the whole answer.

use super::catalog::Entry;
use super::{respond, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::resource;
use crate::ports::Platform;
use crate::protocol::method::ListKind;
use crate::protocol::names;
use futures_util::future::join_all;
use http::{header, Method, Response};
use serde_json::{json, Map, Value};
use std::rc::Rc;

/// What a caller learns of one server's tools.
enum Tools {
    /// The tools it may call, sorted by name.
    Listed(Vec<Value>),
    /// The server could not be listed: why.
    Failed(String),
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `GET /registry` (`id` none) or `GET /registry/{id}`.
    pub(super) async fn discovery(
        &self,
        id: Option<&str>,
        req: &http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, GatewayError> {
        if req.method() != Method::GET {
            return Err(GatewayError::MethodNotAllowed { allow: "GET" });
        }
        if self.identity.principal.is_anonymous() && !self.trusted_host(req) {
            return Err(GatewayError::Forbidden {
                message: "anonymous discovery is answered only on a loopback host or PUBLIC_URL's"
                    .into(),
                challenge: None,
            });
        }
        let doc = match id {
            None => {
                let servers: Vec<&Server> = self.registry.servers.iter().map(|s| &**s).collect();
                let tools = self.tools_of(&servers).await?;
                let entries = servers
                    .iter()
                    .zip(tools)
                    .map(|(server, tools)| self.describe(server, tools, false))
                    .collect::<Vec<_>>();
                json!({
                    "mcp": format!("{}/mcp", self.identity.base),
                    "servers": entries,
                })
            }
            Some(id) => {
                let server = self
                    .registry
                    .get(id)
                    .cloned()
                    .ok_or_else(|| GatewayError::NotFound(format!("no server '{id}'")))?;
                let mut tools = self.tools_of(&[&server]).await?;
                self.describe(&server, tools.remove(0), true)
            }
        };
        Ok(respond::private(respond::json(
            serde_json::to_vec(&doc).expect("discovery serializes"),
        )))
    }

    /// Whether the request names a host a rebinding page cannot choose:
    /// `PUBLIC_URL`'s own (host and port, the scheme's default filled in)
    /// where it is set and not loopback (behind a proxy every request may
    /// look loopback), else a loopback one. No host at all is not trusted.
    fn trusted_host(&self, req: &http::Request<Vec<u8>>) -> bool {
        let named = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()));
        let Some(requested) = named.and_then(|h| h.parse::<http::uri::Authority>().ok()) else {
            return false;
        };
        let public = self.gw.settings.public_origin.as_deref();
        match public.and_then(|o| o.parse::<http::Uri>().ok()) {
            Some(public) if !resource::is_loopback(&public.to_string()) => {
                let default = match public.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                };
                public.authority().is_some_and(|p| {
                    p.host().eq_ignore_ascii_case(requested.host())
                        && p.port_u16().unwrap_or(default)
                            == requested.port_u16().unwrap_or(default)
                })
            }
            _ => resource::is_loopback(&format!("http://{requested}")),
        }
    }

    /// One server as this caller sees it; with its tools in full or only
    /// their number.
    fn describe(&self, server: &Server, tools: Tools, full: bool) -> Value {
        let mut regions: Vec<&str> = server.endpoints.iter().map(|e| e.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        let mut entry = Map::new();
        entry.insert("id".into(), json!(server.id));
        entry.insert("description".into(), json!(server.description));
        entry.insert("group".into(), json!(server.group));
        entry.insert(
            "endpoint".into(),
            json!(format!("{}/servers/{}/mcp", self.identity.base, server.id)),
        );
        entry.insert("regions".into(), json!(regions));
        match tools {
            Tools::Listed(tools) if full => {
                entry.insert("tools".into(), Value::Array(tools));
            }
            Tools::Listed(tools) => {
                entry.insert("tools".into(), json!(tools.len()));
            }
            Tools::Failed(why) => {
                entry.insert("tools".into(), Value::Null);
                entry.insert("error".into(), json!(why));
            }
        }
        Value::Object(entry)
    }

    /// Each of `servers`' tool listing from the catalog, as this caller's
    /// own client lists it, all at once (discovery, the policy dry run).
    pub(super) async fn tool_listings(
        &self,
        servers: &[&Server],
    ) -> Result<Vec<Result<Option<Rc<Entry>>, GatewayError>>, GatewayError> {
        let client = self.own_client(servers).await?;
        let ups = self.upstreams(&client);
        let catalog = &self.gw.catalog;
        Ok(join_all(
            servers
                .iter()
                .map(|server| catalog.listing(&ups, server, ListKind::Tools, (true, true))),
        )
        .await)
    }

    /// The tools this caller may call on each of `servers`, listed at once.
    async fn tools_of(&self, servers: &[&Server]) -> Result<Vec<Tools>, GatewayError> {
        let listings = self.tool_listings(servers).await?;
        let tools = servers
            .iter()
            .zip(listings)
            .map(|(server, listing)| match listing {
                Ok(Some(entry)) => {
                    let mut tools: Vec<Value> = entry
                        .tools()
                        .filter(|t| self.gate.tool(server, t.name()))
                        .map(|t| {
                            let mut tool = json!({
                                "name": t.name(),
                                "on_mcp": names::qualify(&server.id, t.name()),
                            });
                            if let Some(description) = &t.description {
                                tool["description"] = json!(description);
                            }
                            if let Some(annotations) = &t.annotations {
                                tool["annotations"] = annotations.clone();
                            }
                            tool
                        })
                        .collect();
                    tools.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                    Tools::Listed(tools)
                }
                Ok(None) => Tools::Failed("not listed".into()),
                // Redacted as the server's content is on the MCP endpoints.
                Err(e) => Tools::Failed(
                    respond::redact_error(e, &self.gate.redaction(server, None)).to_string(),
                ),
            });
        Ok(tools.collect())
    }
}
