//! The gateway's one error type, and the one place it is mapped to the wire.
//!
//! Every phase returns [`GatewayError`]; [`GatewayError::into_response`] turns it
//! into an HTTP status plus a JSON-RPC error body. Transport-level faults (bad
//! headers, unknown session, malformed JSON) get a 4xx status; faults of a
//! well-formed request (unknown tool, unreachable upstream) are answered with
//! HTTP 200 and a JSON-RPC error, which is what MCP clients surface to the model.

use crate::body::Body;
use crate::protocol::error::ProtocolError;
use crate::protocol::jsonrpc::{self, Id};
use crate::protocol::version::{self, Era};
use http::{header, HeaderValue, Response, StatusCode};

/// JSON-RPC / MCP error codes the gateway emits.
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
    /// MCP: the resource named in `resources/read` does not exist.
    pub(crate) const RESOURCE_NOT_FOUND: i64 = -32002;
    /// Gateway: transport-level rejection (headers, session, origin, size).
    pub(crate) const TRANSPORT: i64 = -32000;
    /// Gateway: the upstream MCP server could not be reached or answered badly.
    pub(crate) const UPSTREAM_UNAVAILABLE: i64 = -32001;
    /// Gateway: a rate limit or quota refused the call (legacy answers; the
    /// code is documented and kept for them).
    pub(crate) const RATE_LIMITED: i64 = -32029;
    /// Gateway, modern answers: a rate limit or quota refused the call. The
    /// 2026-07-28 revision reserves -32020..-32099 for the spec and asks new
    /// application codes to lie outside -32768..-32000 (`basic/index.mdx`,
    /// error codes).
    pub(crate) const RATE_LIMITED_MODERN: i64 = -31429;
    /// MCP 2026-07-28: a routing header is missing or disagrees with the body.
    pub(crate) const HEADER_MISMATCH: i64 = -32020;
    /// MCP 2026-07-28: the server needs a client capability the request
    /// did not declare.
    pub(crate) const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// MCP 2026-07-28: the request's revision is not supported.
    pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// MCP 2025-11-25: the request needs the user to visit a URL first
    /// (`URLElicitationRequiredError`, `client/elicitation.mdx`; retired by
    /// 2026-07-28, whose modern answers never carry it).
    pub(crate) const URL_ELICITATION_REQUIRED: i64 = -32042;
}

/// Everything that can end a request early.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayError {
    /// No route for this path.
    NoRoute(String),
    /// `/servers/{id}/mcp` names a server the registry does not hold.
    UnknownServer(String),
    /// HTTP method not served on this path; `allow` lists what is.
    MethodNotAllowed { allow: &'static str },
    /// The `Origin` header is not allowed (DNS-rebinding protection).
    ForbiddenOrigin(String),
    /// No credential, or one that does not prove who the caller is (401).
    /// `challenge` is the `WWW-Authenticate` value, filled in by the
    /// authentication phase (it knows the resource metadata URL).
    Unauthorized {
        message: String,
        challenge: Option<String>,
    },
    /// The caller is known but lacks a required scope (403).
    Forbidden {
        message: String,
        challenge: Option<String>,
    },
    /// A rate limit or quota refused the call (429).
    RateLimited { limit: String, retry_after_ms: u64 },
    /// The request body exceeds the configured limit.
    PayloadTooLarge { limit: usize },
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType(String),
    /// `Accept` does not allow both JSON and SSE answers.
    NotAcceptable(String),
    /// `MCP-Protocol-Version` names a revision the gateway does not speak.
    BadProtocolVersion(String),
    /// A non-initialize request came without `Mcp-Session-Id`.
    SessionRequired,
    /// Modern: a routing header is missing or disagrees with the body.
    HeaderMismatch(String),
    /// Modern: the request names a revision the gateway does not speak.
    UnsupportedVersion(String),
    /// The session id is unknown, expired, deleted or belongs to another endpoint.
    UnknownSession,
    /// The body is not JSON.
    Parse(String),
    /// The JSON is not a valid JSON-RPC message of a kind accepted here.
    InvalidRequest(String),
    /// The method is not served by this endpoint.
    MethodNotFound(String),
    /// The params are wrong (includes unknown tool or prompt names).
    InvalidParams(String),
    /// A tool's arguments do not fit its `inputSchema`: `path` is the JSON
    /// pointer of the failing location into the arguments (`/` for the
    /// whole object), returned as the error's `data.path` so a client (the
    /// playground) can show the message at the field it names.
    InvalidArguments {
        tool: String,
        path: String,
        message: String,
    },
    /// `resources/read` found no server that holds the resource.
    ResourceNotFound(String),
    /// An upstream could not be reached, timed out, or broke the protocol.
    Upstream { server: String, message: String },
    /// The server takes each user's own OAuth token and this caller has
    /// none that works: the user must connect at `url` first (a tool call
    /// answers this as a tool error naming the URL, see `gateway/guard.rs`).
    ConnectRequired {
        server: String,
        url: String,
        reason: String,
    },
    /// The agent API's model provider failed (every region tried, or a
    /// refusal no other region would change): 502.
    Provider { model: String, message: String },
    /// A record the request names does not exist (or is not the caller's
    /// to see), such as an approval (404).
    NotFound(String),
    /// The request conflicts with the record's state, such as deciding an
    /// approval decided already (409).
    Conflict(String),
    /// A configuration document the admin API was given does not parse:
    /// which document, and the parser's reason (400).
    BadDocument { path: String, reason: String },
    /// `If-Match` (or `If-None-Match: *`) named another version than the
    /// document's current one: another change came first (412).
    PreconditionFailed {
        path: String,
        /// The current version (`None`: the document does not exist).
        current: Option<u64>,
    },
    /// A change to an existing document came without `If-Match` (428):
    /// without it, a change made from a stale read would silently undo
    /// another.
    PreconditionRequired(String),
    /// Something that grants or limits access (registry, policy, issuers,
    /// API keys, counters, approvals) could not be loaded: the request is
    /// refused rather than served without it (fail closed, 503).
    Unavailable(String),
    /// A bug or a misconfiguration (500).
    Internal(String),
}

