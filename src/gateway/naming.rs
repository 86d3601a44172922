//! How `/mcp` names the tools and prompts of the servers a caller sees
//! (`NAMES_ON_MCP`).
//!
//! - `prefixed` (the default): every name is `{server}__{name}`
//!   ([`crate::protocol::names`]).
//! - `on_collision`: a name is the server's own unless another server the
//!   caller sees offers the same name (of the same kind; for tools, one the
//!   caller may call), or unless it would read as the prefixed name of a
//!   server the caller sees; those are prefixed.
//!
//! Routing always accepts the prefixed form of every name, and takes it
//! first: a name that reads as `{server}__{name}` for a server the caller
//! sees goes there (which is why such a name is never shown bare). A bare
//! name goes to the one server the caller sees that offers it. Which server
//! offers what comes from the catalog ([`super::catalog`]) and, when listing,
//! from the pages being merged, so a list agrees with itself while the
//! catalog is stale; a bare name found on no server or on several is looked
//! up again before it is refused, and one that several servers offer is
//! refused with the names to use instead, never sent to either.
//!
//! Routing fails closed: a bare name goes to a server only when every
//! server the caller sees was asked and only that one offers it (a server
//! that could not be listed, or whose listing was cut at the page limit,
//! may offer it too), and each server is read in the caller's own listing
//! where it can tell callers apart (`credentials: jwt`), so one caller's
//! view never places another caller's call.

use super::catalog::{Catalog, Found, Look};
use crate::config::{self, Registry, Server};
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::ports::Platform;
use crate::protocol::method::ListKind;
use crate::protocol::names;
use crate::protocol::raw_object::ListPage;
use crate::upstream::Upstreams;
use futures_util::future::join_all;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};

/// What naming on `/mcp` reads: the setting and the caller's view.
pub(crate) struct Naming<'a> {
    pub mode: config::Naming,
    pub registry: &'a Registry,
    pub gate: &'a Gate,
    pub catalog: &'a Catalog,
}

/// How one list answer names its items.
pub struct Shown<'a> {
    prefix_all: bool,
    servers: Vec<&'a str>,
    /// Names more than one server offers.
    colliding: HashSet<String>,
}

impl Shown<'_> {
    /// Every name prefixed.
    pub fn prefixed() -> Shown<'static> {
        Shown {
            prefix_all: true,
            servers: Vec::new(),
            colliding: HashSet::new(),
        }
    }

    /// The name `server`'s `name` is shown under, when it is not its own.
    pub(crate) fn rename(&self, server: &str, name: &str) -> Option<String> {
        let prefix = self.prefix_all
            || self.colliding.contains(name)
            || names::resolve(name, &self.servers).is_some();
        prefix.then(|| names::qualify(server, name))
    }
}

/// One server's page in a list being merged: its raw result, and whether a
/// cursor asked for it.
pub(crate) type Page<'p> = (&'p Server, bool, &'p Result<Box<RawValue>, GatewayError>);

