//! The session phase: opening client sessions on `initialize`, finding them on
//! every later request, and ending them on DELETE.
//!
//! Session ids are 256 bits from the platform CSPRNG, base64url-encoded. The
//! record lives in the session store (a Durable Object on Workers), so any
//! isolate can serve any session. Ending a session also ends the upstream
//! sessions opened for it, after the response.

use super::ask::ElicitationModes;
use crate::error::GatewayError;
use crate::ports::{Clock, HttpClient, Platform, SessionRecord, Sessions, UpstreamSession};
use crate::protocol::headers::{PROTOCOL_VERSION, SESSION_ID};
use crate::protocol::version;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::collections::BTreeMap;

/// A fresh, unpredictable session id.
pub(crate) fn new_id<P: Platform>(p: &P) -> String {
    let mut bytes = [0u8; 32];
    p.random_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates and stores a session record.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open<P: Platform>(
    p: &P,
    id: String,
    endpoint: String,
    owner: String,
    protocol_version: &str,
    client_params: Option<serde_json::Value>,
    elicitation: ElicitationModes,
    upstreams: BTreeMap<String, UpstreamSession>,
    ttl_ms: u64,
) -> Result<SessionRecord, GatewayError> {
    let now = p.clock().now_ms();
    let record = SessionRecord {
        id,
        endpoint,
        owner,
        protocol_version: protocol_version.to_string(),
        created_ms: now,
        expires_ms: now.saturating_add(ttl_ms),
        client_params,
        elicitation: elicitation.form,
        elicitation_url: elicitation.url,
        log_level: None,
        upstreams,
    };
    p.sessions().create(&record).await?;
    Ok(record)
}

/// Where a modern (stateless) caller's upstream sessions are kept: one
/// record per caller, endpoint and client capabilities offered upstream
/// (`offered`), under an id derived from all three, so the
/// legacy upstreams it reaches are initialized once and reused from any
/// isolate. The id holds a `.`, which no client session id has, so a client
/// can never present it as `Mcp-Session-Id`.
pub(crate) async fn bridge<P: Platform>(
    p: &P,
    endpoint: String,
    owner: String,
    offered: &serde_json::Value,
    ttl_ms: u64,
) -> Result<SessionRecord, GatewayError> {
    let digest = crate::identity::sha256_hex(format!("{endpoint}\n{owner}\n{offered}").as_bytes());
    let id = format!("bridge.{}", &digest[..40]);
    if let Some(record) = p.sessions().get(&id).await? {
        let now = p.clock().now_ms();
        if record.endpoint == endpoint && record.owner == owner && now < record.expires_ms {
            return Ok(record);
        }
    }
    open(
        p,
        id,
        endpoint,
        owner,
        version::LATEST,
        None,
        ElicitationModes::default(),
        BTreeMap::new(),
        ttl_ms,
    )
    .await
}

/// The session a post-initialize request belongs to, after the Streamable HTTP
/// header rules: `Mcp-Session-Id` required, known, not expired, opened on this
/// endpoint by this caller (a session id seen by someone else is useless to
/// them); `MCP-Protocol-Version` (if sent) one the gateway speaks.
pub(crate) async fn find<P: Platform>(
    p: &P,
    headers: &HeaderMap,
    endpoint: &str,
    owner: &str,
) -> Result<SessionRecord, GatewayError> {
    let version_header = headers
        .get(PROTOCOL_VERSION)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    version::check_header(version_header)?;
    let id = session_id(headers)?;
    let record = p
        .sessions()
        .get(id)
        .await?
        .ok_or(GatewayError::UnknownSession)?;
    if record.endpoint != endpoint || record.owner != owner {
        return Err(GatewayError::UnknownSession);
    }
    if p.clock().now_ms() >= record.expires_ms {
        let _ = p.sessions().delete(id).await;
        return Err(GatewayError::UnknownSession);
    }
    crate::observe::notes::session(Some(&record.id), &record.protocol_version);
    Ok(record)
}

/// Ends the session named by the request (DELETE) and returns what it held.
pub(crate) async fn close<P: Platform>(
    p: &P,
    headers: &HeaderMap,
    endpoint: &str,
    owner: &str,
) -> Result<SessionRecord, GatewayError> {
    let record = find(p, headers, endpoint, owner).await?;
    p.sessions().delete(&record.id).await?;
    Ok(record)
}

/// Ends, after the response, the upstream sessions a closed session opened.
/// `credential` is the header each server's requests carry.
pub(crate) fn end_upstreams<P: Platform>(
    p: &P,
    record: SessionRecord,
    credential: Vec<(String, Option<(HeaderName, HeaderValue)>)>,
) {
    let upstream = p.http().clone();
    p.defer(Box::pin(async move {
        for (server, s) in record.upstreams {
            let Some(sid) = s.session_id else { continue };
            let mut req = http::Request::delete(&s.url)
                .header(SESSION_ID, sid)
                .header(PROTOCOL_VERSION, &s.protocol_version);
            if let Some((_, Some((name, value)))) = credential.iter().find(|(id, _)| *id == server) {
                req = req.header(name, value);
            }
            let Ok(req) = req.body(Vec::new()) else { continue };
            match upstream.send(req).await {
                Ok(r) => tracing::debug!(server = %server, status = %r.status(), "upstream session ended"),
                Err(e) => tracing::warn!(server = %server, "ending upstream session failed: {}", e.0),
            }
        }
    }));
}

fn session_id(headers: &HeaderMap) -> Result<&str, GatewayError> {
    let value = headers
        .get(SESSION_ID)
        .ok_or(GatewayError::SessionRequired)?;
    let id = value.to_str().map_err(|_| GatewayError::UnknownSession)?;
    // Ids the gateway issues are 43 base64url characters; anything else cannot
    // be one of ours, so skip the store round trip.
    if id.len() != 43
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(GatewayError::UnknownSession);
    }
    Ok(id)
}
