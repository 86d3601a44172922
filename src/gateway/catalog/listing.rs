//! Listing one server for the catalog: every page of its `tools/list` or
//! `prompts/list`, read into what the gateway keeps of each item.

use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::arguments::Schema;
use crate::ports::Platform;
use crate::protocol::jsonrpc;
use crate::protocol::method::ListKind;
use crate::upstream::{reply, Upstreams};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A server's listing is followed for at most this many pages.
const MAX_PAGES: usize = 20;

/// One server's listing of one kind.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(super) listed_ms: u64,
    // The field keeps its name for listings already in a shared cache.
    #[serde(rename = "tools")]
    pub(super) items: HashMap<String, Rc<ToolInfo>>,
    /// Every page was read (not cut at the page limit).
    #[serde(default = "whole")]
    pub(super) complete: bool,
}

fn whole() -> bool {
    true
}

impl Entry {
    /// The names listed.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    /// The items listed.
    pub(crate) fn tools(&self) -> impl Iterator<Item = &ToolInfo> {
        self.items.values().map(|t| &**t)
    }

    pub(super) fn found(&self, name: &str) -> Found {
        match self.items.get(name) {
            Some(info) => Found::Yes(info.clone()),
            None if self.complete => Found::No,
            None => Found::Unsure,
        }
    }
}

/// What a lookup found.
pub(crate) enum Found {
    Yes(Rc<ToolInfo>),
    No,
    /// Not in a listing that was cut short: it may be further on.
    Unsure,
}

/// What the gateway knows about one tool (or prompt: its name only).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ToolInfo {
    name: String,
    /// The server's `annotations.destructiveHint` (MCP's default is `true`
    /// only for tools that are not read-only; a missing hint counts as false
    /// here, so approval applies to tools the server explicitly marks).
    pub destructive: bool,
    input_schema: Option<Value>,
    /// The server's description and annotations, as listed (discovery shows
    /// them: `gateway::discovery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    #[serde(skip)]
    compiled: OnceCell<Option<Schema>>,
}

impl ToolInfo {
    /// The name the server lists it under.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The compiled `inputSchema`; `None` when the server sent none or one
    /// that does not compile (logged once; the call is then not validated).
    pub(crate) fn schema(&self, server: &str) -> Option<&Schema> {
        self.compiled
            .get_or_init(|| {
                let schema = self.input_schema.as_ref()?;
                Schema::compile(schema)
                    .map_err(
                        |e| tracing::warn!(server, tool = %self.name, "inputSchema not used: {e}"),
                    )
                    .ok()
            })
            .as_ref()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    tools: Vec<ToolDef>,
    #[serde(default)]
    prompts: Vec<ToolDef>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolDef {
    name: String,
    #[serde(default)]
    input_schema: Option<Value>,
    /// Anything but a string is dropped (a listing never failed on it).
    #[serde(default)]
    description: Option<Value>,
    #[serde(default)]
    annotations: Option<Value>,
}

/// The most of a tool's description and annotations (as JSON text) kept for
/// discovery: an upstream cannot fill the catalog, or Spin's shared
/// snapshot, with them. Longer descriptions are cut at a character boundary;
/// larger annotations are not kept.
const MAX_DESCRIPTION: usize = 4096;
const MAX_ANNOTATIONS: usize = 4096;

/// A description as discovery shows it: a string, at most
/// [`MAX_DESCRIPTION`] bytes.
fn description(value: Option<Value>) -> Option<String> {
    let Some(Value::String(mut text)) = value else {
        return None;
    };
    if text.len() > MAX_DESCRIPTION {
        let mut end = MAX_DESCRIPTION;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        // A copy, so the catalog does not keep the upstream's whole text.
        text = text[..end].to_string();
    }
    Some(text)
}

/// Annotations as discovery shows them: an object of at most
/// [`MAX_ANNOTATIONS`] bytes of JSON.
fn annotations(value: Option<Value>) -> Option<Value> {
    value.filter(|a| {
        a.is_object() && serde_json::to_vec(a).is_ok_and(|text| text.len() <= MAX_ANNOTATIONS)
    })
}

/// Every page of the server's `tools/list` or `prompts/list`, up to
/// [`MAX_PAGES`]; `false` beside the items when there were more.
pub(super) async fn list<P: Platform>(
    ups: &Upstreams<'_, P>,
    server: &Server,
    kind: ListKind,
) -> Result<(HashMap<String, Rc<ToolInfo>>, bool), GatewayError> {
    let id = ups.own_request_id();
    let mut tools = HashMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| serde_json::json!({ "cursor": c }));
        let message = jsonrpc::request_bytes(&id, kind.method(), params.as_ref());
        let answer = ups.send(server, &message).await?;
        let result = reply::read_result(answer, &id, &server.id, ups.client.max_bytes).await?;
        let page: Page = serde_json::from_value(result).map_err(|e| GatewayError::Upstream {
            server: server.id.clone(),
            message: format!("{} result does not parse: {e}", kind.method()),
        })?;
        let defs = match kind {
            ListKind::Prompts => page.prompts,
            _ => page.tools,
        };
        for def in defs {
            let destructive =
                destructive(def.annotations.as_ref()).map_err(|why| GatewayError::Upstream {
                    server: server.id.clone(),
                    message: format!(
                        "{} result does not parse: {}: {why}",
                        kind.method(),
                        def.name
                    ),
                })?;
            // Prompts are kept by name only.
            let shown = kind == ListKind::Tools;
            let info = ToolInfo {
                name: def.name.clone(),
                destructive,
                input_schema: def.input_schema,
                description: description(def.description.filter(|_| shown)),
                annotations: annotations(def.annotations.filter(|_| shown)),
                compiled: OnceCell::new(),
            };
            tools.insert(def.name, Rc::new(info));
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((tools, true)),
        }
    }
    tracing::warn!(server = %server.id, "{} longer than {MAX_PAGES} pages: the rest is not known", kind.method());
    Ok((tools, false))
}

