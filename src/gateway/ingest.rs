//! Ingest: the HTTP-level checks every request passes before any MCP logic.
//!
//! Routing by path, the `Origin` check (DNS-rebinding protection), CORS for
//! browser clients such as MCP Inspector, and the Streamable HTTP rules for POST
//! bodies: content type, `Accept`, size.

use crate::body::Body;
use crate::config::Settings;
use crate::error::GatewayError;
use crate::protocol::headers;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/mcp`: every server, names prefixed.
    Aggregate,
    /// `/servers/{id}/mcp`: one server, names unchanged.
    Server(String),
    /// `/healthz`: liveness.
    Health,
    /// `/.well-known/oauth-protected-resource[{endpoint}]`: RFC 9728 metadata
    /// for the whole gateway (`""`) or one MCP endpoint.
    ResourceMetadata(String),
    /// `/.well-known/jwks.json`: the key minted upstream credentials verify with.
    Jwks,
    /// `/approvals/{id}`: one pending approval, for approvers.
    Approval(String),
    /// `/approvals`: the approvals inbox.
    Approvals,
    /// `/registry` (`None`) and `/registry/{id}`: discovery of the servers
    /// this caller may use.
    Registry(Option<String>),
    /// `/admin/{rest}`: the admin API (`rest` as given, checked there).
    Admin(String),
    /// `/v1/chat/completions`: the agent API.
    Chat,
    /// `/v1/models` (`None`) and `/v1/models/{name}`: the models this
    /// caller may use.
    Models(Option<String>),
    /// `/connect/{server}`: connect the caller's own account for a server
    /// that takes users' OAuth tokens.
    Connect(String),
    /// `/connect/{server}/callback`: where the authorization server sends
    /// the browser back (one redirect URI per server: RFC 9700 § 4.4.2,
    /// against mix-up).
    ConnectCallback(String),
    /// `/connections` (`None`) and `/connections/{server}`: the caller's
    /// own connections.
    Connections(Option<String>),
}

impl Route {
    pub(crate) fn parse(path: &str) -> Result<Route, GatewayError> {
        let trimmed = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        if let Some(endpoint) = crate::identity::resource::described_endpoint(trimmed) {
            // Only the gateway itself and its MCP endpoints are described.
            return match endpoint {
                "" => Ok(Route::ResourceMetadata(String::new())),
                e => match Route::parse(e) {
                    Ok(Route::Aggregate | Route::Server(_)) => {
                        Ok(Route::ResourceMetadata(e.to_string()))
                    }
                    _ => Err(GatewayError::NoRoute(path.to_string())),
                },
            };
        }
        match trimmed {
            "/mcp" => Ok(Route::Aggregate),
            "/registry" => Ok(Route::Registry(None)),
            "/approvals" => Ok(Route::Approvals),
            "/v1/chat/completions" => Ok(Route::Chat),
            "/v1/models" => Ok(Route::Models(None)),
            "/connections" => Ok(Route::Connections(None)),
            _ if trimmed.starts_with("/connect/") || trimmed.starts_with("/connections/") => {
                let (prefix, id) = trimmed[1..].split_once('/').expect("has a slash");
                let (id, back) = match id.strip_suffix("/callback") {
                    Some(id) if prefix == "connect" => (id, true),
                    _ => (id, false),
                };
                if !crate::protocol::names::valid_server_id(id) {
                    return Err(GatewayError::NoRoute(path.to_string()));
                }
                Ok(match prefix {
                    "connect" if back => Route::ConnectCallback(id.to_string()),
                    "connect" => Route::Connect(id.to_string()),
                    _ => Route::Connections(Some(id.to_string())),
                })
            }
            _ if trimmed.starts_with("/v1/models/") => {
                let name = &trimmed["/v1/models/".len()..];
                match crate::config::models::valid_name(name) {
                    true => Ok(Route::Models(Some(name.to_string()))),
                    false => Err(GatewayError::NoRoute(path.to_string())),
                }
            }
            _ if trimmed.starts_with("/registry/") => {
                let id = &trimmed["/registry/".len()..];
                match crate::protocol::names::valid_server_id(id) {
                    true => Ok(Route::Registry(Some(id.to_string()))),
                    false => Err(GatewayError::NoRoute(path.to_string())),
                }
            }
            _ if trimmed.starts_with("/admin/") => {
                let rest = &trimmed["/admin/".len()..];
                let valid = !rest.is_empty()
                    && rest.len() <= 256
                    && rest.split('/').all(|s| {
                        !s.is_empty()
                            && s.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
                            })
                    });
                match valid {
                    true => Ok(Route::Admin(rest.to_string())),
                    false => Err(GatewayError::NoRoute(path.to_string())),
                }
            }
            "/healthz" => Ok(Route::Health),
            "/.well-known/jwks.json" => Ok(Route::Jwks),
            _ if trimmed.starts_with("/approvals/") => {
                let id = &trimmed["/approvals/".len()..];
                let valid = !id.is_empty()
                    && id.len() <= 128
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if valid {
                    Ok(Route::Approval(id.to_string()))
                } else {
                    Err(GatewayError::NoRoute(path.to_string()))
                }
            }
            _ => match trimmed
                .strip_prefix("/servers/")
                .and_then(|rest| rest.strip_suffix("/mcp"))
            {
                Some(id) if !id.is_empty() && !id.contains('/') => {
                    Ok(Route::Server(id.to_string()))
                }
                _ => Err(GatewayError::NoRoute(path.to_string())),
            },
        }
    }

    /// The name sessions are bound to: a session opened on one endpoint is
    /// unknown on every other.
    pub(crate) fn endpoint_name(&self) -> String {
        match self {
            Route::Aggregate => "/mcp".into(),
            Route::Server(id) => format!("/servers/{id}/mcp"),
            Route::Health => "/healthz".into(),
            Route::ResourceMetadata(e) => format!("{}{e}", crate::identity::resource::WELL_KNOWN),
            Route::Jwks => "/.well-known/jwks.json".into(),
            Route::Approval(id) => format!("/approvals/{id}"),
            Route::Approvals => "/approvals".into(),
            Route::Registry(None) => "/registry".into(),
            Route::Registry(Some(id)) => format!("/registry/{id}"),
            Route::Admin(rest) => format!("/admin/{rest}"),
            Route::Chat => "/v1/chat/completions".into(),
            Route::Models(None) => "/v1/models".into(),
            Route::Models(Some(name)) => format!("/v1/models/{name}"),
            Route::Connect(id) => format!("/connect/{id}"),
            Route::ConnectCallback(id) => format!("/connect/{id}/callback"),
            Route::Connections(None) => "/connections".into(),
            Route::Connections(Some(id)) => format!("/connections/{id}"),
        }
    }

    /// The MCP endpoint whose credentials this route takes: discovery is
    /// authenticated like `/mcp` (a token for `/mcp` opens it; its 401
    /// points to `/mcp`'s metadata); so is the agent API, whose tools are
    /// `/mcp`'s.
    pub(crate) fn credential_endpoint(&self) -> String {
        match self {
            Route::Registry(_)
            | Route::Admin(_)
            | Route::Chat
            | Route::Models(_)
            | Route::Connect(_)
            | Route::ConnectCallback(_)
            | Route::Connections(_) => "/mcp".into(),
            other => other.endpoint_name(),
        }
    }
}

/// Checks `Origin` (DNS-rebinding protection). Absent (non-browser
/// clients) passes; a browser origin passes only when `ALLOWED_ORIGINS`
/// lists it, it is the origin of `PUBLIC_URL`, or it is the gateway's own
/// loopback origin ([`own_loopback_origin`]). Matching the `Host` header
/// alone proves nothing: in a rebinding attack the attacker's page and the
/// gateway share the attacker's host name, so both headers are theirs.
///
/// `authority` is the request URI's, where a host puts the address the
/// request was sent to instead of a `Host` header (Spin's wasi:http).
pub(crate) fn check_origin(
    headers: &HeaderMap,
    authority: Option<&str>,
    settings: &Settings,
) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let allowed = settings.allow_any_origin
        || settings.allowed_origins.contains(&origin)
        || settings.public_origin.as_deref() == Some(origin.as_str())
        || own_loopback_origin(&origin, headers, authority);
    if allowed {
        Ok(())
    } else {
        Err(GatewayError::ForbiddenOrigin(origin))
    }
}

/// Whether `origin` is a page the gateway served itself on this machine
/// (the playground under `make dev`, with no `PUBLIC_URL`): an `http`
/// origin whose host is a loopback address or `localhost` and which is
/// exactly the host the request was sent to. The browser sets `Origin`
/// from the page's own URL, so a rebinding page says the attacker's host
/// name, never a loopback one; another local site differs in its port.
fn own_loopback_origin(origin: &str, headers: &HeaderMap, authority: Option<&str>) -> bool {
    let Some(named) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority)
        .unwrap_or("");
    named.eq_ignore_ascii_case(host) && crate::config::credentials::is_loopback(origin)
}

/// Checks a POST's `Content-Type`, `Accept` and size.
pub(crate) fn check_post(
    headers: &HeaderMap,
    body_len: usize,
    settings: &Settings,
) -> Result<(), GatewayError> {
    check_json_body(headers, body_len, settings)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(accepts(accept, headers::JSON) && accepts(accept, headers::EVENT_STREAM)) {
        return Err(GatewayError::NotAcceptable(accept.to_string()));
    }
    Ok(())
}

/// Checks a POST body's size and that it is JSON (`Content-Type`): what a
/// web page cannot send without a preflight.
pub(crate) fn check_json_body(
    headers: &HeaderMap,
    body_len: usize,
    settings: &Settings,
) -> Result<(), GatewayError> {
    if body_len > settings.max_body_bytes {
        return Err(GatewayError::PayloadTooLarge {
            limit: settings.max_body_bytes,
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != headers::JSON {
        return Err(GatewayError::UnsupportedMediaType(content_type.to_string()));
    }
    Ok(())
}

/// Whether an `Accept` header admits `mime` (exactly or through a wildcard).
fn accepts(accept: &str, mime: &str) -> bool {
    let kind = mime.split('/').next().unwrap_or("");
    accept.split(',').any(|item| {
        let range = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        range == mime || range == "*/*" || range == format!("{kind}/*")
    })
}

/// Adds CORS headers for an allowed browser origin.
pub(crate) fn add_cors(headers: &HeaderMap, response: &mut Response<Body>) {
    let Some(origin) = headers.get(header::ORIGIN).cloned() else {
        return;
    };
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, traceresponse, ETag",
        ),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers a CORS preflight.
pub(crate) fn preflight() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT, DELETE, OPTIONS")
        .header(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, X-API-Key, traceparent, tracestate, If-Match, If-None-Match",
        )
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .body(Body::empty())
        .expect("static response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn routes() {
        assert_eq!(Route::parse("/mcp").unwrap(), Route::Aggregate);
        assert_eq!(Route::parse("/mcp/").unwrap(), Route::Aggregate);
        assert_eq!(
            Route::parse("/servers/notes/mcp").unwrap(),
            Route::Server("notes".into())
        );
        assert_eq!(
            Route::parse("/.well-known/oauth-protected-resource/servers/a/mcp").unwrap(),
            Route::ResourceMetadata("/servers/a/mcp".into())
        );
        assert_eq!(
            Route::parse("/.well-known/oauth-protected-resource").unwrap(),
            Route::ResourceMetadata(String::new())
        );
        assert!(Route::parse("/.well-known/oauth-protected-resource/healthz").is_err());
        assert_eq!(Route::parse("/.well-known/jwks.json").unwrap(), Route::Jwks);
        for bad in [
            "/",
            "/mcpx",
            "/servers//mcp",
            "/servers/a/b/mcp",
            "/servers/a",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_rules() {
        let mut s = Settings::default();
        assert!(check_origin(&headers(&[]), None, &s).is_ok());
        // A rebinding page: Origin and Host both name the attacker's host.
        let rebound = headers(&[
            ("origin", "http://evil.test:8787"),
            ("host", "evil.test:8787"),
        ]);
        assert_eq!(
            check_origin(&rebound, None, &s).unwrap_err(),
            GatewayError::ForbiddenOrigin("http://evil.test:8787".into()),
            "Host equal to Origin proves nothing"
        );
        let evil = headers(&[("origin", "http://evil.example"), ("host", "gw.example")]);
        assert!(check_origin(&evil, None, &s).is_err());
        s.allowed_origins = vec!["http://evil.example".into()];
        assert!(check_origin(&evil, None, &s).is_ok());
        let own = headers(&[("origin", "https://MCP.corp"), ("host", "mcp.corp")]);
        assert!(
            check_origin(&own, None, &s).is_err(),
            "no PUBLIC_URL: not trusted"
        );
        let s =
            Settings::from_vars(|k| (k == "PUBLIC_URL").then(|| "https://mcp.corp:443/".into()))
                .unwrap();
        assert!(
            check_origin(&own, None, &s).is_ok(),
            "the origin of PUBLIC_URL"
        );
        assert!(check_origin(&rebound, None, &s).is_err());
    }

    #[test]
    fn the_gateways_own_loopback_origin_passes_and_nothing_like_it() {
        let s = Settings::default();
        let ok = |origin: &'static str, host: &'static str| {
            check_origin(&headers(&[("origin", origin), ("host", host)]), None, &s).is_ok()
        };
        // The playground served by `make dev`.
        assert!(ok("http://127.0.0.1:8787", "127.0.0.1:8787"));
        assert!(ok("http://localhost:8787", "LOCALHOST:8787"));
        assert!(ok("http://[::1]:8787", "[::1]:8787"));
        // Another site on this machine, or the same one under another name.
        assert!(!ok("http://127.0.0.1:3000", "127.0.0.1:8787"));
        assert!(!ok("http://localhost:8787", "127.0.0.1:8787"));
        // A rebinding page, and a loopback-looking name that is none.
        assert!(!ok("http://evil.test:8787", "evil.test:8787"));
        assert!(!ok(
            "http://127.0.0.1.evil.test:8787",
            "127.0.0.1.evil.test:8787"
        ));
        // Not http, or no Host to compare with.
        assert!(!ok("https://127.0.0.1:8787", "127.0.0.1:8787"));
        let bare = headers(&[("origin", "http://127.0.0.1:8787")]);
        assert!(check_origin(&bare, None, &s).is_err());
        // A host that names the address in the URI, not in a Host header.
        assert!(check_origin(&bare, Some("127.0.0.1:8787"), &s).is_ok());
        assert!(check_origin(&bare, Some("127.0.0.1:9999"), &s).is_err());
    }

    #[test]
    fn post_rules() {
        let s = Settings::default();
        let good = headers(&[
            ("content-type", "application/json; charset=utf-8"),
            ("accept", "application/json, text/event-stream"),
        ]);
        assert!(check_post(&good, 10, &s).is_ok());
        let wildcard = headers(&[("content-type", "application/json"), ("accept", "*/*")]);
        assert!(check_post(&wildcard, 10, &s).is_ok());
        let json_only = headers(&[
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ]);
        assert!(matches!(
            check_post(&json_only, 10, &s),
            Err(GatewayError::NotAcceptable(_))
        ));
        let text = headers(&[("content-type", "text/plain"), ("accept", "*/*")]);
        assert!(matches!(
            check_post(&text, 10, &s),
            Err(GatewayError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            check_post(&good, s.max_body_bytes + 1, &s),
            Err(GatewayError::PayloadTooLarge { .. })
        ));
    }
}
