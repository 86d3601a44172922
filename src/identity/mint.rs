//! Credentials the gateway mints for upstreams: short-lived JWTs (ES256 or
//! EdDSA) naming the caller, so an upstream learns who calls without ever
//! seeing the caller's own token. The signing key comes from a secret (a
//! private JWK); its public half is served at `/.well-known/jwks.json` for
//! upstreams to verify with. Pure: reading the key, drawing the `jti` and
//! reusing tokens is the upstream side's [`Minter`](crate::upstream::minter).

use super::Principal;
use jwt_compact::alg::{Ed25519, Es256};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde::Serialize;
use serde_json::{json, Value};

/// Longest lifetime of a minted token.
pub(crate) const MAX_TTL_SECS: u64 = 300;

enum Key {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_compact::SecretKey),
}

/// The gateway's signing key.
pub(crate) struct Signer {
    kid: String,
    key: Key,
    public: Value,
}

/// What a minted token says.
#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    sub_id: Value,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    teams: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    roles: &'a [String],
}

impl Signer {
    /// Reads a private JWK (EC P-256 or OKP Ed25519, with a `kid`).
    pub(crate) fn from_jwk(json: &str) -> Result<Signer, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let kid = v
            .get("kid")
            .and_then(Value::as_str)
            .ok_or("the signing key needs a kid")?
            .to_string();
        let jwk: JsonWebKey<'_> =
            serde_json::from_value(v.clone()).map_err(|e| format!("not a JWK: {e}"))?;
        let (key, public, alg) = match &jwk {
            JsonWebKey::EllipticCurve { curve, .. } if curve == "P-256" => {
                let sk = p256::ecdsa::SigningKey::try_from(&jwk)
                    .map_err(|e| format!("bad EC key: {e}"))?;
                let public = serde_json::to_value(JsonWebKey::from(sk.verifying_key()))
                    .expect("JWK serializes");
                (Key::Es256(sk), public, "ES256")
            }
            JsonWebKey::KeyPair { curve, .. } if curve == "Ed25519" => {
                let sk = ed25519_compact::SecretKey::try_from(&jwk)
                    .map_err(|e| format!("bad Ed25519 key: {e}"))?;
                let public = serde_json::to_value(JsonWebKey::from(&sk.public_key()))
                    .expect("JWK serializes");
                (Key::EdDsa(sk), public, "EdDSA")
            }
            _ => {
                return Err("the signing key must be an EC P-256 or OKP Ed25519 private JWK".into())
            }
        };
        let mut public = public;
        public["kid"] = json!(kid);
        public["alg"] = json!(alg);
        public["use"] = json!("sig");
        Ok(Signer { kid, key, public })
    }

    /// The public key set upstreams verify minted tokens with.
    pub(crate) fn jwks(&self) -> Value {
        json!({ "keys": [self.public] })
    }

    /// Signs a token for `principal` towards `audience`.
    pub(crate) fn mint(
        &self,
        issuer: &str,
        principal: &Principal,
        audience: &str,
        jti: &str,
        now_ms: u64,
        ttl_secs: u64,
    ) -> String {
        let now = (now_ms / 1000) as i64;
        let ttl = ttl_secs.clamp(1, MAX_TTL_SECS) as i64;
        let custom = MintedClaims {
            iss: issuer,
            sub: &principal.subject,
            aud: audience,
            sub_id: subject_identifier(principal),
            jti,
            teams: &principal.teams,
            roles: &principal.roles,
        };
        let mut claims = Claims::new(custom);
        claims.issued_at = chrono::DateTime::from_timestamp(now, 0);
        claims.expiration = chrono::DateTime::from_timestamp(now + ttl, 0);
        let header = Header::empty()
            .with_key_id(&self.kid)
            .with_token_type("JWT");
        match &self.key {
            Key::Es256(k) => Es256.token(&header, &claims, k),
            Key::EdDsa(k) => Ed25519.token(&header, &claims, k),
        }
        .expect("signing with a valid key succeeds")
    }
}

/// Where the subject comes from, as an RFC 9493 subject identifier.
fn subject_identifier(who: &Principal) -> Value {
    if let Some(issuer) = who.via.strip_prefix("jwt:") {
        return json!({ "format": "iss_sub", "iss": issuer, "sub": who.subject });
    }
    if who.is_anonymous() {
        let from = who.client.as_deref().unwrap_or("unknown");
        let hashed = &super::sha256_hex(from.as_bytes())[..16];
        return json!({ "format": "opaque", "id": format!("anonymous@{hashed}") });
    }
    json!({ "format": "opaque", "id": who.key() })
}

/// What a cached token is found by: every input of [`Signer::mint`] but the
/// `jti` and the clock, so a caller whose teams, roles or issuer changed, or
/// a request under another `PUBLIC_URL`, never gets a token minted for
/// something else.
pub(crate) fn cache_key(
    issuer: &str,
    principal: &Principal,
    audience: &str,
    ttl_secs: u64,
) -> String {
    let inputs = serde_json::to_string(&(issuer, principal, audience, ttl_secs))
        .expect("mint inputs serialize");
    super::sha256_hex(inputs.as_bytes())
}
