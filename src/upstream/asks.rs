//! Requests an upstream sends its client while serving a call on `/mcp`
//! (elicitation, sampling, roots, ping), and the client's answers.
//!
//! Behind the aggregated endpoint one client session talks to many
//! upstreams, and each picks its own request ids: two of them may ask with
//! the same id at once. So a request relayed to the client goes under an id
//! of the gateway's, `mcp-edge-asks:{server}:{the upstream's id as JSON}`,
//! which no two upstreams share (server ids hold no `:`); the client's answer
//! names the server and the upstream's own id, so any isolate can route it
//! back without a lookup. The id is not secret and needs no seal: the answer
//! goes only to an upstream session of the caller's own session, on a
//! server the caller may see, where the per-server endpoint would let the
//! caller send any response anyway.

use crate::protocol::jsonrpc::{Id, Request, Response};
use serde::Serialize;
use serde_json::value::RawValue;

/// What every id of an upstream's request starts with on `/mcp`.
const PREFIX: &str = "mcp-edge-asks:";

/// The id the client sees for `server`'s request `id`.
pub(crate) fn tag(server: &str, id: &Id) -> Id {
    let original = serde_json::to_string(id).expect("ids serialize");
    Id::Str(format!("{PREFIX}{server}:{original}"))
}

/// The server and the upstream's own id an answer's id names, if it is one
/// of [`tag`]'s.
pub(crate) fn untag(id: &Id) -> Option<(&str, Id)> {
    let Id::Str(text) = id else { return None };
    let (server, original) = text.strip_prefix(PREFIX)?.split_once(':')?;
    let original: Id = serde_json::from_str(original).ok()?;
    (!server.is_empty()).then_some((server, original))
}

/// An upstream's request as the client gets it on `/mcp`: under its tagged
/// id, and a question to the user says which server asks it. On `/mcp` the
/// client sees one server, the gateway, whose own questions (approvals)
/// come the same way: unlabelled, an upstream could pass its question off
/// as the gateway's.
///
/// A question whose params cannot be labelled (not an object) is not
/// relayed at all (`None`).
pub(crate) fn relayed(server: &str, request: &Request) -> Option<Vec<u8>> {
    let id = tag(server, &request.id);
    if request.method == "elicitation/create" {
        let params = labelled(server, request.params.as_deref())?;
        return Some(crate::protocol::jsonrpc::request_bytes(
            &id,
            &request.method,
            Some(&params),
        ));
    }
    Some(jsonrpc_request(&id, request))
}

/// Elicitation params with `message` prefixed by the asking server's name.
fn labelled(server: &str, params: Option<&RawValue>) -> Option<Box<RawValue>> {
    let mut params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(params?.get()).ok()?;
    label(server, &mut params);
    serde_json::value::to_raw_value(&params).ok()
}

/// Prefixes an elicitation's `message` with the asking server's name.
pub(crate) fn label(server: &str, params: &mut serde_json::Map<String, serde_json::Value>) {
    // Leading blank lines or control characters would push the label out
    // of sight.
    let message = params
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .trim_start_matches(|c: char| c.is_whitespace() || c.is_control());
    let message = format!("[server '{server}' asks] {message}");
    params.insert("message".into(), message.into());
}

fn jsonrpc_request(id: &Id, request: &Request) -> Vec<u8> {
    crate::protocol::jsonrpc::request_bytes(id, &request.method, request.params.as_deref())
}

/// The client's answer as the upstream gets it: under its own id again.
pub(crate) fn answer_bytes(id: &Id, answer: &Response) -> Vec<u8> {
    #[derive(Serialize)]
    struct Out<'a> {
        jsonrpc: &'static str,
        id: &'a Id,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a RawValue>,
    }
    let out = Out {
        jsonrpc: "2.0",
        id,
        result: answer.result.as_deref(),
        error: answer.error.as_deref(),
    };
    serde_json::to_vec(&out).expect("a response serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_to_the_user_names_the_server_that_asks() {
        let params = RawValue::from_string(
            r#"{"mode":"form","message":"Allow the tool 'pay' on server 'bank' to run?","requestedSchema":{}}"#.into(),
        )
        .unwrap();
        let asked = Request {
            id: Id::Num(3),
            method: "elicitation/create".into(),
            params: Some(params),
        };
        let out: serde_json::Value =
            serde_json::from_slice(&relayed("evil", &asked).unwrap()).unwrap();
        assert_eq!(
            out["params"]["message"],
            "[server 'evil' asks] Allow the tool 'pay' on server 'bank' to run?"
        );
        assert_eq!(out["params"]["mode"], "form");
        assert_eq!(out["id"], "mcp-edge-asks:evil:3");
        // Other requests pass as they are.
        let roots = Request {
            id: Id::Num(4),
            method: "roots/list".into(),
            params: None,
        };
        let out: serde_json::Value =
            serde_json::from_slice(&relayed("evil", &roots).unwrap()).unwrap();
        assert!(out.get("params").is_none(), "{out}");
        // A question whose params are no object is not relayed.
        let bare = Request {
            id: Id::Num(5),
            method: "elicitation/create".into(),
            params: Some(RawValue::from_string("\"Allow?\"".into()).unwrap()),
        };
        assert!(relayed("evil", &bare).is_none());
        // Blank lines before the message do not hide the label.
        let hidden = Request {
            id: Id::Num(6),
            method: "elicitation/create".into(),
            params: Some(RawValue::from_string(r#"{"message":"\n\n\tAllow?"}"#.into()).unwrap()),
        };
        let out: serde_json::Value =
            serde_json::from_slice(&relayed("evil", &hidden).unwrap()).unwrap();
        assert_eq!(out["params"]["message"], "[server 'evil' asks] Allow?");
    }

    #[test]
    fn ids_of_two_servers_never_meet_and_come_back_as_they_were() {
        for id in [Id::Num(0), Id::Num(-7), Id::Str("a:b\"c".into())] {
            let a = tag("alpha", &id);
            let b = tag("beta", &id);
            assert_ne!(a, b);
            assert_eq!(untag(&a), Some(("alpha", id.clone())));
            assert_eq!(untag(&b), Some(("beta", id)));
        }
    }

    #[test]
    fn other_ids_are_not_answers_to_an_upstream() {
        for id in [
            Id::Num(3),
            Id::Str("el_x".into()),
            Id::Str("mcp-edge-asks:".into()),
            Id::Str("mcp-edge-asks::1".into()),
            Id::Str("mcp-edge-asks:alpha:not json".into()),
            Id::Str("mcp-edge-asks:alpha:[1]".into()),
        ] {
            assert_eq!(untag(&id), None, "{id}");
        }
    }

    #[test]
    fn an_answer_goes_back_under_the_upstreams_id() {
        let message = br#"{"jsonrpc":"2.0","id":"x","result":{"action":"accept"}}"#;
        let Ok(crate::protocol::jsonrpc::Message::Response(r)) =
            crate::protocol::jsonrpc::parse_message(message)
        else {
            panic!("a response")
        };
        let out = answer_bytes(&Id::Num(4), &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"jsonrpc":"2.0","id":4,"result":{"action":"accept"}}"#
        );
    }
}
