//! One round of a multi round-trip request (`basic/patterns/mrtr.mdx` of
//! 2026-07-28 in `modelcontextprotocol/modelcontextprotocol`), as far as an
//! upstream's own question goes.
//!
//! When an upstream answers `input_required` with a `requestState`, the
//! client gets that state sealed ([`crate::identity::sealed`]) for itself,
//! this endpoint, this method and these params, naming the server that
//! asked. On the retry the sealed state is opened and the upstream gets its
//! own state back, only on the server that issued it; a sealed state that
//! does not open (another caller's, another call's, expired, altered) is
//! refused before anything is forwarded. A state that is not sealed is the
//! gateway's own approval question ([`super::question`]) or refused there.

use crate::config::Server;
use crate::error::GatewayError;
use crate::gateway::hold::Carried;
use crate::gateway::Ctx;
use crate::identity::sealed::{self, Binding, Held, StateKey};
use crate::ports::{Clock, Platform};
use crate::protocol::jsonrpc::Request;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Seals an upstream's `requestState` (see [`crate::identity::sealed`]).
pub(super) struct Sealer {
    pub(super) key: Rc<StateKey>,
    pub(super) binding: Binding,
    /// The server that answers (on `/mcp` a `resources/read` says it in
    /// the response's [`AnsweredBy`](super::shape::AnsweredBy)).
    pub(super) server: Option<String>,
    pub(super) now_ms: u64,
    /// The grant of an approval the call's next round carries.
    pub(super) grant: Option<String>,
}

impl Sealer {
    /// A sealer for the tests: a fixed key, alice's `tools/call` on
    /// `/mcp` with no params, answered by `server`.
    #[cfg(test)]
    pub(super) fn for_tests(server: Option<&str>) -> Sealer {
        Sealer {
            key: Rc::new(StateKey::derive(b"k")),
            binding: Binding {
                who: "alice".into(),
                endpoint: "/mcp".into(),
                method: "tools/call".into(),
                params: sealed::params_digest(None).expect("no params"),
            },
            server: server.map(str::to_string),
            now_ms: 0,
            grant: None,
        }
    }
}

/// What a request that may be answered with `input_required` carries into
/// the pipeline.
#[derive(Default)]
pub(super) struct Round {
    /// The request with the upstream's own state in place of the sealed
    /// one, when it continues an upstream's question.
    pub(super) resent: Option<Request>,
    /// A `resources/read` on `/mcp` continues on the server that asked.
    pub(super) pinned: Option<Rc<Server>>,
    /// It continues an upstream's question (the sealed state opened), so it
    /// is not an answer to the gateway's own. The guard still runs in full:
    /// a state can be handed back more than once while it lasts, so only
    /// its one-use grant ([`Round::carried`]) stands for an approval.
    pub(super) continues: bool,
    /// How a new state from the upstream is sealed; `None` without a key.
    pub(super) sealer: Option<Sealer>,
    /// The grant of the call's approval in an earlier round, which the
    /// opened state carried.
    pub(super) carried: Option<Carried>,
    /// Questions a legacy upstream asked mid-call, with the server that
    /// asked: this request answers them and resumes the call
    /// ([`super::held`]).
    pub(super) held: Option<(String, Held)>,
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// Reads a request that may be answered with `input_required` (see the
    /// module docs).
    pub(super) async fn round(
        &self,
        r: &Request,
        server: Option<&Server>,
    ) -> Result<Round, GatewayError> {
        let key = self.gw.minter.state_key(self.p).await;
        let binding = Binding {
            who: self.owner(),
            endpoint: self.route.endpoint_name(),
            method: r.method.clone(),
            params: sealed::params_digest(r.params.as_deref())
                .map_err(|e| GatewayError::InvalidParams(format!("{}: params: {e}", r.method)))?,
        };
        let now = self.p.clock().now_ms();
        let answering = match server {
            Some(s) => Some(s.id.clone()),
            None => self.named_server(r),
        };
        let mut round = Round {
            sealer: key.clone().map(|key| Sealer {
                key,
                binding: binding.clone(),
                server: answering.clone(),
                now_ms: now,
                grant: None,
            }),
            ..Round::default()
        };
        let Some(state) = request_state(r) else {
            return Ok(round);
        };
        // One answer for every reason: a caller learns nothing about
        // whose state it holds.
        let invalid =
            || GatewayError::InvalidParams("requestState is not valid for this request".into());
        if !sealed::is_sealed(&state) {
            // Only a `tools/call` may answer the gateway's own question
            // (read by `question::read_retry`); any other unsealed state
            // would reach an upstream unbound.
            return match r.method.as_str() {
                "tools/call" => Ok(round),
                _ => Err(invalid()),
            };
        }
        let opened = key
            .as_ref()
            .and_then(|k| k.open(&state, &binding, now))
            .ok_or_else(invalid)?;
        match &answering {
            Some(a) if *a != opened.server => return Err(invalid()),
            Some(_) => {}
            // On `/mcp` a `resources/read` names no server, nor does a
            // bare name several servers could offer: it goes on where it
            // was asked (the state is bound to these very params).
            None if !matches!(
                r.method.as_str(),
                "resources/read" | "tools/call" | "prompts/get"
            ) =>
            {
                return Err(invalid())
            }
            None => {
                let pinned = self
                    .registry
                    .get(&opened.server)
                    .cloned()
                    .ok_or_else(invalid)?;
                if let Some(s) = &mut round.sealer {
                    s.server = Some(pinned.id.clone());
                }
                round.pinned = Some(pinned);
            }
        }
        round.carried = opened.grant.clone().map(|grant| Carried {
            grant,
            until_ms: opened.expires_ms,
        });
        // A held call is resumed, not sent again: its request goes through
        // the pipeline as the client sent it.
        round.resent = Some(match &opened.held {
            Some(_) => r.clone(),
            None => with_state(r, &opened.state)?,
        });
        round.held = opened.held.map(|h| (opened.server, h));
        round.continues = true;
        Ok(round)
    }

    /// The server a `tools/call` or `prompts/get` on `/mcp` goes to, by its
    /// name; `None` for a `resources/read` (URIs name no server), a bare
    /// name only the catalog could place, or a name no visible server has.
    fn named_server(&self, r: &Request) -> Option<String> {
        #[derive(Deserialize)]
        struct Params {
            name: Option<String>,
        }
        let name = r.params_as::<Params>().ok()?.name?;
        let (i, _) = self.naming().resolve_now(&name)?;
        Some(self.registry.servers[i].id.clone())
    }
}

/// The client's `requestState`, when it sent a string.
fn request_state(r: &Request) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        request_state: Option<serde_json::Value>,
    }
    match r.params_as::<Params>().ok()?.request_state? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// `r` with `state` as its `requestState`.
fn with_state(r: &Request, state: &str) -> Result<Request, GatewayError> {
    let mut params: BTreeMap<String, Box<RawValue>> = r.params_as()?;
    params.insert(
        "requestState".into(),
        serde_json::value::to_raw_value(state).expect("a string serializes"),
    );
    Ok(Request {
        params: Some(serde_json::value::to_raw_value(&params).expect("params serialize")),
        ..r.clone()
    })
}
