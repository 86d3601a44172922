//! A small in-process MCP server (legacy Streamable HTTP with sessions) for
//! integration tests and benchmarks of the core. It is deliberately plain and
//! configurable: paging, delays, SSE answers with progress, failures, lost
//! sessions. The end-to-end tests use real SDK servers instead.

use crate::body::{Body, Chunk};
use crate::protocol::headers;
use futures_util::StreamExt;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use super::mock_tools::{plain, Outcome};

/// One HTTP request the mock received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub http_method: String,
    pub rpc_method: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body exactly as received.
    pub raw: Vec<u8>,
}

/// The mock server. Tools `echo` (`text`), `add` (`a`, `b`), `sum`
/// (`values`, strict schema), `delete` (`id`, destructive), `slow`
/// (`steps`, `interval_ms`; progress over SSE) and the hostile ones in
/// [`super::mock_tools`] behave; any other listed tool answers with its own
/// name. Resources whose URI contains `pii` hold a phone number; prompts
/// whose name contains `pii` and completions carry email addresses; with
/// [`MockServer::get_stream`], GET opens a stream carrying one.
pub struct MockServer {
    pub name: String,
    tools: Vec<Value>,
    prompts: Vec<Value>,
    resources: Vec<Value>,
    page_size: Option<usize>,
    delay_ms: u64,
    sse: bool,
    get_stream: bool,
    /// Notifications for listeners ([`super::mock_listen`]).
    notices: Option<Vec<Value>>,
    /// Its listen streams stay open after the notifications.
    quiet: bool,
    /// Cache hints added to every list page (`ttlMs`, `cacheScope`).
    list_hints: Option<Value>,
    /// Also speaks 2026-07-28: answers `server/discover` and serves a
    /// request carrying the modern envelope without a session.
    modern: bool,
    /// Refuses `initialize` as a modern-only server does.
    modern_only: bool,
    list_error: Option<String>,
    fail_status: RefCell<Option<u16>>,
    /// Status for an unknown session: 404 per spec, 400 like some SDK examples.
    lost_session_status: u16,
    sessions: RefCell<HashSet<String>>,
    counter: RefCell<u64>,
    seen: RefCell<Vec<Seen>>,
    /// Questions asked mid-call ([`super::mock_asks`]).
    asks: Rc<super::mock_asks::Asks>,
}

impl MockServer {
    pub fn new(name: &str) -> Self {
        MockServer {
            name: name.to_string(),
            tools: Vec::new(),
            prompts: Vec::new(),
            resources: Vec::new(),
            page_size: None,
            delay_ms: 0,
            sse: false,
            get_stream: false,
            notices: None,
            quiet: false,
            list_hints: None,
            modern: false,
            modern_only: false,
            list_error: None,
            fail_status: RefCell::new(None),
            lost_session_status: 404,
            sessions: RefCell::new(HashSet::new()),
            counter: RefCell::new(0),
            seen: RefCell::new(Vec::new()),
            asks: Rc::default(),
        }
    }

    pub fn tools(mut self, names: &[&str]) -> Self {
        self.tools = names.iter().map(|n| self.tool_def(n)).collect();
        self
    }

