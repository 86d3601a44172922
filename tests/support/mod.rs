//! Test harness for integration tests on the memory adapter: a gateway in front
//! of mock MCP servers, and a tiny MCP client that speaks raw HTTP to it so
//! tests can see every status code and header.
#![allow(dead_code)]

pub mod admin;
pub mod jwt;
pub mod logs;
pub mod model;
pub mod oauth;
pub mod otel;

use futures_util::StreamExt;
use mcp_edge::adapters::memory::{MemoryPlatform, MockServer};
use mcp_edge::config::Settings;
use mcp_edge::gateway::RequestMeta;
use mcp_edge::{Body, Gateway};
use serde_json::{json, Value};
use std::rc::Rc;

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// The 2026-07-28 revision.
pub const MODERN: &str = "2026-07-28";

/// A modern request body: `params._meta` gains the revision, empty client
/// capabilities and a client name, beside whatever `_meta` it had.
pub fn modern_body(id: i64, method: &str, mut params: Value) -> Value {
    let meta = params["_meta"].as_object().cloned().unwrap_or_default();
    let mut envelope = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    });
    envelope.as_object_mut().unwrap().extend(meta);
    params["_meta"] = envelope;
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A modern request as a client sends it: [`modern_body`] with the routing
/// headers (`MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` when the
/// params name something), plus `extra`.
pub fn modern_request(
    path: &str,
    id: i64,
    method: &str,
    params: Value,
    extra: &[(&str, &str)],
) -> http::Request<Vec<u8>> {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let body = modern_body(id, method, params);
    let mut headers = vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];
    if let Some(name) = &name {
        headers.push(("mcp-name", name));
    }
    headers.extend_from_slice(extra);
    Harness::post_request(path, body.to_string().into_bytes(), &headers)
}

