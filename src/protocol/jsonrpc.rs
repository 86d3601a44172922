//! JSON-RPC 2.0 envelopes, parsed in two steps.
//!
//! Step one reads only the envelope (`jsonrpc`, `id`, `method`) and keeps
//! `params`, `result` and `error` as raw JSON, so messages the gateway does not
//! inspect pass through byte for byte. Step two ([`Request::params_as`]) types the
//! params of the few methods the gateway does inspect.

use super::error::ProtocolError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// A request id: MCP allows strings and integers (never null).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Num(i64),
    Str(String),
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A request: expects a response with the same id.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A notification: no id, no response.
#[derive(Debug, Clone)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

/// A response: a result or an error for an earlier request.
#[derive(Debug, Clone)]
pub struct Response {
    pub id: Id,
    pub result: Option<Box<RawValue>>,
    pub error: Option<Box<RawValue>>,
}

/// Any single JSON-RPC message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// The raw envelope as it is on the wire. Fields are raw so nothing is lost.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    jsonrpc: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

/// Keeps a field that is present but `null` as `Some("null")`, so `"id": null`
/// is told apart from a missing id (a notification).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// Whether `method` names a notification (MCP: `notifications/*`); any other
/// method is a request and must carry an id.
pub(crate) fn is_notification_method(method: &str) -> bool {
    method.starts_with("notifications/")
}

/// Parses one message from bytes. Errors are `Parse` for bad JSON and
/// `InvalidRequest` for JSON that is not a JSON-RPC 2.0 message.
pub fn parse_message(bytes: &[u8]) -> Result<Message, ProtocolError> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ProtocolError::InvalidRequest(format!("not a JSON-RPC message object: {e}"))
        } else {
            ProtocolError::Parse(e.to_string())
        }
    })?;
    from_wire(wire)
}

/// Reads the id of a message that failed to parse, so the error can echo it.
pub fn salvage_id(bytes: &[u8]) -> Option<Id> {
    #[derive(Deserialize)]
    struct OnlyId {
        id: Option<Id>,
    }
    serde_json::from_slice::<OnlyId>(bytes).ok()?.id
}

/// The `method` of a message, read without parsing the rest into values
/// (`None` for a response, or a method spelled with escapes).
pub(crate) fn method_of(bytes: &[u8]) -> Option<&str> {
    #[derive(Deserialize)]
    struct OnlyMethod<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
    }
    serde_json::from_slice::<OnlyMethod>(bytes).ok()?.method
}

fn from_wire(w: Wire) -> Result<Message, ProtocolError> {
    if w.jsonrpc.as_deref() != Some("2.0") {
        return Err(ProtocolError::InvalidRequest(
            r#""jsonrpc" must be "2.0""#.into(),
        ));
    }
    let id = w.id.map(|raw| parse_id(&raw)).transpose()?;
    match (w.method, id) {
        (Some(method), _) if w.result.is_some() || w.error.is_some() => {
            Err(ProtocolError::InvalidRequest(format!(
                "message with method '{method}' also has result or error"
            )))
        }
        (Some(method), _) if method.is_empty() => Err(ProtocolError::InvalidRequest(
            "method must not be empty".into(),
        )),
        (Some(method), Some(id)) => {
            check_params(&w.params)?;
            Ok(Message::Request(Request {
                id,
                method,
                params: w.params,
            }))
        }
        (Some(method), None) => {
            check_params(&w.params)?;
            Ok(Message::Notification(Notification {
                method,
                params: w.params,
            }))
        }
        (None, Some(id)) => match (&w.result, &w.error) {
            (Some(_), None) | (None, Some(_)) => Ok(Message::Response(Response {
                id,
                result: w.result,
                error: w.error,
            })),
            _ => Err(ProtocolError::InvalidRequest(
                "a response needs exactly one of result and error".into(),
            )),
        },
        (None, None) => Err(ProtocolError::InvalidRequest("missing method".into())),
    }
}

fn parse_id(raw: &RawValue) -> Result<Id, ProtocolError> {
    serde_json::from_str::<Id>(raw.get()).map_err(|_| {
        ProtocolError::InvalidRequest(format!(
            "id must be a string or an integer, got {}",
            raw.get()
        ))
    })
}

fn check_params(params: &Option<Box<RawValue>>) -> Result<(), ProtocolError> {
    match params
        .as_ref()
        .map(|p| p.get().trim_start().as_bytes().first().copied())
    {
        None | Some(Some(b'{')) | Some(Some(b'[')) => Ok(()),
        _ => Err(ProtocolError::InvalidRequest(
            "params must be an object or an array".into(),
        )),
    }
}

