//! The gateway's own pagination cursors for aggregated lists.
//!
//! An aggregated list fans out to every server at once. Its `nextCursor` records,
//! for each server that still has pages, that server's own cursor, plus the method
//! the cursor belongs to. The cursor is opaque to clients (base64url JSON);
//! anything that does not decode is an invalid-params error, never a panic.

use super::error::ProtocolError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where each server's listing stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The list method the cursor was issued for.
    #[serde(rename = "m")]
    pub method: String,
    /// Server id -> that server's next cursor.
    #[serde(rename = "p")]
    pub pending: BTreeMap<String, String>,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    /// Decodes a cursor and checks it was issued for `method`.
    pub fn decode(text: &str, method: &str) -> Result<Self, ProtocolError> {
        let bad = || ProtocolError::InvalidParams(format!("invalid cursor for {method}"));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.method != method || cursor.pending.is_empty() {
            return Err(bad());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_method() {
        let c = Cursor {
            method: "tools/list".into(),
            pending: BTreeMap::from([("a".to_string(), "page2".to_string())]),
        };
        let text = c.encode();
        assert_eq!(Cursor::decode(&text, "tools/list").unwrap(), c);
        assert!(Cursor::decode(&text, "prompts/list").is_err());
    }

    #[test]
    fn garbage_is_invalid_params() {
        for text in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert!(
                matches!(
                    Cursor::decode(text, "tools/list"),
                    Err(ProtocolError::InvalidParams(_))
                ),
                "{text}"
            );
        }
    }
}
