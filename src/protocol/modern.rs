//! The envelope of a modern (2026-07-28) request: what it must carry and how
//! its routing headers must agree with its body.
//!
//! A modern request is self-contained. Its `params._meta` names the revision
//! and the client's capabilities; its headers repeat the revision, the
//! method and (for `tools/call`, `prompts/get`, `resources/read`) the name,
//! so that a proxy can route without reading the body. The checks run in a
//! fixed order, the first failure wins (rules from
//! `docs/specification/2026-07-28/basic/transports/streamable-http.mdx` and
//! `basic/index.mdx` in `modelcontextprotocol/modelcontextprotocol`):
//!
//! 1. `_meta` carries the protocol version and the client capabilities
//!    (else -32602);
//! 2. `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` equal the body
//!    (else -32020, header mismatch); a header value may be written
//!    `=?base64?{base64 of UTF-8}?=`;
//! 3. the revision is one the gateway speaks (else -32022 with the list).

use super::error::ProtocolError;
use super::headers;
use super::jsonrpc::Request;
use super::version::MODERN;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `_meta` key naming the request's revision.
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key holding the client's capabilities.
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key holding the client's name and version (optional).
pub const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key asking for log messages at or above a level (optional).
pub const LOG_LEVEL_KEY: &str = "io.modelcontextprotocol/logLevel";
/// Result `_meta` key naming the server that answered.
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// What a modern request says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub version: &'static str,
    pub capabilities: Value,
    /// The least severe log level the client wants (`logLevel`, as a rank
    /// of [`LOG_LEVELS`]); without it no log message is sent
    /// (`server/utilities/logging.mdx`).
    pub log_level: Option<usize>,
    /// The `_meta` entries that say who the client is and what it can do,
    /// for requests the gateway makes on its behalf.
    pub meta: Map<String, Value>,
}

/// The syslog severities of `LoggingLevel` (`schema.ts`), least severe first.
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The rank of a level in [`LOG_LEVELS`].
pub fn log_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}

