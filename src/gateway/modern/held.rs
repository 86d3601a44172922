//! A legacy upstream's questions in the middle of a modern client's call.
//!
//! A legacy (2025) server asks its client on the call's stream
//! (elicitation, sampling, roots) and waits for the answers there. A modern
//! (2026-07-28) client takes questions only as an `input_required` result
//! and answers them by calling again (`basic/patterns/mrtr.mdx` of
//! 2026-07-28 in `modelcontextprotocol/modelcontextprotocol`). So when such a
//! question comes, the gateway stops reading the call's stream and answers
//! the client with the questions, under keys of its own, and a sealed state
//! ([`crate::identity::sealed::Held`]) saying which upstream session asked,
//! under which ids, and the last event read. The upstream holds the call;
//! the retry hands it the answers and resumes its stream
//! ([`crate::upstream::resume`]).
//!
//! Questions are put once the call's stream gave an event id to resume
//! after (one asked on the upstream's GET stream, `upstream/aside.rs`, may
//! come first). An upstream whose call stream carries no event ids cannot
//! be resumed: its questions are never put, and the call ends as the
//! upstream decides when no answer comes (its own timeout).

use super::round::Sealer;
use crate::error::GatewayError;
use crate::identity::sealed::{Held, Sealed, STATE_TTL_MS};
use crate::protocol::jsonrpc::{Id, Request};
use crate::upstream::asks;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// What a modern client can be asked in an `input_required` result, and
/// the client capability each needs.
const ASKABLE: [(&str, &str); 3] = [
    ("elicitation/create", "elicitation"),
    ("sampling/createMessage", "sampling"),
    ("roots/list", "roots"),
];

/// Most questions one answer puts: an upstream that keeps asking without
/// an event id to resume after is cut off there.
pub(super) const MAX_ASKED: usize = 16;

/// The methods a client that declared `capabilities` can be asked.
pub(super) fn answerable(capabilities: &Value) -> Vec<&'static str> {
    ASKABLE
        .iter()
        .filter(|(_, needs)| capabilities.get(needs).is_some_and(Value::is_object))
        .map(|(method, _)| *method)
        .collect()
}

/// One question an upstream asked mid-call.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Asked {
    pub(super) server: String,
    /// The upstream's own id.
    pub(super) id: Id,
    pub(super) method: String,
    pub(super) params: Option<Value>,
    /// It came under an id the relay tagged (and labelled, on `/mcp`).
    pub(super) tagged: bool,
    /// It was asked on the upstream's GET stream (`upstream/aside.rs`).
    pub(super) aside: bool,
}

/// The question `message` carries, if it is one a modern client can be
/// asked. On `/mcp` the relay put it under a tagged id naming its server
/// ([`asks::tag`]); on a server's own endpoint it is that server's.
pub(super) fn question(message: &Value, server: Option<&str>) -> Option<Asked> {
    let method = message.get("method")?.as_str()?;
    if !ASKABLE.iter().any(|(m, _)| *m == method) {
        return None;
    }
    let id: Id = serde_json::from_value(message.get("id")?.clone()).ok()?;
    let (server, id, tagged) = match asks::untag(&id) {
        Some((s, original)) => (s.to_string(), original, true),
        None => (server.unwrap_or_default().to_string(), id, false),
    };
    Some(Asked {
        server,
        id,
        method: method.to_string(),
        params: message.get("params").cloned(),
        tagged,
        aside: false,
    })
}

/// Where the call stands when its questions go to the client.
pub(super) struct Stand<'a> {
    /// The id the call went upstream under.
    pub(super) wire: &'a Id,
    /// The last event id the upstream gave, if any.
    pub(super) last_event: Option<&'a str>,
    /// The digest of the (legacy) upstream session the call went on.
    pub(super) session: Option<&'a str>,
    /// What the client can be asked ([`answerable`]).
    pub(super) answerable: &'a [&'static str],
    /// On `/mcp`: a question to the user says which server asks it.
    pub(super) label: bool,
}