impl Request {
    /// Types the params (step two). Missing params parse as `{}`.
    pub(crate) fn params_as<T: DeserializeOwned>(&self) -> Result<T, ProtocolError> {
        let text = self.params.as_ref().map(|p| p.get()).unwrap_or("{}");
        serde_json::from_str(text)
            .map_err(|e| ProtocolError::InvalidParams(format!("{}: {e}", self.method)))
    }

    /// Serializes the request, with `params` replaced when given.
    pub(crate) fn to_bytes_with(&self, params: Option<&RawValue>) -> Vec<u8> {
        request_bytes(&self.id, &self.method, params.or(self.params.as_deref()))
    }

    /// Serializes the request unchanged.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with(None)
    }
}

/// Builds a request message.
pub(crate) fn request_bytes<T: Serialize + ?Sized>(
    id: &Id,
    method: &str,
    params: Option<&T>,
) -> Vec<u8> {
    message_bytes(Some(id), method, params)
}

/// Builds a notification message.
pub(crate) fn notification_bytes(method: &str, params: Option<&RawValue>) -> Vec<u8> {
    message_bytes(None, method, params)
}

/// A request (with an id) or a notification (without).
fn message_bytes<T: Serialize + ?Sized>(
    id: Option<&Id>,
    method: &str,
    params: Option<&T>,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a, T: ?Sized> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a Id>,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a T>,
    }
    serde_json::to_vec(&Out {
        jsonrpc: "2.0",
        id,
        method,
        params,
    })
    .expect("message serializes")
}

/// Builds a success response.
pub(crate) fn result_body<T: Serialize + ?Sized>(id: &Id, result: &T) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a, T: ?Sized> {
        jsonrpc: &'static str,
        id: &'a Id,
        result: &'a T,
    }
    serde_json::to_vec(&Out {
        jsonrpc: "2.0",
        id,
        result,
    })
    .expect("result serializes")
}

/// Builds an error response; `id` is `null` when the request's id is unknown.
pub(crate) fn error_body(
    id: Option<&Id>,
    code: i64,
    message: &str,
    data: Option<&serde_json::Value>,
) -> Vec<u8> {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data.clone();
    }
    serde_json::to_vec(&serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error }))
        .expect("error serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Message, ProtocolError> {
        parse_message(s.as_bytes())
    }

    #[test]
    fn classifies_the_three_kinds() {
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Message::Request(_))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Message::Notification(_))
        ));
        assert!(matches!(
            parse(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Message::Response(_))
        ));
    }

    #[test]
    fn keeps_params_byte_for_byte() {
        let Ok(Message::Request(r)) =
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":{"b": 1,  "a":[2]}}"#)
        else {
            panic!()
        };
        assert_eq!(r.params.unwrap().get(), r#"{"b": 1,  "a":[2]}"#);
    }

    #[test]
    fn rejects_bad_shapes_with_clear_messages() {
        let cases = [
            (r#"{"id":1,"method":"ping"}"#, "\"jsonrpc\" must be \"2.0\""),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                "id must be a string or an integer, got null",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                "id must be a string or an integer",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1}"#,
                "exactly one of result and error",
            ),
            (r#"{"jsonrpc":"2.0"}"#, "missing method"),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
                "params must be an object",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
                "not a JSON-RPC message object",
            ),
            (r#"[1,2]"#, "not a JSON-RPC message object"),
        ];
        for (input, want) in cases {
            let err = parse(input).unwrap_err();
            assert!(
                matches!(err, ProtocolError::InvalidRequest(_)),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn bad_json_is_a_parse_error() {
        assert!(matches!(parse("{not json"), Err(ProtocolError::Parse(_))));
        assert!(matches!(parse(""), Err(ProtocolError::Parse(_))));
    }

    #[test]
    fn salvages_ids_from_invalid_messages() {
        assert_eq!(
            salvage_id(br#"{"id":"x","method":5}"#),
            Some(Id::Str("x".into()))
        );
        assert_eq!(salvage_id(b"{oops"), None);
    }

    #[test]
    fn rewrites_params() {
        let Ok(Message::Request(r)) =
            parse(r#"{"jsonrpc":"2.0","id":"q","method":"m","params":{"a":1}}"#)
        else {
            panic!()
        };
        let p = RawValue::from_string(r#"{"a":2}"#.into()).unwrap();
        assert_eq!(
            String::from_utf8(r.to_bytes_with(Some(&p))).unwrap(),
            r#"{"jsonrpc":"2.0","id":"q","method":"m","params":{"a":2}}"#
        );
    }
}
