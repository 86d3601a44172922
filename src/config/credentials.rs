//! What the gateway presents to an upstream instead of the caller's token:
//! a JWT it mints for that server, a static secret header, the user's own
//! OAuth token for a third-party server (see `upstream/oauth/`), or nothing.

use serde::Deserialize;

/// As stored in a registry entry's `credentials`.
#[derive(Debug, Deserialize, Default)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum CredentialSpec {
    #[default]
    None,
    /// A short-lived JWT signed with the gateway's key (`UPSTREAM_SIGNING_KEY`).
    Jwt {
        /// `aud` of the minted tokens; default: the server id.
        audience: Option<String>,
        /// Lifetime, at most 300 s (the default).
        ttl_secs: Option<u64>,
    },
    /// A static header whose value comes from a secret.
    Header {
        /// Header name, default `Authorization`.
        header: Option<String>,
        /// Name of the secret (Workers secret / Spin variable) holding the value.
        secret: String,
        /// Prepended to the secret, such as `Bearer `.
        prefix: Option<String>,
    },
    /// Each user's own OAuth token, got by connecting once (`/connect/{id}`).
    #[serde(rename = "oauth")]
    OAuth {
        /// The authorization server's issuer URL; default: the first one
        /// the upstream's RFC 9728 metadata names.
        authorization_server: Option<String>,
        /// The gateway's client id there; default: registered dynamically
        /// (RFC 7591) where the server offers it.
        client_id: Option<String>,
        /// Name of the secret holding the client secret (confidential
        /// clients; `client_secret_basic`).
        client_secret: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
        /// The RFC 8707 resource indicator; default: the server's first
        /// endpoint URL.
        resource: Option<String>,
    },
}

/// A server's OAuth client settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub authorization_server: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
}

/// Checked credentials of one server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    #[default]
    None,
    Jwt {
        audience: String,
        ttl_secs: u64,
    },
    Header {
        name: http::HeaderName,
        secret: String,
        prefix: String,
    },
    OAuth(Box<OAuthClient>),
}

/// An https URL, or http to this machine (local development and tests):
/// tokens and client secrets never cross a network in the clear.
pub(crate) fn is_secure_url(url: &str) -> bool {
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("https") => uri.host().is_some_and(|h| !h.is_empty()),
        Ok(uri) if uri.scheme_str() == Some("http") => is_loopback(url),
        _ => false,
    }
}

/// Whether a URL names this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
pub(crate) fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    let host = uri
        .host()
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_url(field: &str, url: &Option<String>) -> Result<(), String> {
    match url {
        Some(u) if !is_secure_url(u) => Err(format!(
            "credentials.{field} '{u}' is not an https URL (http only to localhost)"
        )),
        _ => Ok(()),
    }
}

