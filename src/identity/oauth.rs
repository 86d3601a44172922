//! The gateway as an OAuth client of third-party authorization servers, on
//! behalf of one user: the pure parts. PKCE, the metadata documents read
//! to find the endpoints, the token endpoint's answers, and the
//! `WWW-Authenticate` challenge of an upstream's 401. The requests
//! themselves are made in `upstream/oauth/`.
//!
//! Rules followed (MCP `docs/specification/2025-11-25/basic/authorization.mdx`
//! and its 2026-07-28 successor, in `modelcontextprotocol/modelcontextprotocol`):
//! the authorization server is found from the resource's RFC 9728 metadata
//! (`authorization_servers`), itself named by the 401's `resource_metadata`
//! parameter or found at the well-known URL; its metadata is read at the
//! RFC 8414 URL (path inserted), then the OpenID Connect ones; PKCE with
//! `S256` is required, and a server whose metadata does not list `S256` in
//! `code_challenge_methods_supported` is refused; every authorization and
//! token request names the resource (RFC 8707).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The PKCE challenge of `verifier` (`S256`, RFC 7636 § 4.2).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes as base64url: a PKCE verifier (43 characters, RFC 7636
/// § 4.1), a `state`, a browser binding.
pub(crate) fn random_token(bytes: [u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization server's metadata (RFC 8414 § 2), the fields used.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub(crate) struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207 § 3: the server puts `iss` in every authorization answer.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl ServerMetadata {
    /// Parses a metadata document fetched for `issuer` and checks it: the
    /// issuer it names is the one asked for (RFC 8414 § 3.3), the endpoints
    /// are http(s) URLs, and PKCE `S256` is offered.
    pub(crate) fn parse(body: &[u8], issuer: &str) -> Result<ServerMetadata, String> {
        let m: ServerMetadata = serde_json::from_slice(body)
            .map_err(|e| format!("authorization server metadata: {e}"))?;
        if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(format!(
                "authorization server metadata names issuer '{}', not '{issuer}'",
                m.issuer
            ));
        }
        for url in [&m.authorization_endpoint, &m.token_endpoint]
            .into_iter()
            .chain(m.revocation_endpoint.as_ref())
            .chain(m.registration_endpoint.as_ref())
        {
            if !crate::config::credentials::is_secure_url(url) {
                return Err(format!(
                    "authorization server endpoint '{url}' is not an https URL (http only to localhost)"
                ));
            }
        }
        let s256 = m
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| methods.iter().any(|x| x == "S256"));
        if !s256 {
            return Err("the authorization server does not offer PKCE S256".into());
        }
        Ok(m)
    }
}

/// The URLs an issuer's metadata is looked for at, in order: RFC 8414 with
/// the path inserted, OpenID Connect with the path inserted, then appended.
pub(crate) fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let (origin, path) = split_origin(issuer);
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    if !path.is_empty() {
        urls.push(format!("{issuer}/.well-known/openid-configuration"));
    }
    urls
}

/// The protected-resource metadata URLs of a resource (RFC 9728 § 3.1):
/// path inserted, then the origin's.
pub(crate) fn resource_metadata_urls(resource: &str) -> Vec<String> {
    let (origin, path) = split_origin(resource.trim_end_matches('/'));
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    )];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    }
    urls
}

/// `scheme://host[:port]` and the path of a URL (without its query).
fn split_origin(url: &str) -> (&str, &str) {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

/// A resource's metadata (RFC 9728 § 2), the fields used.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResourceMetadata {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
}

/// A token endpoint's success (RFC 6749 § 5.1).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl TokenResponse {
    /// Parses a 200 answer; only bearer tokens are usable here.
    pub(crate) fn parse(body: &[u8]) -> Result<TokenResponse, String> {
        let t: TokenResponse =
            serde_json::from_slice(body).map_err(|e| format!("token response: {e}"))?;
        let bearer = t
            .token_type
            .as_deref()
            .is_none_or(|k| k.eq_ignore_ascii_case("bearer"));
        if !bearer || t.access_token.is_empty() {
            return Err("token response: not a bearer access token".into());
        }
        Ok(t)
    }
}

/// A token endpoint's refusal (RFC 6749 § 5.2): its `error` code, never its
/// description (the server's own words stay out of answers and the trail).
pub(crate) fn token_error(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Refusal {
        error: String,
    }
    serde_json::from_slice::<Refusal>(body)
        .ok()
        .map(|r| r.error)
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "invalid_response".into())
}

