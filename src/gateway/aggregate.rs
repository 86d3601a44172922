//! The aggregated endpoint `/mcp`: every registered server behind one MCP
//! server, tools and prompts named `{server}__{name}`, or by their own
//! names where they do not collide (`NAMES_ON_MCP=on_collision`, see
//! [`super::naming`]).
//!
//! Lists fan out to every server in parallel and are merged; one server failing
//! or timing out leaves the others' entries in the list (logged, and named under
//! `_meta`). Calls are routed to the owning server with the original name.

use super::ask::Forwarding;
use super::guard::CallGuard;
use super::hold::Outcome;
use super::list_cache::{self, ListCache};
use super::merge::{self, ListResult, Merged};
use super::modern::question;
use super::modern::shape::AnsweredBy;
use super::naming::{Naming, Shown};
use super::{resources, respond};
use crate::body::Body;
use crate::config::credentials::Credentials;
use crate::config::{Registry, Server};
use crate::error::GatewayError;
use crate::governance::pii;
use crate::ports::{with_timeout, Clock};
use crate::ports::{Platform, Sessions};
use crate::protocol::cursor::Cursor;
use crate::protocol::jsonrpc::{self, Id, Request};
use crate::protocol::method::{ListKind, Method, Notice};
use crate::protocol::modern;
use crate::protocol::names;
use crate::upstream::{reply, Upstreams};
use futures_util::future::join_all;
use http::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

/// What the gateway answers `initialize` with on `/mcp`.
pub(crate) fn initialize_result(version: &str, registry: &Registry) -> Value {
    json!({
        "protocolVersion": version,
        // Changes and resource updates reach a legacy client on the merged
        // GET stream (server_stream.rs); subscriptions go to a URI's owner
        // (resources.rs).
        "capabilities": {
            "tools": { "listChanged": true },
            "prompts": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "logging": {},
            "completions": {},
        },
        "serverInfo": { "name": "mcp-edge", "title": "mcp-edge gateway", "version": env!("CARGO_PKG_VERSION") },
        "instructions": format!(
            "mcp-edge aggregates {} MCP servers. Tools and prompts are named {{server}}{}{{name}}.",
            registry.servers.len(), names::SEP
        ),
    })
}

/// Serves one request on `/mcp`; `initialize` never comes here (it opens
/// the session this runs in).
pub(crate) async fn request<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    guard: &CallGuard<'_>,
    req: &Request,
    method: Method<'_>,
    naming: &Naming<'_>,
    lists: &ListCache,
) -> Result<Response<Body>, GatewayError> {
    let gate = guard.gate;
    match method {
        Method::List(kind) => list(ups, naming, lists, kind, req).await,
        Method::Ping => Ok(respond::result(&req.id, &json!({}))),
        Method::ToolsCall => {
            let answer = call_named(ups, naming, guard, req, ListKind::Tools).await;
            guard.connect_as_tool_error(&req.id, answer)
        }
        Method::PromptsGet => call_named(ups, naming, guard, req, ListKind::Prompts).await,
        Method::ResourcesRead => resources::read(ups, registry, gate, req).await,
        Method::ResourcesSubscribe => resources::subscribe(ups, registry, req).await,
        Method::ResourcesUnsubscribe => resources::unsubscribe(ups, registry, req).await,
        Method::CompletionComplete => complete(ups, naming, req).await,
        Method::LoggingSetLevel => set_level(ups, registry, req).await,
        // Not offered on /mcp (the capabilities the gateway answers
        // initialize with do not list them); `initialize` itself opens the
        // session (gateway/initialize.rs) and never comes here.
        Method::Initialize | Method::Discover | Method::SubscriptionsListen | Method::Other(_) => {
            Err(GatewayError::MethodNotFound(method.name().to_string()))
        }
    }
}

/// Client notifications on `/mcp`: cancellations go to every upstream this
/// session opened (request ids an upstream does not know are ignored by it),
/// and so does a change of the client's roots (each was offered `roots`);
/// the rest concern the gateway only.
pub(crate) async fn notify<P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    notice: Notice<'_>,
    raw: &[u8],
) {
    if matches!(notice, Notice::Cancelled | Notice::RootsListChanged) {
        ups.broadcast(&ups.met(&registry.servers), raw, None).await;
    }
}