    /// `sum` declares a strict draft-07 schema and `delete` is marked
    /// destructive; other tools take any object.
    fn tool_def(&self, name: &str) -> Value {
        let mut def = json!({"name": name, "description": format!("{name} on {}", self.name), "inputSchema": {"type": "object"}});
        match name {
            "sum" => {
                def["inputSchema"] = json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"values": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
                    "required": ["values"],
                    "additionalProperties": false
                })
            }
            "delete" => {
                def["inputSchema"] = json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
                def["annotations"] = json!({"destructiveHint": true});
            }
            _ => {}
        }
        def
    }
    pub fn prompts(mut self, names: &[&str]) -> Self {
        self.prompts = names.iter().map(|n| json!({"name": n})).collect();
        self
    }
    pub fn resources(mut self, uris: &[&str]) -> Self {
        self.resources = uris.iter().map(|u| json!({"uri": u, "name": u})).collect();
        self
    }
    /// Lists answer at most `n` items per page.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n);
        self
    }
    /// Every answer waits this long first.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
    /// Answers requests as SSE streams instead of JSON.
    pub fn sse(mut self) -> Self {
        self.sse = true;
        self
    }
    /// GET opens a server-to-client stream (one notification carrying an
    /// email address, with event id `ev-1`) instead of answering 405.
    pub fn get_stream(mut self) -> Self {
        self.get_stream = true;
        self
    }
    /// Speaks 2026-07-28 too (dual era). Its tool `ask` answers
    /// `input_required` with `requestState` `up-state` until it is retried
    /// with that state and an answer under `inputResponses.who`.
    pub fn modern(mut self) -> Self {
        self.modern = true;
        self
    }
    /// Declares list changes and resource subscriptions, and sends these
    /// notifications on every listen stream (modern) and GET stream
    /// (legacy), then ends it.
    pub fn notices(mut self, notices: Vec<Value>) -> Self {
        self.notices = Some(notices);
        self
    }
    /// Its listen and GET streams stay open, silent, after the
    /// notifications (none unless `notices` gave some).
    pub fn quiet_listener(mut self) -> Self {
        self.notices.get_or_insert_with(Vec::new);
        self.quiet = true;
        self
    }
    /// Adds these cache hints to every list page.
    pub fn list_hints(mut self, hints: Value) -> Self {
        self.list_hints = Some(hints);
        self
    }
    /// Speaks 2026-07-28 only: `initialize` is refused with the
    /// revision's unsupported-version error.
    pub fn modern_only(mut self) -> Self {
        self.modern = true;
        self.modern_only = true;
        self
    }
    /// `tools/list` answers a JSON-RPC error with this message.
    pub fn list_error(mut self, message: &str) -> Self {
        self.list_error = Some(message.to_string());
        self
    }
    pub fn lost_session_status(mut self, status: u16) -> Self {
        self.lost_session_status = status;
        self
    }
    /// Answers every request with this HTTP status from now on (`None` heals).
    pub fn fail_with(&self, status: Option<u16>) {
        *self.fail_status.borrow_mut() = status;
    }
    /// Forgets every session, like a restarted server.
    pub fn forget_sessions(&self) {
        self.sessions.borrow_mut().clear();
    }
    /// The answers clients sent to its mid-call questions.
    pub fn answers(&self) -> Vec<Value> {
        self.asks.answers.borrow().clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.borrow().clone()
    }
    /// How many JSON-RPC requests of `method` arrived.
    pub fn count(&self, method: &str) -> usize {
        self.seen
            .borrow()
            .iter()
            .filter(|s| s.rpc_method.as_deref() == Some(method))
            .count()
    }

    /// Serves one request (tests mount it behind handlers of their own).
    pub async fn handle(&self, req: http::Request<Vec<u8>>) -> Response<Body> {
        let (parts, raw) = req.into_parts();
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let method = body
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.seen.borrow_mut().push(Seen {
            http_method: parts.method.to_string(),
            rpc_method: method.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
            raw,
        });
        if self.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        }
        if let Some(status) = *self.fail_status.borrow() {
            return plain(
                status,
                json!({"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"mock failure"}}),
            );
        }
        let session = parts
            .headers
            .get(headers::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if method.as_deref() == Some("initialize") && self.modern_only {
            return plain(
                400,
                json!({"jsonrpc":"2.0","id":body.get("id"),"error":{"code":-32022,
                    "message":"Unsupported protocol version",
                    "data":{"supported":["2026-07-28"],"requested":body.pointer("/params/protocolVersion")}}}),
            );
        }
        if method.as_deref() == Some("initialize") {
            return self.initialize(&body);
        }
        let envelope = body
            .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
            .and_then(Value::as_str)
            == Some("2026-07-28");
        if self.modern && envelope && session.is_none() {
            return self.modern_rpc(method.as_deref().unwrap_or(""), &body);
        }
        if !session
            .as_ref()
            .is_some_and(|s| self.sessions.borrow().contains(s))
        {
            return plain(
                self.lost_session_status,
                json!({"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: No valid session ID provided"}}),
            );
        }
        match parts.method {
            http::Method::DELETE => {
                self.sessions
                    .borrow_mut()
                    .remove(session.as_deref().unwrap_or(""));
                return plain(200, Value::Null);
            }
            http::Method::GET
                if last_event_id(&parts.headers).is_some_and(|l| l.starts_with("ask-")) =>
            {
                return self
                    .asks
                    .resume(last_event_id(&parts.headers).unwrap_or(""));
            }
            http::Method::GET if self.notices.is_some() => {
                let notices = self.notices.as_deref().unwrap_or(&[]);
                let last = parts
                    .headers
                    .get(headers::LAST_EVENT_ID)
                    .and_then(|v| v.to_str().ok());
                return super::mock_listen::get_stream(notices, self.quiet, last);
            }
            http::Method::GET if self.get_stream => return get_stream(),
            http::Method::GET => return plain(405, Value::Null),
            _ => {}
        }
        if method.is_none() && body.get("id").is_some() {
            // The client's answer to a question of ours.
            self.asks.answer(&body);
            return Response::builder()
                .status(StatusCode::ACCEPTED)
                .body(Body::empty())
                .expect("static");
        }
        if body.get("id").is_none() {
            return Response::builder()
                .status(StatusCode::ACCEPTED)
                .body(Body::empty())
                .expect("static");
        }
        self.rpc(method.as_deref().unwrap_or(""), &body)
    }

    fn capabilities(&self) -> Value {
        match self.notices {
            Some(_) => super::mock_listen::capabilities(),
            None => json!({"tools": {}}),
        }
    }

    /// `initialize`: a new session, named after the server.
    fn initialize(&self, body: &Value) -> Response<Body> {
        let id = {
            let mut c = self.counter.borrow_mut();
            *c += 1;
            format!("{}-session-{c}", self.name)
        };
        self.sessions.borrow_mut().insert(id.clone());
        let version = body
            .pointer("/params/protocolVersion")
            .cloned()
            .unwrap_or(json!("2025-06-18"));
        let result = json!({"protocolVersion": version, "capabilities": self.capabilities(), "serverInfo": {"name": self.name, "version": "1"}});
        let mut resp = self.answer(body, Ok(result), Vec::new());
        resp.headers_mut()
            .insert(headers::SESSION_ID, id.parse().expect("ascii"));
        resp
    }

    /// A stateless 2026-07-28 request.
    fn modern_rpc(&self, method: &str, body: &Value) -> Response<Body> {
        let params = body.get("params").cloned().unwrap_or(json!({}));
        let result = match method {
            "subscriptions/listen" if self.notices.is_some() => {
                let notices = self.notices.as_deref().unwrap_or(&[]);
                return super::mock_listen::listen(body, notices, self.quiet);
            }
            "server/discover" => json!({"supportedVersions": ["2026-07-28"],
                "capabilities": self.capabilities(), "resultType": "complete",
                "ttlMs": 60_000, "cacheScope": "public",
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": self.name, "version": "1"}}}),
            "tools/call" if params["name"] == "ask" => {
                match (
                    params.get("requestState"),
                    params.pointer("/inputResponses/who"),
                ) {
                    (Some(s), Some(who)) if s == "up-state" => json!({"resultType": "complete",
                        "content": [{"type": "text", "text": format!("hello {}", who["content"]["name"])}]}),
                    _ => json!({"resultType": "input_required", "requestState": "up-state",
                        "inputRequests": {"who": {"method": "elicitation/create",
                            "params": {"message": "Who?", "requestedSchema": {"type": "object"}}}}}),
                }
            }
            _ => return self.rpc(method, body),
        };
        self.answer(body, Ok(result), Vec::new())
    }

    /// A request within a session, by its method.
    fn rpc(&self, method: &str, body: &Value) -> Response<Body> {
        let params = body.get("params").cloned().unwrap_or(json!({}));
        let (result, notes) = match method {
            "tools/list" if self.list_error.is_some() => (
                Err((-32603, self.list_error.clone().unwrap_or_default())),
                Vec::new(),
            ),
            "tools/list" => (self.page("tools", &self.tools, &params), Vec::new()),
            "prompts/list" => (self.page("prompts", &self.prompts, &params), Vec::new()),
            "resources/list" => (self.page("resources", &self.resources, &params), Vec::new()),
            "resources/templates/list" => (Ok(json!({"resourceTemplates": []})), Vec::new()),
            "resources/read" => (self.read(&params), Vec::new()),
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                let listed = self.tools.iter().any(|t| t["name"] == name);
                let id = body.get("id").cloned().unwrap_or(Value::Null);
                if let Some(raw) = listed
                    .then(|| super::mock_tools::respond(name, &params, &id))
                    .flatten()
                {
                    return raw;
                }
                if let Some(asking) = listed
                    .then(|| self.asks.call(&self.name, name, &id))
                    .flatten()
                {
                    return asking;
                }
                self.call(&params)
            }
            "prompts/get" => (
                Ok(super::mock_tools::prompt(&self.name, &params)),
                Vec::new(),
            ),
            "completion/complete" => (
                Ok(
                    json!({"completion": {"values": ["ops@corp.example", "plain"], "hasMore": false}}),
                ),
                Vec::new(),
            ),
            "logging/setLevel" | "ping" | "resources/subscribe" | "resources/unsubscribe" => {
                (Ok(json!({})), Vec::new())
            }
            other => (
                Err((-32601, format!("Method not found: {other}"))),
                Vec::new(),
            ),
        };
        self.answer(body, result, notes)
    }

    fn page(&self, field: &str, items: &[Value], params: &Value) -> Outcome {
        let start: usize = match params.get("cursor").and_then(Value::as_str) {
            Some(c) => c
                .strip_prefix("page-")
                .and_then(|n| n.parse().ok())
                .ok_or((-32602, "bad cursor".to_string()))?,
            None => 0,
        };
        let size = self.page_size.unwrap_or(usize::MAX);
        let end = start.saturating_add(size).min(items.len());
        let mut result = json!({ field: items.get(start..end).unwrap_or(&[]) });
        if let (Some(hints), Some(page)) = (&self.list_hints, result.as_object_mut()) {
            page.extend(hints.as_object().cloned().unwrap_or_default());
        }
        if end < items.len() {
            result["nextCursor"] = json!(format!("page-{end}"));
        }
        Ok(result)
    }

    fn read(&self, params: &Value) -> Outcome {
        let uri = params.get("uri").and_then(Value::as_str).unwrap_or("");
        if self.resources.iter().any(|r| r["uri"] == uri) {
            let text = if uri.contains("pii") {
                format!("{} holds {uri}: call +44 20 7946 0958", self.name)
            } else {
                format!("{} holds {uri}", self.name)
            };
            Ok(json!({"contents": [{"uri": uri, "text": text}]}))
        } else {
            Err((-32002, format!("Resource not found: {uri}")))
        }
    }

    /// A tool call: the result plus (delay, notification) pairs streamed first.
    fn call(&self, params: &Value) -> (Outcome, Vec<(u64, Value)>) {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        if !self.tools.iter().any(|t| t["name"] == name) {
            return (Err((-32602, format!("Unknown tool: {name}"))), Vec::new());
        }
        let args = params.get("arguments").cloned().unwrap_or(json!({}));
        let text = |t: String| Ok(json!({"content": [{"type": "text", "text": t}]}));
        match name {
            "echo" => (
                text(args["text"].as_str().unwrap_or("").to_string()),
                Vec::new(),
            ),
            "add" => (
                text(
                    (args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0)).to_string(),
                ),
                Vec::new(),
            ),
            "slow" => {
                let steps = args["steps"].as_u64().unwrap_or(3);
                let interval = args["interval_ms"].as_u64().unwrap_or(100);
                let token = params.pointer("/_meta/progressToken").cloned();
                let notes = (1..=steps)
                    .filter_map(|i| {
                        let token = token.clone()?;
                        Some((interval, json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken": token, "progress": i, "total": steps}})))
                    })
                    .collect();
                (text(format!("counted to {steps}")), notes)
            }
            "sum" => {
                let values = args["values"].as_array().cloned().unwrap_or_default();
                let total: f64 = values.iter().filter_map(Value::as_f64).sum();
                (text(total.to_string()), Vec::new())
            }
            "delete" => (
                text(format!("deleted {}", args["id"].as_str().unwrap_or(""))),
                Vec::new(),
            ),
            other => match super::mock_tools::call(other, &args, params) {
                Some(outcome) => outcome,
                None => (text(format!("{}:{other}", self.name)), Vec::new()),
            },
        }
    }

    /// Answers as JSON, or as SSE (always SSE when there are notifications).
    fn answer(&self, request: &Value, result: Outcome, notes: Vec<(u64, Value)>) -> Response<Body> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let message = match result {
            Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
            Err((code, msg)) => {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": msg}})
            }
        };
        if !self.sse && notes.is_empty() {
            return plain(200, message);
        }
        let events = notes.into_iter().chain(std::iter::once((0, message)));
        let stream = futures_util::stream::iter(events).then(|(wait, msg)| async move {
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Ok::<_, String>(format!("event: message\ndata: {msg}\n\n").into_bytes())
        });
        Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
            .body(Body::Stream(stream.map(|c: Chunk| c).boxed_local()))
            .expect("static")
    }
}

/// The GET stream: a notification with an address in it, twice (the second
/// with addresses in its event id and type).
fn get_stream() -> Response<Body> {
    let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"stream for ops@corp.example"}});
    let event = format!(
        "id: ev-1\nevent: message\ndata: {note}\n\nid: ids@corp.example\nevent: to-evt@corp.example\ndata: {note}\n\n"
    );
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, headers::EVENT_STREAM)
        .body(Body::Full(event.into_bytes()))
        .expect("static")
}

/// The `Last-Event-ID` a GET resumes after.
fn last_event_id(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(headers::LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
}
