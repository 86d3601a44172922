//! The tool catalog: each server's tool definitions as the gateway last
//! listed them (the compiled `inputSchema` and the `destructiveHint`
//! annotation), kept per isolate for `TOOL_CATALOG_TTL_SECS`. Argument
//! validation and approval read it. Only the first call to a server waits
//! for its listing: a stale entry still answers, and the server is listed
//! again after the response (stale-while-revalidate), so steady-state calls
//! make exactly one upstream request. A called tool missing from the entry
//! is looked up again at once (the server may have added it), at most every
//! two seconds.
//!
//! The catalog is per server, not per caller: servers are expected to
//! describe a tool the same way to everyone who may call it.

use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::arguments::Schema;
use crate::ports::{Clock, Platform};
use crate::protocol::jsonrpc::{self, Id};
use crate::upstream::{reply, Upstreams};
use serde::Deserialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A server's listing is followed for at most this many pages.
const MAX_PAGES: usize = 20;
/// A missing tool triggers a fresh listing only if the last one is older.
const MISSING_REFRESH_MS: u64 = 2_000;

/// What the gateway knows about one tool.
#[derive(Debug)]
pub struct ToolInfo {
    /// The server's `annotations.destructiveHint` (MCP's default is `true`
    /// only for tools that are not read-only; a missing hint counts as false
    /// here, so approval applies to tools the server explicitly marks).
    pub destructive: bool,
    /// The compiled `inputSchema`; `None` when the server sent none or one
    /// that does not compile (logged; the call is then not validated).
    pub schema: Option<Schema>,
}

struct Entry {
    listed_ms: u64,
    tools: HashMap<String, Rc<ToolInfo>>,
}

type Entries = Rc<RefCell<HashMap<String, Rc<Entry>>>>;

/// Tool definitions by server id.
pub struct Catalog {
    ttl_ms: u64,
    servers: Entries,
    /// Servers being listed again in the background (one refresh at a time).
    refreshing: Rc<RefCell<std::collections::HashSet<String>>>,
}

impl Catalog {
    pub fn new(ttl_ms: u64) -> Self {
        Catalog {
            ttl_ms,
            servers: Rc::default(),
            refreshing: Rc::default(),
        }
    }

    /// Lists `server` again after the response; the stale entry serves
    /// until then, and stays if the listing fails.
    fn refresh_later<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
    ) {
        if !self.refreshing.borrow_mut().insert(server.id.clone()) {
            return;
        }
        let (servers, refreshing) = (self.servers.clone(), self.refreshing.clone());
        let (detached, server) = (ups.detach(), server.clone());
        ups.platform.defer(Box::pin(async move {
            let ups = detached.upstreams();
            let now = ups.platform.clock().now_ms();
            match list(&ups, &server).await {
                Ok(tools) => {
                    let entry = Rc::new(Entry {
                        listed_ms: now,
                        tools,
                    });
                    servers.borrow_mut().insert(server.id.clone(), entry);
                }
                Err(e) => tracing::warn!(server = %server.id, "tool catalog refresh failed: {e}"),
            }
            refreshing.borrow_mut().remove(&server.id);
        }));
    }

    /// The definition of `tool` on `server`, listing the server if needed;
    /// `None` when the server does not list the tool.
    pub async fn tool<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        tool: &str,
    ) -> Result<Option<Rc<ToolInfo>>, GatewayError> {
        let now = ups.platform.clock().now_ms();
        let cached = self.servers.borrow().get(&server.id).cloned();
        if let Some(entry) = &cached {
            let age = now.saturating_sub(entry.listed_ms);
            match entry.tools.get(tool) {
                Some(info) => {
                    if age >= self.ttl_ms {
                        self.refresh_later(ups, server);
                    }
                    return Ok(Some(info.clone()));
                }
                None if age < MISSING_REFRESH_MS.min(self.ttl_ms) => return Ok(None),
                None => {}
            }
        }
        let entry = Rc::new(Entry {
            listed_ms: now,
            tools: list(ups, server).await?,
        });
        self.servers
            .borrow_mut()
            .insert(server.id.clone(), entry.clone());
        Ok(entry.tools.get(tool).cloned())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    tools: Vec<ToolDef>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolDef {
    name: String,
    #[serde(default)]
    input_schema: Option<Value>,
    #[serde(default)]
    annotations: Option<Annotations>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Annotations {
    #[serde(default)]
    destructive_hint: Option<bool>,
}

/// Every page of the server's `tools/list`.
async fn list<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
) -> Result<HashMap<String, Rc<ToolInfo>>, GatewayError> {
    let id = Id::Str("mcp-edge-catalog".into());
    let mut tools = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| serde_json::json!({ "cursor": c }));
        let message = jsonrpc::request_bytes(&id, "tools/list", params.as_ref());
        let answer = ups.send(server, &message).await?;
        let result = reply::read_result(answer, &id, &server.id, ups.link.max_bytes).await?;
        let page: Page = serde_json::from_value(result).map_err(|e| GatewayError::Upstream {
            server: server.id.clone(),
            message: format!("tools/list result does not parse: {e}"),
        })?;
        for def in page.tools {
            let schema = def.input_schema.as_ref().and_then(|s| {
                Schema::compile(s)
                    .map_err(|e| {
                        tracing::warn!(server = %server.id, tool = %def.name, "inputSchema not used: {e}")
                    })
                    .ok()
            });
            let destructive = def
                .annotations
                .and_then(|a| a.destructive_hint)
                .unwrap_or(false);
            tools.insert(
                def.name,
                Rc::new(ToolInfo {
                    destructive,
                    schema,
                }),
            );
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(tools)
}
