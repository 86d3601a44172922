//! Resources on `/mcp`: reading one and subscribing to its updates. URIs
//! are not namespaced, so the server a URI belongs to is the first, in
//! registry order, that reads it: every visible server is asked at once.
//! A subscription goes to that server only (its updates reach the client
//! on `/mcp`'s merged GET stream, `server_stream.rs`); an unsubscription
//! goes to the same server, or, when no server reads the URI any more, to
//! every server this session has met (one that never heard of the URI
//! answers it or ignores it, and nothing is left subscribed).

use super::modern::shape::AnsweredBy;
use super::respond;
use crate::body::Body;
use crate::config::{Registry, Server};
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::governance::pii;
use crate::ports::Platform;
use crate::protocol::jsonrpc::Request;
use crate::upstream::{reply, Upstreams};
use futures_util::future::join_all;
use http::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use std::rc::Rc;

#[derive(Deserialize)]
struct Params {
    uri: String,
}

/// The first server, in registry order, that reads `uri`, with what it
/// read; else why none did (one line per server).
async fn owner<'r, P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &'r Registry,
    req: &Request,
    message: &[u8],
) -> Result<(&'r Rc<Server>, Value), Vec<String>> {
    let answers = join_all(registry.servers.iter().map(|server| async {
        let answer = ups.send(server, message).await?;
        reply::read_result(answer, &req.id, &server.id, ups.client.max_bytes).await
    }))
    .await;
    let mut failures = Vec::new();
    for (server, answer) in registry.servers.iter().zip(answers) {
        match answer {
            Ok(result) => return Ok((server, result)),
            Err(e) => failures.push(format!("{}: {e}", server.id)),
        }
    }
    Err(failures)
}

/// `resources/read`: the owner's answer, redacted by its server's rules.
pub(super) async fn read<P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    gate: &Gate,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let params: Params = req.params_as()?;
    match owner(ups, registry, req, &req.to_bytes()).await {
        Ok((server, mut result)) => {
            let mut tally = pii::Tally::default();
            pii::redact_value_counted(&mut result, &gate.redaction(server, None), &mut tally);
            crate::observe::audit::redactions(&server.id, &tally);
            let mut answer = respond::result(&req.id, &result);
            // Who answered, should it ask for input (modern clients).
            answer
                .extensions_mut()
                .insert(AnsweredBy(server.id.clone()));
            Ok(answer)
        }
        Err(failures) => {
            tracing::debug!(
                "resources/read {} found nowhere: {}",
                params.uri,
                failures.join("; ")
            );
            Err(GatewayError::ResourceNotFound(params.uri))
        }
    }
}

/// The `resources/read` that finds a URI's owner, under the request's id.
fn read_of(req: &Request, uri: &str) -> Vec<u8> {
    let params = json!({ "uri": uri });
    let params = serde_json::value::to_raw_value(&params).expect("params serialize");
    Request {
        method: "resources/read".into(),
        ..req.clone()
    }
    .to_bytes_with(Some(&params))
}

/// `resources/subscribe`: to the URI's owner, whose answer is the answer.
pub(super) async fn subscribe<P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let params: Params = req.params_as()?;
    let Ok((server, _)) = owner(ups, registry, req, &read_of(req, &params.uri)).await else {
        return Err(GatewayError::ResourceNotFound(params.uri));
    };
    forward_to(ups, server, req).await
}

/// The request as it came, to `server`, whose result is the answer.
async fn forward_to<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let answer = ups.send(server, &req.to_bytes()).await?;
    let result = reply::read_result(answer, &req.id, &server.id, ups.client.max_bytes).await?;
    Ok(respond::result(&req.id, &result))
}

/// `resources/unsubscribe`: to the URI's owner; when none reads it any
/// more, to every server this session has met. Always `{}` then: nothing
/// is subscribed to a URI no server serves.
pub(super) async fn unsubscribe<P: Platform>(
    ups: &Upstreams<'_, P>,
    registry: &Registry,
    req: &Request,
) -> Result<Response<Body>, GatewayError> {
    let params: Params = req.params_as()?;
    if let Ok((server, _)) = owner(ups, registry, req, &read_of(req, &params.uri)).await {
        return forward_to(ups, server, req).await;
    }
    ups.broadcast(&ups.met(&registry.servers), &req.to_bytes(), Some(&req.id))
        .await;
    Ok(respond::result(&req.id, &json!({})))
}