/// The `input_required` result putting `asked` (all from one server) to the
/// client, or why it cannot be put: then the call ends with that error.
pub(super) fn input_required(
    asked: &[Asked],
    stand: Stand<'_>,
    seal: Option<&Sealer>,
) -> Result<Value, String> {
    let server = &asked.first().ok_or("no question")?.server;
    if asked.iter().any(|a| a.server != *server) {
        return Err("questions from two servers on one stream".into());
    }
    let resume_from = stand
        .last_event
        .ok_or("asked for input mid-call on a stream it cannot resume (no event ids)")?;
    let session = stand.session.ok_or("asked for input outside a session")?;
    let seal = seal.ok_or("asked for input, which the gateway cannot hold without a key")?;
    if seal.server.as_ref().is_some_and(|s| s != server) {
        return Err("asked for input on another server's call".into());
    }
    let mut requests = Map::new();
    let mut keys = Vec::new();
    for (n, a) in asked.iter().enumerate() {
        // It was not offered: the client could not answer it.
        if !stand.answerable.contains(&a.method.as_str()) {
            return Err(format!(
                "asked '{}', which the client did not declare",
                a.method
            ));
        }
        let key = format!("{server}/ask-{n}");
        let mut request = json!({"method": a.method});
        if let Some(p) = &a.params {
            request["params"] = p.clone();
        }
        if stand.label && !a.tagged && a.method == "elicitation/create" {
            let Some(params) = request["params"].as_object_mut() else {
                return Err("asked a question that cannot be labelled".into());
            };
            asks::label(server, params);
        }
        requests.insert(key.clone(), request);
        keys.push((key, a.id.clone()));
    }
    let sealed = Sealed {
        state: String::new(),
        server: server.clone(),
        expires_ms: seal.now_ms.saturating_add(STATE_TTL_MS),
        grant: seal.grant.clone(),
        held: Some(Held {
            wire: stand.wire.clone(),
            asked: keys,
            resume_from: resume_from.to_string(),
            session: session.to_string(),
        }),
    };
    Ok(json!({
        "resultType": "input_required",
        "inputRequests": requests,
        "requestState": seal.key.seal(&sealed, &seal.binding),
    }))
}

