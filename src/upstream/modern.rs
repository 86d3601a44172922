//! Speaking 2026-07-28 to an upstream that speaks it.
//!
//! A modern upstream has no session and no `initialize`: every request
//! carries the revision and the client's capabilities in `params._meta`, and
//! its routing headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`)
//! repeat the body (`docs/specification/2026-07-28/basic/transports/
//! streamable-http.mdx` § Request Metadata, in
//! `modelcontextprotocol/modelcontextprotocol`). Whether an endpoint speaks
//! it is learned once with `server/discover` ([`Eras`](super::eras::Eras)).
//!
//! A modern client's request already carries its envelope and is sent as it
//! is; a legacy client's request, and the gateway's own (list pages, the
//! catalog), get the envelope of the client they are made for. The headers
//! are always computed from the body that is sent, so they cannot disagree
//! with it (on `/mcp` the name in the body is the upstream's, not the
//! prefixed one the client sent).

use crate::ports::UpstreamSession;
use crate::protocol::headers;
use crate::protocol::jsonrpc::Id;
use crate::protocol::modern::{
    self, CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY,
};
use crate::protocol::version::MODERN;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

/// Whether a recorded upstream session is a modern (stateless) one.
pub(crate) fn is_modern(session: &UpstreamSession) -> bool {
    session.session_id.is_none() && MODERN.contains(&session.protocol_version.as_str())
}

/// The session record of a modern endpoint: no id, the modern revision.
pub(crate) fn session(url: &str) -> UpstreamSession {
    UpstreamSession {
        url: url.to_string(),
        session_id: None,
        protocol_version: MODERN[0].to_string(),
    }
}

/// The `_meta` a request needs when the gateway speaks for a client:
/// the revision, `capabilities` and `client_info` (the gateway's own when
/// the client has none to give).
pub(crate) fn envelope(capabilities: Value, client_info: Option<Value>) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert(PROTOCOL_VERSION_KEY.into(), MODERN[0].into());
    meta.insert(CLIENT_CAPABILITIES_KEY.into(), capabilities);
    meta.insert(
        CLIENT_INFO_KEY.into(),
        client_info.unwrap_or_else(
            || json!({"name": super::CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")}),
        ),
    );
    meta
}

/// The `server/discover` probe the gateway sends as itself.
pub(crate) fn discover_request(id: &Id) -> Vec<u8> {
    let meta = envelope(json!({}), None);
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": id, "method": "server/discover", "params": {"_meta": meta},
    }))
    .expect("discover serializes")
}

/// Whether a `server/discover` result says the server serves a revision the
/// gateway speaks to upstreams in the modern era. That is all it can say:
/// it cannot say the server serves no sessions (the Python SDK's dual-era
/// server lists only its modern revisions), so only a refused `initialize`
/// makes an endpoint [`Speaks::Modern`](super::eras::Speaks::Modern).
pub(crate) fn speaks_modern(result: &Value) -> bool {
    result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| {
            v.iter()
                .any(|v| v.as_str().is_some_and(|v| MODERN.contains(&v)))
        })
}

/// A discover result as the `initialize` result a legacy caller of
/// [`initialize_now`](super::client::Upstreams::initialize_now) expects.
pub(crate) fn as_initialize_result(mut discover: Value) -> Value {
    let server_info = discover
        .pointer_mut(&format!(
            "/_meta/{}",
            modern::SERVER_INFO_KEY.replace('/', "~1")
        ))
        .map(Value::take)
        .unwrap_or_else(|| json!({"name": "unknown", "version": "unknown"}));
    let mut result = json!({
        "protocolVersion": MODERN[0],
        "capabilities": discover.get_mut("capabilities").map_or(json!({}), Value::take),
        "serverInfo": server_info,
    });
    if let Some(i) = discover.get_mut("instructions").filter(|i| !i.is_null()) {
        result["instructions"] = i.take();
    }
    result
}

