//! Merging list pages from many servers into one aggregated page. Pure code:
//! the fan-out hands in each server's page (or its failure) and gets back the
//! merged items plus the cursors of servers that have more pages.

use crate::config::Server;
use crate::protocol::names;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The four list methods the gateway aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub fn from_method(method: &str) -> Option<ListKind> {
        Some(match method {
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            "resources/list" => ListKind::Resources,
            "resources/templates/list" => ListKind::ResourceTemplates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The result field holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// Tools and prompts are named `{server}__{name}`; resources keep their URIs.
    fn prefixes_names(self) -> bool {
        matches!(self, ListKind::Tools | ListKind::Prompts)
    }
}

/// The merged page.
#[derive(Debug, Default)]
pub struct Merged {
    pub items: Vec<Value>,
    /// Server id -> its next cursor, for servers with more pages.
    pub pending: BTreeMap<String, String>,
}

/// Adds one server's page (a list `result`) to the merge. Items are filtered by
/// the server's tool filter and renamed; malformed items are skipped with a log.
pub fn add_page(merged: &mut Merged, kind: ListKind, server: &Server, mut page: Value) {
    if let Some(next) = page.get("nextCursor").and_then(Value::as_str) {
        merged.pending.insert(server.id.clone(), next.to_string());
    }
    let Some(items) = page.get_mut(kind.field()).and_then(Value::as_array_mut) else {
        tracing::warn!(server = %server.id, "{} result has no '{}' array", kind.method(), kind.field());
        return;
    };
    merged.items.reserve(items.len());
    for item in items.drain(..) {
        let Value::Object(mut obj) = item else {
            continue;
        };
        if kind.prefixes_names() && !rename(&mut obj, kind, server) {
            continue;
        }
        merged.items.push(Value::Object(obj));
    }
}

/// Filters and prefixes one tool or prompt; `false` drops it.
fn rename(obj: &mut Map<String, Value>, kind: ListKind, server: &Server) -> bool {
    let Some(Value::String(name)) = obj.get_mut("name") else {
        tracing::warn!(server = %server.id, "{} item without a name skipped", kind.method());
        return false;
    };
    if kind == ListKind::Tools && !server.tools.allows(name) {
        return false;
    }
    *name = names::qualify(&server.id, name);
    true
}

/// Filters a single server's tool page in place (per-server endpoint, names kept).
pub fn filter_tools(server: &Server, page: &mut Value) {
    if let Some(items) = page.get_mut("tools").and_then(Value::as_array_mut) {
        items.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| server.tools.allows(n))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(id: &str, filter: &str) -> Server {
        Server::parse(
            id,
            &format!(r#"{{"endpoints":[{{"region":"us","url":"http://x/"}}]{filter}}}"#),
        )
        .unwrap()
    }

    #[test]
    fn prefixes_filters_and_keeps_other_fields() {
        let mut m = Merged::default();
        let a = server("a", r#","tools":{"exclude":["secret*"]}"#);
        add_page(
            &mut m,
            ListKind::Tools,
            &a,
            json!({"tools":[{"name":"echo","inputSchema":{"type":"object"},"x-extra":1},{"name":"secret_read"},{"noname":true}],"nextCursor":"p2"}),
        );
        add_page(
            &mut m,
            ListKind::Tools,
            &server("b", ""),
            json!({"tools":[{"name":"echo"}]}),
        );
        let names: Vec<_> = m
            .items
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a__echo", "b__echo"]);
        assert_eq!(m.items[0]["x-extra"], 1);
        assert_eq!(
            m.pending,
            BTreeMap::from([("a".to_string(), "p2".to_string())])
        );
    }

    #[test]
    fn resources_keep_their_uris() {
        let mut m = Merged::default();
        add_page(
            &mut m,
            ListKind::Resources,
            &server("a", ""),
            json!({"resources":[{"uri":"file:///x","name":"x"}]}),
        );
        assert_eq!(m.items[0], json!({"uri":"file:///x","name":"x"}));
    }

    #[test]
    fn a_page_without_items_adds_nothing() {
        let mut m = Merged::default();
        add_page(
            &mut m,
            ListKind::Prompts,
            &server("a", ""),
            json!({"oops": 1}),
        );
        assert!(m.items.is_empty() && m.pending.is_empty());
    }
}
