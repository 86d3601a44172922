//! The per-server endpoint `/servers/{id}/mcp`: one upstream behind the
//! gateway, names unchanged, everything it offers passed through byte for byte.
//!
//! The gateway still owns the client session (its id, lifetime and store) and
//! the credentials; the registry's tool filter still applies to `tools/list`
//! and `tools/call`. Server-to-client messages reach the client inside the SSE
//! answers and on the GET stream; the client's replies are forwarded back.

use super::ask::Forwarding;
use super::guard::CallGuard;
use super::merge;
use super::modern::question;
use super::respond;
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
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
    match method {
        Method::ToolsCall => {
            let answer = call_tool(ups, server, guard, req, raw).await;
            guard.connect_as_tool_error(&req.id, answer)
        }
        Method::List(ListKind::Tools) if !guard.gate.is_open(server) => {
            list_visible_tools(ups, server, guard.gate, req, raw).await
        }
        Method::List(_) => forward_as_sent(ups, server, guard.gate, req, raw, Scope::Errors).await,
        Method::Initialize
        | Method::Ping
        | Method::PromptsGet
        | Method::ResourcesRead
        | Method::ResourcesSubscribe
        | Method::ResourcesUnsubscribe
        | Method::CompletionComplete
        | Method::LoggingSetLevel
        | Method::Discover
        | Method::SubscriptionsListen
        | Method::Other(_) => {
            forward_as_sent(ups, server, guard.gate, req, raw, Scope::Everything).await
        }
    }
}

/// Forwards the client's message unchanged and relays the answer, redacted
/// within `scope` by the server-wide rules.
async fn forward_as_sent<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    gate: &Gate,
    req: &Request,
    raw: &[u8],
    scope: Scope,
) -> Result<Response<Body>, GatewayError> {
    let content = gate.redaction(server, None);
    let answer = ups
        .send(server, raw)
        .await
        .map_err(|e| respond::redact_error(e, &content))?;
    respond::forward(
        answer,
        &req.id,
        (&server.id, false),
        (&content, scope),
        ups.client,
    )
    .await
}

/// `tools/list` on a server some of whose tools the caller may not see:
/// the page comes back without them.
async fn list_visible_tools<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    gate: &Gate,
    req: &Request,
    raw: &[u8],
) -> Result<Response<Body>, GatewayError> {
    let content = gate.redaction(server, None);
    let redact = |e| respond::redact_error(e, &content);
    let answer = ups.send(server, raw).await.map_err(redact)?;
    let page = reply::read_result_raw(answer, &req.id, &server.id, ups.client.max_bytes)
        .await
        .map_err(redact)?;
    let filtered =
        merge::filter_tools(server, gate, &page).map_err(|message| GatewayError::Upstream {
            server: server.id.clone(),
            message,
        })?;
    Ok(respond::result(&req.id, &filtered))
}

/// A `tools/call`: the tool must be visible to the caller and pass the
/// guard; what is forwarded is the client's own message.
async fn call_tool<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    guard: &CallGuard<'_>,
    req: &Request,
    raw: &[u8],
) -> Result<Response<Body>, GatewayError> {
    #[derive(Deserialize)]
    struct Params {
        name: String,
        arguments: Option<Box<RawValue>>,
    }
    let Params { name, arguments } = req.params_as()?;
    // The gate first (a tool the caller may not call is unknown), then
    // arguments, limits and approval.
    let outcome = guard
        .check(ups, server, (&name, &name), arguments.as_deref())
        .await?;
    // The client's bytes as sent, but for a modern retry's answer to the
    // gateway's question or to its connect prompt, which are the gateway's
    // (parsed only when the bytes may hold one).
    let mentions_connect = raw
        .windows(question::CONNECT_KEY.len())
        .any(|w| w == question::CONNECT_KEY.as_bytes());
    let retry = guard.requester.retry.is_some();
    let message = if retry || mentions_connect {
        let mut params: std::collections::BTreeMap<String, Box<RawValue>> = req.params_as()?;
        question::strip_connect_answer(&mut params);
        if retry {
            question::strip_answer(&mut params);
        }
        let params = serde_json::value::to_raw_value(&params).expect("params serialize");
        req.to_bytes_with(Some(&params))
    } else {
        raw.to_vec()
    };
    let call = Forwarding {
        server: Rc::new(server.clone()),
        message,
        id: req.id.clone(),
        redact: guard.gate.redaction(server, Some(&name)),
        aggregated: false,
    };
    guard.carry_out(outcome, ups, call).await
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
