//! API keys through the admin API. A key is stored only as the SHA-256 of
//! itself (`auth/apikeys/{hash}`, the record naming its principal), so:
//! - `POST /admin/apikeys` `{"subject", "teams", "roles", "scopes"}`
//!   generates a key (256 random bits) and answers it once; nobody can read
//!   it again;
//! - `GET /admin/apikeys` lists the records with the first 16 digits of
//!   each hash as its id, which the other paths take
//!   (`/admin/apikeys/{id}`, its versions);
//! - `DELETE /admin/apikeys/{id}` revokes: a new version of the record with
//!   `"revoked": true`, refused like an unknown key from then on (at once
//!   here; elsewhere within `REGISTRY_TTL_SECS`-independent
//!   `APIKEY_CACHE_MS` plus KV's propagation).

use super::documents::as_json;
use super::kinds::Kind;
use super::{answer, document, if_match, Ctx};
use crate::body::Body;
use crate::error::GatewayError;
use crate::identity::config::APIKEY_PREFIX;
use crate::identity::sha256_hex;
use crate::ports::{load_prefix, Kv, Platform};
use base64::Engine;
use http::{HeaderMap, Response, StatusCode};
use serde_json::json;

/// Hash digits an id must give at least (64 bits: no two keys share them
/// in practice, and a short guess names nothing).
const MIN_PREFIX: usize = 16;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `GET /admin/apikeys`.
    pub(super) async fn list_apikeys(&self) -> Result<Response<Body>, GatewayError> {
        let entries = load_prefix(self.p.kv(), APIKEY_PREFIX).await?;
        let keys: Vec<serde_json::Value> = entries
            .iter()
            .map(|(key, text)| {
                let hash = &key[APIKEY_PREFIX.len()..];
                let mut item = as_json(text);
                if let Some(o) = item.as_object_mut() {
                    o.insert("id".into(), json!(Kind::ApiKeys.shown_id(Some(hash))));
                }
                item
            })
            .collect();
        Ok(answer(StatusCode::OK, json!({ "apikeys": keys }), None))
    }

    /// `POST /admin/apikeys`: a new key for the principal the body names.
    pub(super) async fn create_apikey(&self, body: &[u8]) -> Result<Response<Body>, GatewayError> {
        let text = std::str::from_utf8(body).unwrap_or_default();
        let mut bytes = [0u8; 32];
        self.p.random_bytes(&mut bytes);
        let key = format!(
            "mk_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let hash = sha256_hex(key.as_bytes());
        let record = Kind::ApiKeys.check(Some(&hash), text)?;
        let now = self.current(Kind::ApiKeys, Some(&hash)).await?;
        let version = self
            .commit(
                Kind::ApiKeys,
                Some(&hash),
                &now,
                Some(record.clone()),
                None,
                "create",
            )
            .await?;
        let mut answered = document(
            StatusCode::CREATED,
            Kind::ApiKeys,
            Some(&hash),
            version,
            &record,
        );
        let body = json!({
            "id": &hash[..MIN_PREFIX],
            "version": version,
            "document": as_json(&record),
            "key": key,
            "note": "the key is shown once: it is stored only as its SHA-256",
        });
        *answered.body_mut() = Body::Full(body.to_string().into_bytes());
        Ok(answered)
    }

    /// `DELETE /admin/apikeys/{id}`: the record again, revoked.
    pub(super) async fn revoke_apikey(
        &self,
        hash: &str,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, GatewayError> {
        let now = self.current(Kind::ApiKeys, Some(hash)).await?;
        let path = Kind::ApiKeys.path(Some(hash));
        let text = now
            .document
            .clone()
            .ok_or_else(|| GatewayError::NotFound(path.clone()))?;
        let mut record = as_json(&text);
        let Some(fields) = record.as_object_mut() else {
            return Err(GatewayError::Conflict(format!("{path} is not a record")));
        };
        if fields.get("revoked") == Some(&json!(true)) {
            return Err(GatewayError::Conflict(format!("{path} is revoked already")));
        }
        fields.insert("revoked".into(), json!(true));
        let revoked = record.to_string();
        let if_match = if_match(headers, &now)?;
        let version = self
            .commit(
                Kind::ApiKeys,
                Some(hash),
                &now,
                Some(revoked.clone()),
                if_match,
                "revoke",
            )
            .await?;
        Ok(document(
            StatusCode::OK,
            Kind::ApiKeys,
            Some(hash),
            version,
            &revoked,
        ))
    }

    /// The full hash of the one key whose hash starts with `prefix`.
    pub(super) async fn apikey_by_prefix(&self, prefix: &str) -> Result<String, GatewayError> {
        let hex = prefix
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if prefix.len() < MIN_PREFIX || prefix.len() > 64 || !hex {
            return Err(GatewayError::BadDocument {
                path: format!("apikeys/{}", prefix.chars().take(64).collect::<String>()),
                reason: format!(
                    "an API key's id is at least {MIN_PREFIX} lower-case hex digits of its hash"
                ),
            });
        }
        let found = self
            .p
            .kv()
            .list(&format!("{APIKEY_PREFIX}{prefix}"))
            .await?;
        match found.as_slice() {
            [one] => Ok(one[APIKEY_PREFIX.len()..].to_string()),
            [] => Err(GatewayError::NotFound(format!("apikeys/{prefix}"))),
            _ => Err(GatewayError::Conflict(format!(
                "apikeys/{prefix} names {} keys; give more digits",
                found.len()
            ))),
        }
    }
}