/// A modern `tools/call` of `name` on `path`, id `id`, by a client
/// declaring `capabilities`, with `extra` params (a retry's answers).
pub async fn modern_call(
    h: &Harness,
    (path, id, name): (&str, i64, &str),
    capabilities: Value,
    extra: Value,
) -> Reply {
    let mut params = json!({"name": name, "arguments": {}});
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    let mut body = modern_body(id, "tools/call", params);
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities;
    let headers = [
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    h.post(path, &body, &headers).await
}

/// A modern `tools/call` of `alpha__slow` on `/mcp` (two progress steps,
/// progress token `p1`, id 9), with `extra` headers: the streamed call of
/// [`Harness::two_servers`].
pub async fn slow_call(h: &Harness, extra: &[(&str, &str)]) -> Reply {
    let params = json!({"name": "alpha__slow", "arguments": {"steps": 2, "interval_ms": 1}});
    let mut body = modern_body(9, "tools/call", params);
    body["params"]["_meta"]["progressToken"] = json!("p1");
    let mut headers = vec![
        ("mcp-protocol-version", MODERN),
        ("mcp-method", "tools/call"),
        ("mcp-name", "alpha__slow"),
    ];
    headers.extend_from_slice(extra);
    h.post("/mcp", &body, &headers).await
}

/// A GET on `/mcp` in session `sid` (its merged server stream), as the
/// harness's caller, with `extra` headers.
pub fn mcp_stream_request(sid: &str, extra: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let mut req = http::Request::get("http://gw.test/mcp")
        .header("accept", "text/event-stream")
        .header("host", "gw.test")
        .header("x-api-key", API_KEY)
        .header("mcp-session-id", sid)
        .header("mcp-protocol-version", "2025-06-18");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.body(Vec::new()).unwrap()
}

/// The API key every harness request carries unless it brings its own
/// credential (principal `tester`).
pub const API_KEY: &str = "mk_test_tester";

/// A gateway, its memory platform and the mock servers behind it.
pub struct Harness {
    pub gw: Rc<Gateway>,
    pub p: Rc<MemoryPlatform>,
    pub meta: RequestMeta,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    /// A harness whose settings are the defaults but one variable.
    pub fn with_var(name: &str, value: &str) -> Self {
        Self::with_settings(setting(name, value))
    }

    pub fn with_settings(settings: Settings) -> Self {
        let h = Harness {
            gw: std::rc::Rc::new(Gateway::new(settings)),
            p: Rc::new(MemoryPlatform::default()),
            meta: RequestMeta::default(),
        };
        h.api_key(
            API_KEY,
            json!({"subject": "tester", "teams": ["qa"], "scopes": ["mcp:tools"]}),
        );
        h
    }

    /// `/mcp`'s merged stream in session `sid`, read to its end.
    pub async fn listen_mcp(&self, sid: &str, extra: &[(&str, &str)]) -> Reply {
        Reply::read(self.open(mcp_stream_request(sid, extra)).await).await
    }

    /// Another isolate of the same deployment: its own caches (config,
    /// sessions, lists), the same stores and upstreams.
    pub fn another_isolate(&self) -> Harness {
        Harness {
            gw: std::rc::Rc::new(Gateway::new(Settings::default())),
            p: self.p.clone(),
            meta: RequestMeta::default(),
        }
    }

    /// Stores an API key record (under the key's SHA-256, as in production).
    pub fn api_key(&self, key: &str, record: Value) {
        let hash = mcp_edge::identity::sha256_hex(key.as_bytes());
        self.p
            .kv
            .put(&format!("auth/apikeys/{hash}"), &record.to_string());
        self.gw.reload_config();
    }

    /// Registers `server` at one endpoint per region, `http://{id}.{region}.test/mcp`,
    /// and mounts the mock at each.
    pub fn add(&self, id: &str, server: MockServer, regions: &[&str]) -> Rc<MockServer> {
        let server = Rc::new(server);
        let endpoints: Vec<Value> = regions
            .iter()
            .map(|r| json!({"region": r, "url": format!("http://{id}.{r}.test/mcp")}))
            .collect();
        for r in regions {
            self.p
                .http
                .mount(&format!("http://{id}.{r}.test/mcp"), server.clone());
        }
        self.register(id, json!({"description": format!("{id} server"), "endpoints": endpoints, "timeout_ms": 1000}));
        server
    }

    /// The registry entry of `id` as stored.
    pub fn raw_entry(&self, id: &str) -> Value {
        let text = self
            .p
            .kv
            .value(&format!("servers/{id}"))
            .expect("a registry entry");
        serde_json::from_str(&text).unwrap()
    }

    /// Writes a registry entry as is.
    pub fn register(&self, id: &str, entry: Value) {
        self.p.kv.put(&format!("servers/{id}"), &entry.to_string());
        self.gw.reload_config();
    }

    /// The usual pair: `alpha` (echo, add, slow; prompts; a resource) and `beta`
    /// (echo, search; a resource), one region each.
    pub fn two_servers() -> (Harness, Rc<MockServer>, Rc<MockServer>) {
        let h = Harness::new();
        let a = h.add(
            "alpha",
            MockServer::new("alpha")
                .tools(&["echo", "add", "slow"])
                .prompts(&["greet"])
                .resources(&["alpha://doc"]),
            &["us"],
        );
        let b = h.add(
            "beta",
            MockServer::new("beta")
                .tools(&["echo", "search"])
                .resources(&["beta://doc"]),
            &["us"],
        );
        (h, a, b)
    }

    /// Sends a raw HTTP request, with the harness API key unless the request
    /// carries a credential (or `x-no-credential`) of its own.
    pub async fn send(&self, req: http::Request<Vec<u8>>) -> Reply {
        Reply::read(self.open(req).await).await
    }

    /// Like `send`, but the response body is left unread, for tests that
    /// act while a stream is still open.
    /// `x-test-client-addr` stands for the client address the platform
    /// reports (`CF-Connecting-IP`, Spin's peer address).
    pub async fn open(&self, mut req: http::Request<Vec<u8>>) -> http::Response<Body> {
        let h = req.headers_mut();
        if h.remove("x-no-credential").is_none()
            && !h.contains_key("authorization")
            && !h.contains_key("x-api-key")
        {
            h.insert("x-api-key", API_KEY.parse().unwrap());
        }
        let mut meta = self.meta.clone();
        if let Some(addr) = h.remove("x-test-client-addr") {
            meta.client_addr = Some(addr.to_str().unwrap().to_string());
        }
        self.gw.handle(&self.p, req, &meta).await
    }

    /// A POST with the usual MCP headers plus `extra` (which replace the
    /// usual ones of the same name), as a request.
    pub fn post_request(
        path: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> http::Request<Vec<u8>> {
        let mut req = http::Request::post(format!("http://gw.test{path}"))
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
            .header("host", "gw.test")
            .body(body)
            .unwrap();
        for (k, v) in extra {
            let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        req
    }

    /// POSTs a JSON body with the usual MCP headers plus `extra`.
    pub async fn post(&self, path: &str, body: &Value, extra: &[(&str, &str)]) -> Reply {
        self.post_raw(path, body.to_string().into_bytes(), extra)
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Reply {
        self.send(Self::post_request(path, body, extra)).await
    }

    /// Initializes a session on `path` and returns a client bound to it.
    pub async fn connect(&self, path: &str) -> Client<'_> {
        self.connect_with_version(path, "2025-06-18").await
    }

    pub async fn connect_with_version(&self, path: &str, version: &str) -> Client<'_> {
        let r = self.post(path, &initialize(1, version), &[]).await;
        assert_eq!(r.status, 200, "initialize failed: {}", r.text);
        let session = r.header("mcp-session-id").expect("session id issued");
        let version = r.json()["result"]["protocolVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let client = Client {
            h: self,
            path: path.to_string(),
            session,
            version,
            next_id: 100,
        };
        let note = client.notify("notifications/initialized", json!({})).await;
        assert_eq!(note.status, 202);
        client
    }
}

/// The default settings but one variable, as an operator would set it.
pub fn setting(name: &str, value: &str) -> Settings {
    Settings::from_vars(|k| (k == name).then(|| value.to_string())).unwrap()
}

/// An `initialize` request.
pub fn initialize(id: i64, version: &str) -> Value {
    initialize_with(id, version, json!({}))
}

/// An `initialize` request declaring client `capabilities`.
pub fn initialize_with(id: i64, version: &str, capabilities: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": capabilities, "clientInfo": {"name": "test", "version": "1"}}})
}

/// A client bound to one session.
pub struct Client<'a> {
    pub h: &'a Harness,
    pub path: String,
    pub session: String,
    pub version: String,
    next_id: i64,
}

impl Client<'_> {
    fn headers(&self) -> [(&str, &str); 2] {
        [
            ("mcp-session-id", self.session.as_str()),
            ("mcp-protocol-version", self.version.as_str()),
        ]
    }

    /// Sends a request and returns the raw reply.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        self.h.post(&self.path, &body, &self.headers()).await
    }

    /// Sends a request and returns the JSON-RPC response (from JSON or SSE).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params).await;
        assert_eq!(r.status, 200, "{method}: {}", r.text);
        r.response()
    }

    /// The `result` of a request; panics on a JSON-RPC error.
    pub async fn result(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params).await;
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp["result"].clone()
    }

    pub async fn notify(&self, method: &str, params: Value) -> Reply {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.h.post(&self.path, &body, &self.headers()).await
    }

    pub async fn delete(&self) -> Reply {
        let mut req = http::Request::delete(format!("http://gw.test{}", self.path));
        for (k, v) in self.headers() {
            req = req.header(k, v);
        }
        self.h.send(req.body(Vec::new()).unwrap()).await
    }

    /// Every tool name, following the gateway's cursors to the end.
    pub async fn all_names(&mut self, method: &str, field: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let page = self.result(method, params).await;
            for item in page[field].as_array().unwrap() {
                names.push(item["name"].as_str().unwrap().to_string());
            }
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return names,
            }
        }
    }
}

