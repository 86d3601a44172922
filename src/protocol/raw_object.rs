//! JSON objects kept as raw fields, borrowed from the bytes they came in.
//!
//! List items (tools, prompts, resources) can be large, with deep input
//! schemas the gateway never needs to look into. A [`RawObject`] keeps each
//! field's value as the raw JSON text it was received as, borrowed from the
//! upstream's answer and in the order received, so merging a list decodes only
//! the `name` it rewrites and copies everything else straight to the output:
//! no value tree, no per-field copies, and what the upstream sent is what the
//! client gets.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A JSON object whose field values stay raw.
#[derive(Debug, Default)]
pub struct RawObject<'a>(Vec<(Cow<'a, str>, Cow<'a, RawValue>)>);

impl<'a> RawObject<'a> {
    /// Parses a JSON object, borrowing from `json`.
    pub(crate) fn parse(json: &'a str) -> Result<RawObject<'a>, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The raw value of the first field named `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// The value of `key` when it is a JSON string.
    pub(crate) fn get_str(&self, key: &str) -> Option<String> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }

    /// Replaces (or adds) `key`.
    pub(crate) fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = Cow::Owned(value),
            None => self
                .0
                .push((Cow::Owned(key.to_string()), Cow::Owned(value))),
        }
    }

    /// Replaces (or adds) `key` with a JSON string.
    pub(crate) fn set_str(&mut self, key: &str, value: &str) {
        self.set(
            key,
            serde_json::value::to_raw_value(value).expect("a string serializes"),
        );
    }

    /// Takes every field named `key` out.
    pub(crate) fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// The object as owned raw JSON.
    pub(crate) fn to_raw(&self) -> Box<RawValue> {
        serde_json::value::to_raw_value(self).expect("raw fields serialize")
    }
}

/// A key borrowed from the input when it has no escapes, owned otherwise.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads an object's fields as raw values.
struct RawObjectVisitor;

impl<'de> Visitor<'de> for RawObjectVisitor {
    type Value = RawObject<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
        while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
            fields.push((k, Cow::Borrowed(v)));
        }
        Ok(RawObject(fields))
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawObjectVisitor)
    }
}

impl Serialize for RawObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// One list result read in a single pass: the array under `field` as raw
/// objects, and `nextCursor`; every other field is skipped.
#[derive(Debug, Default)]
pub(crate) struct ListPage<'a> {
    pub items: Vec<RawObject<'a>>,
    pub next_cursor: Option<String>,
    /// Whether `field` was present at all.
    pub found: bool,
}

impl<'a> ListPage<'a> {
    pub(crate) fn parse(json: &'a str, field: &str) -> Result<ListPage<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let page = PageSeed { field }.deserialize(&mut de)?;
        de.end()?;
        Ok(page)
    }
}

struct PageSeed<'f> {
    field: &'f str,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = ListPage<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ListPage<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = ListPage<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list result object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ListPage<'de>, A::Error> {
        let mut page = ListPage::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == self.field {
                page.items = map.next_value_seed(Items)?;
                page.found = true;
            } else if key == "nextCursor" {
                page.next_cursor = map.next_value::<Option<String>>()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(page)
    }
}

/// The item array: objects are kept, anything else is skipped.
struct Items;

impl<'de> DeserializeSeed<'de> for Items {
    type Value = Vec<RawObject<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items {
    type Value = Vec<RawObject<'de>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
        while let Some(item) = seq.next_element::<MaybeObject<'de>>()? {
            if let MaybeObject::Object(o) = item {
                items.push(o);
            }
        }
        Ok(items)
    }
}

/// An array element that may not be an object (then it is dropped). Read in
/// the same pass as the array: objects go straight to their raw fields.
enum MaybeObject<'a> {
    Object(RawObject<'a>),
    Other,
}

impl<'de> Deserialize<'de> for MaybeObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Element;
        impl<'de> Visitor<'de> for Element {
            type Value = MaybeObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(MaybeObject::Object(RawObjectVisitor.visit_map(map)?))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeObject::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
        }
        d.deserialize_any(Element)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_fields_raw_and_in_order() {
        let json = r#"{"name":"echo","inputSchema":{"type":"object", "x": 1.50},"z":null}"#;
        let mut o = RawObject::parse(json).unwrap();
        assert_eq!(o.get_str("name").as_deref(), Some("echo"));
        o.set_str("name", "srv__echo");
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"name":"srv__echo","inputSchema":{"type":"object", "x": 1.50},"z":null}"#
        );
        o.set_str("new", "v\"q");
        assert_eq!(o.get_str("new").as_deref(), Some("v\"q"));
        assert!(o.get("missing").is_none());
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let o = RawObject::parse(r#"{"na\u006de":"x"}"#).unwrap();
        assert_eq!(o.get_str("name").as_deref(), Some("x"));
    }

    #[test]
    fn only_objects_parse() {
        assert!(RawObject::parse("[1]").is_err());
        assert!(RawObject::parse(r#""s""#).is_err());
        assert!(RawObject::parse("{").is_err());
        assert_eq!(
            RawObject::parse(r#"{"name":5}"#).unwrap().get_str("name"),
            None
        );
    }

    #[test]
    fn pages_read_items_and_cursor_in_one_pass() {
        let json = r#"{"_meta":{"a":[1]},"tools":[{"name":"a"},5,[{"x":1}],"s",null,true,1.5,{"name":"b"}],"nextCursor":"n2"}"#;
        let page = ListPage::parse(json, "tools").unwrap();
        assert!(page.found);
        assert_eq!(page.items.len(), 2, "non-objects are dropped");
        assert_eq!(page.next_cursor.as_deref(), Some("n2"));
        let missing = ListPage::parse(r#"{"prompts":[]}"#, "tools").unwrap();
        assert!(!missing.found);
        assert!(ListPage::parse(r#"{"tools":5}"#, "tools").is_err());
        assert!(ListPage::parse("[]", "tools").is_err());
    }
}