/// `logging/setLevel`: recorded with the session (servers met later are
/// told it too, and the gateway drops log messages below it whatever an
/// upstream does with it), then told to every server.
async fn set_level<P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    #[derive(Deserialize)]
    struct Params {
        level: String,
    }
    let params: Params = req.params_as()?;
    if modern::log_rank(&params.level).is_none() {
        return Err(GatewayError::InvalidParams(format!(
            "unknown log level {:?}; one of {}",
            params.level,
            modern::LOG_LEVELS.join(", ")
        )));
    }
    if let Some(id) = &ups.client.session_id {
        ups.platform
            .sessions()
            .set_log_level(id, &params.level)
            .await?;
    }
    // Servers met by this broadcast hear the level from it, once.
    ups.broadcast(&registry.servers, &req.to_bytes(), Some(&req.id))
        .await;
    *ups.client.log_level.borrow_mut() = Some(params.level);
    Ok(respond::result(&req.id, &json!({})))
}

/// Fans a list out and merges the pages.
async fn list<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    naming: &Naming<'_>,
    lists: &ListCache,
    kind: ListKind,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let (registry, gate) = (naming.registry, naming.gate);
    #[derive(Deserialize)]
    struct Params {
        cursor: Option<String>,
    }
    let params: Params = req.params_as()?;
    let targets: Vec<(&Rc<Server>, Option<String>)> = match params.cursor {
        None => registry.servers.iter().map(|s| (s, None)).collect(),
        Some(text) => Cursor::decode(&text, kind.method())?
            .pending
            .into_iter()
            .filter_map(|(id, c)| registry.get(&id).map(|s| (s, Some(c))))
            .collect(),
    };
    let pages = join_all(
        targets
            .iter()
            .map(|(s, c)| list_one(ups, lists, s, kind, &req.id, c.as_deref())),
    )
    .await;
    let seen: Vec<_> = targets
        .iter()
        .zip(&pages)
        .map(|((s, c), page)| (&***s, c.is_some(), page))
        .collect();
    let shown: Shown = naming.for_list(ups, kind, &seen).await;
    // The merged items borrow from `pages`, which lives until the answer is written.
    let mut merged = Merged::default();
    let mut unavailable = Vec::new();
    for ((server, _), page) in targets.iter().zip(&pages) {
        match page {
            Ok(page) => merge::add_page(&mut merged, kind, server, gate, page, &shown),
            Err(e) => {
                tracing::warn!(server = %server.id, "{} left out: {e}", kind.method());
                unavailable.push(server.id.clone());
            }
        }
    }
    let next_cursor = (!merged.pending.is_empty()).then(|| {
        Cursor {
            method: kind.method().into(),
            pending: merged.pending,
        }
        .encode()
    });
    let result = ListResult {
        kind,
        items: &merged.items,
        next_cursor,
        unavailable: &unavailable,
    };
    Ok(respond::result(&req.id, &result))
}

/// One server's page (its raw `result`), bounded in time (every region's
/// attempt included), or kept from an earlier answer as its hints allow.
async fn list_one<P: Platform>(
    ups: &Upstreams<'_, P>,
    lists: &ListCache,
    server: &Server,
    kind: ListKind,
    id: &Id,
    cursor: Option<&str>,
) -> Result<Box<RawValue>, GatewayError> {
    // The keys are digests: made only when a page could be kept or found.
    let keys = || list_cache::keys(server, ups.client);
    let now = ups.platform.clock().now_ms();
    if !lists.is_empty() {
        let (server_key, caller) = keys();
        if let Some(page) = lists.get(&server_key, kind.method(), cursor, &caller, now) {
            return Ok(page);
        }
    }
    let params = cursor.map(|c| json!({ "cursor": c }));
    let message = jsonrpc::request_bytes(id, kind.method(), params.as_ref());
    let budget = server
        .timeout_ms
        .saturating_mul(server.endpoints.len() as u64);
    let work = async {
        let answer = ups.send(server, &message).await?;
        reply::read_result_raw(answer, id, &server.id, ups.client.max_bytes).await
    };
    let page = with_timeout(ups.platform.clock(), budget, work)
        .await
        .unwrap_or_else(|| {
            Err(GatewayError::Upstream {
                server: server.id.clone(),
                message: format!("timed out after {budget} ms"),
            })
        })?;
    if list_cache::hinted(&page) {
        let (server_key, caller) = keys();
        let per_caller = matches!(server.credentials, Credentials::OAuth(_));
        lists.keep_as(
            &server_key,
            kind.method(),
            cursor,
            (&caller, per_caller),
            &page,
            now,
        );
    }
    Ok(page)
}