/// A collected gateway response.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
    /// Chunks as the gateway flushed them (one per relayed SSE event batch).
    pub chunks: Vec<String>,
}

impl Reply {
    pub async fn read(resp: http::Response<Body>) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let chunks: Vec<String> = match resp.into_body() {
            Body::Full(b) => vec![String::from_utf8(b).unwrap()],
            other => {
                other
                    .into_stream()
                    .map(|c| String::from_utf8(c.unwrap()).unwrap())
                    .collect()
                    .await
            }
        };
        Reply {
            status,
            headers,
            text: chunks.concat(),
            chunks,
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    pub fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Every SSE message in order.
    pub fn events(&self) -> Vec<Value> {
        let mut d = mcp_edge::protocol::sse::Decoder::new();
        d.feed(self.text.as_bytes())
            .into_iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    /// The JSON-RPC response: the body, or the last SSE message.
    pub fn response(&self) -> Value {
        if self.is_sse() {
            self.events().pop().expect("an SSE response")
        } else {
            self.json()
        }
    }

    /// The JSON-RPC error, asserting the HTTP status.
    pub fn error(&self, status: u16) -> (i64, String) {
        assert_eq!(self.status, status, "{}", self.text);
        let v = self.json();
        (
            v["error"]["code"].as_i64().unwrap(),
            v["error"]["message"].as_str().unwrap().to_string(),
        )
    }
}

/// Compares `value` to `tests/golden/{name}.json`; `UPDATE_GOLDEN=1` rewrites it.
pub fn golden(name: &str, value: &Value) {
    let path = format!("{}/tests/golden/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {path}; run with UPDATE_GOLDEN=1"));
    assert_eq!(text, want, "golden {name} differs");
}
