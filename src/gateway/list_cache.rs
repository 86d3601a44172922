//! An edge cache of upstream list pages, kept as long as the upstream's
//! own cache hints allow (`docs/specification/2026-07-28/server/utilities/caching.mdx`
//! in `modelcontextprotocol/modelcontextprotocol`).
//!
//! A modern upstream's list result may carry `ttlMs` (how long it stays
//! fresh) and `cacheScope`: `public` means the answer does not depend on who
//! asked, so one page serves every caller; `private` (or no scope) keeps it
//! for the caller it was fetched for. A page without `ttlMs`, or with 0, is
//! not kept; a legacy upstream sends no hints, so its pages never are.
//!
//! What is kept is the upstream's page, before the gateway filters it for
//! the caller (the policy is applied to every answer, cached or not), so a
//! public page never shows a caller what its policy hides. The cache lives
//! in the isolate (nothing outlives a request on Spin), holds pages of at
//! most [`MAX_PAGE_BYTES`], at most [`MAX_TOTAL_BYTES`] in all (keys
//! counted) and [`MAX_PAGES`] pages, and keeps a page at most
//! [`MAX_TTL_MS`] whatever the upstream says.
//!
//! The keys say everything the answer may depend on: the server as
//! registered (its endpoints and credentials, so a changed entry is asked
//! anew), the method and cursor, and for a private page the caller's
//! authorization context (subject, teams, roles, the client capabilities
//! sent upstream), as the caller arrives, digested.

use crate::config::Server;
use crate::identity::sha256_hex;
use crate::protocol::modern::CLIENT_CAPABILITIES_KEY;
use crate::upstream::ClientSession;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// The longest a page is kept, whatever its `ttlMs`.
pub(crate) const MAX_TTL_MS: u64 = 10 * 60 * 1000;
/// A larger page is not kept.
pub(crate) const MAX_PAGE_BYTES: usize = 256 * 1024;
/// All pages together; past it the expired go, then all.
pub(crate) const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;
/// The most pages kept.
pub(crate) const MAX_PAGES: usize = 1000;
/// A page asked for with a longer cursor is not kept (cursors are the
/// client's to send).
pub(crate) const MAX_CURSOR_BYTES: usize = 1024;

