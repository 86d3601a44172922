//! An upstream's `requestState`, sealed on its way to the client and opened
//! on the retry.
//!
//! The revision lets a server put state in an `input_required` result that
//! the client hands back unchanged on its retry, and tells the server to
//! treat it as attacker-controlled (`docs/specification/2026-07-28/basic/
//! patterns/mrtr.mdx` § Security Considerations, in
//! `modelcontextprotocol/modelcontextprotocol`). Behind a gateway the
//! upstream cannot tell callers apart, so the gateway binds the state for it:
//! the client gets `mcpe1.{payload}.{tag}`, where the payload holds the
//! upstream's state, the server it came from and an expiry, and the tag is
//! an HMAC-SHA256 over the payload and what the state was given for: the
//! caller, the endpoint, the method and a digest of the request's params
//! (without `_meta`, `inputResponses` and `requestState`, which change from
//! one round to the next). A state handed back by another caller, on another
//! endpoint, for another call or too late does not open. When the call was
//! approved, the payload also names a one-use grant that carries the
//! approval into the next round (`gateway/hold.rs`).

use crate::protocol::canonical;
use crate::protocol::jsonrpc::Id;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;
use std::collections::BTreeMap;

/// How long a sealed state can be handed back.
pub(crate) const STATE_TTL_MS: u64 = 10 * 60 * 1000;

/// Marks a sealed state (and its format's version).
const PREFIX: &str = "mcpe1.";

/// What a state is bound to: who got it, where, for which request.
#[derive(Clone)]
pub(crate) struct Binding {
    /// The caller's key (`Principal::key`).
    pub who: String,
    /// `/mcp` or the per-server endpoint's name.
    pub endpoint: String,
    pub method: String,
    /// [`params_digest`] of the request.
    pub params: [u8; 32],
}

/// What a sealed state carries.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Sealed {
    /// The upstream's own state.
    #[serde(rename = "s")]
    pub state: String,
    /// The server that issued it.
    #[serde(rename = "v")]
    pub server: String,
    /// Expiry, ms since the epoch.
    #[serde(rename = "x")]
    pub expires_ms: u64,
    /// The one-use grant of an approval carried into the call's next round,
    /// when the call was approved.
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// A legacy upstream's questions asked mid-call, which the upstream
    /// holds open while the client answers (then `state` is empty).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// Where a legacy upstream's call stands while its questions are with the
/// client (`gateway/modern/held.rs`): enough to hand the answers to the
/// session that asked and to resume the call's stream after them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Held {
    /// The id the call went upstream under: its answer comes back under it.
    #[serde(rename = "w")]
    pub wire: Id,
    /// Each input key the client answers under, with the upstream's own id
    /// of the request it stands for.
    #[serde(rename = "q")]
    pub asked: Vec<(String, Id)>,
    /// The last event id the upstream gave on the call's stream: the
    /// stream resumes after it (`Last-Event-ID`).
    #[serde(rename = "e")]
    pub resume_from: String,
    /// A digest of the upstream session that asked: the answers go to that
    /// session or nowhere.
    #[serde(rename = "u")]
    pub session: String,
}

/// The key states are sealed with.
pub(crate) struct StateKey([u8; 32]);

impl StateKey {
    /// Derived from a secret the gateway holds (its signing key), for this
    /// use only: HMAC-SHA256(secret, label).
    pub(crate) fn derive(secret: &[u8]) -> StateKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"mcp-edge/request-state/v1");
        StateKey(mac.finalize().into_bytes().into())
    }

    fn tag(&self, payload: &str, b: &Binding) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        // Lengths first, so no two bindings share one byte string.
        for part in [
            payload.as_bytes(),
            b.who.as_bytes(),
            b.endpoint.as_bytes(),
            b.method.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&b.params);
        mac
    }

    /// The state the client gets.
    pub(crate) fn seal(&self, sealed: &Sealed, b: &Binding) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(sealed).expect("state serializes"));
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&payload, b).finalize().into_bytes());
        format!("{PREFIX}{payload}.{tag}")
    }

    /// The upstream's state back, if `text` is one this key sealed for this
    /// binding and it has not expired. One answer for every failure: a
    /// caller learns nothing about why.
    pub(crate) fn open(&self, text: &str, b: &Binding, now_ms: u64) -> Option<Sealed> {
        let (payload, tag) = text.strip_prefix(PREFIX)?.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // `verify_slice` compares in constant time.
        self.tag(payload, b).verify_slice(&tag).ok()?;
        let sealed: Sealed = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (now_ms < sealed.expires_ms).then_some(sealed)
    }
}

/// Whether a client's `requestState` is in the sealed format (it may still
/// fail to open).
pub(crate) fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// The digest of a request's params that a state is bound to: everything
/// but `_meta`, `inputResponses` and `requestState`.
pub(crate) fn params_digest(params: Option<&RawValue>) -> Result<[u8; 32], String> {
    let mut map: BTreeMap<&str, &RawValue> = match params {
        Some(p) => serde_json::from_str(p.get()).map_err(|e| e.to_string())?,
        None => BTreeMap::new(),
    };
    for k in ["_meta", "inputResponses", "requestState"] {
        map.remove(k);
    }
    canonical::digest(&serde_json::to_string(&map).expect("params serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    fn binding(who: &str, endpoint: &str, params: &serde_json::Value) -> Binding {
        Binding {
            who: who.into(),
            endpoint: endpoint.into(),
            method: "tools/call".into(),
            params: params_digest(Some(&raw(params.clone()))).unwrap(),
        }
    }

    #[test]
    fn a_state_opens_only_for_its_caller_endpoint_call_and_time() {
        let key = StateKey::derive(b"secret");
        let call = json!({"name": "a__t", "arguments": {"x": 1}});
        let sealed = Sealed {
            state: "upstream-state".into(),
            server: "a".into(),
            expires_ms: 1_000,
            grant: Some("u-grant".into()),
            held: None,
        };
        let text = key.seal(&sealed, &binding("alice", "/mcp", &call));
        assert!(is_sealed(&text));
        // The retry: same params plus the answers and a new _meta.
        let retry = json!({"name": "a__t", "arguments": {"x": 1}, "requestState": text,
            "inputResponses": {"k": {}}, "_meta": {"progressToken": 9}});
        assert_eq!(
            key.open(&text, &binding("alice", "/mcp", &retry), 999),
            Some(sealed)
        );
        assert_eq!(
            key.open(&text, &binding("alice", "/mcp", &retry), 1_000),
            None,
            "expired"
        );
        assert_eq!(
            key.open(&text, &binding("bob", "/mcp", &retry), 0),
            None,
            "other caller"
        );
        assert_eq!(
            key.open(&text, &binding("alice", "b", &retry), 0),
            None,
            "other endpoint"
        );
        let other = json!({"name": "a__t", "arguments": {"x": 2}});
        assert_eq!(
            key.open(&text, &binding("alice", "/mcp", &other), 0),
            None,
            "other call"
        );
        assert_eq!(
            StateKey::derive(b"other").open(&text, &binding("alice", "/mcp", &call), 0),
            None,
            "other key"
        );
        let tampered = format!("{text}-TAMPERED");
        assert_eq!(
            key.open(&tampered, &binding("alice", "/mcp", &call), 0),
            None
        );
        assert_eq!(
            key.open("opaque", &binding("alice", "/mcp", &call), 0),
            None
        );
    }
}
