//! The catalog: each server's tool definitions as the gateway last listed
//! them (the `inputSchema` and the `destructiveHint` annotation), and its
//! prompts' names, kept per isolate for `TOOL_CATALOG_TTL_SECS`. Argument
//! validation and approval read the tools; `/mcp` naming reads both
//! ([`super::naming`]).
//!
//! - Only the first call to a server waits for its listing: a stale entry
//!   still answers, and the server is listed again after the response
//!   (stale-while-revalidate), so steady-state calls make exactly one
//!   upstream request. A called tool missing from the entry is looked up
//!   again at once (the server may have added it), at most every two seconds.
//! - Schemas are compiled when a tool is first called, not when listed: a
//!   server with hundreds of tools costs one compile per tool actually used.
//! - A `*/list_changed` a listen stream relays marks the server's listing
//!   stale at once ([`Catalog::forget`]).
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
use crate::protocol::method::ListKind;
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

/// What the gateway knows about one tool (or prompt: its name only).
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

/// One server's listing of one kind.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    listed_ms: u64,
    // The field keeps its name for listings already in a shared cache.
    #[serde(rename = "tools")]
    items: HashMap<String, Rc<ToolInfo>>,
}

impl Entry {
    /// The names listed.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }
}

type Entries = Rc<RefCell<HashMap<String, Rc<Entry>>>>;

/// Listings by [`key`]; clones share them.
#[derive(Clone)]
pub(crate) struct Catalog {
    ttl_ms: u64,
    servers: Entries,
    /// Listings being made again in the background (one refresh at a time).
    refreshing: Rc<RefCell<HashSet<String>>>,
}

