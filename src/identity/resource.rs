//! The gateway as an OAuth 2.1 protected resource: RFC 9728 metadata, and the
//! `WWW-Authenticate` challenges of 401 and 403 answers that point clients to
//! it (MCP authorization spec).

use serde_json::{json, Value};

/// Where protected-resource metadata lives.
pub(crate) const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The gateway's public base URL: `PUBLIC_URL` when configured, else the
/// scheme and host the request came in on.
pub(crate) fn base_url(
    public_url: Option<&str>,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = uri.scheme_str().unwrap_or("http");
    format!("{scheme}://{host}")
}

/// Whether a base URL names this machine (`localhost`, `127.0.0.0/8`,
/// `[::1]`): a Host-derived base is only safe there, because anywhere else
/// the Host header is the caller's to choose.
pub(crate) fn is_loopback(base: &str) -> bool {
    crate::config::credentials::is_loopback(base)
}

/// The resource URL of an endpoint (`/mcp`, `/servers/{id}/mcp`).
pub(crate) fn resource_url(base: &str, endpoint: &str) -> String {
    format!("{base}{endpoint}")
}

/// The metadata URL of an endpoint (the path-suffixed form).
pub(crate) fn metadata_url(base: &str, endpoint: &str) -> String {
    format!("{base}{WELL_KNOWN}{endpoint}")
}

/// The metadata document for `resource`.
pub(crate) fn metadata(
    resource: &str,
    authorization_servers: &[String],
    scopes_supported: &[String],
) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": authorization_servers,
        "scopes_supported": scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-edge",
    })
}

/// The endpoint a metadata path describes: `/.well-known/oauth-protected-resource`
/// alone describes the whole gateway (`""`), a suffix names one endpoint.
pub(crate) fn described_endpoint(path: &str) -> Option<&str> {
    path.strip_prefix(WELL_KNOWN)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `WWW-Authenticate` for a 401: where the metadata is, which scopes to ask
/// for, and (when a token was presented) why it was refused.
pub(crate) fn challenge_401(metadata_url: &str, scope: &[String], error: Option<&str>) -> String {
    let mut out = format!(r#"Bearer resource_metadata="{}""#, quote(metadata_url));
    if !scope.is_empty() {
        out.push_str(&format!(r#", scope="{}""#, quote(&scope.join(" "))));
    }
    if let Some(why) = error {
        out.push_str(&format!(
            r#", error="invalid_token", error_description="{}""#,
            quote(why)
        ));
    }
    out
}

/// `WWW-Authenticate` for a 403 when scopes are missing.
pub(crate) fn challenge_403(metadata_url: &str, scope: &[String]) -> String {
    format!(
        r#"Bearer error="insufficient_scope", scope="{}", resource_metadata="{}""#,
        quote(&scope.join(" ")),
        quote(metadata_url)
    )
}

/// Keeps a value inside a quoted-string (no quotes, backslashes or controls).
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_rfc_9728() {
        let headers =
            http::HeaderMap::from_iter([(http::header::HOST, "gw.example:8787".parse().unwrap())]);
        let uri: http::Uri = "/mcp".parse().unwrap();
        let base = base_url(None, &uri, &headers);
        assert_eq!(base, "http://gw.example:8787");
        assert_eq!(
            base_url(Some("https://mcp.corp/"), &uri, &headers),
            "https://mcp.corp"
        );
        assert_eq!(
            metadata_url(&base, "/servers/a/mcp"),
            "http://gw.example:8787/.well-known/oauth-protected-resource/servers/a/mcp"
        );
        assert_eq!(
            described_endpoint("/.well-known/oauth-protected-resource/mcp"),
            Some("/mcp")
        );
        assert_eq!(
            described_endpoint("/.well-known/oauth-protected-resource"),
            Some("")
        );
        assert_eq!(
            described_endpoint("/.well-known/oauth-protected-resourcex"),
            None
        );
    }

    #[test]
    fn loopback_bases() {
        for base in [
            "http://127.0.0.1:8787",
            "http://localhost:3000",
            "http://[::1]:80",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback(base), "{base}");
        }
        for base in [
            "http://gw.example",
            "http://10.0.0.1:8787",
            "https://localhost.evil.test",
        ] {
            assert!(!is_loopback(base), "{base}");
        }
    }

    #[test]
    fn challenges() {
        let scope = vec!["mcp:tools".to_string(), "mcp:admin".to_string()];
        assert_eq!(
            challenge_401(
                "http://g/.well-known/oauth-protected-resource/mcp",
                &scope,
                None
            ),
            r#"Bearer resource_metadata="http://g/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:admin""#
        );
        assert!(challenge_401("u", &[], Some("expired \"now\""))
            .ends_with(r#"error_description="expired now""#));
        assert_eq!(
            challenge_403("u", &scope),
            r#"Bearer error="insufficient_scope", scope="mcp:tools mcp:admin", resource_metadata="u""#
        );
    }
}
