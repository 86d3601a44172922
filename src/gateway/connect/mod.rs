//! Users connecting their own accounts to servers that take each user's
//! OAuth token (`credentials: {"type": "oauth"}`), over HTTP:
//!
//! - `GET /connect/{server}`: starts the authorization code flow for the
//!   caller, who is either authenticated as on `/mcp` or presents the
//!   `ticket` of a connect prompt (bound to them and that server, short
//!   lived). Answers 302 to the authorization server and a cookie binding
//!   the flow to this browser.
//! - `GET /connect/{server}/callback`: where the authorization server
//!   sends the browser back; the flow's `state` is used once, from the
//!   browser that started it, for that server
//!   ([`crate::upstream::oauth::flow`]).
//! - `GET /connections`, `DELETE /connections/{server}`: the caller's own
//!   connections (never a token), and disconnecting one at once (its tokens
//!   revoked at the authorization server when it has a revocation endpoint).
//!
//! The browser pages are small HTML pages; errors on them carry the
//! status of the error and its message.

use super::ingest::Route;
use super::{respond, Ctx, Gateway};
use crate::body::Body;
use crate::config::credentials::{Credentials, OAuthClient};
use crate::config::{Registry, Server};
use crate::error::GatewayError;
use crate::identity::resource;
use crate::ports::{Clock, ConnectionRecord, Connections, Platform};
use crate::upstream::oauth::flow::{self, Callback, COOKIE};
use http::{header, Method, Response, StatusCode};
use serde_json::{json, Value};

/// The cookie a confirmation page sets and its form must present.
const CONFIRM_COOKIE: &str = "mcp-edge-confirm";

mod pages;
use pages::{confirmation, error_page, page};

/// The most connections listed at once.
pub(crate) const LIST_MAX: usize = 500;

/// A server's OAuth settings, if it takes users' tokens.
pub(crate) fn oauth_of(server: &Server) -> Option<(Server, Box<OAuthClient>)> {
    match &server.credentials {
        Credentials::OAuth(o) => Some((server.clone(), o.clone())),
        _ => None,
    }
}

/// What a listing shows of a record: never the sealed tokens.
pub(crate) fn shown(r: &ConnectionRecord) -> Value {
    json!({
        "server": r.server,
        "connected_ms": r.connected_ms,
        "refreshed_ms": (r.refreshed_ms > 0).then_some(r.refreshed_ms),
        "expires_ms": (r.expires_ms > 0).then_some(r.expires_ms),
        "refreshable": r.refreshable,
        "scope": r.scope,
    })
}

/// The browser routes served before authentication: the callback, and a
/// connect started with a ticket. `None`: not one of them.
pub(super) async fn before_auth<P: Platform>(
    gw: &Gateway,
    p: &P,
    route: &Route,
    req: &http::Request<Vec<u8>>,
    registry: &Registry,
) -> Option<Result<Response<Body>, GatewayError>> {
    if !matches!(route, Route::ConnectCallback(_) | Route::Connect(_)) {
        return None;
    }
    let ticket = query(req.uri(), "ticket");
    let base = resource::base_url(gw.settings.public_url.as_deref(), req.uri(), req.headers());
    let oauth = &gw.minter.oauth;
    let answer = match route {
        Route::ConnectCallback(_) if req.method() != Method::GET => {
            Err(GatewayError::MethodNotAllowed { allow: "GET" })
        }
        Route::ConnectCallback(id) => {
            let (state, code, error) = (
                query(req.uri(), "state"),
                query(req.uri(), "code"),
                query(req.uri(), "error"),
            );
            let Some(state) = state else {
                return Some(Ok(page(
                    StatusCode::BAD_REQUEST,
                    "Not connected",
                    "The callback carries no state.",
                )));
            };
            let browser = cookies(req.headers());
            let iss = query(req.uri(), "iss");
            let back = Callback {
                state: &state,
                code: code.as_deref(),
                error: error.as_deref(),
                browsers: &browser,
                issuer: iss.as_deref(),
                server: id,
            };
            let servers = |id: &str| registry.get(id).and_then(|s| oauth_of(s));
            flow::finish(oauth, p, servers, &back, &base).await.map(|(_, server)| {
                let text = format!("Your account for '{server}' is connected. You can close this tab and return to your client.");
                let mut done = page(StatusCode::OK, "Connected", &text);
                // The binding has served: the browser forgets it.
                let gone = format!("{COOKIE}-{server}=; Path=/connect; HttpOnly; SameSite=Lax; Max-Age=0");
                done.headers_mut().insert(header::SET_COOKIE, gone.parse().expect("a valid cookie"));
                done
            })
        }
        // A connect URL opened in a browser: a page naming who connects
        // what, whose button (a same-site POST) starts the flow.
        Route::Connect(id) if req.method() == Method::GET => {
            let ticket = ticket?;
            match read_ticket(gw, p, &ticket, id).await {
                Err(e) => Err(e),
                Ok(t) => {
                    let confirm = crate::upstream::oauth::random_token(p);
                    Ok(confirmation(id, &t.owner, &ticket, &confirm, &base))
                }
            }
        }
        Route::Connect(id) if req.method() == Method::POST => {
            let form: Vec<(String, String)> =
                form_urlencoded::parse(req.body()).into_owned().collect();
            let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let (Some(ticket), Some(confirm)) = (field("ticket"), field("confirm")) else {
                // Not the confirmation form: an authenticated caller's POST
                // has nothing to do here.
                return Some(Err(GatewayError::MethodNotAllowed { allow: "GET" }));
            };
            // The confirmation cookie is SameSite=Strict: a page elsewhere
            // cannot submit the form for the user.
            let pressed = cookie_values(req.headers(), CONFIRM_COOKIE).any(|c| c == confirm);
            match read_ticket(gw, p, &ticket, id).await {
                Err(e) => Err(e),
                Ok(_) if !pressed => Err(GatewayError::Forbidden {
                    message: "open the connect link and press the button on its page".into(),
                    challenge: None,
                }),
                Ok(t) => {
                    // A link starts one connect: whoever comes second
                    // (someone the link was passed to) is refused.
                    let once = crate::identity::vault::digest(&format!("ticket\u{0}{ticket}"));
                    match p.connections().claim(&once, t.expires_ms).await {
                        Err(e) => Err(e.into()),
                        Ok(false) => Err(GatewayError::Conflict(
                            "this connect link was used already; call the tool again for a new one"
                                .into(),
                        )),
                        Ok(true) => {
                            start(gw, p, registry.get(id).map(|s| &**s), &t.owner, &base).await
                        }
                    }
                }
            }
        }
        _ => return None,
    };
    Some(answer.or_else(|e| Ok(error_page(e))))
}

