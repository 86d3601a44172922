//! Merging list pages from many servers into one aggregated page. Pure code:
//! the fan-out hands in each server's raw page (or its failure) and gets back
//! the merged items plus the cursors of servers that have more pages. Items
//! stay raw JSON apart from the `name` that is rewritten (see
//! [`RawObject`]), so the cost grows with the bytes, not with schema depth.

use super::naming::Shown;
use crate::config::Server;
use crate::governance::gate::Gate;
use crate::protocol::method::ListKind;
use crate::protocol::raw_object::{ListPage, RawObject};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// The merged page; its items borrow from the upstream pages.
#[derive(Debug, Default)]
pub struct Merged<'a> {
    pub items: Vec<RawObject<'a>>,
    /// Server id -> its next cursor, for servers with more pages.
    pub pending: BTreeMap<String, String>,
}

/// Adds one server's page (the raw `result` of a list call) to the merge.
/// Items are filtered by the server's tool filter and renamed; only their
/// `name` is decoded, everything else is borrowed raw. A malformed page or
/// item is skipped with a log line.
pub fn add_page<'a>(
    merged: &mut Merged<'a>,
    kind: ListKind,
    server: &Server,
    gate: &Gate,
    result: &'a RawValue,
    shown: &Shown,
) {
    let page = match read_page(kind, result) {
        Ok(page) => page,
        Err(why) => {
            tracing::warn!(server = %server.id, "{} result skipped: {why}", kind.method());
            return;
        }
    };
    if let Some(next) = page.next_cursor {
        merged.pending.insert(server.id.clone(), next);
    }
    merged.items.reserve(page.items.len());
    for mut item in page.items {
        if kind.prefixes_names() && !rename(&mut item, kind, server, gate, shown) {
            continue;
        }
        merged.items.push(item);
    }
}

/// The items and next cursor of one list result.
fn read_page(kind: ListKind, result: &RawValue) -> Result<ListPage<'_>, String> {
    let page = ListPage::parse(result.get(), kind.field()).map_err(|e| e.to_string())?;
    if !page.found {
        return Err(format!("no '{}' array", kind.field()));
    }
    Ok(page)
}

/// Filters and prefixes one tool or prompt; `false` drops it.
fn rename(
    item: &mut RawObject,
    kind: ListKind,
    server: &Server,
    gate: &Gate,
    shown: &Shown,
) -> bool {
    let Some(name) = item.get_str("name") else {
        tracing::warn!(server = %server.id, "{} item without a name skipped", kind.method());
        return false;
    };
    if kind == ListKind::Tools && !gate.tool(server, &name) {
        return false;
    }
    if let Some(renamed) = shown.rename(&server.id, &name) {
        item.set_str("name", &renamed);
    }
    true
}

/// The merged list as a result object: `{field: items, nextCursor?, _meta?}`.
pub(crate) struct ListResult<'a> {
    pub kind: ListKind,
    pub items: &'a [RawObject<'a>],
    pub next_cursor: Option<String>,
    /// Servers left out of this page (named under `_meta`).
    pub unavailable: &'a [String],
}

/// `_meta` key naming servers left out of an aggregated list.
pub(crate) const UNAVAILABLE_META: &str = "mcp-edge/unavailable";

impl Serialize for ListResult<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(self.kind.field(), self.items)?;
        if let Some(next) = &self.next_cursor {
            map.serialize_entry("nextCursor", next)?;
        }
        if !self.unavailable.is_empty() {
            let meta = BTreeMap::from([(UNAVAILABLE_META, self.unavailable)]);
            map.serialize_entry("_meta", &meta)?;
        }
        map.end()
    }
}

