//! A canonical form of JSON text, for hashing what a caller sent: object keys
//! sorted, insignificant whitespace dropped, strings re-escaped one way, and
//! numbers kept exactly as written. Going through `serde_json::Value` would
//! turn `100000000000000000001` and `1e20` into the same float, and `1.0`
//! into `1.0` but `1e0` into `1.0` too, so two different forwarded calls
//! could share one approval; here they never do. Duplicate object keys are
//! refused: parsers disagree on which one counts, so a hash over either
//! would not bind what the upstream reads.
//!
//! Each level is read through `RawValue`, so the work is the text's length
//! times its nesting depth, which serde_json caps at 128.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The canonical form of `json`, or why it has none.
pub fn canonical(json: &str) -> Result<String, String> {
    let raw: Box<RawValue> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(json.len());
    write(&raw, &mut out)?;
    Ok(out)
}

/// An object's members in the order written, duplicates included.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

fn write(raw: &RawValue, out: &mut String) -> Result<(), String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'{') => {
            let Members(mut members) = serde_json::from_str(text).map_err(|e| e.to_string())?;
            members.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = members.windows(2).find(|p| p[0].0 == p[1].0) {
                return Err(format!("the key {:?} appears more than once", pair[0].0));
            }
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).expect("a string serializes"));
                out.push(':');
                write(value, out)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> =
                serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
            out.push_str(&serde_json::to_string(&s).expect("a string serializes"));
        }
        // Numbers, true, false and null: exactly as written.
        Some(_) => out.push_str(text),
        None => return Err("empty JSON value".into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(
            canonical(r#" { "b" : [1, {"y":2,"x":1}], "a": "\u0041" } "#).unwrap(),
            r#"{"a":"A","b":[1,{"x":1,"y":2}]}"#
        );
    }

    #[test]
    fn numbers_keep_their_spelling() {
        let big = canonical(r#"{"n":100000000000000000001}"#).unwrap();
        let near = canonical(r#"{"n":100000000000000000000}"#).unwrap();
        let float = canonical(r#"{"n":1e20}"#).unwrap();
        assert_ne!(big, near, "large integers are not collapsed");
        assert_ne!(near, float, "float spellings are not collapsed");
        assert_ne!(canonical("1.0").unwrap(), canonical("1").unwrap());
        assert_eq!(canonical("-0.5e-3").unwrap(), "-0.5e-3");
    }

    #[test]
    fn duplicate_keys_and_bad_json_are_refused() {
        assert!(canonical(r#"{"a":1,"a":2}"#)
            .unwrap_err()
            .contains("more than once"));
        assert!(canonical(r#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(canonical("{").is_err());
        assert!(canonical("").is_err());
    }
}
