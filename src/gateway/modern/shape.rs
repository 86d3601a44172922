//! How an answer to a modern (2026-07-28) request is shaped on its way to
//! the client: `resultType` and the gateway's own cache hints on results,
//! the status an error's code implies, and nothing a modern client must not
//! get (server-to-client requests, log messages it did not ask for, an
//! `input_required` whose state the gateway cannot protect yet). Rules from
//! `docs/specification/2026-07-28/` in `modelcontextprotocol/modelcontextprotocol`:
//! `basic/transports/streamable-http.mdx`, `server/utilities/caching.mdx`,
//! `basic/patterns/mrtr.mdx`.

use super::question::OwnQuestion;
use super::round::Sealer;
use crate::body::Body;
use crate::error::code;
use crate::identity::sealed::{Sealed, STATE_TTL_MS};
use crate::protocol::headers;
use crate::protocol::jsonrpc::{self, Id};
use crate::protocol::modern;
use http::Response;
use serde_json::{json, Value};

/// What the gateway serves modern clients of what a server offers: no
/// `logging` (no `logging/setLevel` in the revision; a request's `logLevel`
/// is what asks for messages). `listChanged` and `subscribe` stay: they say
/// what `subscriptions/listen` can deliver.
pub(super) fn served(mut capabilities: Value) -> Value {
    if let Some(all) = capabilities.as_object_mut() {
        all.remove("logging");
    }
    capabilities
}

/// How a modern answer is shaped on its way to the client.
pub(super) struct Shape {
    /// The request's id: an answer that must be refused is an error for it.
    pub(super) id: Id,
    /// Lists, `resources/read`, discover: they carry cache hints.
    pub(super) cacheable: bool,
    /// `tools/call`, `prompts/get`, `resources/read`: the only results the
    /// revision lets be `input_required`.
    pub(super) may_ask: bool,
    /// The least severe log level the client asked for (a rank of
    /// `protocol::modern::LOG_LEVELS`), if any.
    pub(super) log_level: Option<usize>,
    pub(super) limit: usize,
    /// How an upstream's `requestState` is sealed for this caller and
    /// request; without it an upstream's `input_required` is refused.
    pub(super) seal: Option<Sealer>,
    /// The id the request went upstream under, when it was not the
    /// client's (a shared upstream session): answers get `id` back.
    pub(super) wire: Option<Id>,
    /// What cancels the request upstream if the client's stream goes away
    /// before the answer (armed only for a streamed answer).
    pub(super) on_abandon: Option<super::cancel::OnAbandon>,
    /// The digest of the upstream session the request went on with a
    /// server, named in the state of a question a legacy upstream asks
    /// mid-call ([`super::held`]); looked up only then. Legacy sessions
    /// only: a modern upstream asks in its own `input_required`.
    pub(super) session_of: SessionOf,
    /// What the client can be asked ([`super::held::answerable`]).
    pub(super) answerable: Vec<&'static str>,
    /// The request came to `/mcp`, where a question to the user says which
    /// server asks it.
    pub(super) aggregated: bool,
}

/// The digest of the (legacy) upstream session held with a server.
pub(super) type SessionOf = Box<dyn Fn(&str) -> Option<String>>;

/// The server whose answer a response carries, where the request did not
/// name it (a `resources/read` on `/mcp`).
#[derive(Debug, Clone)]
pub(crate) struct AnsweredBy(pub String);

impl Shape {
    /// The answer as the 2026-07-28 revision has it. A result says
    /// `resultType: "complete"` and a cacheable one the gateway's cache
    /// hints; in an event stream the response event is shaped the same way
    /// and messages a modern client must not get are left out. A JSON error
    /// (an upstream's too) gets the HTTP status its code implies.
    pub(super) fn apply(mut self, mut response: Response<Body>) -> Response<Body> {
        if response.extensions().get::<OwnQuestion>().is_some() {
            // The gateway's own question: already as the revision has it,
            // but asked of the request as it went on (its id included).
            if let (Some(_), Body::Full(bytes)) = (&self.wire, response.body()) {
                if let Ok(mut message) = serde_json::from_slice::<Value>(bytes) {
                    self.restore_id(&mut message);
                    *response.body_mut() = Body::Full(serde_json::to_vec(&message).expect("JSON"));
                    response.headers_mut().remove(http::header::CONTENT_LENGTH);
                }
            }
            return response;
        }
        if let (Some(seal), Some(by)) = (&mut self.seal, response.extensions().get::<AnsweredBy>())
        {
            seal.server = Some(by.0.clone());
        }
        if is_stream(&response) {
            let body = std::mem::replace(response.body_mut(), Body::empty());
            *response.body_mut() = Body::Stream(self.events(body));
            return response;
        }
        let Body::Full(bytes) = response.body() else {
            return response;
        };
        let Ok(mut message) = serde_json::from_slice::<Value>(bytes) else {
            return response;
        };
        self.complete(&mut message);
        if let Some(code) = message.pointer("/error/code").and_then(Value::as_i64) {
            if let Some(status) = status_of(code) {
                *response.status_mut() = status;
            }
        }
        let bytes = serde_json::to_vec(&message).expect("JSON serializes");
        response.headers_mut().remove(http::header::CONTENT_LENGTH);
        *response.body_mut() = Body::Full(bytes);
        response
    }

