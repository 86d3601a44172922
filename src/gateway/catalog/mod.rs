//! The catalog: each server's tool definitions as the gateway last listed
//! them (the `inputSchema` and the `destructiveHint` annotation), and its
//! prompts' names, kept per isolate for `TOOL_CATALOG_TTL_SECS`. Argument
//! validation and approval read the tools; `/mcp` naming reads both
//! ([`super::naming`]).
//!
//! - Only the first call to a server waits for its listing: a stale entry
//!   still answers, and the server is listed again after the response
//!   (stale-while-revalidate), so steady-state calls make exactly one
//!   upstream request. A name missing from the entry is looked up again at
//!   once (the server may have added it), at most every two seconds.
//! - One listing of a server at a time per isolate: lookups that need it
//!   meanwhile wait for it. For routing names, a failed listing answers for
//!   two seconds (a call's own checks try again at once: a fixed secret
//!   works on the next call).
//! - Schemas are compiled when a tool is first called, not when listed: a
//!   server with hundreds of tools costs one compile per tool actually used.
//! - A `*/list_changed` a listen stream relays marks the server's listings
//!   stale at once ([`Catalog::forget`]).
//! - Where instances live for one request (Spin), a shared listing is also
//!   kept in the platform's shared cache, so a fresh instance reads it
//!   instead of listing the server again.
//!
//! For argument validation and approval the catalog is per server, not per
//! caller: servers are expected to describe a tool the same way to everyone
//! who may call it. Routing a name is stricter ([`Look::own`]): a server
//! that can tell callers apart is read in the caller's own listing.

mod listing;

pub(crate) use listing::{Entry, Found, ToolInfo};

use crate::config::credentials::Credentials;
use crate::config::Server;
use crate::error::GatewayError;
use crate::ports::{Clock, Platform};
use crate::protocol::method::ListKind;
use crate::upstream::Upstreams;
use futures_util::lock::Mutex;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A missing name triggers a fresh listing only if the last one is older;
/// a failed listing answers for as long.
const MISSING_REFRESH_MS: u64 = 2_000;
/// How often a request waiting for another's listing looks again.
const TURN_POLL_MS: u64 = 5;
/// Listings kept per isolate (the oldest goes first).
const MAX_ENTRIES: usize = 1024;

/// How a lookup reads the catalog.
#[derive(Clone, Copy, Default)]
pub(crate) struct Look {
    /// A name found in a listing older than two seconds is confirmed by
    /// listing again (the server may have dropped it).
    pub recheck: bool,
    /// Where the server can tell callers apart (its requests carry a token
    /// naming the caller, `credentials: jwt`), the caller's own listing,
    /// kept in this isolate only; never another caller's.
    pub own: bool,
}

type Shared<T> = Rc<RefCell<HashMap<String, T>>>;

/// Listings by [`key`]; clones share them.
#[derive(Clone)]
pub(crate) struct Catalog {
    ttl_ms: u64,
    servers: Shared<Rc<Entry>>,
    /// Listings being made again in the background (one refresh at a time).
    refreshing: Rc<RefCell<HashSet<String>>>,
    /// Listings that failed, when, and why.
    failed: Shared<(u64, GatewayError)>,
    /// One listing of a key at a time.
    locks: Shared<Rc<Mutex<()>>>,
}

/// Where one server's listing of `kind` is kept (server ids hold no `/` or
/// `@`, so no two keys meet), here and, for a shared view, in the shared
/// cache.
fn key(kind: ListKind, server: &str, view: Option<&str>) -> String {
    let base = match kind {
        ListKind::Tools => format!("catalog/{server}"),
        _ => format!("catalog/{}/{server}", kind.field()),
    };
    match view {
        Some(caller) => format!("{base}@{caller}"),
        None => base,
    }
}

impl Catalog {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        Catalog {
            ttl_ms,
            servers: Rc::default(),
            refreshing: Rc::default(),
            failed: Rc::default(),
            locks: Rc::default(),
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
        Ok(
            match self
                .find(ups, server, ListKind::Tools, tool, Look::default())
                .await?
            {
                Found::Yes(info) => Some(info),
                Found::No | Found::Unsure => None,
            },
        )
    }

