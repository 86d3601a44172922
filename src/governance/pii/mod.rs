//! Redacting personal data from tool results and resource contents: email
//! addresses, phone numbers, payment card numbers (Luhn-checked), US social
//! security numbers and IBANs (mod-97-checked) become typed placeholders such
//! as `[EMAIL]`. Each kind is a small scanner over characters rather than a
//! regular expression: the checks (Luhn, mod 97, SSN ranges) need code anyway,
//! and a regex engine would add hundreds of KB to the wasm bundles.

mod scanner;

use scanner::Scanner;
use serde_json::Value;

/// Kinds of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Email, Kind::Card, Kind::Iban, Kind::Ssn, Kind::Phone];

    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "email" => Kind::Email,
            "phone" => Kind::Phone,
            "card" => Kind::Card,
            "ssn" => Kind::Ssn,
            "iban" => Kind::Iban,
            _ => return None,
        })
    }

    /// The kind's name in settings and in the audit trail.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Ssn => "ssn",
            Kind::Iban => "iban",
        }
    }

    fn index(self) -> usize {
        match self {
            Kind::Email => 0,
            Kind::Phone => 1,
            Kind::Card => 2,
            Kind::Ssn => 3,
            Kind::Iban => 4,
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Kind::Email => "[EMAIL]",
            Kind::Phone => "[PHONE]",
            Kind::Card => "[CARD]",
            Kind::Ssn => "[SSN]",
            Kind::Iban => "[IBAN]",
        }
    }
}

/// How many matches of each kind a redaction replaced (the audit trail
/// records it; never what matched).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally([u32; 5]);

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|n| *n == 0)
    }

    /// `(kind name, count)` for every kind that matched.
    pub fn counts(&self) -> Vec<(&'static str, u32)> {
        Kind::ALL
            .iter()
            .filter(|k| self.0[k.index()] > 0)
            .map(|k| (k.name(), self.0[k.index()]))
            .collect()
    }

    fn add(&mut self, other: &Tally) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }
}

/// Redacts every string inside `v` (field by field for structured content),
/// except base64 payloads: a resource `blob` and the `data` of image and
/// audio content (objects that carry a `mimeType`). Rewriting those would
/// corrupt the bytes without removing anything readable.
pub(crate) fn redact_value(v: &mut Value, kinds: &[Kind]) {
    redact_value_counted(v, kinds, &mut Tally::default())
}