    /// Shapes a response message in place. The cache hints are the
    /// gateway's own, always: what a caller sees is filtered for them, so an
    /// upstream's `public` must not reach a shared cache. An upstream's
    /// `input_required` passes on a method that may ask, with its
    /// `requestState` sealed for this caller and request; anything else the
    /// gateway cannot relay safely becomes an error.
    /// The client's id on an answer to the request as it went upstream.
    fn restore_id(&self, message: &mut Value) {
        if let (Some(wire), Some(id)) = (&self.wire, message.get_mut("id")) {
            if serde_json::from_value::<Id>(id.clone()).is_ok_and(|i| i == *wire) {
                *id = serde_json::to_value(&self.id).expect("ids serialize");
            }
        }
    }

    pub(super) fn complete(&self, message: &mut Value) {
        self.restore_id(message);
        let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
            return;
        };
        let refuse = |why: String| {
            serde_json::from_slice(&jsonrpc::error_body(
                Some(&self.id),
                code::UPSTREAM_UNAVAILABLE,
                &format!("Upstream server {why}"),
                None,
            ))
            .expect("an error body is JSON")
        };
        match result.get("resultType").and_then(Value::as_str) {
            None | Some("complete") => {}
            // The gateway's own question key is the gateway's: an upstream
            // using it would pass for an approval question.
            Some("input_required")
                if self.may_ask
                    && result
                        .get("inputRequests")
                        .and_then(|r| r.get(super::question::INPUT_KEY))
                        .is_none() =>
            {
                // Not cacheable, whatever the upstream says.
                result.remove("ttlMs");
                result.remove("cacheScope");
                match (result.get("requestState"), &self.seal) {
                    (None, _) => {}
                    (
                        Some(Value::String(state)),
                        Some(
                            seal @ Sealer {
                                server: Some(server),
                                ..
                            },
                        ),
                    ) => {
                        let sealed = Sealed {
                            state: state.clone(),
                            server: server.clone(),
                            expires_ms: seal.now_ms.saturating_add(STATE_TTL_MS),
                            grant: seal.grant.clone(),
                            held: None,
                        };
                        let text = seal.key.seal(&sealed, &seal.binding);
                        result.insert("requestState".into(), Value::String(text));
                    }
                    _ => {
                        // Without a key (no signing secret) or a known
                        // issuer, a state could be replayed by anyone.
                        tracing::warn!("an upstream's requestState cannot be sealed: refused");
                        *message = refuse(
                            "asked for input with a requestState the gateway cannot protect".into(),
                        );
                    }
                }
                return;
            }
            Some(other) => {
                *message = refuse(format!("answered with resultType '{other}'"));
                return;
            }
        }
        result.insert("resultType".into(), json!("complete"));
        if self.cacheable {
            result.insert("ttlMs".into(), json!(0));
            result.insert("cacheScope".into(), json!("private"));
        }
    }

    /// Whether a message from an event stream goes to a modern client: no
    /// server-to-client requests (the revision has none), no log messages
    /// unless the request asked for them.
    pub(super) fn passes(&self, message: &Value) -> bool {
        match message.get("method").and_then(Value::as_str) {
            Some(_) if message.get("id").is_some() => false,
            // At or above the level the request asked for; an upstream's
            // message without a known level only when it asked for all.
            Some("notifications/message") => self.log_level.is_some_and(|min| {
                message
                    .pointer("/params/level")
                    .and_then(Value::as_str)
                    .and_then(modern::log_rank)
                    .unwrap_or(0)
                    >= min
            }),
            _ => true,
        }
    }
}