/// The value of auth-param `name` in a `WWW-Authenticate` value (RFC 9110
/// § 11.6.1): quoted or a token. One pass over the value, whatever it holds.
pub(crate) fn challenge_param(header: &str, name: &str) -> Option<String> {
    let bytes = header.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // A parameter name: a run of token characters followed by '='.
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || b"_-.".contains(&bytes[i])) {
            i += 1;
        }
        // Bytes, not text: a value may hold non-ASCII, and a byte offset
        // inside a character must never be sliced at.
        let word = &bytes[start..i];
        let mut j = i;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'=' && !word.is_empty() {
            j += 1;
            while j < bytes.len() && bytes[j] == b' ' {
                j += 1;
            }
            let mut value = String::new();
            if j < bytes.len() && bytes[j] == b'"' {
                j += 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    value.push(bytes[j] as char);
                    j += 1;
                }
                j += 1;
            } else {
                while j < bytes.len() && bytes[j] != b',' && bytes[j] != b' ' {
                    value.push(bytes[j] as char);
                    j += 1;
                }
            }
            if word.eq_ignore_ascii_case(name.as_bytes()) {
                return Some(value);
            }
            i = j;
        } else {
            i = i.max(start + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn metadata_must_name_its_issuer_and_offer_s256() {
        let good = br#"{"issuer":"https://as.example/t","authorization_endpoint":"https://as.example/t/auth",
            "token_endpoint":"https://as.example/t/token","code_challenge_methods_supported":["S256"]}"#;
        assert!(ServerMetadata::parse(good, "https://as.example/t").is_ok());
        assert!(ServerMetadata::parse(good, "https://evil.example/t")
            .unwrap_err()
            .contains("names issuer"));
        let plain =
            br#"{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a",
            "token_endpoint":"https://as.example/t","code_challenge_methods_supported":["plain"]}"#;
        assert!(ServerMetadata::parse(plain, "https://as.example")
            .unwrap_err()
            .contains("S256"));
        let js = br#"{"issuer":"https://as.example","authorization_endpoint":"javascript:alert(1)",
            "token_endpoint":"https://as.example/t","code_challenge_methods_supported":["S256"]}"#;
        assert!(ServerMetadata::parse(js, "https://as.example").is_err());
    }

    #[test]
    fn well_known_urls_insert_the_path() {
        assert_eq!(
            metadata_urls("https://as.example/tenant/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant",
                "https://as.example/.well-known/openid-configuration/tenant",
                "https://as.example/tenant/.well-known/openid-configuration"
            ]
        );
        assert_eq!(metadata_urls("http://127.0.0.1:9").len(), 2);
        assert_eq!(
            resource_metadata_urls("https://mcp.example/v1/mcp"),
            [
                "https://mcp.example/.well-known/oauth-protected-resource/v1/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource"
            ]
        );
    }

    #[test]
    fn challenge_params_quoted_or_not() {
        let h = r#"Bearer realm="x", error="invalid_token", resource_metadata="https://m.example/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            challenge_param(h, "resource_metadata").as_deref(),
            Some("https://m.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            challenge_param(h, "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            challenge_param("Bearer scope=read", "scope").as_deref(),
            Some("read")
        );
        assert_eq!(challenge_param("Bearer", "scope"), None);
        assert_eq!(challenge_param(r#"Bearer a="unterminated"#, "b"), None);
        assert_eq!(
            challenge_param("Bearer é=1, ü, scope=x", "scope").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn challenge_parsing_is_linear() {
        // Long runs of what starts a parameter never rescan.
        let hostile = "a".repeat(200_000) + &"=\"".repeat(50_000) + &" ,".repeat(50_000);
        let t = std::time::Instant::now();
        assert_eq!(challenge_param(&hostile, "resource_metadata"), None);
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn token_responses() {
        let t = TokenResponse::parse(
            br#"{"access_token":"a","token_type":"Bearer","expires_in":5,"refresh_token":"r"}"#,
        )
        .unwrap();
        assert_eq!(
            (t.expires_in, t.refresh_token.as_deref()),
            (Some(5), Some("r"))
        );
        assert!(TokenResponse::parse(br#"{"access_token":"a","token_type":"mac"}"#).is_err());
        assert_eq!(
            token_error(br#"{"error":"invalid_grant","error_description":"x"}"#),
            "invalid_grant"
        );
        assert_eq!(token_error(b"<html>"), "invalid_response");
    }
}