impl From<ProtocolError> for GatewayError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Parse(m) => GatewayError::Parse(m),
            ProtocolError::InvalidRequest(m) => GatewayError::InvalidRequest(m),
            ProtocolError::InvalidParams(m) => GatewayError::InvalidParams(m),
            ProtocolError::BadProtocolVersion(v) => GatewayError::BadProtocolVersion(v),
            ProtocolError::HeaderMismatch(m) => GatewayError::HeaderMismatch(m),
            ProtocolError::UnsupportedVersion(v) => GatewayError::UnsupportedVersion(v),
        }
    }
}

impl GatewayError {
    /// The HTTP status this error is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        use GatewayError::*;
        match self {
            NoRoute(_) | UnknownServer(_) | UnknownSession | NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) => StatusCode::CONFLICT,
            BadDocument { .. } => StatusCode::BAD_REQUEST,
            PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            PreconditionRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ForbiddenOrigin(_) | Forbidden { .. } => StatusCode::FORBIDDEN,
            Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            BadProtocolVersion(_)
            | SessionRequired
            | Parse(_)
            | InvalidRequest(_)
            | HeaderMismatch(_)
            | UnsupportedVersion(_) => StatusCode::BAD_REQUEST,
            MethodNotFound(_)
            | InvalidParams(_)
            | InvalidArguments { .. }
            | ResourceNotFound(_)
            | Upstream { .. }
            | ConnectRequired { .. } => StatusCode::OK,
            Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Provider { .. } => StatusCode::BAD_GATEWAY,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code.
    pub(crate) fn code(&self) -> i64 {
        use GatewayError::*;
        match self {
            Parse(_) => code::PARSE_ERROR,
            InvalidRequest(_) => code::INVALID_REQUEST,
            MethodNotFound(_) => code::METHOD_NOT_FOUND,
            InvalidParams(_) | InvalidArguments { .. } => code::INVALID_PARAMS,
            ResourceNotFound(_) => code::RESOURCE_NOT_FOUND,
            Upstream { .. } | Provider { .. } => code::UPSTREAM_UNAVAILABLE,
            ConnectRequired { .. } => code::URL_ELICITATION_REQUIRED,
            RateLimited { .. } => code::RATE_LIMITED,
            HeaderMismatch(_) => code::HEADER_MISMATCH,
            UnsupportedVersion(_) => code::UNSUPPORTED_PROTOCOL_VERSION,
            Internal(_) | Unavailable(_) => code::INTERNAL_ERROR,
            _ => code::TRANSPORT,
        }
    }

