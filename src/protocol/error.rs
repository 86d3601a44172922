//! What the protocol parsers refuse, before the gateway knows why it asked.
//!
//! `protocol` sits at the bottom of the crate and cannot name the gateway's
//! error enum; `crate::error` converts each of these into the matching
//! [`GatewayError`](crate::error::GatewayError) variant, so the wire mapping
//! stays in one place.

use std::fmt;

/// A message, header or parameter that does not follow the protocol. Its
/// text is the gateway error's it converts into.
#[derive(Debug, Clone, PartialEq)]
pub enum ProtocolError {
    /// The bytes are not JSON.
    Parse(String),
    /// The JSON is not a valid JSON-RPC message.
    InvalidRequest(String),
    /// The params (or a cursor inside them) are not what the method takes.
    InvalidParams(String),
    /// `MCP-Protocol-Version` names a revision the gateway does not speak.
    BadProtocolVersion(String),
    /// Modern: a routing header is missing or disagrees with the body.
    HeaderMismatch(String),
    /// Modern: the request's revision is not one the gateway speaks.
    UnsupportedVersion(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Parse(m) => write!(f, "Parse error: {m}"),
            ProtocolError::InvalidRequest(m) => write!(f, "Invalid Request: {m}"),
            ProtocolError::InvalidParams(m) => write!(f, "Invalid params: {m}"),
            ProtocolError::BadProtocolVersion(v) => {
                write!(f, "Bad Request: unsupported MCP-Protocol-Version '{v}'")
            }
            ProtocolError::HeaderMismatch(m) => write!(f, "Header mismatch: {m}"),
            ProtocolError::UnsupportedVersion(_) => f.write_str("Unsupported protocol version"),
        }
    }
}
