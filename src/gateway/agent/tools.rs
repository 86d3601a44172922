//! The agent's tools, through the gateway's own pipeline: the loop lists
//! and calls them as a 2026-07-28 client of `/mcp` would, so a tool call
//! from the model passes everything a call from an MCP client passes
//! (authentication's principal, the gate, limits, argument validation,
//! approval, redaction, minted credentials, tracing, audit, usage).
//!
//! The client it plays declares no capabilities: nothing can be asked of
//! it, so a call a human must approve gets the pending approval (its id and
//! address in `_meta["mcp-edge/approval"]`), which the loop hands back.

use super::super::Ctx;
use super::request::{valid_function_name, Extension};
use crate::body::{Body, TOO_LARGE};
use crate::error::GatewayError;
use crate::gateway::ask::approval_url;
use crate::governance::approval::Status;
use crate::observe::batch::Attr;
use crate::observe::collect::note_here;
use crate::ports::{Approvals, Clock, Platform};
use crate::protocol::{headers, modern, sse, version};
use serde_json::{json, Value};

/// Pages of `tools/list` read at most.
const MAX_PAGES: usize = 20;

/// What a tool call came to, as the model is told.
#[derive(Debug, Clone)]
pub(crate) struct ToolResult {
    pub text: String,
    pub is_error: bool,
    /// The pending approval the call waits for (`_meta["mcp-edge/approval"]`).
    pub approval: Option<Value>,
}

impl ToolResult {
    fn error(text: String) -> Self {
        ToolResult {
            text,
            is_error: true,
            approval: None,
        }
    }
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// The caller's tools on `/mcp` to offer the model, as OpenAI function
    /// tools, narrowed by the request's extension and cut at `cap` (in
    /// name order). Also how many were left out by the cap.
    pub(super) async fn offered_tools(
        &self,
        offer: &Extension,
        cap: usize,
    ) -> Result<(Vec<Value>, usize), GatewayError> {
        // A request of its own: what the listing notes lands on this span.
        let span = tracing::info_span!("list_tools");
        let listing = async {
            let mut tools = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let params = match &cursor {
                    Some(c) => json!({"cursor": c}),
                    None => json!({}),
                };
                let mut result = self.mcp("tools/list", None, params).await?;
                if let Value::Array(page) = result["tools"].take() {
                    tools.extend(page);
                }
                cursor = result["nextCursor"].as_str().map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            Ok::<_, GatewayError>(tools)
        };
        let tools = tracing::Instrument::instrument(listing, span).await?;
        let naming = self.naming();
        let wanted = |name: &str| {
            let server_ok = offer.servers.as_ref().is_none_or(|ids| {
                naming
                    .resolve_now(name)
                    .is_some_and(|(i, _)| ids.contains(&self.registry.servers[i].id))
            });
            let tool_ok = offer
                .tools
                .as_ref()
                .is_none_or(|t| t.iter().any(|n| n == name));
            server_ok && tool_ok
        };
        let mut offered: Vec<Value> = tools
            .into_iter()
            .filter_map(|t| {
                let name = t["name"].as_str()?;
                if !valid_function_name(name) || !wanted(name) {
                    return None;
                }
                let parameters = match &t["inputSchema"] {
                    Value::Object(o) => Value::Object(o.clone()),
                    _ => json!({"type": "object"}),
                };
                Some(json!({"type": "function", "function": {
                    "name": name,
                    "description": t["description"].as_str().unwrap_or(""),
                    "parameters": parameters,
                }}))
            })
            .collect();
        offered.sort_by(|a, b| {
            a["function"]["name"]
                .as_str()
                .cmp(&b["function"]["name"].as_str())
        });
        let dropped = offered.len().saturating_sub(cap);
        offered.truncate(cap);
        Ok((offered, dropped))
    }

