//! Cancellation for modern clients: closing the response stream
//! (`docs/specification/2026-07-28/basic/patterns/cancellation.mdx` and
//! `basic/transports/streamable-http.mdx`).
//!
//! A modern upstream is cancelled the same way: the gateway's request to
//! it is dropped with the client's stream. A legacy upstream met on the
//! caller's bridged session is told: when the client goes away before the
//! answer (while the gateway still waits for the upstream, or while the
//! answer streams), `notifications/cancelled` goes to each legacy session
//! the request could have used, naming the id the request went upstream
//! under (an id of the gateway's, so it names no other request), through
//! the platform's deferred work, on that session only (nothing is opened
//! or re-initialized for it).

use super::super::Ctx;
use crate::config::Server;
use crate::ports::Platform;
use crate::protocol::jsonrpc::Id;
use crate::upstream::{modern, ClientSession, Upstreams};
use futures_util::future::join_all;
use serde_json::json;
use std::rc::Rc;

/// What to do if the client's stream goes away before the answer.
pub(crate) type OnAbandon = Box<dyn FnOnce()>;

/// Runs its work when dropped, unless the answer went out first.
pub(super) struct Canceller(Option<OnAbandon>);

impl Canceller {
    pub(super) fn arm(work: OnAbandon) -> Self {
        Canceller(Some(work))
    }

    /// The answer reached the client: nothing to cancel.
    pub(super) fn disarm(&mut self) {
        self.0 = None;
    }

    /// Disarms and hands the work on.
    pub(super) fn take(mut self) -> Option<OnAbandon> {
        self.0.take()
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            work();
        }
    }
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// The work that cancels request `wire` on the legacy upstream sessions
    /// `client` holds with `targets` when it runs (sessions opened while the
    /// request was under way included).
    pub(super) fn on_abandon(
        &self,
        client: Rc<ClientSession>,
        targets: &[&Server],
        wire: Id,
    ) -> OnAbandon {
        let targets: Vec<Rc<Server>> = self
            .registry
            .servers
            .iter()
            .filter(|s| targets.iter().any(|t| t.id == s.id))
            .cloned()
            .collect();
        let p = self.p.clone();
        let minter = self.gw.minter.clone();
        let eras = self.gw.eras.clone();
        Box::new(move || {
            let servers: Vec<Rc<Server>> = {
                let known = client.upstreams.borrow();
                targets
                    .into_iter()
                    .filter(|s| known.get(&s.id).is_some_and(|u| !modern::is_modern(u)))
                    .collect()
            };
            if servers.is_empty() {
                return;
            }
            let deferred = p.clone();
            deferred.defer(Box::pin(async move {
                let notice = serde_json::to_vec(&json!({"jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": wire, "reason": "the client closed the response stream"}}))
                .expect("JSON values serialize");
                let ups = Upstreams::new(&p, &client, &minter, &eras);
                let sent = join_all(servers.iter().map(|s| ups.notify_known(s, &notice))).await;
                for (server, sent) in servers.iter().zip(sent) {
                    if let Err(e) = sent {
                        tracing::warn!(server = %server.id, "cancellation not delivered: {e}");
                    }
                }
            }));
        })
    }
}
