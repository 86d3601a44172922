//! The admin API, `/admin/...`: servers, the agent API's models, server
//! groups, trusted issuers, API keys and the policy, managed with versions, for callers holding the
//! role `ADMIN_ROLE` names (off when unset).
//!
//! For each kind (`servers`, `models`, `groups`, `issuers`, `apikeys`; the policy is
//! one document, `policy`, without an id):
//! - `GET /admin/{kind}`: every document; `POST /admin/{kind}` creates one
//!   (409 if it exists; an API key is generated, see [`apikeys`]);
//! - `GET|PUT|DELETE /admin/{kind}/{id}`: read, create or replace, delete
//!   (an API key is revoked, its record kept);
//! - `GET /admin/{kind}/{id}/versions[/{n}]`: the kept versions, one in full;
//! - `POST /admin/{kind}/{id}/rollback` `{"version": n}`: version n again,
//!   as a new version;
//! - `POST /admin/policy/dry-run`: what a policy would change ([`dry_run`]);
//! - `GET /admin/usage`: calls per team, principal, server or tool over
//!   days ([`usage`]).
//!
//! Every write is checked by the gateway's own parser (400 with the path
//! and the reason, nothing stored); a change to an existing document needs
//! `If-Match: "{version}"` (428 without, 412 when another change came
//! first; `If-None-Match: *` creates only); each keeps the version before
//! it ([`documents`]), is written to the audit trail, and is seen at once
//! by this instance ([`super::own_writes`]). The policy is never deleted
//! (that would turn governance off), API keys are never rewritten or
//! rolled back (that could undo a revocation).

mod apikeys;
mod connections;
mod documents;
mod dry_run;
pub(super) mod kinds;
mod usage;
mod writes;

use super::{respond, Ctx};
use crate::body::Body;
use crate::error::GatewayError;
use crate::observe::audit::{self, Audit};
use crate::ports::{History, Platform};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use documents::{as_json, Current};
use http::{header, HeaderMap, Method, Response, StatusCode};
use kinds::Kind;
use serde_json::json;

/// One request to the admin API, parsed from its path.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `/admin/{kind}`.
    All(Kind),
    /// `/admin/{kind}/{id}` (the policy: `/admin/policy`, id `None`).
    One(Kind, Option<String>),
    /// `.../versions`.
    Versions(Kind, Option<String>),
    /// `.../versions/{n}`.
    Version(Kind, Option<String>, u64),
    /// `.../rollback`.
    Rollback(Kind, Option<String>),
    /// `/admin/policy/dry-run`.
    DryRun,
    /// `/admin/usage`.
    Usage,
    /// `/admin/connections`: who is connected to which OAuth server.
    Connections,
    /// `/admin/connections/{owner}/{server}`: one of them (the owner's
    /// key base64url-encoded, as the listing's `id` gives it).
    Connection(String, String),
}

