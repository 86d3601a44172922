//! Signing test JWTs with the fixture keys (`tests/fixtures/test_keys.json`).

use jwt_compact::alg::{Ed25519, Es256, Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, Header};
use serde_json::Value;

pub fn keys() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test_keys.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The public half of a fixture key.
pub fn public(name: &str) -> Value {
    let mut k = keys()[name].clone();
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        k.as_object_mut().unwrap().remove(private);
    }
    k
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `claims` (a JSON object; `exp`/`nbf` as epoch seconds) with a fixture key.
pub fn sign(key: &str, kid: Option<&str>, claims: Value) -> String {
    let mut custom = claims.as_object().unwrap().clone();
    let exp = custom.remove("exp").and_then(|v| v.as_i64());
    let nbf = custom.remove("nbf").and_then(|v| v.as_i64());
    let mut c = Claims::new(custom);
    c.expiration = exp.and_then(|e| chrono::DateTime::from_timestamp(e, 0));
    c.not_before = nbf.and_then(|n| chrono::DateTime::from_timestamp(n, 0));
    let mut header = Header::empty();
    if let Some(kid) = kid {
        header = header.with_key_id(kid);
    }
    let jwk_json = keys()[key].to_string();
    let jwk: JsonWebKey<'_> = serde_json::from_str(&jwk_json).unwrap();
    match key {
        "rsa" | "rsa_other" => {
            Rsa::rs256().token(&header, &c, &RsaPrivateKey::try_from(&jwk).unwrap())
        }
        "ec" | "ec_gateway" => Es256.token(
            &header,
            &c,
            &p256::ecdsa::SigningKey::try_from(&jwk).unwrap(),
        ),
        "ed" => Ed25519.token(
            &header,
            &c,
            &ed25519_compact::SecretKey::try_from(&jwk).unwrap(),
        ),
        _ => panic!("no key {key}"),
    }
    .unwrap()
}