/// Routes `tools/call` or `prompts/get` by its name on `/mcp`; a tool call
/// passes the guard first.
async fn call_named<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    naming: &Naming<'_>,
    guard: &CallGuard<'_>,
    req: &Request,
    kind: ListKind,
) -> Result<Response<Body>, GatewayError> {
    let gate = guard.gate;
    // Raw values keep the arguments byte for byte; only `name` is rewritten.
    let mut params: BTreeMap<String, Box<RawValue>> = req.params_as()?;
    let name: String = params
        .get("name")
        .and_then(|n| serde_json::from_str(n.get()).ok())
        .ok_or_else(|| {
            GatewayError::InvalidParams(format!("{}: 'name' must be a string", req.method))
        })?;
    let (index, original) = naming.resolve(ups, kind, &name).await?;
    let server = &naming.registry.servers[index];
    let mut outcome = Outcome::Forward;
    // A prompt is the server's content like a resource: the server-wide
    // redact rules apply to it; a tool call is redacted as its tool's rules say.
    let mut redact = gate.redaction(server, None);
    if kind == ListKind::Tools {
        // The gate first (a tool the caller may not call is unknown), then
        // arguments, limits and approval.
        let arguments = params.get("arguments").map(|a| &**a);
        outcome = guard
            .check(ups, server, (original, &name), arguments)
            .await?;
        redact = gate.redaction(server, Some(original));
    }
    let original = serde_json::value::to_raw_value(original).expect("string serializes");
    params.insert("name".into(), original);
    // A retry's answer to the gateway's own question is the gateway's; an
    // answer to the upstream's goes on to it.
    if guard.requester.retry.is_some() {
        question::strip_answer(&mut params);
    }
    question::strip_connect_answer(&mut params);
    let params = serde_json::value::to_raw_value(&params).expect("params serialize");
    let call = Forwarding {
        server: server.clone(),
        message: req.to_bytes_with(Some(&params)),
        id: req.id.clone(),
        redact,
        aggregated: true,
    };
    let mut answer = guard.carry_out(outcome, ups, call).await?;
    // Who answered, should it ask for input: a bare name does not say.
    answer
        .extensions_mut()
        .insert(AnsweredBy(server.id.clone()));
    Ok(answer)
}

/// `completion/complete`: a prompt argument goes to the prompt's server
/// under its own name; a resource template's to every server at once, the
/// first answer in registry order wins (URIs name no server). Completions
/// are the server's content: redacted by its server-wide rules.
async fn complete<P: Platform + Clone + 'static>(
    ups: &Upstreams<'_, P>,
    naming: &Naming<'_>,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let (registry, gate) = (naming.registry, naming.gate);
    let mut params: Value = req.params_as()?;
    let servers: Vec<&Rc<Server>> = match params.pointer("/ref/type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = params
                .pointer("/ref/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let (index, original) = naming.resolve(ups, ListKind::Prompts, name).await?;
            params["ref"]["name"] = Value::String(original.to_string());
            vec![&registry.servers[index]]
        }
        _ => registry.servers.iter().collect(),
    };
    let params = serde_json::value::to_raw_value(&params).expect("params serialize");
    let message = req.to_bytes_with(Some(&params));
    let answers = join_all(servers.iter().map(|server| async {
        let content = gate.redaction(server, None);
        let answer = ups
            .send(server, &message)
            .await
            .map_err(|e| respond::redact_error(e, &content))?;
        let mut result = reply::read_result(answer, &req.id, &server.id, ups.client.max_bytes)
            .await
            .map_err(|e| respond::redact_error(e, &content))?;
        let mut tally = pii::Tally::default();
        pii::redact_value_counted(&mut result, &content, &mut tally);
        crate::observe::audit::redactions(&server.id, &tally);
        Ok(result)
    }))
    .await;
    let mut last = None;
    for answer in answers {
        match answer {
            Ok(result) => return Ok(respond::result(&req.id, &result)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::InvalidParams("no server to complete for".into())))
}