impl Target {
    fn parse(rest: &str) -> Option<Target> {
        let parts: Vec<&str> = rest.split('/').collect();
        match parts[..] {
            ["usage"] => return Some(Target::Usage),
            ["connections"] => return Some(Target::Connections),
            ["connections", owner, server] => {
                let owner = URL_SAFE_NO_PAD.decode(owner).ok()?;
                let owner = String::from_utf8(owner).ok()?;
                return Some(Target::Connection(owner, server.to_string()));
            }
            _ => {}
        }
        let kind = Kind::from_segment(parts[0])?;
        // The policy has no id: its sub-paths follow the kind at once.
        let (id, tail) = match kind {
            Kind::Policy => (None, &parts[1..]),
            _ if parts.len() == 1 => return Some(Target::All(kind)),
            _ => (Some(parts[1].to_string()), &parts[2..]),
        };
        Some(match *tail {
            [] => Target::One(kind, id),
            ["versions"] => Target::Versions(kind, id),
            ["versions", n] => Target::Version(kind, id, n.parse().ok()?),
            ["rollback"] => Target::Rollback(kind, id),
            ["dry-run"] if kind == Kind::Policy => Target::DryRun,
            _ => return None,
        })
    }
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `/admin/{rest}`.
    pub(super) async fn admin(
        &self,
        rest: &str,
        req: &http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, GatewayError> {
        self.check_admin()?;
        let target =
            Target::parse(rest).ok_or_else(|| GatewayError::NoRoute(format!("/admin/{rest}")))?;
        let method = req.method();
        let answer = match (target, method) {
            (Target::All(Kind::ApiKeys), &Method::GET) => self.list_apikeys().await?,
            (Target::All(Kind::ApiKeys), &Method::POST) => self.create_apikey(req.body()).await?,
            (Target::All(kind), &Method::GET) => self.list(kind).await?,
            (Target::All(kind), &Method::POST) => self.create(kind, req.body()).await?,
            (Target::All(_), _) => return Err(not_allowed("GET, POST")),
            (Target::One(kind, id), m) => {
                let id = self.resolve(kind, id).await?;
                match *m {
                    Method::GET => self.read(kind, id.as_deref()).await?,
                    // A key's record is made by POST and ended by DELETE:
                    // rewriting it could undo a revocation.
                    Method::PUT if kind == Kind::ApiKeys => return Err(not_allowed("GET, DELETE")),
                    Method::PUT => self.replace(kind, id.as_deref(), req).await?,
                    Method::DELETE if kind == Kind::ApiKeys => {
                        self.revoke_apikey(id.as_deref().unwrap_or_default(), req.headers())
                            .await?
                    }
                    Method::DELETE => self.remove(kind, id.as_deref(), req.headers()).await?,
                    _ => return Err(not_allowed("GET, PUT, DELETE")),
                }
            }
            (Target::Versions(kind, id), &Method::GET) => {
                let id = self.resolve(kind, id).await?;
                self.versions(kind, id.as_deref()).await?
            }
            (Target::Version(kind, id, n), &Method::GET) => {
                let id = self.resolve(kind, id).await?;
                self.version(kind, id.as_deref(), n).await?
            }
            (Target::Rollback(Kind::ApiKeys, _), _) => {
                return Err(GatewayError::Conflict(
                    "API keys are not rolled back (a revoked key stays revoked): create a new one"
                        .into(),
                ))
            }
            (Target::Rollback(kind, id), &Method::POST) => {
                let id = self.resolve(kind, id).await?;
                self.rollback(kind, id.as_deref(), req).await?
            }
            (Target::DryRun, &Method::POST) => self.dry_run(req.body()).await?,
            (Target::Usage, &Method::GET) => self.usage(req.uri().query()).await?,
            (Target::Connections, &Method::GET) => self.all_connections().await?,
            (Target::Connections, _) => return Err(not_allowed("GET")),
            (Target::Connection(owner, server), &Method::DELETE) => {
                let by = format!("admin:{}", self.identity.principal.subject);
                return self.disconnect((&owner, &server), &by).await;
            }
            (Target::Connection(..), _) => return Err(not_allowed("DELETE")),
            (Target::Versions(..) | Target::Version(..) | Target::Usage, _) => {
                return Err(not_allowed("GET"))
            }
            (Target::Rollback(..) | Target::DryRun, _) => return Err(not_allowed("POST")),
        };
        Ok(respond::private(answer))
    }

    /// Only holders of the admin role pass; the API is off without one.
    fn check_admin(&self) -> Result<(), GatewayError> {
        let principal = &self.identity.principal;
        let refused = |message: String| {
            audit::record(&Audit::Refused {
                status: 403,
                reason: &message,
            });
            Err(GatewayError::Forbidden {
                message,
                challenge: None,
            })
        };
        match &self.gw.settings.admin_role {
            None => refused("the admin API is off (set ADMIN_ROLE)".into()),
            Some(role) if !principal.is_anonymous() && principal.roles.contains(role) => Ok(()),
            Some(role) => refused(format!("the admin API needs the role '{role}'")),
        }
    }

    /// The document id a path names: checked, and for API keys the full
    /// hash its prefix names.
    async fn resolve(
        &self,
        kind: Kind,
        id: Option<String>,
    ) -> Result<Option<String>, GatewayError> {
        let Some(id) = id else { return Ok(None) };
        if kind == Kind::ApiKeys {
            return self.apikey_by_prefix(&id).await.map(Some);
        }
        if !kind.valid_id(&id) {
            return Err(GatewayError::BadDocument {
                path: kind.path(Some(&id)),
                reason: "not a valid id for this kind".into(),
            });
        }
        Ok(Some(id))
    }

    /// The document as reported, with its kept revisions.
    async fn state(
        &self,
        kind: Kind,
        id: Option<&str>,
    ) -> Result<(Vec<crate::ports::Revision>, Current), GatewayError> {
        let settle = super::own_writes::OWN_WRITES_MS;
        documents::read(self.p, &kind.key(id), settle).await
    }

    async fn current(&self, kind: Kind, id: Option<&str>) -> Result<Current, GatewayError> {
        Ok(self.state(kind, id).await?.1)
    }

    /// `GET /admin/{kind}`: every document of the kind as KV holds it.
    async fn list(&self, kind: Kind) -> Result<Response<Body>, GatewayError> {
        if kind == Kind::Policy {
            return self.read(kind, None).await;
        }
        let entries = crate::ports::load_prefix(self.p.kv(), kind.prefix()).await?;
        let items: Vec<serde_json::Value> = entries
            .iter()
            .map(
                |(key, text)| json!({"id": &key[kind.prefix().len()..], "document": as_json(text)}),
            )
            .collect();
        Ok(answer(
            StatusCode::OK,
            json!({ kind.segment(): items }),
            None,
        ))
    }

    /// `GET /admin/{kind}/{id}`.
    async fn read(&self, kind: Kind, id: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let now = self.current(kind, id).await?;
        let text = now
            .document
            .ok_or_else(|| GatewayError::NotFound(kind.path(id)))?;
        Ok(document(StatusCode::OK, kind, id, now.version, &text))
    }

    /// `GET .../versions`: the kept versions, newest first.
    async fn versions(&self, kind: Kind, id: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let (revisions, now) = self.state(kind, id).await?;
        let listed: Vec<serde_json::Value> = revisions.iter().map(documents::summary).collect();
        let body = json!({
            "id": kind.shown_id(id),
            "current_version": now.document.as_ref().map(|_| now.version),
            "versions": listed,
        });
        Ok(answer(StatusCode::OK, body, None))
    }

    /// `GET .../versions/{n}`.
    async fn version(
        &self,
        kind: Kind,
        id: Option<&str>,
        n: u64,
    ) -> Result<Response<Body>, GatewayError> {
        let revisions = self.p.history().revisions(&kind.key(id)).await?;
        let revision = documents::find(revisions, &kind.path(id), n)?;
        let mut body = documents::summary(&revision);
        body["id"] = json!(kind.shown_id(id));
        body["document"] = revision.document.as_deref().map(as_json).into();
        Ok(answer(StatusCode::OK, body, None))
    }
}

/// `If-Match`: a version, quoted or not (`*`: any existing version).
fn if_match(headers: &HeaderMap, now: &Current) -> Result<Option<u64>, GatewayError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text == "*" {
        return match now.document {
            Some(_) => Ok(Some(now.version)),
            None => Ok(Some(u64::MAX)),
        };
    }
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse().map(Some).map_err(|_| {
        GatewayError::InvalidRequest(format!(
            "If-Match must be a version such as \"3\" (got '{text}')"
        ))
    })
}