/// Which page: the server, the list method, the cursor, and the caller for
/// a private page (`None` for a public one).
type Key = (String, &'static str, Option<String>, Option<String>);

/// The cache; see the module docs.
#[derive(Default)]
pub(crate) struct ListCache {
    pages: RefCell<HashMap<Key, (String, u64)>>,
    bytes: RefCell<usize>,
}

/// The hints of a list result.
#[derive(Deserialize)]
struct Hints {
    #[serde(rename = "ttlMs")]
    ttl_ms: Option<u64>,
    #[serde(rename = "cacheScope")]
    scope: Option<String>,
}

/// Whether a page may carry a `ttlMs` at all (a legacy upstream's never
/// does): a cheap look before any key is made.
pub(crate) fn hinted(page: &RawValue) -> bool {
    page.get().contains("\"ttlMs\"")
}

/// What a page costs: its text, its key and a little bookkeeping.
fn size(k: &Key, text: &str) -> usize {
    k.0.len() + k.2.as_ref().map_or(0, String::len) + 64 + text.len()
}

/// The server's and the caller's parts of a page's key (see the module
/// docs): digests, so a key is small whatever they hold.
pub(crate) fn keys(server: &Server, client: &ClientSession) -> (String, String) {
    let server = format!(
        "{}|{}",
        server.id,
        sha256_hex(format!("{:?}|{:?}", server.endpoints, server.credentials).as_bytes())
    );
    let p = &client.caller.principal;
    let (mut teams, mut roles) = (p.teams.clone(), p.roles.clone());
    teams.sort();
    roles.sort();
    let capabilities = client
        .modern_meta
        .as_ref()
        .and_then(|m| m.get(CLIENT_CAPABILITIES_KEY))
        .map(Value::to_string)
        .unwrap_or_default();
    let context = format!("{}|{teams:?}|{roles:?}|{capabilities}", p.key());
    (server, sha256_hex(context.as_bytes()))
}

impl ListCache {
    /// A page `caller` may be served: theirs, or a public one.
    pub(crate) fn get(
        &self,
        server: &str,
        method: &'static str,
        cursor: Option<&str>,
        caller: &str,
        now_ms: u64,
    ) -> Option<Box<RawValue>> {
        let pages = self.pages.borrow();
        let cursor = cursor.map(str::to_string);
        let key = |who: Option<String>| (server.to_string(), method, cursor.clone(), who);
        [key(Some(caller.to_string())), key(None)]
            .iter()
            .find_map(|k| pages.get(k).filter(|(_, until)| now_ms < *until))
            .and_then(|(text, _)| RawValue::from_string(text.clone()).ok())
    }

    /// Keeps `page` as its hints allow.
    #[cfg(test)]
    pub(crate) fn keep(
        &self,
        server: &str,
        method: &'static str,
        cursor: Option<&str>,
        caller: &str,
        page: &RawValue,
        now_ms: u64,
    ) {
        self.keep_as(server, method, cursor, (caller, false), page, now_ms)
    }

    /// Keeps `page` as its hints allow; `per_caller`: never as a public
    /// page, whatever its `cacheScope` says (a server reached with each
    /// user's own token answers each user their own list).
    pub(crate) fn keep_as(
        &self,
        server: &str,
        method: &'static str,
        cursor: Option<&str>,
        (caller, per_caller): (&str, bool),
        page: &RawValue,
        now_ms: u64,
    ) {
        let text = page.get();
        if text.len() > MAX_PAGE_BYTES || cursor.is_some_and(|c| c.len() > MAX_CURSOR_BYTES) {
            return;
        }
        let Ok(hints) = serde_json::from_str::<Hints>(text) else {
            return;
        };
        let ttl = hints.ttl_ms.unwrap_or(0).min(MAX_TTL_MS);
        if ttl == 0 {
            return;
        }
        let who = match hints.scope.as_deref() {
            Some("public") if !per_caller => None,
            _ => Some(caller.to_string()),
        };
        let key = (server.to_string(), method, cursor.map(str::to_string), who);
        let mut pages = self.pages.borrow_mut();
        let mut bytes = self.bytes.borrow_mut();
        let entry = size(&key, text);
        if *bytes + entry > MAX_TOTAL_BYTES || pages.len() >= MAX_PAGES {
            pages.retain(|_, (_, until)| now_ms < *until);
            let kept: usize = pages.iter().map(|(k, (t, _))| size(k, t)).sum();
            if kept + entry > MAX_TOTAL_BYTES || pages.len() >= MAX_PAGES {
                pages.clear();
            }
            *bytes = pages.iter().map(|(k, (t, _))| size(k, t)).sum();
        }
        if let Some((old, _)) = pages.insert(key.clone(), (text.to_string(), now_ms + ttl)) {
            *bytes -= size(&key, &old);
        }
        *bytes += entry;
    }

    /// Forgets `server`'s pages of `method`: a `*/list_changed` said they
    /// are stale (`caching.mdx`: a relevant notification invalidates a
    /// cached response at once).
    pub(crate) fn forget(&self, server: &str, method: &str) {
        let prefix = format!("{server}|");
        let mut pages = self.pages.borrow_mut();
        pages.retain(|k, _| !(k.0.starts_with(&prefix) && k.1 == method));
        *self.bytes.borrow_mut() = pages.iter().map(|(k, (t, _))| size(k, t)).sum();
    }

    /// Whether no page is kept.
    pub(crate) fn is_empty(&self) -> bool {
        self.pages.borrow().is_empty()
    }

    /// Forgets every page (the registry or the policy was reloaded).
    pub(crate) fn clear(&self) {
        self.pages.borrow_mut().clear();
        *self.bytes.borrow_mut() = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn a_page_is_kept_only_as_its_hints_allow() {
        let c = ListCache::default();
        let m = "tools/list";
        c.keep(
            "s",
            m,
            None,
            "alice",
            &page(r#"{"tools":[],"ttlMs":1000,"cacheScope":"public"}"#),
            0,
        );
        assert!(c.get("s", m, None, "bob", 999).is_some(), "public: anyone");
        assert!(c.get("s", m, None, "bob", 1000).is_none(), "stale");
        assert!(
            c.get("s", m, Some("p2"), "bob", 0).is_none(),
            "another page"
        );
        c.keep(
            "s",
            m,
            None,
            "alice",
            &page(r#"{"tools":[1],"ttlMs":1000,"cacheScope":"private"}"#),
            0,
        );
        assert!(c.get("s", "prompts/list", None, "alice", 0).is_none());
        assert_eq!(
            c.get("s", m, None, "alice", 0).unwrap().get(),
            r#"{"tools":[1],"ttlMs":1000,"cacheScope":"private"}"#
        );
        c.keep(
            "t",
            m,
            None,
            "alice",
            &page(r#"{"tools":[],"ttlMs":1000}"#),
            0,
        );
        assert!(c.get("t", m, None, "bob", 0).is_none(), "no scope: private");
        c.keep(
            "u",
            m,
            None,
            "alice",
            &page(r#"{"tools":[],"cacheScope":"public"}"#),
            0,
        );
        c.keep(
            "v",
            m,
            None,
            "alice",
            &page(r#"{"tools":[],"ttlMs":0,"cacheScope":"public"}"#),
            0,
        );
        assert!(
            c.get("u", m, None, "alice", 0).is_none(),
            "no ttl: not kept"
        );
        assert!(c.get("v", m, None, "alice", 0).is_none());
        c.keep(
            "w",
            m,
            None,
            "a",
            &page(r#"{"ttlMs":999999999,"cacheScope":"public"}"#),
            0,
        );
        assert!(c.get("w", m, None, "a", MAX_TTL_MS).is_none(), "capped");
        c.keep(
            "x|1",
            m,
            None,
            "a",
            &page(r#"{"ttlMs":1000,"cacheScope":"public"}"#),
            0,
        );
        c.keep(
            "x|1",
            "prompts/list",
            None,
            "a",
            &page(r#"{"ttlMs":1000,"cacheScope":"public"}"#),
            0,
        );
        c.forget("x", m);
        assert!(
            c.get("x|1", m, None, "a", 0).is_none(),
            "a list change forgets it"
        );
        assert!(
            c.get("x|1", "prompts/list", None, "a", 0).is_some(),
            "only that list"
        );
    }

    #[test]
    fn the_cache_stays_within_its_bytes() {
        let c = ListCache::default();
        let filler = "x".repeat(MAX_PAGE_BYTES - 64);
        let big = format!(r#"{{"ttlMs":1000,"cacheScope":"public","f":"{filler}"}}"#);
        for i in 0..100 {
            c.keep(&format!("s{i}"), "tools/list", None, "a", &page(&big), 0);
            assert!(*c.bytes.borrow() <= MAX_TOTAL_BYTES);
        }
        assert!(
            c.get("s99", "tools/list", None, "a", 0).is_some(),
            "the newest is kept"
        );
        let huge = format!(
            r#"{{"ttlMs":1000,"cacheScope":"public","f":"{}"}}"#,
            "x".repeat(MAX_PAGE_BYTES)
        );
        c.keep("h", "tools/list", None, "a", &page(&huge), 0);
        assert!(
            c.get("h", "tools/list", None, "a", 0).is_none(),
            "too large to keep"
        );
    }
}