/// The ticket `text` names, for server `id`.
async fn read_ticket<P: Platform>(
    gw: &Gateway,
    p: &P,
    text: &str,
    id: &str,
) -> Result<crate::identity::vault::Ticket, GatewayError> {
    let vault = gw.minter.oauth.vault(p).await?;
    let now = p.clock().now_ms();
    vault.read_ticket(text, now).filter(|t| t.server == id).ok_or_else(|| GatewayError::Unauthorized {
        message: "this connect link is not valid (expired, or for another server); call the tool again for a new one".into(),
        challenge: None,
    })
}

/// Starts a connect of `owner` to `server` (visible to them).
async fn start<P: Platform>(
    gw: &Gateway,
    p: &P,
    server: Option<&Server>,
    owner: &str,
    base: &str,
) -> Result<Response<Body>, GatewayError> {
    // The callback address is made from the base: without PUBLIC_URL it
    // would come from the request's Host header, the caller's to choose.
    if gw.settings.public_url.is_none() && !resource::is_loopback(base) {
        return Err(GatewayError::Unavailable(
            "connecting accounts needs PUBLIC_URL (the gateway's own address for the callback)"
                .into(),
        ));
    }
    let (server, oauth) = server.and_then(oauth_of).ok_or_else(|| {
        GatewayError::NotFound("no server of that name takes a connected account".into())
    })?;
    let started = flow::start(&gw.minter.oauth, p, (&server, &oauth), owner, base).await?;
    let secure = if base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}-{}={}; Path=/connect; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        server.id,
        started.browser,
        flow::CONNECT_TTL_MS / 1000
    );
    Ok(Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, started.authorize_url)
        .header(header::SET_COOKIE, cookie)
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .body(Body::empty())
        .expect("valid headers"))
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `/connect/{server}` for an authenticated caller.
    pub(super) async fn connect(
        &self,
        id: &str,
        method: &Method,
    ) -> Result<Response<Body>, GatewayError> {
        if method != Method::GET {
            return Err(GatewayError::MethodNotAllowed { allow: "GET" });
        }
        let principal = &self.identity.principal;
        if principal.is_anonymous() {
            return Err(GatewayError::Forbidden {
                message: "anonymous callers have no account to connect".into(),
                challenge: None,
            });
        }
        let server = self.registry.get(id).map(|s| &**s);
        start(
            self.gw,
            self.p,
            server,
            &principal.key(),
            &self.identity.base,
        )
        .await
    }

    /// `/connections[/{server}]`.
    pub(super) async fn connections(
        &self,
        id: Option<&str>,
        method: &Method,
    ) -> Result<Response<Body>, GatewayError> {
        let owner = self.identity.principal.key();
        match (id, method) {
            (None, &Method::GET) => {
                let records = self.p.connections().list(Some(&owner), LIST_MAX).await?;
                let shown: Vec<Value> = records.iter().map(shown).collect();
                Ok(respond::private(respond::json(
                    json!({ "connections": shown }).to_string().into_bytes(),
                )))
            }
            (None, _) => Err(GatewayError::MethodNotAllowed { allow: "GET" }),
            (Some(server), &Method::DELETE) => {
                let subject = self.identity.principal.subject.clone();
                self.disconnect((&owner, server), &subject).await
            }
            (Some(_), _) => Err(GatewayError::MethodNotAllowed { allow: "DELETE" }),
        }
    }

    /// Removes `owner`'s connection to `server` and revokes its tokens;
    /// 404 when there is none. `by` names who asked.
    pub(super) async fn disconnect(
        &self,
        (owner, server): (&str, &str),
        by: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let registry = self.gw.registry.get(self.p).await?;
        let config = registry.get(server).and_then(|s| oauth_of(s));
        let config = config.as_ref().map(|(s, o)| (s, &**o));
        let base = &self.identity.base;
        let revoked = self
            .gw
            .minter
            .oauth
            .disconnect(self.p, config, (owner, server), (by, base))
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("no connection to '{server}'")))?;
        Ok(respond::private(respond::json(
            json!({ "server": server, "disconnected": true, "revoked": revoked })
                .to_string()
                .into_bytes(),
        )))
    }
}

/// The value of `name` in the query of `uri`, decoded.
fn query(uri: &http::Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The values of the connect-binding cookies a browser presented (one per
/// server it is connecting).
fn cookies(headers: &http::HeaderMap) -> Vec<String> {
    cookie_values(headers, COOKIE).take(16).collect()
}

/// The values of the cookies whose name starts with `prefix`.
fn cookie_values<'a>(
    headers: &'a http::HeaderMap,
    prefix: &'a str,
) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(name, _)| name.starts_with(prefix))
        .map(|(_, value)| value.to_string())
}