impl<'a> Naming<'a> {
    fn ids(&self) -> Vec<&'a str> {
        self.registry
            .servers
            .iter()
            .map(|s| s.id.as_str())
            .collect()
    }

    fn own_names(&self) -> bool {
        self.mode == config::Naming::OnCollision
    }

    /// Which server a name on `/mcp` belongs to and its own name there,
    /// without asking anyone: the prefixed form, or the one server a caller
    /// of `on_collision` naming sees. `None` needs [`Naming::resolve`].
    pub(crate) fn resolve_now<'n>(&self, name: &'n str) -> Option<(usize, &'n str)> {
        if let Some(found) = names::resolve(name, self.ids()) {
            return Some(found);
        }
        (self.own_names() && self.registry.servers.len() == 1).then_some((0, name))
    }

    /// Which server a `kind` name on `/mcp` belongs to and its own name
    /// there (see the module docs).
    pub(crate) async fn resolve<'n, P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        kind: ListKind,
        name: &'n str,
    ) -> Result<(usize, &'n str), GatewayError> {
        let what = match kind {
            ListKind::Prompts => "prompt",
            _ => "tool",
        };
        if let Some(found) = self.resolve_now(name) {
            return Ok(found);
        }
        let unknown =
            |why: String| GatewayError::InvalidParams(format!("Unknown {what}: {name}{why}"));
        if !self.own_names() {
            return Err(unknown(String::new()));
        }
        let all: Vec<usize> = (0..self.registry.servers.len()).collect();
        let (mut offering, mut failed) = self.offering(ups, kind, name, &all, false).await;
        if offering.len() > 1 {
            // A listing may be stale: a server may have dropped the name.
            let again = self.offering(ups, kind, name, &offering, true).await;
            offering = again.0;
            failed.extend(again.1);
        }
        // Fail closed: a server that could not be asked may offer the name
        // too, so a bare name goes nowhere unless every server was asked.
        match offering[..] {
            [one] if failed.is_empty() => Ok((one, name)),
            [] if failed.is_empty() => Err(unknown(String::new())),
            [_] | [] => Err(unknown(format!(
                " ({} could not be asked whether they offer it; call it by its prefixed name)",
                failed.join(", ")
            ))),
            _ => {
                let each: Vec<String> = offering
                    .iter()
                    .map(|&i| names::qualify(&self.registry.servers[i].id, name))
                    .collect();
                Err(unknown(format!(
                    ": several servers offer it; call it {}",
                    each.join(" or ")
                )))
            }
        }
    }

    /// Which of `among` offer `name` (a tool only if the caller may call
    /// it), each read in the caller's own listing where the server can tell
    /// callers apart, and which could not be asked (or listed so much that
    /// the name may be past what was read).
    async fn offering<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        kind: ListKind,
        name: &str,
        among: &[usize],
        recheck: bool,
    ) -> (Vec<usize>, Vec<String>) {
        let servers = &self.registry.servers;
        let look = Look { recheck, own: true };
        let found = join_all(
            among
                .iter()
                .map(|&i| self.catalog.find(ups, &servers[i], kind, name, look)),
        )
        .await;
        let (mut offering, mut failed) = (Vec::new(), Vec::new());
        for (&i, found) in among.iter().zip(found) {
            let server = &servers[i];
            match found {
                Ok(Found::Yes(_)) if self.visible(kind, server, name) => offering.push(i),
                Ok(Found::Yes(_) | Found::No) => {}
                Ok(Found::Unsure) => failed.push(server.id.clone()),
                Err(e) => {
                    tracing::warn!(server = %server.id, "{} not listed for naming: {e}", kind.field());
                    failed.push(server.id.clone());
                }
            }
        }
        (offering, failed)
    }

    fn visible(&self, kind: ListKind, server: &Server, name: &str) -> bool {
        kind != ListKind::Tools || self.gate.tool(server, name)
    }

    /// How a `kind` list answer made of `pages` names its items: counted
    /// over every server the caller sees, a server's names taken from its
    /// page when the page is its whole list, else from the catalog (not
    /// listed again for a server whose page just failed).
    pub(crate) async fn for_list<P: Platform + Clone + 'static>(
        &self,
        ups: &Upstreams<'_, P>,
        kind: ListKind,
        pages: &[Page<'_>],
    ) -> Shown<'a> {
        if !self.own_names() || !kind.prefixes_names() {
            return Shown::prefixed();
        }
        let mut shown = Shown {
            prefix_all: false,
            servers: self.ids(),
            colliding: HashSet::new(),
        };
        if self.registry.servers.len() < 2 {
            return shown;
        }
        // Each server's names: its page in this answer, and unless that
        // page is its whole list, the catalog's listing too.
        let mut names: HashMap<&str, Vec<String>> = HashMap::new();
        let mut whole = HashSet::new();
        let mut failed = HashSet::new();
        for (server, cursor, page) in pages {
            let Ok(page) = page else {
                failed.insert(server.id.as_str());
                continue;
            };
            if let Some((found, more)) = page_names(kind, page) {
                if !cursor && !more {
                    whole.insert(server.id.as_str());
                }
                names.insert(server.id.as_str(), found);
            }
        }
        let rest = self
            .registry
            .servers
            .iter()
            .filter(|s| !whole.contains(s.id.as_str()));
        let failed = &failed;
        let listings = join_all(rest.map(|s| async move {
            let list = !failed.contains(s.id.as_str());
            (s, self.catalog.listing(ups, s, kind, (list, true)).await)
        }))
        .await;
        for (server, listing) in listings {
            match listing {
                Ok(Some(entry)) => names
                    .entry(server.id.as_str())
                    .or_default()
                    .extend(entry.names().map(str::to_string)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(server = %server.id, "{} not listed for naming: {e}", kind.field())
                }
            }
        }
        let mut count: HashMap<&str, u32> = HashMap::new();
        for server in self.registry.servers.iter() {
            let Some(listed) = names.get(server.id.as_str()) else {
                continue;
            };
            let mut seen = HashSet::new();
            for name in listed {
                if self.visible(kind, server, name) && seen.insert(name.as_str()) {
                    *count.entry(name.as_str()).or_default() += 1;
                }
            }
        }
        shown.colliding = count
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(name, _)| name.to_string())
            .collect();
        shown
    }
}

/// The names on one list result, and whether it has more pages; `None`
/// when it does not parse (the merge skips it too).
fn page_names(kind: ListKind, result: &RawValue) -> Option<(Vec<String>, bool)> {
    let page = ListPage::parse(result.get(), kind.field()).ok()?;
    let names = page.items.iter().filter_map(|i| i.get_str("name"));
    page.found
        .then(|| (names.collect(), page.next_cursor.is_some()))
}