    /// `name` among `server`'s listing of `kind`, listing the server if
    /// needed.
    pub(crate) async fn find<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        name: &str,
        look: Look,
    ) -> Result<Found, GatewayError> {
        let view = view(ups, server, look.own);
        let now = ups.platform.clock().now_ms();
        if let Some(entry) = self
            .cached(ups.platform, server, kind, view.as_deref())
            .await
        {
            let age = now.saturating_sub(entry.listed_ms);
            let young = age < MISSING_REFRESH_MS.min(self.ttl_ms);
            match entry.found(name) {
                Found::Yes(info) if young || !look.recheck => {
                    if age >= self.ttl_ms {
                        self.refresh_later(ups, server, kind, view);
                    }
                    return Ok(Found::Yes(info));
                }
                absent @ (Found::No | Found::Unsure) if young => return Ok(absent),
                _ => {}
            }
        }
        let entry = self
            .list_now(ups, server, kind, (view.as_deref(), look.own), now)
            .await?;
        Ok(entry.found(name))
    }

    /// `server`'s whole listing of `kind` (the caller's own where `own`): a
    /// stale one answers and is made again after the response; `None` when
    /// there is none and `list` is false (the server is known to be failing).
    pub(crate) async fn listing<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        (list, own): (bool, bool),
    ) -> Result<Option<Rc<Entry>>, GatewayError> {
        let view = view(ups, server, own);
        let now = ups.platform.clock().now_ms();
        if let Some(entry) = self
            .cached(ups.platform, server, kind, view.as_deref())
            .await
        {
            if now.saturating_sub(entry.listed_ms) >= self.ttl_ms {
                self.refresh_later(ups, server, kind, view);
            }
            return Ok(Some(entry));
        }
        if !list {
            return Ok(None);
        }
        let entry = self
            .list_now(ups, server, kind, (view.as_deref(), own), now)
            .await?;
        Ok(Some(entry))
    }

    /// Marks every listing of `server` for `method` (`tools/list`,
    /// `prompts/list`) stale, as a `*/list_changed` from it says: the next
    /// use lists again (after the response where a stale listing may still
    /// answer).
    pub(crate) fn forget(&self, server: &str, method: &str) {
        let kind = match method {
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            _ => return,
        };
        let base = key(kind, server, None);
        let mut servers = self.servers.borrow_mut();
        for (k, entry) in servers.iter_mut() {
            if *k == base || k.strip_prefix(&base).is_some_and(|r| r.starts_with('@')) {
                *entry = Rc::new(Entry {
                    listed_ms: 0,
                    items: entry.items.clone(),
                    complete: entry.complete,
                });
            }
        }
    }

    /// The listing this instance keeps, or for a shared view another one
    /// left in the shared cache.
    async fn cached<P: Platform>(
        &self,
        p: &P,
        server: &Server,
        kind: ListKind,
        view: Option<&str>,
    ) -> Option<Rc<Entry>> {
        let key = key(kind, &server.id, view);
        if let Some(entry) = self.servers.borrow().get(&key).cloned() {
            return Some(entry);
        }
        if view.is_some() {
            return None;
        }
        let text = p.shared_get(&key).await?;
        let entry: Entry = serde_json::from_str(&text)
            .map_err(|e| tracing::warn!(server = %server.id, "cached catalog ignored: {e}"))
            .ok()?;
        let entry = Rc::new(entry);
        self.servers.borrow_mut().insert(key, entry.clone());
        Some(entry)
    }

    /// Lists `server` now and keeps the listing; a listing made while this
    /// waited for its turn answers instead, and where `failures` count, a
    /// recent failure.
    async fn list_now<P: Platform>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        (view, failures): (Option<&str>, bool),
        asked_ms: u64,
    ) -> Result<Rc<Entry>, GatewayError> {
        let key = key(kind, &server.id, view);
        let lock = self
            .locks
            .borrow_mut()
            .entry(key.clone())
            .or_default()
            .clone();
        let answer = {
            // Waits by looking again on its own timer, never by being woken
            // from the listing request: on Workers a request whose only
            // pending work belongs to another request is cancelled as hung
            // ("your Worker's code had hung"; 64 concurrent first calls in
            // the e2e hammer met it), and a future woken from another
            // request's context would do its I/O in that context.
            let _turn = loop {
                if let Some(turn) = lock.try_lock() {
                    break turn;
                }
                ups.platform.clock().sleep(TURN_POLL_MS).await;
            };
            let turn = (key.as_str(), failures);
            self.list_in_turn(ups, server, kind, turn, asked_ms).await
        };
        if Rc::strong_count(&lock) == 2 {
            self.locks.borrow_mut().remove(&key);
        }
        answer
    }

    async fn list_in_turn<P: Platform>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        (key, failures): (&str, bool),
        asked_ms: u64,
    ) -> Result<Rc<Entry>, GatewayError> {
        let made = self.servers.borrow().get(key).cloned();
        if let Some(entry) = made.filter(|e| e.listed_ms >= asked_ms) {
            return Ok(entry);
        }
        let now = ups.platform.clock().now_ms();
        if let Some((at, e)) = self.failed.borrow().get(key).filter(|_| failures) {
            if now.saturating_sub(*at) < MISSING_REFRESH_MS {
                return Err(e.clone());
            }
        }
        match listing::list(ups, server, kind).await {
            Ok((items, complete)) => {
                self.failed.borrow_mut().remove(key);
                let entry = Entry {
                    listed_ms: now,
                    items,
                    complete,
                };
                Ok(keep(&self.servers, ups.platform, key, entry).await)
            }
            Err(e) => {
                let mut failed = self.failed.borrow_mut();
                if failed.len() >= MAX_ENTRIES {
                    failed.clear();
                }
                failed.insert(key.to_string(), (now, e.clone()));
                Err(e)
            }
        }
    }

    /// Lists `server` again after the response; the stale entry serves
    /// until then, and stays if the listing fails.
    fn refresh_later<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        server: &Server,
        kind: ListKind,
        view: Option<String>,
    ) {
        let key = key(kind, &server.id, view.as_deref());
        if !self.refreshing.borrow_mut().insert(key.clone()) {
            return;
        }
        let (servers, refreshing) = (self.servers.clone(), self.refreshing.clone());
        let (detached, server) = (ups.detach(), server.clone());
        ups.platform.defer(Box::pin(async move {
            let ups = detached.upstreams();
            let now = ups.platform.clock().now_ms();
            match listing::list(&ups, &server, kind).await {
                Ok((items, complete)) => {
                    let entry = Entry {
                        listed_ms: now,
                        items,
                        complete,
                    };
                    keep(&servers, ups.platform, &key, entry).await;
                }
                Err(e) => tracing::warn!(server = %server.id, "{} catalog refresh failed: {e}", kind.field()),
            }
            refreshing.borrow_mut().remove(&key);
        }));
    }
}

