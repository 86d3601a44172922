//! The per-server endpoint `/servers/{id}/mcp`: one upstream behind the
//! gateway, names unchanged, everything it offers passed through byte for byte.
//!
//! The gateway still owns the client session (its id, lifetime and store) and
//! the credentials; the registry's tool filter still applies to `tools/list`
//! and `tools/call`. Server-to-client messages reach the client inside the SSE
//! answers and on the GET stream; the client's replies are forwarded back.

use super::ask::{self, Forwarding};
use super::guard::CallGuard;
use super::hold::Outcome;
use super::merge;
use super::respond;
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::ports::Platform;
use crate::protocol::jsonrpc::Request;
use crate::protocol::method::{ListKind, Method, Notice};
use crate::upstream::relay::Scope;
use crate::upstream::{reply, Upstreams};
use http::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::rc::Rc;

/// Serves one request; `raw` is the request exactly as the client sent it.
///
/// Every answer that carries the server's content (prompts, resources,
/// completions, task results, anything passed through, and every error)
/// is redacted as the policy's server-wide `redact` rules ask; tool calls
/// also as their tool's rules ask. List results are the server's own
/// declarations (names, URIs, schemas the client needs verbatim to call
/// them) and pass as they are.
pub(crate) async fn request<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    guard: &CallGuard<'_>,
    req: &Request,
    method: Method<'_>,
    raw: &[u8],
) -> Result<Response<Body>, GatewayError> {
    let gate = guard.gate;
    let limit = ups.client.max_bytes;
    match method {
        Method::List(ListKind::Tools) if !gate.is_open(server) => {
            let content = gate.redaction(server, None);
            let answer = ups
                .send(server, raw)
                .await
                .map_err(|e| respond::redact_error(e, &content))?;
            let page = reply::read_result_raw(answer, &req.id, &server.id, limit)
                .await
                .map_err(|e| respond::redact_error(e, &content))?;
            let filtered = merge::filter_tools(server, gate, &page).map_err(|message| {
                GatewayError::Upstream {
                    server: server.id.clone(),
                    message,
                }
            })?;
            Ok(respond::result(&req.id, &filtered))
        }
        Method::ToolsCall => {
            #[derive(Deserialize)]
            struct Params {
                name: String,
                arguments: Option<Box<RawValue>>,
            }
            let Params { name, arguments } = req.params_as()?;
            if !gate.tool(server, &name) {
                return Err(GatewayError::InvalidParams(format!("Unknown tool: {name}")));
            }
            let outcome = guard
                .check(ups, server, (&name, &name), arguments.as_deref())
                .await?;
            let call = Forwarding {
                server: Rc::new(server.clone()),
                message: raw.to_vec(),
                id: req.id.clone(),
                redact: gate.redaction(server, Some(&name)),
            };
            match outcome {
                Outcome::Forward => ask::forward(ups, &call).await,
                Outcome::Answer(result) => Ok(respond::result(&req.id, &result)),
                Outcome::Ask(ask) => Ok(ask::ask_then_forward(*ask, ups.detach(), call)),
            }
        }
        Method::Initialize
        | Method::Ping
        | Method::List(_)
        | Method::PromptsGet
        | Method::ResourcesRead
        | Method::ResourcesSubscribe
        | Method::ResourcesUnsubscribe
        | Method::CompletionComplete
        | Method::LoggingSetLevel
        | Method::Other(_) => {
            let content = gate.redaction(server, None);
            let lists = matches!(method, Method::List(_));
            let answer = ups
                .send(server, raw)
                .await
                .map_err(|e| respond::redact_error(e, &content))?;
            let scope = if lists {
                Scope::Errors
            } else {
                Scope::Everything
            };
            respond::forward(answer, &req.id, &server.id, (&content, scope), limit).await
        }
    }
}

/// Forwards a client notification or response. `notifications/initialized` is
/// not forwarded: the gateway sent its own when it initialized the upstream.
pub(crate) async fn forward_one_way<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    notice: Option<Notice<'_>>,
    raw: &[u8],
) -> Result<(), GatewayError> {
    if notice == Some(Notice::Initialized) {
        return Ok(());
    }
    ups.send(server, raw).await.map(drop)
}