/// [`redact_value`], adding what it replaced to `tally`.
pub(crate) fn redact_value_counted(v: &mut Value, kinds: &[Kind], tally: &mut Tally) {
    match v {
        Value::String(s) => {
            if let Some(r) = redact_counted(s, kinds, tally) {
                *s = r;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| redact_value_counted(i, kinds, tally)),
        Value::Object(map) => {
            let binary = map.contains_key("mimeType");
            for (key, item) in map.iter_mut() {
                let base64 = key == "blob" || (binary && key == "data");
                if !base64 {
                    redact_value_counted(item, kinds, tally);
                }
            }
        }
        _ => {}
    }
}

/// The text with every match replaced, or `None` when nothing matched.
pub fn redact(text: &str, kinds: &[Kind]) -> Option<String> {
    scan(text, kinds).0
}

/// [`redact`], adding what it replaced to `tally`.
pub(crate) fn redact_counted(text: &str, kinds: &[Kind], tally: &mut Tally) -> Option<String> {
    let mut s = Scanner::new(text);
    let out = s.run(kinds);
    tally.add(&s.tally);
    out
}

/// Like [`redact`], also returning how many character inspections the scan
/// made: the measure the linear-time tests and benchmarks hold to
/// `O(text length)` on any input.
pub fn scan(text: &str, kinds: &[Kind]) -> (Option<String>, usize) {
    let mut s = Scanner::new(text);
    let out = s.run(kinds);
    (out, s.steps)
}

/// Inputs built to make a naive scanner quadratic (the worst cases the
/// linearity tests and the `pii worst case` benchmark rows scan), each about
/// `n` bytes.
pub fn adversarial(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("dashes", "-".repeat(n)),
        ("dots", ".".repeat(n)),
        ("local part, no @", "a-".repeat(n / 2)),
        ("many @", "a@".repeat(n / 2)),
        ("long domain", format!("a@{}", "b.".repeat(n / 2))),
        (
            "local then @ at the end",
            format!("{}@x", "a-".repeat(n / 2)),
        ),
        ("digits", "1".repeat(n)),
        ("digit groups", "1 ".repeat(n / 2)),
        ("plus digits", "+1 ".repeat(n / 3)),
        ("iban heads", "GB82 ".repeat(n / 5)),
        ("ssn shapes", "123-45-".repeat(n / 7)),
        ("phones", "(415) 555-".repeat(n / 10)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(text: &str) -> String {
        redact(text, &Kind::ALL).unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn each_kind_is_replaced_by_its_placeholder() {
        assert_eq!(
            r("mail jane.doe+mcp@mail.example.co.uk today."),
            "mail [EMAIL] today."
        );
        assert_eq!(
            r("call (415) 555-0132 or +44 20 7946 0958"),
            "call [PHONE] or [PHONE]"
        );
        assert_eq!(r("or 415.555.0132"), "or [PHONE]");
        assert_eq!(
            r("card 4111 1111 1111 1111, exp 12/27"),
            "card [CARD], exp 12/27"
        );
        assert_eq!(r("card 5500-0000-0000-0004"), "card [CARD]");
        assert_eq!(r("SSN 123-45-6789."), "SSN [SSN].");
        assert_eq!(
            r("pay to GB82 WEST 1234 5698 7654 32 now"),
            "pay to [IBAN] now"
        );
        assert_eq!(r("DE89370400440532013000"), "[IBAN]");
    }

    #[test]
    fn near_misses_are_left_alone() {
        for text in [
            "not an email: user@localhost or @handle or a@b.c",
            "4111 1111 1111 1112 fails Luhn",
            "0000 0000 0000 0000 is all zeros",
            "order 4155550132 has no separators",
            "dates 2024-01-15 and 12/27, version 1.2.3.4",
            "SSNs never start 000-12-3456, 666-12-3456, 912-34-5678 or end 123-45-0000",
            "ids 123-45-67890 and 1234-56-789 are other shapes",
            "GB82 WEST 1234 5698 7654 33 fails mod 97",
            "see RFC 9728 and ISO 13616, port 8787",
            "word4111111111111111 is glued to a word",
        ] {
            assert_eq!(redact(text, &Kind::ALL), None, "{text}");
        }
    }

    #[test]
    fn base64_payloads_are_left_intact() {
        // 16 digits that pass Luhn, as a base64 payload could contain them.
        let mut v = json!({"content": [
            {"type": "image", "mimeType": "image/png", "data": "4111 1111 1111 1111"},
            {"type": "text", "text": "4111 1111 1111 1111"}
        ], "contents": [{"uri": "x:1", "blob": "4111 1111 1111 1111"}]});
        redact_value(&mut v, &Kind::ALL);
        assert_eq!(v["content"][0]["data"], "4111 1111 1111 1111");
        assert_eq!(v["content"][1]["text"], "[CARD]");
        assert_eq!(v["contents"][0]["blob"], "4111 1111 1111 1111");
    }

    #[test]
    fn every_scanner_is_linear_on_adversarial_input() {
        for (name, small) in adversarial(64 * 1024) {
            let (_, small_steps) = scan(&small, &Kind::ALL);
            let large = adversarial(1024 * 1024)
                .into_iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1;
            let (_, large_steps) = scan(&large, &Kind::ALL);
            let per_char = large_steps as f64 / large.chars().count() as f64;
            assert!(per_char < 40.0, "{name}: {per_char:.1} steps per character");
            let growth = large_steps as f64 / small_steps as f64;
            let ratio = large.len() as f64 / small.len() as f64;
            assert!(
                growth < ratio * 1.2,
                "{name}: 16x the input took {growth:.1}x the work"
            );
        }
    }

    #[test]
    fn many_matches_in_a_row_and_shared_runs_still_match() {
        assert_eq!(r("a@b.io c@d.io"), "[EMAIL] [EMAIL]");
        assert_eq!(
            r("x-y.z@corp.example and q@corp.example."),
            "[EMAIL] and [EMAIL]."
        );
        // Starts inside one local run share its end; the match begins at
        // the first boundary (a local part may start with '-').
        assert_eq!(r("--a-b@corp.example"), "[EMAIL]");
        assert_eq!(r(".a-b@corp.example"), ".[EMAIL]");
        assert_eq!(r("a@b@corp.example"), "a@[EMAIL]");
    }

    #[test]
    fn only_the_asked_kinds_and_structured_fields() {
        assert_eq!(
            redact("a@b.io 123-45-6789", &[Kind::Ssn]).unwrap(),
            "a@b.io [SSN]"
        );
        let mut v = json!({"content": [{"type": "text", "text": "mail a@b.io"}],
            "structuredContent": {"user": {"email": "x@corp.com", "age": 41, "tags": ["+1 415 555 0132"]}}});
        redact_value(&mut v, &Kind::ALL);
        assert_eq!(v["content"][0]["text"], "mail [EMAIL]");
        assert_eq!(v["structuredContent"]["user"]["email"], "[EMAIL]");
        assert_eq!(v["structuredContent"]["user"]["age"], 41);
        assert_eq!(v["structuredContent"]["user"]["tags"][0], "[PHONE]");
        assert_eq!(v["content"][0]["type"], "text");
    }
}