/// The client's answers on its retry, as JSON-RPC responses under the
/// upstream's own ids; every question must have one.
pub(super) fn answers(r: &Request, held: &Held) -> Result<Vec<Vec<u8>>, GatewayError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        input_responses: Option<Map<String, Value>>,
    }
    let bad = |why: String| GatewayError::InvalidParams(format!("inputResponses: {why}"));
    let given = r
        .params_as::<Params>()
        .map_err(|e| bad(e.to_string()))?
        .input_responses
        .unwrap_or_default();
    held.asked
        .iter()
        .map(|(key, id)| {
            let result = given
                .get(key)
                .filter(|v| v.is_object())
                .ok_or_else(|| bad(format!("no answer for '{key}'")))?;
            Ok(
                serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
                    .expect("JSON serializes"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(server: Option<&str>) -> Sealer {
        Sealer::for_tests(server)
    }

    fn request(v: Value) -> Request {
        match crate::protocol::jsonrpc::parse_message(v.to_string().as_bytes()) {
            Ok(crate::protocol::jsonrpc::Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn ask(id: Value, method: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"message": "?"}})
    }

    #[test]
    fn only_questions_a_modern_client_can_answer_are_put_to_it() {
        let tagged = asks::tag("a", &Id::Num(7));
        let q = question(&ask(json!(tagged), "elicitation/create"), None).unwrap();
        assert_eq!((q.server.as_str(), &q.id), ("a", &Id::Num(7)));
        let own = question(&ask(json!(3), "roots/list"), Some("b")).unwrap();
        assert_eq!((own.server.as_str(), &own.id), ("b", &Id::Num(3)));
        assert_eq!(question(&ask(json!(1), "ping"), Some("b")), None);
        let note = json!({"jsonrpc": "2.0", "method": "elicitation/create"});
        assert_eq!(
            question(&note, Some("b")),
            None,
            "a notification asks nothing"
        );
    }

    #[test]
    fn the_questions_go_out_sealed_and_their_answers_back_under_the_upstreams_ids() {
        let asked = vec![
            question(
                &ask(json!(asks::tag("a", &Id::Num(7))), "elicitation/create"),
                None,
            )
            .unwrap(),
            question(
                &ask(
                    json!(asks::tag("a", &Id::Str("s".into()))),
                    "sampling/createMessage",
                ),
                None,
            )
            .unwrap(),
        ];
        let wire = Id::Str("mcp-edge-w".into());
        let all = answerable(&json!({"elicitation": {}, "sampling": {}, "roots": {}}));
        let stand = |last: Option<&'static str>| Stand {
            wire: &wire,
            last_event: last,
            session: Some("d"),
            answerable: &all,
            label: true,
        };
        let seal = sealer(Some("a"));
        let result = input_required(&asked, stand(Some("ev-9")), Some(&seal)).unwrap();
        assert_eq!(result["resultType"], "input_required");
        assert_eq!(
            result["inputRequests"]["a/ask-1"]["method"],
            "sampling/createMessage"
        );
        let state = result["requestState"].as_str().unwrap();
        let opened = seal.key.open(state, &seal.binding, 1).unwrap();
        let held = opened.held.unwrap();
        assert_eq!((held.resume_from.as_str(), &held.wire), ("ev-9", &wire));
        let retry = request(json!({"jsonrpc": "2.0", "id": 2,
            "method": "tools/call", "params": {"name": "a__t", "inputResponses": {
                "a/ask-0": {"action": "accept", "content": {"x": 1}},
                "a/ask-1": {"role": "assistant", "content": {"type": "text", "text": "t"}}}}}));
        let sent = answers(&retry, &held).unwrap();
        let first: Value = serde_json::from_slice(&sent[0]).unwrap();
        assert_eq!(
            first,
            json!({"jsonrpc": "2.0", "id": 7, "result": {"action": "accept", "content": {"x": 1}}})
        );
        let second: Value = serde_json::from_slice(&sent[1]).unwrap();
        assert_eq!(second["id"], "s");
        let partial = request(json!({"jsonrpc": "2.0", "id": 2,
            "method": "tools/call", "params": {"inputResponses": {"a/ask-0": {}}}}));
        assert!(matches!(
            answers(&partial, &held),
            Err(GatewayError::InvalidParams(_))
        ));
        // Without an event id there is nothing to resume after.
        assert!(input_required(&asked, stand(None), Some(&seal)).is_err());
        // Nor without a key to seal the state with, nor for another server's call.
        assert!(input_required(&asked, stand(Some("e")), None).is_err());
        assert!(input_required(&asked, stand(Some("e")), Some(&sealer(Some("b")))).is_err());
        // Nor what the client did not declare.
        let elicits = answerable(&json!({"elicitation": {}, "sampling": true}));
        assert_eq!(elicits, ["elicitation/create"]);
        let only = Stand {
            answerable: &elicits,
            ..stand(Some("e"))
        };
        let why = input_required(&asked, only, Some(&seal)).unwrap_err();
        assert!(why.contains("sampling/createMessage"), "{why}");
    }

    #[test]
    fn a_question_to_the_user_on_mcp_says_which_server_asks() {
        let all = answerable(&json!({"elicitation": {}}));
        let wire = Id::Num(1);
        let untagged = vec![question(&ask(json!(3), "elicitation/create"), Some("a")).unwrap()];
        let stand = |label| Stand {
            wire: &wire,
            last_event: Some("e"),
            session: Some("d"),
            answerable: &all,
            label,
        };
        let put = input_required(&untagged, stand(true), Some(&sealer(Some("a")))).unwrap();
        assert_eq!(
            put["inputRequests"]["a/ask-0"]["params"]["message"],
            "[server 'a' asks] ?"
        );
        let own = input_required(&untagged, stand(false), Some(&sealer(Some("a")))).unwrap();
        assert_eq!(own["inputRequests"]["a/ask-0"]["params"]["message"], "?");
    }
}
