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
