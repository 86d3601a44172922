//! Reading the caller's credential off a request: `Authorization: Bearer …`
//! (a JWT, or an API key sent as a bearer token) or `X-API-Key`.

use crate::error::GatewayError;
use http::HeaderMap;

/// Tokens longer than this are refused before any parsing.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What the caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A compact JWS (three base64url segments).
    Jwt(String),
    /// A service account's API key.
    ApiKey(String),
    /// Nothing.
    None,
}

/// Reads the credential. `Authorization` wins over `X-API-Key`; a scheme other
/// than Bearer, an empty or oversized token is a 401.
pub fn from_headers(headers: &HeaderMap) -> Result<Credential, GatewayError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| invalid("the Authorization header is not text"))?;
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid("only the Bearer authorization scheme is accepted"));
        }
        return classify(token.trim());
    }
    if let Some(value) = headers.get("x-api-key") {
        let key = value
            .to_str()
            .map_err(|_| invalid("the X-API-Key header is not text"))?
            .trim();
        check_size(key)?;
        return Ok(Credential::ApiKey(key.to_string()));
    }
    Ok(Credential::None)
}

fn classify(token: &str) -> Result<Credential, GatewayError> {
    check_size(token)?;
    let segments: Vec<&str> = token.split('.').collect();
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if segments.len() == 3 && segments.iter().all(|s| base64url(s)) {
        Ok(Credential::Jwt(token.to_string()))
    } else if token.contains('.') {
        Err(invalid("the bearer token is not a well-formed JWT"))
    } else {
        Ok(Credential::ApiKey(token.to_string()))
    }
}

fn check_size(token: &str) -> Result<(), GatewayError> {
    if token.is_empty() {
        return Err(invalid("the credential is empty"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid(&format!(
            "the credential is longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    Ok(())
}

fn invalid(why: &str) -> GatewayError {
    GatewayError::Unauthorized {
        message: why.to_string(),
        challenge: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_bearer_jwts_api_keys_and_nothing() {
        assert_eq!(from_headers(&headers(&[])).unwrap(), Credential::None);
        assert_eq!(
            from_headers(&headers(&[("authorization", "Bearer aa.bb.cc")])).unwrap(),
            Credential::Jwt("aa.bb.cc".into())
        );
        assert_eq!(
            from_headers(&headers(&[("authorization", "bearer mk_live_123")])).unwrap(),
            Credential::ApiKey("mk_live_123".into())
        );
        assert_eq!(
            from_headers(&headers(&[("x-api-key", "mk_live_123")])).unwrap(),
            Credential::ApiKey("mk_live_123".into())
        );
    }

    #[test]
    fn refuses_bad_credentials() {
        let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        for bad in [
            "Basic dXNlcjpwdw==",
            "Bearer",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer a.b+.c",
            &too_long,
        ] {
            let err = from_headers(&headers(&[("authorization", bad)])).unwrap_err();
            assert!(matches!(err, GatewayError::Unauthorized { .. }), "{bad}");
        }
    }
}