/// Whether an answer is an event stream.
pub(super) fn is_stream(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(headers::EVENT_STREAM.as_bytes()))
}

/// The status a modern error answer is sent with
/// (`basic/transports/streamable-http.mdx` of 2026-07-28): unknown method
/// 404, malformed or mismatched request 400; others keep theirs.
fn status_of(code: i64) -> Option<http::StatusCode> {
    use crate::error::code;
    match code {
        code::METHOD_NOT_FOUND => Some(http::StatusCode::NOT_FOUND),
        code::PARSE_ERROR
        | code::INVALID_REQUEST
        | code::INVALID_PARAMS
        | code::HEADER_MISMATCH
        | code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | code::UNSUPPORTED_PROTOCOL_VERSION => Some(http::StatusCode::BAD_REQUEST),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(cacheable: bool, may_ask: bool, wants_logs: bool) -> Shape {
        Shape {
            id: Id::Num(3),
            cacheable,
            may_ask,
            log_level: wants_logs.then_some(0),
            limit: 1024,
            seal: None,
            wire: None,
            on_abandon: None,
            session_of: Box::new(|_| None),
            answerable: Vec::new(),
            aggregated: false,
        }
    }

    #[test]
    fn the_gateways_cache_hints_replace_an_upstreams() {
        let mut m = json!({"jsonrpc": "2.0", "id": 3, "result": {
            "tools": [], "ttlMs": 86_400_000, "cacheScope": "public"}});
        shape(true, false, false).complete(&mut m);
        assert_eq!(m["result"]["cacheScope"], "private");
        assert_eq!(m["result"]["ttlMs"], 0);
        assert_eq!(m["result"]["resultType"], "complete");
        let mut call = json!({"jsonrpc": "2.0", "id": 3, "result": {"content": []}});
        shape(false, true, false).complete(&mut call);
        assert!(call["result"].get("cacheScope").is_none());
        assert_eq!(call["result"]["resultType"], "complete");
    }

    #[test]
    fn an_answer_the_gateway_cannot_relay_safely_becomes_an_error() {
        let mut m = json!({"jsonrpc": "2.0", "id": 3, "result": {
            "resultType": "input_required", "inputRequests": {}, "requestState": "opaque"}});
        shape(false, true, false).complete(&mut m);
        assert_eq!(m["id"], 3);
        assert_eq!(m["error"]["code"], code::UPSTREAM_UNAVAILABLE);
        assert!(
            m.get("result").is_none(),
            "the upstream's state goes nowhere"
        );
        // An upstream asking under the gateway's own question key would
        // pass for an approval question.
        let mut posing = json!({"jsonrpc": "2.0", "id": 3, "result": {
            "resultType": "input_required",
            "inputRequests": {super::super::question::INPUT_KEY: {"method": "elicitation/create"}}}});
        shape(false, true, false).complete(&mut posing);
        assert_eq!(posing["error"]["code"], code::UPSTREAM_UNAVAILABLE);
        let mut odd = json!({"jsonrpc": "2.0", "id": 3, "result": {"resultType": "later"}});
        shape(false, true, false).complete(&mut odd);
        assert!(odd["error"]["message"].as_str().unwrap().contains("later"));
    }

    #[test]
    fn server_requests_and_unasked_logs_stay_out_of_a_modern_stream() {
        let ask = json!({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage"});
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {}});
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {}});
        let quiet = shape(false, true, false);
        assert!(!quiet.passes(&ask));
        assert!(!quiet.passes(&log));
        assert!(quiet.passes(&progress));
        assert!(shape(false, true, true).passes(&log));
        let at = |level: &str| {
            json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": level, "data": "x"}})
        };
        let mut warnings = shape(false, true, true);
        warnings.log_level = modern::log_rank("warning");
        assert!(!warnings.passes(&at("info")), "below the level asked for");
        assert!(warnings.passes(&at("warning")));
        assert!(warnings.passes(&at("emergency")));
    }

    #[test]
    fn only_what_is_served_is_offered() {
        let upstream = json!({"tools": {"listChanged": true}, "resources": {"subscribe": true},
            "logging": {}, "prompts": {}});
        assert_eq!(
            served(upstream),
            json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}, "prompts": {}}),
            "logging/setLevel is gone; what subscriptions/listen delivers stays"
        );
    }
}
