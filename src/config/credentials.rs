//! What the gateway presents to an upstream instead of the caller's token:
//! a JWT it mints for that server, a static secret header, or nothing.

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
        assert!(parse("s", r#"{"type":"oauth"}"#).is_err());
    }
}
