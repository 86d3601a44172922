//! Finding a server's authorization server and the gateway's client there:
//! the issuer (given, or the first one the upstream's RFC 9728 metadata
//! names), its RFC 8414 / OpenID metadata, and the client id (given, or
//! registered once per server with RFC 7591 dynamic registration and kept
//! in the connection store, sealed). Kept per isolate for
//! [`FOUND_TTL_MS`]; a failure is never kept.

use super::grants::{get_json, post_form_json, Found, Http};
use crate::config::credentials::OAuthClient;
use crate::config::Server;
use crate::error::GatewayError;
use crate::identity::oauth::{self, ResourceMetadata, ServerMetadata};
use crate::identity::vault::{self, Vault};
use crate::ports::{Clock, ConnectionRecord, Connections, Platform};
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// How long a server's discovered endpoints are reused in an isolate.
pub(crate) const FOUND_TTL_MS: u64 = 5 * 60 * 1000;
/// The owner dynamic registrations are kept under (no principal key has no
/// `|`, so none can be this).
const REGISTERED: &str = "~registered-client";

/// A dynamically registered client, as kept (sealed).
#[derive(Serialize, Deserialize)]
struct Registered {
    client_id: String,
    client_secret: Option<String>,
    issuer: String,
    /// The redirect URI it was registered with: another (`PUBLIC_URL`
    /// changed) registers anew.
    #[serde(default)]
    redirect: String,
}

/// The resource indicator of `server`: configured, else its first endpoint.
pub(crate) fn resource_of(server: &Server, oauth: &OAuthClient) -> String {
    oauth
        .resource
        .clone()
        .or_else(|| server.endpoints.first().map(|e| e.url.clone()))
        .unwrap_or_default()
}

/// `server`'s authorization server and client, found now or earlier in
/// this isolate. `callback` is this gateway's redirect URI (registration
/// names it).
pub(crate) async fn find<P: Platform>(
    p: &P,
    http: &Http<'_, P>,
    cache: &crate::cache::Bounded<String, Rc<Found>>,
    (server, oauth): (&Server, &OAuthClient),
    vault: &Vault,
    callback: &str,
) -> Result<Rc<Found>, GatewayError> {
    let now = p.clock().now_ms();
    let key = format!("{}|{:?}|{callback}", server.id, oauth);
    if let Some(found) = cache.get(&key, now) {
        return Ok(found);
    }
    let resource = resource_of(server, oauth);
    let issuer = match &oauth.authorization_server {
        Some(issuer) => issuer.clone(),
        None => issuer_of(http, &resource).await?,
    };
    let metadata = metadata_of(http, &issuer).await?;
    let (client_id, client_secret) = match &oauth.client_id {
        Some(id) => {
            let secret =
                match &oauth.client_secret {
                    None => None,
                    Some(name) => Some(p.secret(name).await.ok_or_else(|| {
                        http.fail(format!("the client secret {name} is not set"))
                    })?),
                };
            (id.clone(), secret)
        }
        None => {
            let r = registered(p, http, server, &metadata, vault, callback).await?;
            (r.client_id, r.client_secret)
        }
    };
    let found = Rc::new(Found {
        metadata,
        resource,
        client_id,
        client_secret,
        scopes: oauth.scopes.clone(),
    });
    cache.insert(key, found.clone(), now + FOUND_TTL_MS, now);
    Ok(found)
}

/// The issuer the resource's metadata names first.
async fn issuer_of<P: Platform>(
    http: &Http<'_, P>,
    resource: &str,
) -> Result<String, GatewayError> {
    let mut last = String::from("no metadata URL");
    for url in oauth::resource_metadata_urls(resource) {
        match get_json::<P, ResourceMetadata>(http, &url).await {
            Ok(m) => {
                if let Some(named) = m.resource.as_deref() {
                    if named.trim_end_matches('/') != resource.trim_end_matches('/') {
                        last = format!("its metadata describes '{named}', not '{resource}'");
                        continue;
                    }
                }
                let first = m.authorization_servers.into_iter().next();
                return match first {
                    None => Err(http.fail("its metadata names no authorization server".into())),
                    Some(issuer) if !crate::config::credentials::is_secure_url(&issuer) => {
                        Err(http.fail(format!("its metadata names '{issuer}', not an https URL")))
                    }
                    Some(issuer) => Ok(issuer),
                };
            }
            Err(e) => last = e,
        }
    }
    Err(http.fail(format!(
        "cannot find its authorization server (RFC 9728 metadata: {last}); set credentials.authorization_server"
    )))
}

/// The issuer's metadata, from the first well-known URL that has it.
async fn metadata_of<P: Platform>(
    http: &Http<'_, P>,
    issuer: &str,
) -> Result<ServerMetadata, GatewayError> {
    let mut last = String::new();
    for url in oauth::metadata_urls(issuer) {
        match http.get(&url).await {
            Ok(body) => match ServerMetadata::parse(&body, issuer) {
                Ok(m) => return Ok(m),
                Err(e) => last = e,
            },
            Err(e) => last = e,
        }
    }
    Err(http.fail(format!("authorization server {issuer}: {last}")))
}

/// The client registered for `server` at its authorization server: kept
/// in the store, else registered now (RFC 7591, a public client using
/// PKCE). Two instances registering at once each get a client; the one
/// stored last is used from then on, and both work.
async fn registered<P: Platform>(
    p: &P,
    http: &Http<'_, P>,
    server: &Server,
    metadata: &ServerMetadata,
    vault: &Vault,
    callback: &str,
) -> Result<Registered, GatewayError> {
    let context = vault::connection_context(REGISTERED, &server.id);
    if let Some(kept) = p.connections().get(REGISTERED, &server.id).await? {
        let opened = vault
            .open(&kept.sealed, &context)
            .and_then(|plain| serde_json::from_slice::<Registered>(&plain).ok());
        if let Some(r) = opened.filter(|r| r.issuer == metadata.issuer && r.redirect == callback) {
            return Ok(r);
        }
    }
    let endpoint = metadata.registration_endpoint.as_deref().ok_or_else(|| {
        http.fail("no client_id is configured and the authorization server offers no dynamic registration".into())
    })?;
    #[derive(Deserialize)]
    struct Answer {
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
    }
    let request = serde_json::json!({
        "client_name": crate::upstream::CLIENT_NAME,
        "redirect_uris": [callback],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let answer: Answer =
        post_form_json(http, endpoint, None, request.to_string().into_bytes(), true)
            .await
            .map_err(|e| http.fail(format!("dynamic client registration: {e}")))?;
    let r = Registered {
        client_id: answer.client_id,
        client_secret: answer.client_secret,
        issuer: metadata.issuer.clone(),
        redirect: callback.to_string(),
    };
    let now = p.clock().now_ms();
    let plain = serde_json::to_vec(&r).expect("serializes");
    let record = ConnectionRecord {
        owner: REGISTERED.into(),
        server: server.id.clone(),
        generation: 0,
        sealed: super::seal_under(p, vault, &plain, &context),
        expires_ms: 0,
        refreshable: false,
        scope: String::new(),
        connected_ms: now,
        refreshed_ms: 0,
        refreshing_until_ms: 0,
    };
    p.connections().put(&record).await?;
    Ok(r)
}

/// Whether a stored record is a registration rather than a user's.
pub(crate) fn is_registration(record: &ConnectionRecord) -> bool {
    record.owner == REGISTERED
}
