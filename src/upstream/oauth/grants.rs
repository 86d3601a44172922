//! The gateway's requests to an authorization server: metadata reads,
//! the token endpoint (authorization code with PKCE, refresh), revocation
//! (RFC 7009) and dynamic registration. Each is bounded by the server's
//! timeout and reads at most [`MAX_ANSWER`] bytes; what a refusal says
//! beyond its `error` code stays out of answers and logs.

use crate::error::GatewayError;
use crate::identity::oauth::{token_error, ServerMetadata, TokenResponse};
use crate::ports::{with_timeout, HttpClient, Platform};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;

/// Everything a flow needs to talk to a server's authorization server.
#[derive(Clone)]
pub(crate) struct Found {
    pub metadata: ServerMetadata,
    /// The RFC 8707 resource indicator.
    pub resource: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client secret.
        f.debug_struct("Found")
            .field("issuer", &self.metadata.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The largest answer read from an authorization server.
const MAX_ANSWER: usize = 64 * 1024;

/// Requests on behalf of one server's connections.
pub(crate) struct Http<'a, P: Platform> {
    pub p: &'a P,
    pub server: &'a str,
    pub timeout_ms: u64,
}

/// Why a token request got no tokens.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The authorization server said no (`invalid_grant` and the like):
    /// the grant will not work again.
    Refused(String),
    /// It could not be asked, or answered badly: another try may work.
    Failed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Refused(code) => write!(f, "refused ({code})"),
            Refusal::Failed(why) => f.write_str(why),
        }
    }
}

impl<P: Platform> Http<'_, P> {
    /// An error naming the server this was for.
    pub(crate) fn fail(&self, message: String) -> GatewayError {
        GatewayError::Upstream {
            server: self.server.to_string(),
            message,
        }
    }

    async fn send(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<(http::StatusCode, Vec<u8>), String> {
        // The answer's body too is read within the timeout: a server that
        // sends headers and then trickles cannot hold a refresh open.
        let exchange = async {
            let response = self
                .p
                .http()
                .send(req)
                .await
                .map_err(|e| format!("unreachable: {}", e.0))?;
            let status = response.status();
            let body = response.into_body().collect(MAX_ANSWER).await?;
            Ok((status, body))
        };
        with_timeout(self.p.clock(), self.timeout_ms, exchange)
            .await
            .unwrap_or_else(|| Err(format!("timed out after {} ms", self.timeout_ms)))
    }

    /// GET `url`; its body when 200.
    pub(crate) async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let req = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| format!("{url}: {e}"))?;
        match self.send(req).await? {
            (s, body) if s.is_success() => Ok(body),
            (s, _) => Err(format!("{url} answered HTTP {}", s.as_u16())),
        }
    }
}

/// GET `url` as JSON.
pub(crate) async fn get_json<P: Platform, T: DeserializeOwned>(
    http: &Http<'_, P>,
    url: &str,
) -> Result<T, String> {
    let body = http.get(url).await?;
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

/// POSTs `body` (a form, or JSON when `json`) with HTTP Basic client
/// authentication when `client` has a secret; the JSON answer of a 2xx.
pub(crate) async fn post_form_json<P: Platform, T: DeserializeOwned>(
    http: &Http<'_, P>,
    url: &str,
    client: Option<(&str, &str)>,
    body: Vec<u8>,
    json: bool,
) -> Result<T, Refusal> {
    let kind = if json {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let mut req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, kind)
        .header(http::header::ACCEPT, "application/json");
    if let Some((id, secret)) = client {
        req = req.header(http::header::AUTHORIZATION, basic(id, secret));
    }
    let req = req.body(body).map_err(|e| Refusal::Failed(e.to_string()))?;
    let (status, body) = http.send(req).await.map_err(Refusal::Failed)?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| Refusal::Failed(format!("answer: {e}")));
    }
    if status.is_client_error() {
        return Err(Refusal::Refused(token_error(&body)));
    }
    Err(Refusal::Failed(format!("HTTP {}", status.as_u16())))
}

/// HTTP Basic client authentication; id and secret form-encoded before
/// they are joined (RFC 6749 § 2.3.1).
fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A form body of `pairs`, with the client's id when it has no secret
/// (public clients name themselves in the body, RFC 6749 § 3.2.1).
fn form(found: &Found, pairs: &[(&str, &str)]) -> (Vec<u8>, Option<(String, String)>) {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    let client = match &found.client_secret {
        Some(secret) => Some((found.client_id.clone(), secret.clone())),
        None => {
            f.append_pair("client_id", &found.client_id);
            None
        }
    };
    (f.finish().into_bytes(), client)
}

async fn token<P: Platform>(
    http: &Http<'_, P>,
    found: &Found,
    pairs: &[(&str, &str)],
) -> Result<TokenResponse, Refusal> {
    let (body, client) = form(found, pairs);
    let client = client.as_ref().map(|(i, s)| (i.as_str(), s.as_str()));
    let value: serde_json::Value =
        post_form_json(http, &found.metadata.token_endpoint, client, body, false).await?;
    TokenResponse::parse(value.to_string().as_bytes()).map_err(Refusal::Failed)
}

/// The authorization code, exchanged with its PKCE verifier.
pub(crate) async fn exchange<P: Platform>(
    http: &Http<'_, P>,
    found: &Found,
    code: &str,
    verifier: &str,
    callback: &str,
) -> Result<TokenResponse, Refusal> {
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", callback),
        ("code_verifier", verifier),
        ("resource", &found.resource),
    ];
    token(http, found, &pairs).await
}

/// New tokens for a refresh token.
pub(crate) async fn refresh<P: Platform>(
    http: &Http<'_, P>,
    found: &Found,
    refresh_token: &str,
) -> Result<TokenResponse, Refusal> {
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("resource", &found.resource),
    ];
    token(http, found, &pairs).await
}

/// Revokes `token` (RFC 7009); `Ok(false)` when the server has no
/// revocation endpoint.
pub(crate) async fn revoke<P: Platform>(
    http: &Http<'_, P>,
    found: &Found,
    token: &str,
    hint: &str,
) -> Result<bool, String> {
    let Some(endpoint) = &found.metadata.revocation_endpoint else {
        return Ok(false);
    };
    let (body, client) = form(found, &[("token", token), ("token_type_hint", hint)]);
    let client = client.as_ref().map(|(i, s)| (i.as_str(), s.as_str()));
    // RFC 7009 § 2.2: 200 with any body (often empty) means done.
    let mut req = http::Request::post(endpoint.as_str()).header(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    if let Some((id, secret)) = client {
        req = req.header(http::header::AUTHORIZATION, basic(id, secret));
    }
    let req = req.body(body).map_err(|e| e.to_string())?;
    match http.send(req).await? {
        (s, _) if s.is_success() => Ok(true),
        (s, body) => Err(format!("HTTP {}: {}", s.as_u16(), token_error(&body))),
    }
}
