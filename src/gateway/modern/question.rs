//! The gateway's approval question to a modern (2026-07-28) client: an
//! `input_required` result instead of a request on a held-open stream, and
//! the client's answer read off the retry (`basic/patterns/mrtr.mdx` in
//! `modelcontextprotocol/modelcontextprotocol`).
//!
//! The question is the form elicitation a legacy client gets. Its
//! `requestState` is `{question id}.{nonce}`: the record it names lives in
//! the approval store, bound to the caller, server, tool and arguments,
//! expiring with the question and decided at most once
//! ([`hold`](crate::gateway::hold) checks all of it), so a state copied,
//! altered or replayed is refused.

use crate::error::GatewayError;
use crate::gateway::ask::Ask;
use crate::gateway::hold::Retry;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use std::collections::BTreeMap;

/// The key of the gateway's question in `inputRequests` and
/// `inputResponses`.
pub(crate) const INPUT_KEY: &str = "mcp-edge/approval";

/// The key of the gateway's connect prompt (a URL-mode elicitation) in
/// `inputRequests` and `inputResponses`.
pub(crate) const CONNECT_KEY: &str = "mcp-edge/connect";

/// The `input_required` result that sends a modern client that declared
/// URL elicitation to connect its user's account at `url`
/// (`client/elicitation.mdx` of 2026-07-28: URL mode travels in
/// `inputRequests`). It carries no `requestState`: the retry is an
/// ordinary call, which finds the new connection or asks again.
pub(crate) fn connect_required(server: &str, url: &str, message: &str) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": { CONNECT_KEY: {
            "method": "elicitation/create",
            "params": {"mode": "url", "url": url, "message": message, "_meta": {CONNECT_KEY: {"server": server}}},
        }},
    })
}

/// Takes the client's answer to a connect prompt out of params about to go
/// upstream (it is the gateway's); `inputResponses` goes when nothing else
/// is left in it. Whether anything was taken.
pub(crate) fn strip_connect_answer(params: &mut BTreeMap<String, Box<RawValue>>) -> bool {
    let Some(responses) = params.get("inputResponses") else {
        return false;
    };
    let Ok(mut responses) =
        serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(responses.get())
    else {
        return false;
    };
    if responses.remove(CONNECT_KEY).is_none() {
        return false;
    }
    if responses.is_empty() {
        params.remove("inputResponses");
    } else {
        let rest = serde_json::value::to_raw_value(&responses).expect("serializes");
        params.insert("inputResponses".into(), rest);
    }
    true
}

/// Marks an `input_required` answer as the gateway's own (an upstream's is
/// not relayed), in the response's extensions, where no upstream can put it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnQuestion;

/// The `input_required` result that puts `ask` to the client.
pub(crate) fn input_required(ask: &Ask) -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": { INPUT_KEY: {
            "method": "elicitation/create",
            "params": ask.form_params(),
        }},
        "requestState": format!("{}.{}", ask.record.id, ask.record.nonce),
    })
}

/// Takes a retry's answer out of params about to go upstream: it is the
/// gateway's, never the upstream's.
pub(crate) fn strip_answer(params: &mut BTreeMap<String, Box<RawValue>>) {
    params.remove("inputResponses");
    params.remove("requestState");
}

/// The client's answer in a retry's params, if the params carry one.
pub(crate) fn read_retry(params: Option<&RawValue>) -> Result<Option<Retry>, GatewayError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        request_state: Option<Value>,
        input_responses: Option<Value>,
    }
    let Some(params) = params else {
        return Ok(None);
    };
    let params: Params = serde_json::from_str(params.get())
        .map_err(|e| GatewayError::InvalidParams(format!("requestState, inputResponses: {e}")))?;
    // Only a call that carries a state is a retry; anything else in these
    // fields is left to the upstream's own validation, as before.
    let Some(state) = params.request_state else {
        return Ok(None);
    };
    let Value::String(state) = state else {
        return Err(GatewayError::InvalidParams(
            "requestState must be a string".into(),
        ));
    };
    let answer = params
        .input_responses
        .as_ref()
        .and_then(|r| r.get(INPUT_KEY))
        .ok_or_else(|| {
            GatewayError::InvalidParams(format!("inputResponses has no '{INPUT_KEY}' answer"))
        })?;
    Ok(Some(Retry {
        state,
        accepted: answer.get("action").and_then(Value::as_str) == Some("accept"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn a_connect_answer_never_goes_upstream() {
        let mut params: BTreeMap<String, Box<RawValue>> = serde_json::from_value(json!({
            "name": "x", "inputResponses": {CONNECT_KEY: {"action": "accept"}}}))
        .unwrap();
        assert!(strip_connect_answer(&mut params));
        assert!(!params.contains_key("inputResponses"));
        let mut params: BTreeMap<String, Box<RawValue>> = serde_json::from_value(json!({
            "inputResponses": {CONNECT_KEY: {}, "theirs": {"action": "accept"}}}))
        .unwrap();
        assert!(strip_connect_answer(&mut params));
        assert_eq!(
            params["inputResponses"].get(),
            r#"{"theirs":{"action":"accept"}}"#
        );
        let mut params: BTreeMap<String, Box<RawValue>> =
            serde_json::from_value(json!({"inputResponses": {"theirs": {}}})).unwrap();
        assert!(!strip_connect_answer(&mut params));
    }

    #[test]
    fn a_retry_carries_the_state_and_the_users_answer() {
        let none = raw(json!({"name": "echo"}));
        assert_eq!(read_retry(Some(&none)).unwrap(), None);
        let accept = raw(json!({"name": "echo", "requestState": "el_x.n",
            "inputResponses": {INPUT_KEY: {"action": "accept", "content": {}}}}));
        assert_eq!(
            read_retry(Some(&accept)).unwrap(),
            Some(Retry {
                state: "el_x.n".into(),
                accepted: true
            })
        );
        let decline = raw(json!({"requestState": "el_x.n",
            "inputResponses": {INPUT_KEY: {"action": "decline"}}}));
        assert!(!read_retry(Some(&decline)).unwrap().unwrap().accepted);
        let silent = raw(json!({"requestState": "el_x.n", "inputResponses": {}}));
        assert!(matches!(
            read_retry(Some(&silent)),
            Err(GatewayError::InvalidParams(_))
        ));
    }
}