    /// The error's `data`: what the client needs to act on it.
    fn data(&self) -> Option<serde_json::Value> {
        match self {
            // Which revisions to retry with (2026-07-28 versioning rules).
            GatewayError::UnsupportedVersion(requested) => Some(serde_json::json!({
                "supported": version::MODERN,
                "requested": requested,
            })),
            // Which resource (`server/resources.mdx`, error handling, of
            // 2025-11-25 and 2026-07-28).
            GatewayError::ResourceNotFound(uri) => Some(serde_json::json!({ "uri": uri })),
            GatewayError::InvalidArguments { path, .. } => {
                Some(serde_json::json!({ "path": path }))
            }
            GatewayError::BadDocument { path, reason } => {
                Some(serde_json::json!({ "path": path, "reason": reason }))
            }
            GatewayError::PreconditionFailed { path, current } => {
                Some(serde_json::json!({ "path": path, "current_version": current }))
            }
            // The shape of 2025-11-25's URLElicitationRequiredError
            // (`schema/2025-11-25/schema.ts`), plus the gateway's own member.
            GatewayError::ConnectRequired { server, url, .. } => Some(serde_json::json!({
                "elicitations": [{
                    "mode": "url",
                    "elicitationId": format!("connect-{server}"),
                    "url": url,
                    "message": format!("Connect your account for '{server}' to continue"),
                }],
                "mcp-edge/connect": { "server": server, "url": url },
            })),
            _ => None,
        }
    }

    /// The HTTP status in `era`: a modern request is refused with the
    /// status its error code implies (`basic/transports/streamable-http.mdx`
    /// of 2026-07-28: unknown method 404, bad params 400).
    pub(crate) fn status_in(&self, era: Era) -> StatusCode {
        match (era, self) {
            (Era::Modern, GatewayError::MethodNotFound(_)) => StatusCode::NOT_FOUND,
            (
                Era::Modern,
                GatewayError::InvalidParams(_)
                | GatewayError::InvalidArguments { .. }
                | GatewayError::ResourceNotFound(_),
            ) => StatusCode::BAD_REQUEST,
            _ => self.status(),
        }
    }

    /// The JSON-RPC code in `era` (no modern answer uses a code the
    /// revision reserves).
    pub(crate) fn code_in(&self, era: Era) -> i64 {
        match (era, self) {
            (Era::Modern, GatewayError::RateLimited { .. }) => code::RATE_LIMITED_MODERN,
            // -32002 is retired by the revision: a missing resource is a bad
            // `uri` parameter.
            (Era::Modern, GatewayError::ResourceNotFound(_)) => code::INVALID_PARAMS,
            (Era::Modern, GatewayError::ConnectRequired { .. }) => code::UPSTREAM_UNAVAILABLE,
            _ => self.code(),
        }
    }

    /// The JSON-RPC error body (`{"jsonrpc":"2.0","id":..,"error":{..}}`).
    pub(crate) fn to_rpc_body(&self, id: Option<&Id>) -> Vec<u8> {
        self.to_rpc_body_in(Era::Legacy, id)
    }

    /// The JSON-RPC error body for a request of `era`.
    pub(crate) fn to_rpc_body_in(&self, era: Era, id: Option<&Id>) -> Vec<u8> {
        let data = self.data();
        jsonrpc::error_body(id, self.code_in(era), &self.to_string(), data.as_ref())
    }

