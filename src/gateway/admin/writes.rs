//! The admin API's writes: create, replace, delete and roll back one
//! document, each checked, versioned ([`super::documents`]), audited and
//! served at once by this instance.

use super::documents::{self, Change, Current};
use super::kinds::Kind;
use super::{answer, document, no_policy_off, required_if_match};
use crate::body::Body;
use crate::error::GatewayError;
use crate::gateway::Ctx;
use crate::observe::audit::{self, Audit};
use crate::ports::Platform;
use http::{header, HeaderMap, Response, StatusCode};
use serde_json::json;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `POST /admin/{kind}`: creates the document the body holds, under the
    /// body's `"id"` (kept in server entries, taken out of the others).
    pub(super) async fn create(
        &self,
        kind: Kind,
        body: &[u8],
    ) -> Result<Response<Body>, GatewayError> {
        let path = kind.segment().to_string();
        let mut value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| GatewayError::BadDocument {
                path: path.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let id = value
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| GatewayError::BadDocument {
                path: path.clone(),
                reason: "needs an \"id\"".into(),
            })?;
        if kind != Kind::Servers {
            value.as_object_mut().map(|o| o.remove("id"));
        }
        let id = self.resolve(kind, Some(id)).await?;
        let text = kind.check(id.as_deref(), &value.to_string())?;
        let now = self.current(kind, id.as_deref()).await?;
        if now.document.is_some() {
            return Err(GatewayError::Conflict(format!(
                "{} exists (version {}); replace it with PUT",
                kind.path(id.as_deref()),
                now.version
            )));
        }
        let version = self
            .commit(
                kind,
                id.as_deref(),
                &now,
                Some(text.clone()),
                None,
                "create",
            )
            .await?;
        Ok(document(
            StatusCode::CREATED,
            kind,
            id.as_deref(),
            version,
            &text,
        ))
    }

    /// `PUT /admin/{kind}/{id}`: creates or replaces.
    pub(super) async fn replace(
        &self,
        kind: Kind,
        id: Option<&str>,
        req: &http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, GatewayError> {
        let body = std::str::from_utf8(req.body()).map_err(|_| GatewayError::BadDocument {
            path: kind.path(id),
            reason: "not UTF-8".into(),
        })?;
        let text = kind.check(id, body)?;
        let now = self.current(kind, id).await?;
        let create_only = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == b"*");
        if create_only && now.document.is_some() {
            return Err(GatewayError::PreconditionFailed {
                path: kind.path(id),
                current: Some(now.version),
            });
        }
        let if_match = required_if_match(kind, id, req.headers(), &now)?;
        let (status, action) = match now.document {
            Some(_) => (StatusCode::OK, "replace"),
            None => (StatusCode::CREATED, "create"),
        };
        let version = self
            .commit(kind, id, &now, Some(text.clone()), if_match, action)
            .await?;
        Ok(document(status, kind, id, version, &text))
    }

    /// `DELETE /admin/{kind}/{id}`.
    pub(super) async fn remove(
        &self,
        kind: Kind,
        id: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, GatewayError> {
        let now = self.current(kind, id).await?;
        if now.document.is_none() {
            return Err(GatewayError::NotFound(kind.path(id)));
        }
        if kind == Kind::Groups {
            self.check_group_unused(id.unwrap_or_default()).await?;
        }
        if kind == Kind::Policy {
            return Err(no_policy_off());
        }
        let if_match = required_if_match(kind, id, headers, &now)?;
        let version = self
            .commit(kind, id, &now, None, if_match, "delete")
            .await?;
        let body = json!({"id": kind.shown_id(id), "version": version, "deleted": true});
        Ok(answer(StatusCode::OK, body, Some(version)))
    }

    /// A group still named by servers stays.
    async fn check_group_unused(&self, group: &str) -> Result<(), GatewayError> {
        let registry = self.gw.registry.get(self.p).await?;
        let users: Vec<&str> = registry
            .servers
            .iter()
            .filter(|s| s.group == group)
            .map(|s| s.id.as_str())
            .collect();
        match users.is_empty() {
            true => Ok(()),
            false => Err(GatewayError::Conflict(format!(
                "group '{group}' is in use by servers {users:?}"
            ))),
        }
    }

    /// `POST .../rollback` `{"version": n}`: version n's document, checked
    /// again (the parsers may have grown stricter), as a new version.
    pub(super) async fn rollback(
        &self,
        kind: Kind,
        id: Option<&str>,
        req: &http::Request<Vec<u8>>,
    ) -> Result<Response<Body>, GatewayError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct To {
            version: u64,
        }
        let to: To = serde_json::from_slice(req.body()).map_err(|e| GatewayError::BadDocument {
            path: kind.path(id),
            reason: format!("the body must be {{\"version\": n}}: {e}"),
        })?;
        let (revisions, now) = self.state(kind, id).await?;
        let revision = documents::find(revisions, &kind.path(id), to.version)?;
        let text = revision
            .document
            .as_deref()
            .map(|t| kind.check(id, t))
            .transpose()?;
        if text.is_none() && kind == Kind::Groups {
            self.check_group_unused(id.unwrap_or_default()).await?;
        }
        if text.is_none() && kind == Kind::Policy {
            return Err(no_policy_off());
        }
        let if_match = required_if_match(kind, id, req.headers(), &now)?;
        let action = format!("rollback to {}", to.version);
        let version = self
            .commit(kind, id, &now, text.clone(), if_match, &action)
            .await?;
        Ok(match text {
            Some(text) => document(StatusCode::OK, kind, id, version, &text),
            None => answer(
                StatusCode::OK,
                json!({"id": kind.shown_id(id), "version": version, "deleted": true}),
                Some(version),
            ),
        })
    }

    /// Writes a new version, records it in the audit trail, and makes this
    /// instance read its configuration again.
    pub(super) async fn commit(
        &self,
        kind: Kind,
        id: Option<&str>,
        now: &Current,
        document: Option<String>,
        if_match: Option<u64>,
        action: &str,
    ) -> Result<u64, GatewayError> {
        let path = kind.path(id);
        let author = self.owner();
        let change = Change {
            document,
            if_match,
            action: action.to_string(),
            author: &author,
            path: &path,
        };
        let version = documents::write(self.p, &kind.key(id), now, change).await?;
        let principal = &self.identity.principal;
        audit::record(&Audit::ConfigChanged {
            document: &path,
            version,
            action,
            subject: &principal.subject,
            via: &principal.via,
        });
        self.gw.reload_config();
        Ok(version)
    }
}
