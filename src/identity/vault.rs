//! Users' OAuth tokens for third-party servers, sealed at rest, and the
//! tickets that send a user to connect.
//!
//! One secret, `CONNECTIONS_KEY`, gives two keys by HMAC-SHA256 with a
//! label each (a key per purpose, so a ticket tag can never open a token):
//!
//! - **Sealing** (XChaCha20-Poly1305, a random 192-bit nonce per seal): the
//!   tokens of a connection and the PKCE verifier of a connect in flight are
//!   stored only as `v1.{nonce}.{ciphertext}`. The associated data names the
//!   record (`conn`, the owner's key and the server; or `pending` and the
//!   state), so a sealed value copied into another user's record does not
//!   open there.
//! - **Tickets** (HMAC-SHA256): the connect URL a caller is shown carries
//!   `{payload}.{tag}`, the payload naming the caller's key, the server and
//!   an expiry. Whoever holds it may start the connect flow for that caller
//!   and that server only, and only until it expires.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::KeyInit as _;
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};

type HmacSha256 = Hmac<Sha256>;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The secret the keys come from.
pub(crate) const KEY_SECRET: &str = "CONNECTIONS_KEY";
/// The shortest secret accepted (bytes).
const MIN_SECRET: usize = 32;
/// How long a connect URL can be used.
pub(crate) const TICKET_TTL_MS: u64 = 10 * 60 * 1000;

/// The keys of one `CONNECTIONS_KEY`.
#[derive(Clone)]
pub(crate) struct Vault {
    seal: [u8; 32],
    tickets: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// What a ticket names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Ticket {
    /// The caller's key (`Principal::key`).
    #[serde(rename = "w")]
    pub owner: String,
    #[serde(rename = "s")]
    pub server: String,
    /// Expiry, ms since the epoch.
    #[serde(rename = "x")]
    pub expires_ms: u64,
}

impl Vault {
    /// The vault of a `CONNECTIONS_KEY` value, or why it cannot be one.
    pub(crate) fn from_secret(secret: &str) -> Result<Vault, String> {
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "{KEY_SECRET} must be at least {MIN_SECRET} bytes (got {})",
                secret.len()
            ));
        }
        Ok(Vault {
            seal: derive(secret.as_bytes(), "mcp-edge connections seal v1"),
            tickets: derive(secret.as_bytes(), "mcp-edge connections ticket v1"),
        })
    }

    /// `plain` sealed under `context` with `nonce` (24 random bytes).
    pub(crate) fn seal(&self, plain: &[u8], context: &str, nonce: [u8; 24]) -> String {
        let cipher = XChaCha20Poly1305::new((&self.seal).into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce_array(&nonce)),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .expect("encryption of an in-memory buffer does not fail");
        format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(sealed)
        )
    }

    /// The plaintext of a value sealed under `context`; `None` when it was
    /// sealed under another key or context, or altered.
    pub(crate) fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let rest = sealed.strip_prefix("v1.")?;
        let (nonce, body) = rest.split_once('.')?;
        let nonce = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if nonce.len() != 24 {
            return None;
        }
        let body = URL_SAFE_NO_PAD.decode(body).ok()?;
        XChaCha20Poly1305::new((&self.seal).into())
            .decrypt(
                &XNonce::from(nonce_array(&nonce)),
                Payload {
                    msg: &body,
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }

    /// A ticket's text: `{payload}.{tag}`.
    pub(crate) fn ticket(&self, ticket: &Ticket) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(ticket).expect("serializes"));
        let tag = self.tag(&payload);
        format!("{payload}.{tag}")
    }

    /// The ticket `text` names, if its tag is this vault's and it is live.
    pub(crate) fn read_ticket(&self, text: &str, now_ms: u64) -> Option<Ticket> {
        let (payload, tag) = text.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.tickets).expect("any key length");
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let ticket: Ticket = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (now_ms < ticket.expires_ms).then_some(ticket)
    }

    fn tag(&self, payload: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.tickets).expect("any key length");
        mac.update(payload.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

fn nonce_array(nonce: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n.copy_from_slice(nonce);
    n
}

/// The context a connection's tokens are sealed under.
pub(crate) fn connection_context(owner: &str, server: &str) -> String {
    format!("conn\u{0}{owner}\u{0}{server}")
}

/// The context a pending connect's verifier is sealed under.
pub(crate) fn pending_context(state: &str) -> String {
    format!("pending\u{0}{state}")
}

/// SHA-256 of `text`, base64url: how a state and a browser's binding cookie
/// are kept (the store never holds the values a request must present).
pub(crate) fn digest(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_secret("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_context_and_under_its_key() {
        let v = vault();
        let sealed = v.seal(
            b"at-123",
            &connection_context("apikey|alice", "gh"),
            [7; 24],
        );
        assert!(!sealed.contains("at-123"));
        assert_eq!(
            v.open(&sealed, &connection_context("apikey|alice", "gh")),
            Some(b"at-123".to_vec())
        );
        // Moved to bob's record, or to another server: does not open.
        assert_eq!(
            v.open(&sealed, &connection_context("apikey|bob", "gh")),
            None
        );
        assert_eq!(
            v.open(&sealed, &connection_context("apikey|alice", "x")),
            None
        );
        let other = Vault::from_secret("another secret of thirty-two bytes!!").unwrap();
        assert_eq!(
            other.open(&sealed, &connection_context("apikey|alice", "gh")),
            None
        );
        // Altered: does not open.
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            v.open(&altered, &connection_context("apikey|alice", "gh")),
            None
        );
        assert_eq!(v.open("v1.x.y", "c"), None);
        assert_eq!(v.open("plain", "c"), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Vault::from_secret("short")
            .unwrap_err()
            .contains("32 bytes"));
    }

    #[test]
    fn tickets_are_tagged_and_expire() {
        let v = vault();
        let t = Ticket {
            owner: "apikey|alice".into(),
            server: "gh".into(),
            expires_ms: 1000,
        };
        let text = v.ticket(&t);
        assert_eq!(v.read_ticket(&text, 999), Some(t.clone()));
        assert_eq!(v.read_ticket(&text, 1000), None);
        // Another payload under the same tag: refused.
        let (_, tag) = text.split_once('.').unwrap();
        let forged = Ticket {
            owner: "apikey|mallory".into(),
            ..t
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(v.read_ticket(&format!("{payload}.{tag}"), 0), None);
        assert_eq!(v.read_ticket("nonsense", 0), None);
    }
}
