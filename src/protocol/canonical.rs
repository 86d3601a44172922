//! A digest of JSON text that ignores what does not change its meaning
//! (object key order, whitespace, how a string is escaped) and keeps what
//! does: numbers exactly as written. Approvals bind a call to the digest of
//! its arguments. Going through `serde_json::Value` would turn
//! `100000000000000000001` and `1e20` into the same float, so two different
//! forwarded calls could share one approval; here they never do. Duplicate
//! object keys are refused: parsers disagree on which one counts, so a
//! digest over either would not bind what the upstream reads.
//!
//! The digest is a hash tree: each value's SHA-256 is computed once from its
//! children's digests (object members sorted by key), in one pass over the
//! text, so the work is linear in the text whatever its nesting. serde_json
//! validates the text first; the walk below only splits text already known
//! to be JSON, and serde_json decodes every string.

use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

/// Deeper nesting is refused (serde_json's own limit).
const MAX_DEPTH: usize = 128;

/// The digest of `json`, as lower-case hex, or why it has none.
pub(crate) fn digest_hex(json: &str) -> Result<String, String> {
    let digest = digest(json)?;
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The digest of `json`, or why it has none.
pub fn digest(json: &str) -> Result<[u8; 32], String> {
    serde_json::from_str::<IgnoredAny>(json).map_err(|e| e.to_string())?;
    let mut walk = Walk { text: json, at: 0 };
    let digest = walk.value(0)?;
    walk.space();
    match walk.at == json.len() {
        true => Ok(digest),
        false => Err("text after the JSON value".into()),
    }
}

/// Tags that keep the kinds of values apart in the tree.
const NUMBER_OR_LITERAL: u8 = 1;
const STRING: u8 = 2;
const ARRAY: u8 = 3;
const OBJECT: u8 = 4;

struct Walk<'a> {
    text: &'a str,
    at: usize,
}

impl Walk<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.space();
        match self.peek() {
            Some(b) if b == byte => {
                self.at += 1;
                Ok(())
            }
            _ => Err(format!("expected '{}' at {}", byte as char, self.at)),
        }
    }

    fn value(&mut self, depth: usize) -> Result<[u8; 32], String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        self.space();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let s = self.string()?;
                Ok(leaf(STRING, s.as_bytes()))
            }
            Some(_) => {
                // A number, true, false or null: exactly as written.
                let start = self.at;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                ) {
                    self.at += 1;
                }
                Ok(leaf(
                    NUMBER_OR_LITERAL,
                    &self.text.as_bytes()[start..self.at],
                ))
            }
            None => Err("unexpected end of JSON".into()),
        }
    }

    /// A string token, decoded by serde_json (escapes resolved).
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek() {
                Some(b'\\') => self.at += 2,
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(_) => self.at += 1,
                None => return Err("unterminated string".into()),
            }
        }
        let token = self.text.get(start..self.at).ok_or("string cut")?;
        serde_json::from_str(token).map_err(|e| e.to_string())
    }

    fn array(&mut self, depth: usize) -> Result<[u8; 32], String> {
        self.at += 1;
        let mut hash = Sha256::new();
        hash.update([ARRAY]);
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(hash.finalize().into());
        }
        loop {
            hash.update(self.value(depth + 1)?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(hash.finalize().into());
                }
                _ => return Err(format!("expected ',' or ']' at {}", self.at)),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<[u8; 32], String> {
        self.at += 1;
        let mut members: Vec<(String, [u8; 32])> = Vec::new();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                self.space();
                let key = self.string()?;
                self.expect(b':')?;
                members.push((key, self.value(depth + 1)?));
                self.space();
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(format!("expected ',' or '}}' at {}", self.at)),
                }
            }
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = members.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(format!("the key {:?} appears more than once", pair[0].0));
        }
        let mut hash = Sha256::new();
        hash.update([OBJECT]);
        for (key, value) in &members {
            hash.update(leaf(STRING, key.as_bytes()));
            hash.update(value);
        }
        Ok(hash.finalize().into())
    }
}

fn leaf(tag: u8, bytes: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update([tag]);
    hash.update(bytes);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(json: &str) -> String {
        digest_hex(json).unwrap()
    }

    #[test]
    fn key_order_whitespace_and_escapes_do_not_matter() {
        assert_eq!(
            d(r#" { "b" : [1, {"y":2,"x":1}], "a": "\u0041" } "#),
            d(r#"{"a":"A","b":[1,{"x":1,"y":2}]}"#)
        );
        assert_ne!(
            d(r#"{"a":[1,2]}"#),
            d(r#"{"a":[2,1]}"#),
            "array order matters"
        );
        assert_ne!(d(r#"["ab"]"#), d(r#"["a","b"]"#));
        assert_ne!(d(r#""1""#), d("1"), "a string is not a number");
        assert_ne!(d("{}"), d("[]"));
    }

    #[test]
    fn numbers_keep_their_spelling() {
        let big = d(r#"{"n":100000000000000000001}"#);
        let near = d(r#"{"n":100000000000000000000}"#);
        let float = d(r#"{"n":1e20}"#);
        assert_ne!(big, near, "large integers are not collapsed");
        assert_ne!(near, float, "float spellings are not collapsed");
        assert_ne!(d("1.0"), d("1"));
    }

    #[test]
    fn duplicate_keys_and_bad_json_are_refused() {
        assert!(digest_hex(r#"{"a":1,"a":2}"#)
            .unwrap_err()
            .contains("more than once"));
        assert!(
            digest_hex(r#"{"a":{"b":1,"\u0062":1}}"#).is_err(),
            "the same key, spelled twice"
        );
        for bad in ["{", "", "[1,]", "1 2", "\"\\", "nul"] {
            assert!(digest_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_costs_one_pass() {
        // 127 levels around a long string: one walk over the text.
        let inner = format!("\"{}\"", "x".repeat(100_000));
        let deep = format!("{}{inner}{}", "[".repeat(127), "]".repeat(127));
        assert!(digest(&deep).is_ok());
        let deeper = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(digest(&deeper).is_err());
    }
}
