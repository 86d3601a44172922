//! Property-based fuzzing (proptest) of everything that reads untrusted
//! input: the JSON-RPC envelope, the SSE decoder, gateway cursors, the
//! canonical JSON of arguments, credentials, JWTs and JWKS, the registry,
//! issuers, the policy, settings, and the PII scanners. Each property runs a
//! bounded number of cases inside `cargo test` (`FUZZ_CASES`, default 512;
//! raise it for a longer run) on inputs built both as raw bytes and as
//! structured JSON that looks like the real thing. The properties: no
//! panic, and the scanners' work is linear in their input.

use mcp_edge::config::{Registry, Server, Settings};
use mcp_edge::governance::pii::{self, Kind};
use mcp_edge::governance::policy::Policy;
use mcp_edge::identity::config::{Issuer, TrustConfig};
use mcp_edge::identity::jwks::KeySet;
use mcp_edge::identity::{credential, jwt};
use mcp_edge::protocol::{canonical, cursor::Cursor, jsonrpc, sse};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};

fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Strings from an alphabet that hits the parsers' special characters.
fn text(alphabet: &'static str, max: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), 0..max)
        .prop_map(|v| v.into_iter().collect())
}

/// Words the parsers know, so structured inputs reach deep branches.
const WORDS: &[&str] = &[
    "jsonrpc",
    "2.0",
    "id",
    "method",
    "params",
    "result",
    "error",
    "tools/call",
    "initialize",
    "notifications/x",
    "name",
    "arguments",
    "endpoints",
    "region",
    "url",
    "http://a/",
    "us",
    "rules",
    "effect",
    "allow",
    "deny",
    "subjects",
    "everyone",
    "teams",
    "limits",
    "per",
    "team",
    "tool",
    "requests",
    "window_secs",
    "daily",
    "redact",
    "kinds",
    "email",
    "approval",
    "approvers",
    "decided_by",
    "user",
    "tools",
    "servers",
    "issuer",
    "jwks_uri",
    "algorithms",
    "RS256",
    "ES256",
    "HS256",
    "none",
    "keys",
    "kty",
    "EC",
    "RSA",
    "OKP",
    "crv",
    "P-256",
    "Ed25519",
    "x",
    "y",
    "n",
    "e",
    "kid",
    "alg",
    "iss",
    "aud",
    "sub",
    "exp",
    "credentials",
    "type",
    "jwt",
    "header",
    "secret",
    "*",
    "",
    "a*b",
    "??",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        proptest::sample::select(WORDS).prop_map(Value::from),
        text("ab\"\\\u{0}é@.-1 ", 12).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(WORDS), inner), 0..8).prop_map(
                |pairs| {
                    let map: Map<String, Value> =
                        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                    Value::Object(map)
                }
            ),
        ]
    })
}

/// Bytes: arbitrary, or the text of a structured JSON value, maybe cut.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (json_value(), any::<usize>()).prop_map(|(v, cut)| {
            let text = v.to_string().into_bytes();
            if cut % 4 == 0 {
                text[..cut % (text.len() + 1)].to_vec()
            } else {
                text
            }
        }),
    ]
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jsonrpc_envelopes(bytes in input()) {
        let _ = jsonrpc::parse_message(&bytes);
        let _ = jsonrpc::salvage_id(&bytes);
    }

    #[test]
    fn sse_streams(chunks in proptest::collection::vec(input(), 0..6), limit in 1usize..512) {
        let mut d = sse::Decoder::with_limit(limit);
        for chunk in &chunks {
            for event in d.feed(chunk) {
                prop_assert!(event.data.len() <= limit);
            }
        }
    }

    #[test]
    fn cursors(bytes in input(), raw in text("ABCabc012-_=.", 64)) {
        let _ = Cursor::decode(&b64(&bytes), "tools/list");
        let _ = Cursor::decode(&raw, "tools/list");
    }

    #[test]
    fn argument_digests(v in json_value(), bytes in input()) {
        let compact = canonical::digest(&v.to_string());
        let pretty = canonical::digest(&serde_json::to_string_pretty(&v).unwrap());
        prop_assert_eq!(compact, pretty, "whitespace does not change the digest");
        let _ = canonical::digest(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn credentials_and_jwts(
        header in json_value(), claims in json_value(), sig in input(), raw in text("ab.-_ =", 48)
    ) {
        let token = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(&sig));
        for t in [token.as_str(), raw.as_str()] {
            let _ = jwt::claimed_issuer(t);
            if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {t}")) {
                let mut h = http::HeaderMap::new();
                h.insert(http::header::AUTHORIZATION, value);
                let _ = credential::from_headers(&h);
            }
        }
        let issuer = Issuer::parse("t", r#"{"issuer":"https://id.test","jwks_uri":"https://id.test/k","algorithms":["RS256","ES256","EdDSA"]}"#).unwrap();
        let _ = jwt::verify(&token, &issuer, &KeySet::default(), None, &["a".into()], 0);
    }

    #[test]
    fn jwks(keys in proptest::collection::vec(json_value(), 0..4), bytes in input()) {
        let _ = KeySet::parse(&json!({"keys": keys}).to_string());
        let _ = KeySet::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn registry_issuers_and_policy(v in json_value(), bytes in input()) {
        let text = v.to_string();
        for t in [text.clone(), String::from_utf8_lossy(&bytes).into_owned()] {
            let _ = Server::parse("s", &t);
            let _ = Issuer::parse("i", &t);
            let _ = Policy::parse(&t);
            let _ = Registry::from_entries(vec![("servers/x".to_string(), t.clone())]);
            let _ = TrustConfig::from_entries(vec![("auth/issuers/x".to_string(), t)]);
        }
    }

    #[test]
    fn settings(values in proptest::collection::vec(text("0123456789abc=,/: -*", 24), 16)) {
        let _ = Settings::from_vars(|name| {
            let i = Settings::VARIABLES.iter().position(|v| *v == name)?;
            values.get(i).cloned()
        });
    }

    #[test]
    fn pii_scanners_never_panic_and_stay_linear(
        s in text("ab1-.@+( )GB82 9_%x\u{e9}\u{1F600}", 400)
    ) {
        let (out, steps) = pii::scan(&s, &Kind::ALL);
        let n = s.chars().count();
        prop_assert!(steps <= 40 * n + 40, "{steps} steps for {n} characters");
        if let Some(out) = out {
            prop_assert!(out.contains('['));
        }
    }
}