/// A message ready for a modern upstream: the body (with the envelope
/// added where it had none) and the routing headers computed from it.
pub(crate) struct Outgoing {
    pub body: Vec<u8>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Prepares `message` for a modern upstream. `meta` is the envelope to add
/// to a request without one; `params` are the client's `Mcp-Param-*`
/// headers, forwarded with a `tools/call` (intermediaries must forward them:
/// streamable-http.mdx § Server Behavior for Custom Headers).
pub(crate) fn prepare(
    message: &[u8],
    meta: &Map<String, Value>,
    param_headers: &[(HeaderName, HeaderValue)],
) -> Result<Outgoing, String> {
    let mut value: Value = serde_json::from_slice(message).map_err(|e| format!("not JSON: {e}"))?;
    let Some(method) = value
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        // A response: nothing routes on it.
        return Ok(Outgoing {
            body: message.to_vec(),
            headers: vec![version_header(MODERN[0])],
        });
    };
    let mut out = vec![version_header(MODERN[0])];
    if let Ok(v) = HeaderValue::from_str(&header_value(&method)) {
        out.push((HeaderName::from_static(headers::METHOD), v));
    }
    let is_request = value.get("id").is_some();
    let mut body = None;
    if is_request {
        let params = value
            .as_object_mut()
            .expect("a message with a method is an object")
            .entry("params")
            .or_insert_with(|| json!({}));
        let Some(params) = params.as_object_mut() else {
            return Err("params is not an object".into());
        };
        let own = params
            .entry("_meta")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("params._meta is not an object")?;
        if !own.contains_key(PROTOCOL_VERSION_KEY) {
            for (k, v) in meta {
                own.entry(k.clone()).or_insert_with(|| v.clone());
            }
            body = Some(serde_json::to_vec(&value).expect("message serializes"));
        }
        let version = value
            .pointer(&format!(
                "/params/_meta/{}",
                PROTOCOL_VERSION_KEY.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or(MODERN[0]);
        out[0] = version_header(version);
        if let Some(key) = modern::name_param(&method) {
            if let Some(name) = value
                .pointer(&format!("/params/{key}"))
                .and_then(Value::as_str)
            {
                if let Ok(v) = HeaderValue::from_str(&header_value(name)) {
                    out.push((HeaderName::from_static(headers::NAME), v));
                }
            }
        }
        if method == "tools/call" {
            out.extend(param_headers.iter().cloned());
        }
    }
    Ok(Outgoing {
        body: body.unwrap_or_else(|| message.to_vec()),
        headers: out,
    })
}

fn version_header(version: &str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(headers::PROTOCOL_VERSION),
        HeaderValue::from_str(version).unwrap_or(HeaderValue::from_static("2026-07-28")),
    )
}

/// A header value as the revision writes it: verbatim when it is visible
/// ASCII (spaces inside allowed), else `=?base64?{base64 of UTF-8}?=`, as is
/// a plain value that looks like that form (streamable-http.mdx § Value
/// Encoding).
pub(crate) fn header_value(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
        && !text.starts_with([' ', '\t'])
        && !text.ends_with([' ', '\t']);
    let looks_encoded = text.starts_with("=?base64?") && text.ends_with("?=");
    let plain = plain && !looks_encoded;
    if plain {
        text.to_string()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(o: &'a Outgoing, name: &str) -> Option<&'a str> {
        o.headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn header_values_encode_as_the_revision_says() {
        assert_eq!(header_value("get_weather"), "get_weather");
        assert_eq!(header_value("a b"), "a b");
        assert_eq!(
            header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            header_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
        // What the gateway writes, it reads back.
        for t in ["Hello, 世界", " padded ", "=?base64?literal?="] {
            assert_eq!(modern::decode_header_value(&header_value(t)).unwrap(), t);
        }
    }

    #[test]
    fn a_request_without_an_envelope_gets_the_clients() {
        let meta = envelope(json!({"elicitation": {}}), None);
        let msg = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        let p = [(
            HeaderName::from_static("mcp-param-region"),
            HeaderValue::from_static("eu"),
        )];
        let o = prepare(msg, &meta, &p).unwrap();
        let body: Value = serde_json::from_slice(&o.body).unwrap();
        assert_eq!(body["params"]["_meta"][PROTOCOL_VERSION_KEY], "2026-07-28");
        assert_eq!(
            body["params"]["_meta"][CLIENT_CAPABILITIES_KEY],
            json!({"elicitation": {}})
        );
        assert_eq!(body["params"]["arguments"], json!({}));
        assert_eq!(header(&o, "mcp-protocol-version"), Some("2026-07-28"));
        assert_eq!(header(&o, "mcp-method"), Some("tools/call"));
        assert_eq!(header(&o, "mcp-name"), Some("echo"));
        assert_eq!(header(&o, "mcp-param-region"), Some("eu"));
    }

    #[test]
    fn a_modern_clients_request_goes_as_sent() {
        let msg = br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let o = prepare(msg, &envelope(json!({"sampling": {}}), None), &[]).unwrap();
        assert_eq!(o.body, msg.to_vec());
        assert_eq!(header(&o, "mcp-name"), Some("test://x"));
        // Param headers ride only with tools/call.
        let p = [(
            HeaderName::from_static("mcp-param-x"),
            HeaderValue::from_static("1"),
        )];
        assert_eq!(
            header(&prepare(msg, &Map::new(), &p).unwrap(), "mcp-param-x"),
            None
        );
    }

    #[test]
    fn discover_tells_the_era() {
        assert!(speaks_modern(
            &json!({"supportedVersions": ["2025-11-25", "2026-07-28"]})
        ));
        assert!(speaks_modern(&json!({"supportedVersions": ["2026-07-28"]})));
        assert!(!speaks_modern(
            &json!({"supportedVersions": ["2027-01-01"]})
        ));
        assert!(!speaks_modern(&json!({"protocolVersion": "2025-11-25"})));
        let init = as_initialize_result(json!({"supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}}, "instructions": "hi",
            "_meta": {modern::SERVER_INFO_KEY: {"name": "up", "version": "1"}}}));
        assert_eq!(init["serverInfo"]["name"], "up");
        assert_eq!(init["capabilities"], json!({"tools": {}}));
        assert_eq!(init["instructions"], "hi");
    }
}
