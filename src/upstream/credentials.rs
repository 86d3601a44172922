//! The credential an upstream request carries. Never the caller's own token:
//! per the registry, a JWT the gateway mints for that server naming the
//! caller, a static secret header, the user's own OAuth token for that
//! server (`oauth`), or nothing.

use super::minter::{Grant, Minter};
use crate::config::credentials::Credentials;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::Principal;
use crate::ports::Platform;
use http::{HeaderName, HeaderValue};

/// Who the gateway acts for, and the `iss` it signs minted tokens with.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    pub issuer: String,
}

/// The header to add to every request to `server` on behalf of `caller`.
pub(crate) async fn header_for<P: Platform>(
    p: &P,
    minter: &Minter,
    server: &Server,
    caller: &Caller,
) -> Result<Option<(HeaderName, HeaderValue)>, GatewayError> {
    let fail = |message: String| GatewayError::Upstream {
        server: server.id.clone(),
        message,
    };
    match &server.credentials {
        Credentials::None => Ok(None),
        Credentials::Jwt { audience, ttl_secs } => {
            let grant = Grant {
                issuer: &caller.issuer,
                principal: &caller.principal,
                audience,
                ttl_secs: *ttl_secs,
                server: &server.id,
            };
            let token = minter.token(p, &grant).await.map_err(fail)?;
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .expect("a JWT is a valid header value");
            Ok(Some((http::header::AUTHORIZATION, value)))
        }
        Credentials::Header {
            name,
            secret,
            prefix,
        } => {
            let value = p
                .secret(secret)
                .await
                .ok_or_else(|| fail(format!("the secret {secret} is not set")))?;
            let value = HeaderValue::from_str(&format!("{prefix}{value}"))
                .map_err(|_| fail(format!("the secret {secret} is not a valid header value")))?;
            Ok(Some((name.clone(), value)))
        }
        Credentials::OAuth(oauth) => {
            let owner = caller.principal.key();
            if caller.principal.is_anonymous() {
                // An anonymous caller has no account to connect.
                return Err(fail("the server needs each user's own account; anonymous callers cannot connect one".into()));
            }
            let bearer = minter
                .oauth
                .bearer(p, (server, oauth), &owner, &caller.issuer)
                .await?;
            let value = HeaderValue::from_str(&bearer)
                .map_err(|_| fail("the stored access token is not a valid header value".into()))?;
            Ok(Some((http::header::AUTHORIZATION, value)))
        }
    }
}
