//! Event ids on `/mcp`'s merged GET stream: where every upstream's own
//! stream stands, so a client that reconnects with `Last-Event-ID` resumes
//! each of them where it left off (the spec's resumability,
//! `basic/transports/streamable-http.mdx`, "Resumability and Redelivery",
//! per stream; here one client stream is many upstream ones).
//!
//! An id is `mcp-edge-m1.` and the base64url of a JSON object, server id to
//! that server's last event id. It grants nothing: it only says, to
//! upstream sessions the caller's own session already holds, from where to
//! replay, which the per-server endpoint lets the caller say anyway. Sizes
//! are bounded both ways; an id that is not one of these is ignored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;

const PREFIX: &str = "mcp-edge-m1.";
/// An upstream event id longer than this is not kept (no resumption for
/// that server, rather than ids without bound).
const MAX_UPSTREAM_ID: usize = 256;
/// A `Last-Event-ID` longer than this is not read.
const MAX_ID: usize = 8 * 1024;

/// Every upstream's last event id, by server.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Positions(BTreeMap<String, String>);

impl Positions {
    /// The positions a `Last-Event-ID` names, if it is one of ours.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_ID {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.strip_prefix(PREFIX)?).ok()?;
        let map: BTreeMap<String, String> = serde_json::from_slice(&bytes).ok()?;
        map.values()
            .all(|id| id.len() <= MAX_UPSTREAM_ID && !id.contains(['\r', '\n']))
            .then_some(Positions(map))
    }

    /// The id of an event sent at these positions; `None` while no upstream
    /// has given an id.
    pub(crate) fn encode(&self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let json = serde_json::to_vec(&self.0).expect("strings serialize");
        Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json)))
    }

    pub(crate) fn get(&self, server: &str) -> Option<&str> {
        self.0.get(server).map(String::as_str)
    }

    /// Records `server`'s latest event id (one too long is forgotten, so a
    /// reconnect starts that server afresh instead of at an older place).
    pub(crate) fn set(&mut self, server: &str, id: &str) {
        if id.len() <= MAX_UPSTREAM_ID && !id.contains(['\r', '\n']) {
            self.0.insert(server.to_string(), id.to_string());
        } else {
            self.0.remove(server);
        }
    }

    /// Forgets `server`'s place (its stream starts afresh on a reconnect).
    pub(crate) fn forget(&mut self, server: &str) {
        self.0.remove(server);
    }

    /// Keeps only the servers in `keep` (the ones heard this time).
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|server, _| keep(server));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_strangers_are_ignored() {
        let mut p = Positions::default();
        assert_eq!(p.encode(), None);
        p.set("alpha", "n-3");
        p.set("beta", "stream_7");
        let id = p.encode().unwrap();
        assert!(id.starts_with(PREFIX) && !id.contains(['\n', ' ']), "{id}");
        assert_eq!(Positions::decode(&id), Some(p.clone()));
        for other in [
            "n-3",
            "mcp-edge-m1.%%%",
            "mcp-edge-m1.e30",
            &"x".repeat(MAX_ID + 1),
        ] {
            assert!(
                Positions::decode(other).is_none_or(|d| d.0.is_empty()),
                "{other}"
            );
        }
        // An id too long, or one that would break the framing, is forgotten.
        p.set("alpha", &"y".repeat(MAX_UPSTREAM_ID + 1));
        p.set("beta", "a\nb");
        assert_eq!(p.encode(), None);
    }
}