/// Filters one server's `tools/list` result (per-server endpoint, names kept);
/// every other field of the result is kept as it was.
pub(crate) fn filter_tools(
    server: &Server,
    gate: &Gate,
    result: &RawValue,
) -> Result<Box<RawValue>, String> {
    let mut fields = RawObject::parse(result.get()).map_err(|e| format!("not an object: {e}"))?;
    let mut tools = read_page(ListKind::Tools, result)?.items;
    tools.retain(|t| t.get_str("name").is_some_and(|n| gate.tool(server, &n)));
    fields.set(
        "tools",
        serde_json::value::to_raw_value(&tools).expect("tools serialize"),
    );
    Ok(fields.to_raw())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn server(id: &str, filter: &str) -> Server {
        let entry = format!(r#"{{"endpoints":[{{"region":"us","url":"http://x/"}}]{filter}}}"#);
        Server::parse(id, &entry).unwrap()
    }

    /// A caller no policy restricts.
    fn open() -> Gate {
        Gate {
            principal: crate::identity::Principal::anonymous(),
            policy: None,
        }
    }

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    fn merged_json(m: &Merged) -> Value {
        serde_json::to_value(&m.items).unwrap()
    }

    #[test]
    fn prefixes_filters_and_keeps_other_fields() {
        let a = server("a", r#","tools":{"exclude":["secret*"]}"#);
        let page_a = raw(json!({"tools":[
            {"name":"echo","inputSchema":{"type":"object"},"x-extra":1},
            {"name":"secret_read"},
            {"noname":true}
        ],"nextCursor":"p2"}));
        let page_b = raw(json!({"tools":[{"name":"echo"}]}));
        let mut m = Merged::default();
        add_page(
            &mut m,
            ListKind::Tools,
            &a,
            &open(),
            &page_a,
            &Shown::prefixed(),
        );
        add_page(
            &mut m,
            ListKind::Tools,
            &server("b", ""),
            &open(),
            &page_b,
            &Shown::prefixed(),
        );
        let items = merged_json(&m);
        let names: Vec<&str> = items
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a__echo", "b__echo"]);
        assert_eq!(items[0]["x-extra"], 1);
        assert_eq!(items[0]["inputSchema"], json!({"type": "object"}));
        assert_eq!(
            m.pending,
            BTreeMap::from([("a".to_string(), "p2".to_string())])
        );
    }

    #[test]
    fn resources_keep_their_uris() {
        let page = raw(json!({"resources":[{"uri":"file:///x","name":"x"}]}));
        let mut m = Merged::default();
        add_page(
            &mut m,
            ListKind::Resources,
            &server("a", ""),
            &open(),
            &page,
            &Shown::prefixed(),
        );
        assert_eq!(merged_json(&m)[0], json!({"uri":"file:///x","name":"x"}));
    }

    #[test]
    fn a_malformed_page_adds_nothing() {
        let pages: Vec<_> = [
            json!({"oops": 1}),
            json!({"prompts": 5}),
            json!([1]),
            json!({"prompts": [1, "x"]}),
        ]
        .into_iter()
        .map(raw)
        .collect();
        let mut m = Merged::default();
        for page in &pages {
            add_page(
                &mut m,
                ListKind::Prompts,
                &server("a", ""),
                &open(),
                page,
                &Shown::prefixed(),
            );
        }
        assert!(m.items.is_empty() && m.pending.is_empty());
    }

    #[test]
    fn list_results_serialize_with_cursor_and_meta() {
        let items = vec![RawObject::parse(r#"{"name":"a__x"}"#).unwrap()];
        let unavailable = vec!["b".to_string()];
        let r = ListResult {
            kind: ListKind::Prompts,
            items: &items,
            next_cursor: Some("c".into()),
            unavailable: &unavailable,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"prompts":[{"name":"a__x"}],"nextCursor":"c","_meta":{"mcp-edge/unavailable":["b"]}})
        );
    }

    #[test]
    fn filtering_one_server_keeps_the_rest_of_the_result() {
        let s = server("a", r#","tools":{"include":["read_*"]}"#);
        let page = raw(
            json!({"tools":[{"name":"read_x"},{"name":"drop"}],"nextCursor":"n","_meta":{"k":1}}),
        );
        let out = filter_tools(&s, &open(), &page).unwrap();
        let v: Value = serde_json::from_str(out.get()).unwrap();
        assert_eq!(
            v,
            json!({"tools":[{"name":"read_x"}],"nextCursor":"n","_meta":{"k":1}})
        );
    }
}