/// [`if_match`], required when the document exists: a change made without
/// naming the version it was made against could undo another unseen.
fn required_if_match(
    kind: Kind,
    id: Option<&str>,
    headers: &HeaderMap,
    now: &Current,
) -> Result<Option<u64>, GatewayError> {
    match if_match(headers, now)? {
        None if now.document.is_some() => Err(GatewayError::PreconditionRequired(kind.path(id))),
        given => Ok(given),
    }
}

/// The policy is never deleted through the API: no document means
/// governance off, everything open to every authenticated caller.
fn no_policy_off() -> GatewayError {
    GatewayError::Conflict(
        "deleting the policy would turn governance off (everything open to every caller); \
         replace it instead"
            .into(),
    )
}

fn not_allowed(allow: &'static str) -> GatewayError {
    GatewayError::MethodNotAllowed { allow }
}

/// A JSON answer, with the version as `ETag` when there is one.
fn answer(status: StatusCode, body: serde_json::Value, version: Option<u64>) -> Response<Body> {
    let mut response = respond::json(body.to_string().into_bytes());
    *response.status_mut() = status;
    if let Some(v) = version {
        let etag = http::HeaderValue::from_str(&format!("\"{v}\"")).expect("digits");
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// One document, its id and version.
fn document(
    status: StatusCode,
    kind: Kind,
    id: Option<&str>,
    version: u64,
    text: &str,
) -> Response<Body> {
    let body = json!({"id": kind.shown_id(id), "version": version, "document": as_json(text)});
    answer(status, body, Some(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        use Target::*;
        let s = |x: &str| Some(x.to_string());
        assert_eq!(Target::parse("servers"), Some(All(Kind::Servers)));
        assert_eq!(Target::parse("servers/a"), Some(One(Kind::Servers, s("a"))));
        assert_eq!(Target::parse("policy"), Some(One(Kind::Policy, None)));
        assert_eq!(
            Target::parse("policy/versions/3"),
            Some(Version(Kind::Policy, None, 3))
        );
        assert_eq!(Target::parse("policy/dry-run"), Some(DryRun));
        assert_eq!(
            Target::parse("servers/a/rollback"),
            Some(Rollback(Kind::Servers, s("a")))
        );
        assert_eq!(
            Target::parse("servers/a/versions"),
            Some(Versions(Kind::Servers, s("a")))
        );
        assert_eq!(Target::parse("servers/a/dry-run"), None);
        assert_eq!(Target::parse("servers/a/versions/x"), None);
        assert_eq!(Target::parse("nothing"), None);
        assert_eq!(Target::parse("servers/a/b/c"), None);
    }
}