/// Where one server's listing of `kind` is kept, here and in the shared
/// cache (server ids hold no `/`, so no two keys meet).
fn key(kind: ListKind, server: &str) -> String {
    match kind {
        ListKind::Tools => format!("catalog/{server}"),
        _ => format!("catalog/{}/{server}", kind.field()),
    }
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
        self.find(ups, server, ListKind::Tools, tool, false).await
    }

    /// `name` among `server`'s listing of `kind`, listing the server if
    /// needed; `None` when the server does not list it. With `recheck`, a
    /// name found in a listing older than two seconds is confirmed by
    /// listing again (the server may have dropped it).
    pub(crate) async fn find<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        name: &str,
        recheck: bool,
    ) -> Result<Option<Rc<ToolInfo>>, GatewayError> {
        let now = ups.platform.clock().now_ms();
        if let Some(entry) = self.cached(ups.platform, server, kind).await {
            let age = now.saturating_sub(entry.listed_ms);
            let young = age < MISSING_REFRESH_MS.min(self.ttl_ms);
            match entry.items.get(name) {
                Some(info) if young || !recheck => {
                    if age >= self.ttl_ms {
                        self.refresh_later(ups, server, kind);
                    }
                    return Ok(Some(info.clone()));
                }
                None if young => return Ok(None),
                _ => {}
            }
        }
        let entry = self.list_now(ups, server, kind, now).await?;
        Ok(entry.items.get(name).cloned())
    }

    /// `server`'s whole listing of `kind`: a stale one answers and is made
    /// again after the response; `None` when there is none and `list` is
    /// false (the server is known to be failing).
    pub(crate) async fn listing<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        list: bool,
    ) -> Result<Option<Rc<Entry>>, GatewayError> {
        let now = ups.platform.clock().now_ms();
        if let Some(entry) = self.cached(ups.platform, server, kind).await {
            if now.saturating_sub(entry.listed_ms) >= self.ttl_ms {
                self.refresh_later(ups, server, kind);
            }
            return Ok(Some(entry));
        }
        if !list {
            return Ok(None);
        }
        self.list_now(ups, server, kind, now).await.map(Some)
    }

    /// Marks `server`'s listing for `method` (`tools/list`, `prompts/list`)
    /// stale, as a `*/list_changed` from it says: the next use lists again
    /// (after the response where a stale listing may still answer).
    pub(crate) fn forget(&self, server: &str, method: &str) {
        let kind = match method {
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            _ => return,
        };
        let key = key(kind, server);
        let mut servers = self.servers.borrow_mut();
        if let Some(entry) = servers.get(&key) {
            let stale = Entry {
                listed_ms: 0,
                items: entry.items.clone(),
            };
            servers.insert(key, Rc::new(stale));
        }
    }

    /// The listing this instance or another one (shared cache) keeps.
    async fn cached<P: Platform>(
        &self,
        p: &P,
        server: &Server,
        kind: ListKind,
    ) -> Option<Rc<Entry>> {
        let here = self.servers.borrow().get(&key(kind, &server.id)).cloned();
        match here {
            Some(entry) => Some(entry),
            None => self.shared(p, server, kind).await,
        }
    }

    /// Lists `server` now and keeps the listing.
    async fn list_now<P: Platform>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        now: u64,
    ) -> Result<Rc<Entry>, GatewayError> {
        let entry = Entry {
            listed_ms: now,
            items: list(ups, server, kind).await?,
        };
        Ok(keep(&self.servers, ups.platform, &key(kind, &server.id), entry).await)
    }

    /// The listing another instance left in the shared cache, if any.
    async fn shared<P: Platform>(
        &self,
        p: &P,
        server: &Server,
        kind: ListKind,
    ) -> Option<Rc<Entry>> {
        let key = key(kind, &server.id);
        let text = p.shared_get(&key).await?;
        let entry: Entry = serde_json::from_str(&text)
            .map_err(|e| tracing::warn!(server = %server.id, "cached tool catalog ignored: {e}"))
            .ok()?;
        let entry = Rc::new(entry);
        self.servers.borrow_mut().insert(key, entry.clone());
        Some(entry)
    }

    /// Lists `server` again after the response; the stale entry serves
    /// until then, and stays if the listing fails.
    fn refresh_later<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
    ) {
        let key = key(kind, &server.id);
        if !self.refreshing.borrow_mut().insert(key.clone()) {
            return;
        }
        let (servers, refreshing) = (self.servers.clone(), self.refreshing.clone());
        let (detached, server) = (ups.detach(), server.clone());
        ups.platform.defer(Box::pin(async move {
            let ups = detached.upstreams();
            let now = ups.platform.clock().now_ms();
            match list(&ups, &server, kind).await {
                Ok(items) => {
                    let entry = Entry {
                        listed_ms: now,
                        items,
                    };
                    keep(&servers, ups.platform, &key, entry).await;
                }
                Err(e) => tracing::warn!(server = %server.id, "{} catalog refresh failed: {e}", kind.field()),
            }
            refreshing.borrow_mut().remove(&key);
        }));
    }
}

/// Stores a fresh listing in this instance and in the shared cache.
async fn keep<P: Platform>(servers: &Entries, p: &P, key: &str, entry: Entry) -> Rc<Entry> {
    let text = serde_json::to_string(&entry).expect("catalog serializes");
    let entry = Rc::new(entry);
    servers.borrow_mut().insert(key.to_string(), entry.clone());
    p.shared_put(key, &text).await;
    entry
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    tools: Vec<ToolDef>,
    #[serde(default)]
    prompts: Vec<ToolDef>,
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

/// Every page of the server's `tools/list` or `prompts/list`.
async fn list<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    kind: ListKind,
) -> Result<HashMap<String, Rc<ToolInfo>>, GatewayError> {
    let id = ups.own_request_id();
    let mut tools = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| serde_json::json!({ "cursor": c }));
        let message = jsonrpc::request_bytes(&id, kind.method(), params.as_ref());
        let answer = ups.send(server, &message).await?;
        let result = reply::read_result(answer, &id, &server.id, ups.client.max_bytes).await?;
        let page: Page = serde_json::from_value(result).map_err(|e| GatewayError::Upstream {
            server: server.id.clone(),
            message: format!("{} result does not parse: {e}", kind.method()),
        })?;
        let defs = match kind {
            ListKind::Prompts => page.prompts,
            _ => page.tools,
        };
        for def in defs {
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