/// A tool's `annotations.destructiveHint`: absent or null is `false`; any
/// other value than a boolean refuses the whole listing, as it always did
/// (approval rules follow the hint: a malformed one must not pass for
/// "not destructive").
fn destructive(annotations: Option<&Value>) -> Result<bool, &'static str> {
    match annotations {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(a)) => match a.get("destructiveHint") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(hint)) => Ok(*hint),
            Some(_) => Err("annotations.destructiveHint is not a boolean"),
        },
        Some(_) => Err("annotations is not an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::destructive;
    use serde_json::json;

    #[test]
    fn a_destructive_hint_is_a_boolean_or_the_listing_is_refused() {
        assert_eq!(destructive(None), Ok(false));
        assert_eq!(destructive(Some(&json!(null))), Ok(false));
        assert_eq!(destructive(Some(&json!({"title": "t"}))), Ok(false));
        assert_eq!(
            destructive(Some(&json!({"destructiveHint": true}))),
            Ok(true)
        );
        assert_eq!(
            destructive(Some(&json!({"destructiveHint": false}))),
            Ok(false)
        );
        assert!(destructive(Some(&json!({"destructiveHint": "true"}))).is_err());
        assert!(destructive(Some(&json!("destructive"))).is_err());
    }

    #[test]
    fn descriptions_and_annotations_are_bounded_and_of_their_type() {
        use super::{annotations, description, MAX_ANNOTATIONS, MAX_DESCRIPTION};
        assert_eq!(description(Some(json!("adds"))), Some("adds".into()));
        assert_eq!(description(Some(json!(5))), None, "not a string: dropped");
        // One byte ahead, so the cut falls inside a two-byte character.
        let long = format!("a{}", "é".repeat(MAX_DESCRIPTION));
        let cut = description(Some(json!(long))).unwrap();
        assert!(cut.len() <= MAX_DESCRIPTION && cut.len() >= MAX_DESCRIPTION - 1);
        assert!(long.starts_with(&cut), "cut at a character boundary");
        assert_eq!(
            annotations(Some(json!({"readOnlyHint": true}))),
            Some(json!({"readOnlyHint": true}))
        );
        assert_eq!(annotations(Some(json!("x"))), None);
        let big = json!({"title": "t".repeat(MAX_ANNOTATIONS)});
        assert_eq!(annotations(Some(big)), None);
    }
}