impl Credentials {
    pub(crate) fn from_spec(server_id: &str, spec: CredentialSpec) -> Result<Credentials, String> {
        Ok(match spec {
            CredentialSpec::None => Credentials::None,
            CredentialSpec::Jwt { audience, ttl_secs } => {
                let ttl_secs = ttl_secs.unwrap_or(300);
                if !(1..=300).contains(&ttl_secs) {
                    return Err(format!(
                        "credentials.ttl_secs must be 1..=300, got {ttl_secs}"
                    ));
                }
                Credentials::Jwt {
                    audience: audience.unwrap_or_else(|| server_id.to_string()),
                    ttl_secs,
                }
            }
            CredentialSpec::Header {
                header,
                secret,
                prefix,
            } => {
                let header = header.unwrap_or_else(|| "authorization".into());
                let name = http::HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("credentials.header '{header}' is not a header name"))?;
                if secret.trim().is_empty() {
                    return Err("credentials.secret is empty".into());
                }
                if super::Settings::is_own(&secret) {
                    return Err(format!(
                        "credentials.secret '{secret}' is one of the gateway's own settings or secrets; \
                         name a secret of the upstream's"
                    ));
                }
                Credentials::Header {
                    name,
                    secret,
                    prefix: prefix.unwrap_or_default(),
                }
            }
            CredentialSpec::OAuth {
                authorization_server,
                client_id,
                client_secret,
                scopes,
                resource,
            } => {
                check_url("authorization_server", &authorization_server)?;
                check_url("resource", &resource)?;
                if let Some(secret) = &client_secret {
                    if super::Settings::is_own(secret) {
                        return Err(format!(
                            "credentials.client_secret '{secret}' is one of the gateway's own settings or secrets"
                        ));
                    }
                    if client_id.is_none() {
                        return Err("credentials.client_secret needs a client_id".into());
                    }
                    // The secret goes to the token endpoint: never to one
                    // the upstream's own metadata chose.
                    if authorization_server.is_none() {
                        return Err(
                            "credentials.client_secret needs the authorization_server it is for"
                                .into(),
                        );
                    }
                }
                if let Some(bad) = scopes.iter().find(|s| {
                    s.is_empty()
                        || !s
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
                }) {
                    return Err(format!("credentials.scopes: '{bad}' is not a scope"));
                }
                Credentials::OAuth(Box::new(OAuthClient {
                    authorization_server,
                    client_id: client_id.filter(|c| !c.is_empty()),
                    client_secret,
                    scopes,
                    resource,
                }))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(id: &str, json: &str) -> Result<Credentials, String> {
        let spec: CredentialSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Credentials::from_spec(id, spec)
    }

    #[test]
    fn the_three_kinds() {
        assert_eq!(parse("s", r#"{"type":"none"}"#).unwrap(), Credentials::None);
        assert_eq!(
            parse("s", r#"{"type":"jwt"}"#).unwrap(),
            Credentials::Jwt {
                audience: "s".into(),
                ttl_secs: 300
            }
        );
        let h = parse(
            "s",
            r#"{"type":"header","secret":"GH_TOKEN","prefix":"Bearer "}"#,
        )
        .unwrap();
        assert_eq!(
            h,
            Credentials::Header {
                name: http::header::AUTHORIZATION,
                secret: "GH_TOKEN".into(),
                prefix: "Bearer ".into()
            }
        );
    }

    #[test]
    fn oauth_servers() {
        let c = parse(
            "gh",
            r#"{"type":"oauth","client_id":"gw","client_secret":"GH_CLIENT_SECRET","scopes":["repo"],
                "authorization_server":"https://github.com/login/oauth"}"#,
        )
        .unwrap();
        let Credentials::OAuth(c) = c else { panic!() };
        assert_eq!(c.client_id.as_deref(), Some("gw"));
        assert_eq!(c.scopes, ["repo"]);
        assert!(c.authorization_server.is_some() && c.resource.is_none());
        assert!(matches!(
            parse("x", r#"{"type":"oauth"}"#),
            Ok(Credentials::OAuth(_))
        ));
    }

    #[test]
    fn bad_specs_are_clear() {
        assert!(parse("s", r#"{"type":"jwt","ttl_secs":3600}"#)
            .unwrap_err()
            .contains("1..=300"));
        assert!(parse(
            "s",
            r#"{"type":"header","header":"bad header","secret":"x"}"#
        )
        .unwrap_err()
        .contains("not a header name"));
        assert!(parse("s", r#"{"type":"oauth","resource":"ftp://x"}"#)
            .unwrap_err()
            .contains("not an https URL"));
        assert!(parse(
            "s",
            r#"{"type":"oauth","resource":"http://mcp.example.com/"}"#
        )
        .is_err());
        assert!(parse(
            "s",
            r#"{"type":"oauth","resource":"http://127.0.0.1:9/mcp"}"#
        )
        .is_ok());
        assert!(parse(
            "s",
            r#"{"type":"oauth","client_id":"c","client_secret":"S"}"#
        )
        .unwrap_err()
        .contains("authorization_server"));
        assert!(parse("s", r#"{"type":"oauth","client_secret":"S"}"#)
            .unwrap_err()
            .contains("needs a client_id"));
        assert!(parse("s", r#"{"type":"oauth","scopes":["a b"]}"#).is_err());
    }
}
