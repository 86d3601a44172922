//! The authentication phase of the pipeline, and the identity documents the
//! gateway serves: protected-resource metadata (RFC 9728) and the JWKS of the
//! key it signs upstream credentials with.
//!
//! Every MCP request is authenticated before anything else is done for it.
//! No credential: the caller is anonymous if the registry opens at least one
//! reachable server to anonymous use, else 401 with a challenge that points to
//! the metadata. A credential that fails is always a 401 (never a silent
//! fallback to anonymous). A caller without the required scopes gets 403.

use super::ingest::Route;
use super::respond;
use super::Gateway;
use crate::body::Body;
use crate::config::Registry;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::identity::{resource, Principal};
use crate::observe::audit::{self, Audit};
use crate::ports::Platform;
use http::{HeaderMap, Response, Uri};
use std::rc::Rc;

/// Where a request stands with respect to identity.
#[derive(Clone)]
pub(crate) struct Identity {
    pub principal: Principal,
    /// The gateway's public base URL for this request.
    pub base: String,
}

/// What a request presents to the authentication phase.
pub(crate) struct Presented<'a> {
    pub route: &'a Route,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The client address the platform vouches for (anonymous callers).
    pub client_addr: Option<&'a str>,
}

/// Authenticates a request to an MCP endpoint.
pub(crate) async fn authenticate<P: Platform>(
    gw: &Gateway,
    p: &P,
    request: &Presented<'_>,
    registry: &Registry,
) -> Result<Identity, GatewayError> {
    let outcome = identify(gw, p, request, registry).await;
    match &outcome {
        Ok(Identity { principal, .. }) => audit::record(&Audit::Authenticated {
            subject: &principal.subject,
            via: &principal.via,
            teams: &principal.teams,
        }),
        // The reason may quote what the caller sent (an unverified issuer):
        // the trail keeps its first 256 bytes.
        Err(GatewayError::Unauthorized { message, .. }) => audit::record(&Audit::Refused {
            status: 401,
            reason: &audit::cut(message),
        }),
        Err(GatewayError::Forbidden { message, .. }) => audit::record(&Audit::Refused {
            status: 403,
            reason: &audit::cut(message),
        }),
        Err(_) => {}
    }
    outcome
}

/// Who the caller is (see [`authenticate`]).
async fn identify<P: Platform>(
    gw: &Gateway,
    p: &P,
    request: &Presented<'_>,
    registry: &Registry,
) -> Result<Identity, GatewayError> {
    let Presented {
        route,
        uri,
        headers,
        client_addr,
    } = *request;
    let settings = &gw.settings;
    let base = resource::base_url(settings.public_url.as_deref(), uri, headers);
    if settings.public_url.is_none() && !resource::is_loopback(&base) {
        gw.warn_without_public_url(&base);
    }
    let endpoint = route.credential_endpoint();
    let metadata_url = resource::metadata_url(&base, &endpoint);
    let audiences = vec![base.clone(), resource::resource_url(&base, &endpoint)];
    let scopes = &settings.required_scopes;
    let principal = match gw.authenticator.authenticate(p, headers, &audiences).await {
        Ok(Some(principal)) => principal,
        Ok(None) if anonymous_allowed(route, registry) => Principal::anonymous_from(client_addr),
        Ok(None) => {
            return Err(GatewayError::Unauthorized {
                message: "authentication required".into(),
                challenge: Some(resource::challenge_401(&metadata_url, scopes, None)),
            })
        }
        Err(GatewayError::Unauthorized { message, .. }) => {
            let challenge = resource::challenge_401(&metadata_url, scopes, Some(&message));
            return Err(GatewayError::Unauthorized {
                message,
                challenge: Some(challenge),
            });
        }
        Err(other) => return Err(other),
    };
    if !principal.is_anonymous() {
        let missing: Vec<&String> = scopes.iter().filter(|s| !principal.has_scope(s)).collect();
        if !missing.is_empty() {
            return Err(GatewayError::Forbidden {
                message: format!("insufficient scope: missing {missing:?}"),
                challenge: Some(resource::challenge_403(&metadata_url, scopes)),
            });
        }
    }
    Ok(Identity { principal, base })
}

/// Whether a caller without credentials may use this route.
fn anonymous_allowed(route: &Route, registry: &Registry) -> bool {
    match route {
        Route::Server(id) => registry.get(id).is_some_and(|s| s.anonymous),
        Route::Approval(_)
        | Route::Approvals
        | Route::Admin(_)
        | Route::Connect(_)
        | Route::ConnectCallback(_)
        | Route::Connections(_) => false,
        _ => registry.servers.iter().any(|s| s.anonymous),
    }
}

/// The servers a caller may see (anonymous callers: only servers open to
/// anonymous use; then the policy). What it may not use stays invisible.
pub(crate) fn visible(registry: &Rc<Registry>, gate: &Gate) -> Rc<Registry> {
    if registry.servers.iter().all(|s| gate.server(s)) {
        return registry.clone();
    }
    Rc::new(Registry {
        servers: registry
            .servers
            .iter()
            .filter(|s| gate.server(s))
            .cloned()
            .collect(),
        problems: Vec::new(),
    })
}

/// `GET /.well-known/oauth-protected-resource[/{endpoint}]`.
pub(crate) async fn metadata<P: Platform>(
    gw: &Gateway,
    p: &P,
    endpoint: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response<Body>, GatewayError> {
    let base = resource::base_url(gw.settings.public_url.as_deref(), uri, headers);
    let trust = gw.authenticator.trust(p).await?;
    let mut servers: Vec<String> = Vec::new();
    for issuer in &trust.issuers {
        if !servers.contains(&issuer.authorization_server) {
            servers.push(issuer.authorization_server.clone());
        }
    }
    let doc = resource::metadata(
        &resource::resource_url(&base, endpoint),
        &servers,
        &gw.settings.scopes_supported,
    );
    Ok(respond::json(
        serde_json::to_vec(&doc).expect("metadata serializes"),
    ))
}

/// `GET /.well-known/jwks.json`: the public key upstreams verify minted
/// credentials with (404 when no signing key is configured).
pub(crate) async fn jwks<P: Platform>(gw: &Gateway, p: &P) -> Result<Response<Body>, GatewayError> {
    match gw.minter.signer(p).await {
        Some(signer) => Ok(respond::json(
            serde_json::to_vec(&signer.jwks()).expect("JWKS serializes"),
        )),
        None => Err(GatewayError::NoRoute(
            "/.well-known/jwks.json (no signing key configured)".into(),
        )),
    }
}