    /// The whole HTTP response for this error, for a request of `era`.
    pub(crate) fn into_response_in(self, era: Era, id: Option<&Id>) -> Response<Body> {
        let mut builder = Response::builder()
            .status(self.status_in(era))
            .header(header::CONTENT_TYPE, crate::protocol::headers::JSON);
        match &self {
            GatewayError::MethodNotAllowed { allow } => {
                builder = builder.header(header::ALLOW, HeaderValue::from_static(allow));
            }
            GatewayError::Unauthorized {
                challenge: Some(c), ..
            }
            | GatewayError::Forbidden {
                challenge: Some(c), ..
            } => {
                if let Ok(value) = HeaderValue::from_str(c) {
                    builder = builder.header(header::WWW_AUTHENTICATE, value);
                }
            }
            GatewayError::Unavailable(_) => {
                builder = builder.header(header::RETRY_AFTER, "1");
            }
            GatewayError::RateLimited { retry_after_ms, .. } => {
                // Whole seconds, rounded up: never invite a retry that is too early.
                let secs = retry_after_ms.div_ceil(1000).max(1);
                builder = builder.header(header::RETRY_AFTER, secs.to_string());
            }
            _ => {}
        }
        builder
            .body(Body::Full(self.to_rpc_body_in(era, id)))
            .expect("static headers are valid")
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use GatewayError::*;
        match self {
            NoRoute(path) => write!(f, "Not found: {path} (MCP endpoints are /mcp and /servers/{{id}}/mcp)"),
            UnknownServer(id) => write!(f, "Unknown server '{id}'"),
            MethodNotAllowed { allow } => write!(f, "Method not allowed; this endpoint accepts {allow}"),
            ForbiddenOrigin(origin) => write!(f, "Forbidden: Origin '{origin}' is not allowed"),
            Unauthorized { message, .. } => write!(f, "Unauthorized: {message}"),
            RateLimited { limit, retry_after_ms } => write!(
                f,
                "Rate limit '{limit}' exceeded; retry after {} s",
                retry_after_ms.div_ceil(1000).max(1)
            ),
            Forbidden { message, .. } => write!(f, "Forbidden: {message}"),
            PayloadTooLarge { limit } => write!(f, "Request body exceeds the limit of {limit} bytes"),
            UnsupportedMediaType(got) => {
                write!(f, "Unsupported Content-Type '{got}': send application/json")
            }
            NotAcceptable(got) => write!(
                f,
                "Not Acceptable: Accept must list application/json and text/event-stream (got '{got}')"
            ),
            BadProtocolVersion(v) => write!(f, "Bad Request: unsupported MCP-Protocol-Version '{v}'"),
            HeaderMismatch(why) => write!(f, "Header mismatch: {why}"),
            UnsupportedVersion(_) => f.write_str("Unsupported protocol version"),
            SessionRequired => f.write_str("Bad Request: Mcp-Session-Id header is required"),
            UnknownSession => f.write_str("Session not found: it expired or was terminated; initialize a new one"),
            Parse(why) => write!(f, "Parse error: {why}"),
            InvalidRequest(why) => write!(f, "Invalid Request: {why}"),
            MethodNotFound(method) => write!(f, "Method not found: {method}"),
            InvalidParams(why) => write!(f, "Invalid params: {why}"),
            InvalidArguments {
                tool,
                path,
                message,
            } => write!(
                f,
                "Invalid params: Invalid arguments for tool {tool}: at '{path}': {message}"
            ),
            ResourceNotFound(uri) => write!(f, "Resource not found: {uri}"),
            Upstream { server, message } => write!(f, "Upstream server '{server}' failed: {message}"),
            // Never the URL: it carries a ticket, and errors are logged.
            // The answers that offer it put it in their own fields.
            ConnectRequired { server, reason, .. } => write!(
                f,
                "Server '{server}' needs your own account: {reason}. Connect it at the URL given, then try again"
            ),
            Provider { model, message } => write!(f, "Model '{model}' failed: {message}"),
            NotFound(why) => write!(f, "Not found: {why}"),
            Conflict(why) => write!(f, "Conflict: {why}"),
            BadDocument { path, reason } => write!(f, "Invalid document {path}: {reason}"),
            PreconditionFailed { path, current: Some(v) } => write!(
                f,
                "Precondition failed: {path} is at version {v}; read it again and retry with If-Match: \"{v}\""
            ),
            PreconditionFailed { path, current: None } => {
                write!(f, "Precondition failed: {path} does not exist")
            }
            PreconditionRequired(path) => write!(
                f,
                "Precondition required: {path} exists; send If-Match with the version you read (its ETag)"
            ),
            Unavailable(why) => write!(f, "Service unavailable: {why}; the request was refused"),
            Internal(why) => write!(f, "Internal error: {why}"),
        }
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_4xx_and_call_errors_are_200() {
        assert_eq!(GatewayError::UnknownSession.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            GatewayError::Parse("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            GatewayError::InvalidParams("x".into()).status(),
            StatusCode::OK
        );
        assert_eq!(
            GatewayError::PayloadTooLarge { limit: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn body_is_a_jsonrpc_error_with_the_request_id() {
        let body = GatewayError::MethodNotFound("foo/bar".into()).to_rpc_body(Some(&Id::Num(7)));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"]["code"], -32601);
        assert_eq!(v["error"]["message"], "Method not found: foo/bar");
    }

    #[test]
    fn auth_errors_carry_their_challenge() {
        let e = GatewayError::Unauthorized {
            message: "token expired".into(),
            challenge: Some(r#"Bearer error="invalid_token""#.into()),
        };
        let resp = e.into_response_in(Era::Legacy, Some(&Id::Num(1)));
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        let e = GatewayError::Forbidden {
            message: "missing scope".into(),
            challenge: None,
        };
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn rate_limits_are_429_with_retry_after() {
        let e = GatewayError::RateLimited {
            limit: "echo-burst".into(),
            retry_after_ms: 1500,
        };
        assert_eq!(
            e.to_string(),
            "Rate limit 'echo-burst' exceeded; retry after 2 s"
        );
        let resp = e.into_response_in(Era::Legacy, Some(&Id::Num(4)));
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let resp = GatewayError::MethodNotAllowed {
            allow: "POST, DELETE",
        }
        .into_response_in(Era::Legacy, None);
        assert_eq!(resp.headers()[header::ALLOW], "POST, DELETE");
        assert_eq!(resp.status(), 405);
    }
}
