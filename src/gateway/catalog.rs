//! The tool catalog: each server's tool definitions as the gateway last
//! listed them (the `inputSchema` and the `destructiveHint` annotation),
//! kept per isolate for `TOOL_CATALOG_TTL_SECS`. Argument validation and
//! approval read it.
//!
//! - Only the first call to a server waits for its listing: a stale entry
//!   still answers, and the server is listed again after the response
//!   (stale-while-revalidate), so steady-state calls make exactly one
//!   upstream request. A called tool missing from the entry is looked up
//!   again at once (the server may have added it), at most every two seconds.
//! - Schemas are compiled when a tool is first called, not when listed: a
//!   server with hundreds of tools costs one compile per tool actually used.
//! - Where instances live for one request (Spin), the listing is also kept in
//!   the platform's shared cache, so a fresh instance reads it instead of
//!   listing the server again.
//!
//! The catalog is per server, not per caller: servers are expected to
//! describe a tool the same way to everyone who may call it.

use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::arguments::Schema;
use crate::ports::{Clock, Platform};
use crate::protocol::jsonrpc;
use crate::upstream::{reply, Upstreams};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A server's listing is followed for at most this many pages.
const MAX_PAGES: usize = 20;
/// A missing tool triggers a fresh listing only if the last one is older.
const MISSING_REFRESH_MS: u64 = 2_000;

/// What the gateway knows about one tool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ToolInfo {
    name: String,
    /// The server's `annotations.destructiveHint` (MCP's default is `true`
    /// only for tools that are not read-only; a missing hint counts as false
    /// here, so approval applies to tools the server explicitly marks).
    pub destructive: bool,
    input_schema: Option<Value>,
    #[serde(skip)]
    compiled: OnceCell<Option<Schema>>,
}

impl ToolInfo {
    /// The compiled `inputSchema`; `None` when the server sent none or one
    /// that does not compile (logged once; the call is then not validated).
    pub(crate) fn schema(&self, server: &str) -> Option<&Schema> {
        self.compiled
            .get_or_init(|| {
                let schema = self.input_schema.as_ref()?;
                Schema::compile(schema)
                    .map_err(
                        |e| tracing::warn!(server, tool = %self.name, "inputSchema not used: {e}"),
                    )
                    .ok()
            })
            .as_ref()
    }
}

/// One server's listing.
#[derive(Serialize, Deserialize)]
struct Entry {
    listed_ms: u64,
    tools: HashMap<String, Rc<ToolInfo>>,
}

type Entries = Rc<RefCell<HashMap<String, Rc<Entry>>>>;

/// Tool definitions by server id.
pub(crate) struct Catalog {
    ttl_ms: u64,
    servers: Entries,
    /// Servers being listed again in the background (one refresh at a time).
    refreshing: Rc<RefCell<HashSet<String>>>,
}

fn shared_key(server: &str) -> String {
    format!("catalog/{server}")
}

impl Catalog {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        Catalog {
            ttl_ms,
            servers: Rc::default(),
            refreshing: Rc::default(),
        }
    }

    /// The definition of `tool` on `server`, listing the server if needed;
    /// `None` when the server does not list the tool.
    pub(crate) async fn tool<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        tool: &str,
    ) -> Result<Option<Rc<ToolInfo>>, GatewayError> {
        let now = ups.platform.clock().now_ms();
        let mut cached = self.servers.borrow().get(&server.id).cloned();
        if cached.is_none() {
            cached = self.shared(ups.platform, server).await;
        }
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
        let entry = Entry {
            listed_ms: now,
            tools: list(ups, server).await?,
        };
        let found = entry.tools.get(tool).cloned();
        keep(&self.servers, ups.platform, &server.id, entry).await;
        Ok(found)
    }

    /// The listing another instance left in the shared cache, if any.
    async fn shared<P: Platform>(&self, p: &P, server: &Server) -> Option<Rc<Entry>> {
        let text = p.shared_get(&shared_key(&server.id)).await?;
        let entry: Entry = serde_json::from_str(&text)
            .map_err(|e| tracing::warn!(server = %server.id, "cached tool catalog ignored: {e}"))
            .ok()?;
        let entry = Rc::new(entry);
        self.servers
            .borrow_mut()
            .insert(server.id.clone(), entry.clone());
        Some(entry)
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
                    let entry = Entry {
                        listed_ms: now,
                        tools,
                    };
                    keep(&servers, ups.platform, &server.id, entry).await;
                }
                Err(e) => tracing::warn!(server = %server.id, "tool catalog refresh failed: {e}"),
            }
            refreshing.borrow_mut().remove(&server.id);
        }));
    }
}

/// Stores a fresh listing in this instance and in the shared cache.
async fn keep<P: Platform>(servers: &Entries, p: &P, server: &str, entry: Entry) {
    let text = serde_json::to_string(&entry).expect("catalog serializes");
    servers
        .borrow_mut()
        .insert(server.to_string(), Rc::new(entry));
    p.shared_put(&shared_key(server), &text).await;
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
    let id = ups.own_request_id();
    let mut tools = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| serde_json::json!({ "cursor": c }));
        let message = jsonrpc::request_bytes(&id, "tools/list", params.as_ref());
        let answer = ups.send(server, &message).await?;
        let result = reply::read_result(answer, &id, &server.id, ups.client.max_bytes).await?;
        let page: Page = serde_json::from_value(result).map_err(|e| GatewayError::Upstream {
            server: server.id.clone(),
            message: format!("tools/list result does not parse: {e}"),
        })?;
        for def in page.tools {
            let destructive = def
                .annotations
                .and_then(|a| a.destructive_hint)
                .unwrap_or(false);
            let info = ToolInfo {
                name: def.name.clone(),
                destructive,
                input_schema: def.input_schema,
                compiled: OnceCell::new(),
            };
            tools.insert(def.name, Rc::new(info));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(tools)
}
