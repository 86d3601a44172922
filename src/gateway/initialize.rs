//! `initialize`: opening a client session bound to the caller. On `/mcp`
//! the gateway answers for itself and meets upstreams lazily; on
//! `/servers/{id}/mcp` it initializes the upstream now, with the client's
//! own params, and answers with the upstream's result. Each caller may open
//! `SESSIONS_PER_MINUTE` sessions.

use super::ask::ElicitationModes;
use super::{aggregate, respond, session, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gcra::{Decision, Quota, Rate};
use crate::governance::pii;
use crate::ports::{Clock, Limiter, Platform, UpstreamSession};
use crate::protocol::jsonrpc::Request;
use crate::protocol::version;
use crate::upstream::ClientSession;
use http::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The `initialize` params the gateway reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    protocol_version: String,
    #[serde(default)]
    capabilities: serde_json::Value,
    #[serde(default)]
    client_info: serde_json::Value,
}

/// What a new session starts with.
struct Opened {
    /// The `initialize` result the client gets.
    result: serde_json::Value,
    /// The params upstreams met later are initialized with: the client's own
    /// on a server's endpoint; on `/mcp` the gateway's, with what the client
    /// can be asked.
    client_params: Option<serde_json::Value>,
    upstreams: BTreeMap<String, UpstreamSession>,
    /// The revision client and gateway agreed on.
    version: &'static str,
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `initialize`: opens a client session. On `/mcp` the gateway answers for
    /// itself and meets upstreams lazily; on `/servers/{id}/mcp` it initializes
    /// the upstream now with the client's own params and answers with its result.
    pub(super) async fn initialize(
        &self,
        server: Option<&Server>,
        req: &Request,
    ) -> Result<Response<Body>, GatewayError> {
        let params: Params = req.params_as()?;
        self.may_open_a_session().await?;
        let elicitation = ElicitationModes::from_capabilities(&params.capabilities);
        let version = version::negotiate(&params.protocol_version);
        let id = session::new_id(self.p);
        let endpoint = self.route.endpoint_name();
        let ttl = self.gw.settings.session_ttl_ms;
        let opened = match server {
            None => Opened {
                result: aggregate::initialize_result(version, &self.registry),
                client_params: Some(upstream_params(&params.capabilities)),
                upstreams: BTreeMap::new(),
                version,
            },
            Some(server) => self.initialize_upstream(server, version, &params).await?,
        };
        session::open(
            self.p,
            id.clone(),
            endpoint,
            self.owner(),
            opened.version,
            opened.client_params,
            elicitation,
            opened.upstreams,
            ttl,
        )
        .await?;
        let mut response = respond::result(&req.id, &opened.result);
        response.headers_mut().insert(
            crate::protocol::headers::SESSION_ID,
            http::HeaderValue::from_str(&id).expect("base64url is a valid header value"),
        );
        Ok(response)
    }

    /// On `/servers/{id}/mcp`: initializes the upstream with the client's
    /// own params and keeps its result, redacted as the policy asks.
    async fn initialize_upstream(
        &self,
        server: &Server,
        version: &'static str,
        params: &Params,
    ) -> Result<Opened, GatewayError> {
        let client_params = serde_json::json!({
            "capabilities": params.capabilities,
            "clientInfo": params.client_info,
        });
        let client = self.client_session(None, version, Some(client_params.clone()));
        let mut result = self.meet(server, &client).await?;
        // Keep the upstream's choice when the gateway speaks it too, so
        // client and upstream agree on one revision end to end.
        let agreed = result
            .get("protocolVersion")
            .and_then(|v| v.as_str())
            .filter(|v| version::is_supported(v))
            .map(version::negotiate)
            .unwrap_or(version);
        result["protocolVersion"] = agreed.into();
        Ok(Opened {
            result,
            client_params: Some(client_params),
            upstreams: client.upstreams.into_inner(),
            version: agreed,
        })
    }

