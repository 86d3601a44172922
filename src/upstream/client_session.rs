//! What the gateway knows about the client session it acts for upstream:
//! the client's revision and `initialize` params, its region, the upstream
//! sessions it has opened so far, and, for a modern client, its envelope
//! and `Mcp-Param-*` headers.

use super::credentials::Caller;
use super::modern;
use crate::body::Body;
use crate::ports::UpstreamSession;
use crate::protocol::trace_context::Traced;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Told `(server, method)` of a list change: what the gateway keeps of that
/// server's lists is stale.
pub(crate) type Stale = Rc<dyn Fn(&str, &str)>;

/// What the gateway knows about the client session it is acting for.
pub(crate) struct ClientSession {
    /// The client session id, when there is one to record upstream sessions in.
    pub session_id: Option<String>,
    /// The revision the client speaks; offered to upstreams first.
    pub protocol_version: String,
    /// The client's `initialize` params to replay upstream (per-server endpoint),
    /// or `None` to initialize as the gateway itself.
    pub client_params: Option<Value>,
    /// The caller's region, for endpoint preference.
    pub region: Option<String>,
    /// Upstream sessions known at the start of the request, updated as we go.
    pub upstreams: RefCell<BTreeMap<String, UpstreamSession>>,
    /// Largest upstream answer to buffer.
    pub max_bytes: usize,
    /// Who the gateway acts for (credentials minted for upstreams name them).
    pub caller: Caller,
    /// A modern client's own envelope (`_meta` revision, capabilities,
    /// client info, log level), for requests the gateway makes for it.
    pub modern_meta: Option<Map<String, Value>>,
    /// A modern client's `Mcp-Param-*` headers, forwarded with its call.
    pub param_headers: Vec<(HeaderName, HeaderValue)>,
    /// Set while `/mcp`'s GET stream meets servers: a server met then is
    /// listened to (its GET stream opened) before it is told
    /// `notifications/initialized`, so what it sends right after (a tool
    /// list grown for the client's capabilities, a `roots/list`) is heard.
    /// The streams opened so, with the upstream session each is on.
    pub listening: RefCell<Option<BTreeMap<String, (UpstreamSession, Body)>>>,
    /// The log level the client set on `/mcp` (`logging/setLevel`).
    pub log_level: RefCell<Option<String>>,
    /// A modern client's call that continues questions its legacy upstream
    /// asked mid-call: resumed, not sent again ([`super::resume`]).
    pub resuming: RefCell<Option<super::resume::Resume>>,
    /// Told `(server, method)` of a list change an upstream announces on a
    /// call's stream: the gateway's cached lists and catalog for it are
    /// stale.
    pub stale: Option<Stale>,
    /// The trace the client's request went into: the gateway's requests
    /// upstream carry it (`traceparent` header and `params._meta`).
    pub traced: Option<Traced>,
}

impl ClientSession {
    /// The rank of the log level the client set, if it set one.
    pub(crate) fn min_log(&self) -> Option<usize> {
        self.log_level
            .borrow()
            .as_deref()
            .and_then(crate::protocol::modern::log_rank)
    }

    /// Whether servers met now are listened to before they are told
    /// `notifications/initialized`.
    pub(crate) fn listens_first(&self) -> bool {
        self.listening.borrow().is_some()
    }

    /// The stream opened for `server` while it was met, if it is on the
    /// upstream session now held with it (one that lost to another
    /// request's session is dropped).
    pub(crate) fn take_stream(&self, server: &str) -> Option<Body> {
        let (session, body) = self.listening.borrow_mut().as_mut()?.remove(server)?;
        (self.upstreams.borrow().get(server) == Some(&session)).then_some(body)
    }

    /// A copy, with the upstream sessions known so far.
    pub(crate) fn snapshot(&self) -> ClientSession {
        ClientSession {
            session_id: self.session_id.clone(),
            protocol_version: self.protocol_version.clone(),
            client_params: self.client_params.clone(),
            region: self.region.clone(),
            upstreams: RefCell::new(self.upstreams.borrow().clone()),
            max_bytes: self.max_bytes,
            caller: self.caller.clone(),
            modern_meta: self.modern_meta.clone(),
            param_headers: self.param_headers.clone(),
            listening: RefCell::new(None),
            log_level: self.log_level.clone(),
            resuming: self.resuming.clone(),
            stale: self.stale.clone(),
            traced: self.traced.clone(),
        }
    }

    /// The envelope a modern upstream gets with the requests made for this
    /// client: a modern client's own; for a legacy client no capabilities,
    /// and its info from its `initialize` (the gateway's on `/mcp`).
    pub(crate) fn envelope(&self) -> Map<String, Value> {
        if let Some(meta) = &self.modern_meta {
            return meta.clone();
        }
        // A legacy client cannot answer an `input_required`: its envelope
        // declares no capabilities, so a modern upstream does not ask it.
        let info = self
            .client_params
            .as_ref()
            .and_then(|p| p.get("clientInfo"))
            .cloned();
        modern::envelope(json!({}), info)
    }
}
