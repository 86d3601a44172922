//! `/admin/connections`: who is connected to which OAuth server, for
//! admins. A record shows who, which server, when and which scopes; never
//! a token. Its `id` (the owner's key base64url-encoded, `/`, the server)
//! is what `DELETE /admin/connections/{id}` takes to disconnect it, which
//! revokes its tokens at the authorization server where it can
//! (`gateway/connect/mod.rs::disconnect`).

use super::super::connect::{shown, LIST_MAX};
use super::Ctx;
use crate::body::Body;
use crate::error::GatewayError;
use crate::ports::{Connections, Platform};
use crate::upstream::oauth::discovery::is_registration;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::Response;
use serde_json::{json, Value};

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    pub(super) async fn all_connections(&self) -> Result<Response<Body>, GatewayError> {
        let records = self.p.connections().list(None, LIST_MAX).await?;
        let listed: Vec<Value> = records
            .iter()
            .filter(|r| !is_registration(r))
            .map(|r| {
                let mut one = shown(r);
                one["principal"] = json!(r.owner);
                one["id"] = json!(format!("{}/{}", URL_SAFE_NO_PAD.encode(&r.owner), r.server));
                one
            })
            .collect();
        let body = json!({ "connections": listed, "truncated": records.len() >= LIST_MAX });
        Ok(super::super::respond::json(body.to_string().into_bytes()))
    }
}