    /// Runs one tool call the model asked for, in its own `execute_tool`
    /// span: everything the pipeline notes of the call lands there. A tool
    /// the model was not offered is not called.
    pub(super) async fn run_tool(
        &self,
        id: &str,
        name: &str,
        arguments: &str,
        offered: &[String],
    ) -> ToolResult {
        let span = tracing::info_span!(
            "execute_tool",
            "gen_ai.operation.name" = "execute_tool",
            "gen_ai.tool.name" = name,
            "gen_ai.tool.call.id" = id,
        );
        let run = async {
            if !offered.iter().any(|o| o == name) {
                note_here("error.type", Attr::Str("tool_error".into()));
                return ToolResult::error(format!("Error: there is no tool named {name}"));
            }
            let arguments: Value = match serde_json::from_str(arguments) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return ToolResult::error(format!(
                        "Error: the arguments for {name} are not a JSON object"
                    ))
                }
            };
            let params = json!({"name": name, "arguments": arguments});
            let mut result = match self.mcp("tools/call", Some(name), params).await {
                Ok(result) => read_result(&result),
                // It ran: the model must not take it for a call to make again.
                Err(GatewayError::Upstream { message, .. }) if message.contains(TOO_LARGE) => {
                    ToolResult::error(format!(
                        "Error: {name} ran, but its answer is larger than the {} bytes the agent \
                         API reads; do not call it again for the same result",
                        self.upstream_limit
                    ))
                }
                Err(e) => ToolResult::error(format!("Error: {e}")),
            };
            // A result claiming an approval counts only for one this caller
            // has pending in the store: an upstream can write any `_meta`.
            if let Some(claimed) = result.approval.take() {
                result.approval = self.pending_approval(&claimed, name).await;
            }
            if result.is_error {
                note_here("error.type", Attr::Str("tool_error".into()));
            }
            result
        };
        tracing::Instrument::instrument(run, span).await
    }

    /// The approval a result names, as the gateway holds it: pending, this
    /// caller's, for this call's server and tool; its address on this
    /// gateway. `None` for anything else.
    async fn pending_approval(&self, claimed: &Value, name: &str) -> Option<Value> {
        let id = claimed["id"].as_str()?;
        let now = self.p.clock().now_ms();
        let record = self.p.approvals().get(id, now).await.ok()??;
        // For this very call: its server and tool.
        let this_call = self.naming().resolve_now(name).is_some_and(|(i, tool)| {
            self.registry.servers[i].id == record.server && tool == record.tool
        });
        let yours =
            this_call && record.requester == self.owner() && record.status == Status::Pending;
        yours.then(|| {
            json!({
                "id": record.id, "status": "pending", "decider": record.decider,
                "url": approval_url(&self.identity.base, &record.id),
                "expires_ms": record.expires_ms,
            })
        })
    }

    /// One request to `/mcp`, as a capability-less 2026-07-28 client sends
    /// it (`_meta` and the routing headers the revision requires), through
    /// the modern request path; its result, or its error.
    async fn mcp(
        &self,
        method: &str,
        name: Option<&str>,
        mut params: Value,
    ) -> Result<Value, GatewayError> {
        let v = version::MODERN[0];
        params["_meta"] = json!({
            modern::PROTOCOL_VERSION_KEY: v,
            modern::CLIENT_CAPABILITIES_KEY: {},
            modern::CLIENT_INFO_KEY: {"name": "mcp-edge-agent", "version": env!("CARGO_PKG_VERSION")},
        });
        let id = "mcp-edge-agent";
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut req = http::Request::post("/mcp")
            .header(http::header::CONTENT_TYPE, headers::JSON)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(headers::PROTOCOL_VERSION, v)
            .header(headers::METHOD, method);
        if let Some(n) = name {
            req = req.header(headers::NAME, n);
        }
        let req = req
            .body(body.to_string().into_bytes())
            .map_err(|e| GatewayError::Internal(format!("agent request: {e}")))?;
        let response = self.post_modern(req).await.map_err(|(e, _)| e)?;
        // The pipeline read the upstream's answer within this limit too.
        let limit = self.upstream_limit;
        let stream = headers::is_event_stream(response.headers());
        let bytes = read_all(response.into_body(), limit).await?;
        let answer = match stream {
            false => serde_json::from_slice::<Value>(&bytes).ok(),
            // The answer is the stream's response to our id; notifications
            // before it (progress, logs) are not the model's.
            true => {
                let mut decoder = sse::Decoder::with_limit(limit);
                decoder
                    .feed(&bytes)
                    .into_iter()
                    .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
                    .rfind(|m| m["id"] == id)
            }
        };
        let Some(mut answer) = answer else {
            return Err(GatewayError::Internal(format!("{method}: no answer")));
        };
        if let Some(e) = answer.get("error") {
            let message = e["message"].as_str().unwrap_or("failed").to_string();
            return Err(GatewayError::InvalidParams(message));
        }
        Ok(answer["result"].take())
    }
}

async fn read_all(body: Body, limit: usize) -> Result<Vec<u8>, GatewayError> {
    body.collect(limit)
        .await
        .map_err(|e| GatewayError::Internal(format!("reading the answer: {e}")))
}

/// A `tools/call` result as the model reads it: its text content (other
/// content named by type), else its structured content; whether it is an
/// error; a pending approval.
fn read_result(result: &Value) -> ToolResult {
    if result["resultType"].as_str() == Some("input_required") {
        return ToolResult::error(
            "Error: the tool asked for input, which the agent API cannot give".into(),
        );
    }
    let mut parts = Vec::new();
    for c in result["content"].as_array().into_iter().flatten() {
        match c["type"].as_str() {
            Some("text") => parts.push(c["text"].as_str().unwrap_or("").to_string()),
            Some(other) => parts.push(format!("[{other} content]")),
            None => {}
        }
    }
    if parts.is_empty() {
        if let Some(s) = result.get("structuredContent") {
            parts.push(s.to_string());
        }
    }
    let approval = result["_meta"]["mcp-edge/approval"].clone();
    ToolResult {
        text: parts.join("\n"),
        is_error: result["isError"].as_bool().unwrap_or(false),
        approval: (approval["status"] == "pending").then_some(approval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_read_as_the_model_sees_them() {
        let r =
            read_result(&json!({"content": [{"type": "text", "text": "a"}, {"type": "image"}]}));
        assert_eq!((r.text.as_str(), r.is_error), ("a\n[image content]", false));
        let r =
            read_result(&json!({"content": [], "structuredContent": {"n": 1}, "isError": true}));
        assert_eq!((r.text.as_str(), r.is_error), ("{\"n\":1}", true));
        let pending = json!({"isError": true, "content": [],
            "_meta": {"mcp-edge/approval": {"id": "x", "status": "pending", "url": "u"}}});
        assert_eq!(read_result(&pending).approval.unwrap()["id"], "x");
        let rejected =
            json!({"isError": true, "_meta": {"mcp-edge/approval": {"status": "rejected"}}});
        assert!(read_result(&rejected).approval.is_none());
        assert!(read_result(&json!({"resultType": "input_required"})).is_error);
    }
}