    /// Initializes `server` now for `client` and returns its result,
    /// redacted as the policy asks (its instructions are its content too).
    pub(super) async fn meet(
        &self,
        server: &Server,
        client: &ClientSession,
    ) -> Result<serde_json::Value, GatewayError> {
        let kinds = self.gate.redaction(server, None);
        let mut result = self
            .upstreams(client)
            .initialize_now(server)
            .await
            .map_err(|e| respond::redact_error(e, &kinds))?;
        pii::redact_value(&mut result, &kinds);
        Ok(result)
    }

    /// Sessions cost storage until they expire: each caller may open
    /// `SESSIONS_PER_MINUTE` (GCRA, so bursts up to that, then the rate).
    pub(super) async fn may_open_a_session(&self) -> Result<(), GatewayError> {
        let quota = Quota::Rate(Rate {
            limit: self.gw.settings.sessions_per_minute,
            window_ms: 60_000,
        });
        let key = format!("sessions/{}", self.owner());
        let now = self.p.clock().now_ms();
        match self.p.limiter().check(&key, quota, 1, now).await? {
            Decision::Allow => Ok(()),
            Decision::Deny { retry_after_ms } => Err(GatewayError::RateLimited {
                limit: "sessions-per-minute".into(),
                retry_after_ms,
            }),
        }
    }
}

/// The `initialize` params an upstream gets on `/mcp`: the gateway's own
/// client info, and of the client's capabilities those that let a server
/// ask it something (elicitation, sampling, roots), and no more: whatever
/// else a client declared is between it and the gateway. Only the flags the
/// schema defines for them are kept, each as `{}` or `true`, so there are
/// few sets of them (a modern caller's bridge is kept per set: a client
/// cannot mint one per request by varying what it sends).
pub(super) fn upstream_params(client: &Value) -> Value {
    // Flags from `schema/2025-11-25/schema.ts` (ClientCapabilities) in
    // `modelcontextprotocol/modelcontextprotocol`.
    // Each flag as the schema types it: an object (`{}`) or `true`.
    const FLAGS: [(&str, &[&str], &[&str]); 3] = [
        ("elicitation", &["form", "url"], &[]),
        ("sampling", &["context", "tools"], &[]),
        ("roots", &[], &["listChanged"]),
    ];
    let mut offered = Map::new();
    for (capability, objects, booleans) in FLAGS {
        let Some(declared) = client.get(capability).and_then(Value::as_object) else {
            continue;
        };
        let on = |f: &&&str| match declared.get(**f) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Object(_)) => true,
            _ => false,
        };
        let kept: Map<String, Value> = objects
            .iter()
            .filter(on)
            .map(|f| (f.to_string(), json!({})))
            .chain(
                booleans
                    .iter()
                    .filter(on)
                    .map(|f| (f.to_string(), json!(true))),
            )
            .collect();
        offered.insert(capability.to_string(), Value::Object(kept));
    }
    json!({
        "capabilities": offered,
        "clientInfo": { "name": crate::upstream::CLIENT_NAME, "version": env!("CARGO_PKG_VERSION") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_flags_the_schema_defines_are_offered() {
        let declared = json!({"elicitation": {"form": {"x": 1}, "url": {}, "extra": {}},
            "sampling": {"tools": {}, "nonce": "a1b2"}, "roots": {"listChanged": true, "n": 7},
            "experimental": {"x": {}}, "tasks": {}});
        assert_eq!(
            upstream_params(&declared)["capabilities"],
            json!({"elicitation": {"form": {}, "url": {}}, "sampling": {"tools": {}},
                "roots": {"listChanged": true}})
        );
        // Declared without flags, or not as objects.
        let plain = json!({"elicitation": {}, "sampling": true, "roots": {"listChanged": false}});
        assert_eq!(
            upstream_params(&plain)["capabilities"],
            json!({"elicitation": {}, "roots": {}})
        );
        // Each flag typed as the schema has it.
        let loose = json!({"elicitation": {"form": true}, "roots": {"listChanged": {}}});
        assert_eq!(
            upstream_params(&loose)["capabilities"],
            json!({"elicitation": {"form": {}}, "roots": {"listChanged": true}})
        );
    }
}