/// The body parameter a method's `Mcp-Name` header mirrors.
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks a modern request's envelope against its headers.
pub fn classify(req: &Request, headers: &HeaderMap) -> Result<Envelope, ProtocolError> {
    #[derive(Deserialize)]
    struct Params {
        #[serde(rename = "_meta")]
        meta: Option<Map<String, Value>>,
        name: Option<Value>,
        uri: Option<Value>,
    }
    let text = req.params.as_ref().map_or("{}", |p| p.get());
    let params: Params = serde_json::from_str(text).map_err(|e| {
        ProtocolError::InvalidParams(format!("{}: params must be an object: {e}", req.method))
    })?;
    let meta = params.meta.unwrap_or_default();
    let missing: Vec<&str> = [PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(ProtocolError::InvalidParams(format!(
            "params._meta is missing the required key(s): {}",
            missing.join(", ")
        )));
    }
    let body_version = &meta[PROTOCOL_VERSION_KEY];
    // A routing header sent twice would be read one way here and another by
    // whoever routed the request: refused.
    for name in [headers::PROTOCOL_VERSION, headers::METHOD, headers::NAME] {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(ProtocolError::HeaderMismatch(format!(
                "{name} is sent more than once"
            )));
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let sent_version = header(headers::PROTOCOL_VERSION);
    if sent_version.is_none() || sent_version != body_version.as_str() {
        return Err(ProtocolError::HeaderMismatch(
            "MCP-Protocol-Version does not match params._meta".into(),
        ));
    }
    if header(headers::METHOD) != Some(req.method.as_str()) {
        return Err(ProtocolError::HeaderMismatch(
            "Mcp-Method does not match the body's method".into(),
        ));
    }
    if let Some(key) = name_param(&req.method) {
        let body = match key {
            "name" => params.name.as_ref(),
            _ => params.uri.as_ref(),
        };
        if let Some(body) = body {
            let sent = header(headers::NAME).and_then(decode_header_value);
            if sent.as_deref() != body.as_str() {
                return Err(ProtocolError::HeaderMismatch(format!(
                    "Mcp-Name does not match the body's '{key}'"
                )));
            }
        }
    }
    let Some(requested) = body_version.as_str() else {
        return Err(ProtocolError::InvalidParams(
            "the protocol version in params._meta must be a string".into(),
        ));
    };
    let version = MODERN
        .iter()
        .copied()
        .find(|v| *v == requested)
        .ok_or_else(|| ProtocolError::UnsupportedVersion(requested.to_string()))?;
    let log_level = match meta.get(LOG_LEVEL_KEY) {
        None | Some(Value::Null) => None,
        Some(level) => Some(level.as_str().and_then(log_rank).ok_or_else(|| {
            ProtocolError::InvalidParams(format!(
                "params._meta: {LOG_LEVEL_KEY} must be one of {}",
                LOG_LEVELS.join(", ")
            ))
        })?),
    };
    let own = [
        PROTOCOL_VERSION_KEY,
        CLIENT_CAPABILITIES_KEY,
        CLIENT_INFO_KEY,
        LOG_LEVEL_KEY,
    ];
    let kept = meta
        .iter()
        .filter(|(k, _)| own.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Envelope {
        version,
        capabilities: meta[CLIENT_CAPABILITIES_KEY].clone(),
        log_level,
        meta: kept,
    })
}

/// A header value as sent: verbatim, or the UTF-8 text inside
/// `=?base64?...?=`. A malformed or non-canonical encoding is `None`, so it
/// never matches a body value by accident.
pub fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    let bytes = STANDARD.decode(payload).ok()?;
    // Only the canonical form the encoder writes: one text, one encoding.
    if STANDARD.encode(&bytes) != payload {
        return None;
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::jsonrpc::{parse_message, Message};
    use serde_json::json;

    fn request(method: &str, params: Value) -> Request {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        match parse_message(body.to_string().as_bytes()).unwrap() {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    fn meta() -> Value {
        json!({PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}})
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_well_formed_request_passes_every_rung() {
        let r = request("tools/call", json!({"name": "echo", "_meta": meta()}));
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ]);
        let e = classify(&r, &h).unwrap();
        assert_eq!(e.version, "2026-07-28");
        assert_eq!(e.capabilities, json!({}));
    }

    #[test]
    fn each_rung_refuses_with_its_own_error() {
        let ok = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ];
        let no_meta = request("tools/call", json!({"name": "echo"}));
        assert!(matches!(
            classify(&no_meta, &headers(&ok)),
            Err(ProtocolError::InvalidParams(m)) if m.contains(CLIENT_CAPABILITIES_KEY)
        ));
        let r = request("tools/call", json!({"name": "echo", "_meta": meta()}));
        for (i, wrong) in [
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/list"),
            ("mcp-name", "other"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut pairs = ok.to_vec();
            pairs[i] = wrong;
            assert!(
                matches!(
                    classify(&r, &headers(&pairs)),
                    Err(ProtocolError::HeaderMismatch(_))
                ),
                "{wrong:?}"
            );
            pairs.remove(i);
            assert!(matches!(
                classify(&r, &headers(&pairs)),
                Err(ProtocolError::HeaderMismatch(_))
            ));
        }
        let future = json!({"name": "echo", "_meta": {PROTOCOL_VERSION_KEY: "2099-01-01", CLIENT_CAPABILITIES_KEY: {}}});
        let mut twice = headers(&ok);
        twice.append("mcp-method", "tools/call".parse().unwrap());
        assert!(matches!(
            classify(&r, &twice),
            Err(ProtocolError::HeaderMismatch(m)) if m.contains("more than once")
        ));
        let mut pairs = ok.to_vec();
        pairs[0] = ("mcp-protocol-version", "2099-01-01");
        assert_eq!(
            classify(&request("tools/call", future), &headers(&pairs)),
            Err(ProtocolError::UnsupportedVersion("2099-01-01".into()))
        );
    }

    #[test]
    fn names_may_come_base64_encoded_and_only_canonically() {
        let uri = "file:///tmp/ünïcode.txt";
        let encoded = format!("=?base64?{}?=", STANDARD.encode(uri));
        assert_eq!(decode_header_value(&encoded).as_deref(), Some(uri));
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        assert_eq!(decode_header_value("=?base64?!!?="), None);
        // "YQ" without padding is not the canonical "YQ==".
        assert_eq!(decode_header_value("=?base64?YQ?="), None);
        let r = request("resources/read", json!({"uri": uri, "_meta": meta()}));
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "resources/read"),
            ("mcp-name", &encoded),
        ]);
        assert!(classify(&r, &h).is_ok());
    }
}