/// The caller whose own listing a lookup reads, where it must and can. A
/// server reached with each user's own OAuth token answers each user their
/// own tools (and schemas): always read in the caller's own listing, for
/// validation and approval as for routing, never another user's.
fn view<P: Platform>(ups: &Upstreams<'_, P>, server: &Server, own: bool) -> Option<String> {
    let key = || ups.client.caller.principal.key();
    match server.credentials {
        Credentials::OAuth(_) => Some(key()),
        // Minted tokens name the caller.
        Credentials::Jwt { .. } if own => Some(key()),
        _ => None,
    }
}

/// Stores a fresh listing in this instance (the oldest goes when full) and,
/// for a shared view, in the shared cache.
async fn keep<P: Platform>(
    servers: &Shared<Rc<Entry>>,
    p: &P,
    key: &str,
    entry: Entry,
) -> Rc<Entry> {
    let entry = Rc::new(entry);
    {
        let mut servers = servers.borrow_mut();
        if servers.len() >= MAX_ENTRIES && !servers.contains_key(key) {
            let oldest = servers
                .iter()
                .min_by_key(|(_, e)| e.listed_ms)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                servers.remove(&oldest);
            }
        }
        servers.insert(key.to_string(), entry.clone());
    }
    if !key.contains('@') {
        let text = serde_json::to_string(&*entry).expect("catalog serializes");
        p.shared_put(key, &text).await;
    }
    entry
}
