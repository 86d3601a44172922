//! What the request's span says about the request, in the attributes of
//! the MCP semantic conventions (`open-telemetry/semantic-conventions-genai`,
//! `docs/gen-ai/mcp.md` § Server): noted as the gateway learns it.
//!
//! Attributes name the method, the target (tool, prompt, resource URI), the
//! request id, the session, the caller (subject, teams, how it proved it)
//! and the server; never a token, a key, or an argument value.

use super::batch::Attr;
use super::collect::note;
use crate::identity::Principal;
use crate::protocol::jsonrpc::{Id, Message};
use serde::Deserialize;

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Attr::Str(s.to_string())
    }
}

impl From<u32> for Attr {
    fn from(n: u32) -> Self {
        Attr::Int(n.into())
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Self {
        Attr::Str(s)
    }
}

/// The JSON-RPC message the request carries.
pub(crate) fn message(message: &Message) {
    #[derive(Deserialize)]
    struct Target {
        name: Option<String>,
        uri: Option<String>,
    }
    let (method, params) = match message {
        Message::Request(r) => {
            // `jsonrpc.request.id`: "a string representation of the `id`".
            let id = match &r.id {
                Id::Num(n) => n.to_string(),
                Id::Str(s) => s.clone(),
            };
            note("jsonrpc.request.id", id.into());
            (r.method.as_str(), r.params.as_deref())
        }
        Message::Notification(n) => (n.method.as_str(), n.params.as_deref()),
        Message::Response(_) => return,
    };
    note("mcp.method.name", method.into());
    let target = params.and_then(|p| serde_json::from_str::<Target>(p.get()).ok());
    let Some(target) = target else { return };
    match method {
        "tools/call" => {
            if let Some(name) = target.name {
                note("gen_ai.tool.name", name.into());
            }
            note("gen_ai.operation.name", "execute_tool".into());
        }
        "prompts/get" => {
            if let Some(name) = target.name {
                note("gen_ai.prompt.name", name.into());
            }
        }
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            if let Some(uri) = target.uri {
                note("mcp.resource.uri", without_credentials(&uri).into());
            }
        }
        _ => {}
    }
}

/// A resource URI as telemetry may carry it: without a query or fragment
/// (where signatures and tokens travel: `?X-Amz-Signature=...`), and, when
/// it holds an `@` anywhere (user info such as `postgres://u:pw@h/db`,
/// whose password may itself hold `/`, `?` or `#`), only its scheme and
/// `REDACTED`: no parse of a URI a caller wrote can be trusted to find
/// where a password ends.
pub(crate) fn without_credentials(uri: &str) -> String {
    if uri.contains('@') {
        let scheme = uri.split_once(':').map(|(s, _)| s).filter(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        });
        return match scheme {
            Some(s) => format!("{s}:REDACTED"),
            None => "REDACTED".into(),
        };
    }
    uri.split(['?', '#']).next().unwrap_or("").to_string()
}

/// Who is calling.
pub(crate) fn caller(principal: &Principal) {
    note("enduser.id", principal.subject.as_str().into());
    note("mcp_edge.auth.via", principal.via.as_str().into());
    if !principal.teams.is_empty() {
        let mut teams = principal.teams.clone();
        teams.sort();
        note("mcp_edge.teams", teams.join(",").into());
    }
}

/// The server the request goes to.
pub(crate) fn server(id: &str) {
    note("mcp_edge.server.id", id.into());
}

/// The tool a `tools/call` calls, as the server names it, for usage and
/// metrics: `None` (noted `_OTHER`) when the server does not list it or the
/// call was denied before anyone asked, so a caller spraying made-up names
/// cannot mint usage rows or metric series.
pub(crate) fn tool(name: Option<&str>) {
    note("mcp_edge.tool.name", name.unwrap_or(OTHER).into());
}

/// The OpenTelemetry conventions' value for "none of the known ones".
pub(crate) const OTHER: &str = "_OTHER";

/// The session the request belongs to, and its protocol revision.
pub(crate) fn session(id: Option<&str>, protocol_version: &str) {
    let protocol_version = known_version(protocol_version);
    if let Some(id) = id {
        note("mcp.session.id", id.into());
    }
    note("mcp.protocol.version", protocol_version.into());
}

/// How the request ended: the HTTP status, and the JSON-RPC error code if
/// the gateway ended it with one (`error.type` and `rpc.response.status_code`
/// are the code, `docs/gen-ai/mcp.md` § Server note 1); an answer's own
/// error or `isError` is noted by [`response`].
pub(crate) fn outcome(status: u16, rpc_error: Option<i64>) {
    note("http.response.status_code", Attr::Int(status.into()));
    match rpc_error {
        Some(code) => {
            note("error.type", code.to_string().into());
            note("rpc.response.status_code", code.to_string().into());
        }
        None if status >= 400 => note("error.type", status.to_string().into()),
        None => {}
    }
}

/// The upstream's (or the gateway's) answer to the request: an error code,
/// or a tool result with `isError`.
pub(crate) fn response(r: &crate::protocol::jsonrpc::Response) {
    #[derive(Deserialize)]
    struct Error {
        code: Option<i64>,
    }
    #[derive(Deserialize)]
    struct Result {
        #[serde(rename = "isError", default)]
        is_error: bool,
    }
    if let Some(e) = &r.error {
        let code = serde_json::from_str::<Error>(e.get())
            .ok()
            .and_then(|e| e.code);
        note(
            "error.type",
            code.map_or_else(|| "_OTHER".into(), |c| c.to_string())
                .into(),
        );
        if let Some(code) = code {
            note("rpc.response.status_code", code.to_string().into());
        }
    } else if let Some(result) = &r.result {
        if serde_json::from_str::<Result>(result.get()).is_ok_and(|r| r.is_error) {
            note("error.type", "tool_error".into());
        }
    }
}

/// A whole JSON answer: noted like [`response`] when it is one that may
/// say something failed (most do not, and are not parsed again).
pub(crate) fn json_answer(body: &[u8]) {
    let mentions = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !(mentions(b"\"error\"") || mentions(b"\"isError\"")) {
        return;
    }
    if let Ok(Message::Response(r)) = crate::protocol::jsonrpc::parse_message(body) {
        response(&r);
    }
}

/// A protocol revision as telemetry names it: one the gateway speaks, else
/// `_OTHER` (the header is the caller's, read before anything checks it).
pub(crate) fn known_version(v: &str) -> &str {
    use crate::protocol::version::{MODERN, SUPPORTED};
    if SUPPORTED.contains(&v) || MODERN.contains(&v) {
        v
    } else {
        OTHER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_lose_their_credentials() {
        for (uri, kept) in [
            ("postgres://u:pw@h/db?x=1", "postgres:REDACTED"),
            ("postgres://admin:ab/cd@h/db", "postgres:REDACTED"),
            ("postgres://admin:pa?ss@h/db", "postgres:REDACTED"),
            ("postgres://admin:pa#ss@h/db", "postgres:REDACTED"),
            ("//u:pw@h/x", "REDACTED"),
            ("u:pw@h/x", "u:REDACTED"),
            ("https:\\\\u:pw@h", "https:REDACTED"),
            (
                "https://bucket.test/key?X-Amz-Signature=abc#f",
                "https://bucket.test/key",
            ),
            ("notes://n/1", "notes://n/1"),
        ] {
            assert_eq!(without_credentials(uri), kept, "{uri}");
        }
        assert_eq!(known_version("2025-06-18"), "2025-06-18");
        assert_eq!(known_version("x-random"), "_OTHER");
    }
}
