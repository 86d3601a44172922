//! The credential an upstream request carries. Never the caller's own token:
//! per the registry, a JWT the gateway mints for that server naming the
//! caller, a static secret header, or nothing.

use crate::config::credentials::Credentials;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::authenticate::{AuthState, SIGNING_KEY_SECRET};
use crate::identity::mint;
use crate::identity::Principal;
use crate::ports::{Clock, Platform};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderName, HeaderValue};

/// Who the gateway acts for, and the `iss` it signs minted tokens with.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub issuer: String,
}

/// The header to add to every request to `server` on behalf of `caller`.
pub async fn header_for<P: Platform>(
    p: &P,
    auth: &AuthState,
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
            let now = p.clock().now_ms();
            let who = mint::cache_key(&caller.issuer, &caller.principal, audience, *ttl_secs);
            let token = match auth.minted.get(&who, &server.id, now) {
                Some(token) => token,
                None => {
                    let signer = auth.signer(p).await.ok_or_else(|| {
                        fail(format!(
                            "no signing key: set the {SIGNING_KEY_SECRET} secret"
                        ))
                    })?;
                    let mut jti = [0u8; 16];
                    p.random_bytes(&mut jti);
                    let jti = URL_SAFE_NO_PAD.encode(jti);
                    let token = signer.mint(
                        &caller.issuer,
                        &caller.principal,
                        audience,
                        &jti,
                        now,
                        *ttl_secs,
                    );
                    auth.minted
                        .put(&who, &server.id, token.clone(), now + ttl_secs * 1000);
                    token
                }
            };
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
    }
}
