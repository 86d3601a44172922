//! Redacting personal data from tool results and resource contents: email
//! addresses, phone numbers, payment card numbers (Luhn-checked), US social
//! security numbers and IBANs (mod-97-checked) become typed placeholders such
//! as `[EMAIL]`. Each kind is a small scanner over characters rather than a
//! regular expression: the checks (Luhn, mod 97, SSN ranges) need code anyway,
//! and a regex engine would add hundreds of KB to the wasm bundles.

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

    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "email" => Kind::Email,
            "phone" => Kind::Phone,
            "card" => Kind::Card,
            "ssn" => Kind::Ssn,
            "iban" => Kind::Iban,
            _ => return None,
        })
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

/// Redacts every string inside `v` (field by field for structured content),
/// except base64 payloads: a resource `blob` and the `data` of image and
/// audio content (objects that carry a `mimeType`). Rewriting those would
/// corrupt the bytes without removing anything readable.
pub fn redact_value(v: &mut Value, kinds: &[Kind]) {
    match v {
        Value::String(s) => {
            if let Some(r) = redact(s, kinds) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact_value(i, kinds)),
        Value::Object(map) => {
            let binary = map.contains_key("mimeType");
            for (key, item) in map.iter_mut() {
                let base64 = key == "blob" || (binary && key == "data");
                if !base64 {
                    redact_value(item, kinds);
                }
            }
        }
        _ => {}
    }
}

/// The text with every match replaced, or `None` when nothing matched.
pub fn redact(text: &str, kinds: &[Kind]) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    'scan: while i < chars.len() {
        // Matches start at a word boundary only.
        if i == 0 || !chars[i - 1].is_alphanumeric() {
            for kind in Kind::ALL.iter().filter(|k| kinds.contains(k)) {
                if let Some(end) = matcher(*kind)(&chars, i) {
                    let boundary = end == chars.len() || !chars[end].is_alphanumeric();
                    if boundary {
                        out.push_str(kind.placeholder());
                        changed = true;
                        i = end;
                        continue 'scan;
                    }
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    changed.then_some(out)
}

type Matcher = fn(&[char], usize) -> Option<usize>;

fn matcher(kind: Kind) -> Matcher {
    match kind {
        Kind::Email => email,
        Kind::Phone => phone,
        Kind::Card => card,
        Kind::Ssn => ssn,
        Kind::Iban => iban,
    }
}

/// `local@domain.tld`: local part of `[A-Za-z0-9._%+-]`, a domain of labels
/// with at least one dot and a final label of two or more letters.
fn email(c: &[char], start: usize) -> Option<usize> {
    let local = |ch: char| ch.is_ascii_alphanumeric() || "._%+-".contains(ch);
    let mut i = start;
    while i < c.len() && local(c[i]) {
        i += 1;
    }
    if i == start || i >= c.len() || c[i] != '@' || c[start] == '.' {
        return None;
    }
    i += 1;
    let domain_start = i;
    while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '-' || c[i] == '.') {
        i += 1;
    }
    while i > domain_start && c[i - 1] == '.' {
        i -= 1; // a sentence's full stop is not part of the domain
    }
    let domain: String = c[domain_start..i].iter().collect();
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels.last()?;
    let ok = labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty())
        && tld.len() >= 2
        && tld.chars().all(|ch| ch.is_ascii_alphabetic());
    ok.then_some(i)
}

/// Digits with single separators between them (`sep`), returning the end
/// and the digits.
fn digit_run(c: &[char], start: usize, seps: &str, max_digits: usize) -> (usize, String) {
    let mut digits = String::new();
    let mut i = start;
    let mut end = start;
    while i < c.len() && digits.len() < max_digits {
        if c[i].is_ascii_digit() {
            digits.push(c[i]);
            i += 1;
            end = i;
        } else if seps.contains(c[i]) && i + 1 < c.len() && c[i + 1].is_ascii_digit() && end == i {
            i += 1;
        } else {
            break;
        }
    }
    (end, digits)
}

/// 13 to 19 digits (spaces or dashes allowed between) passing the Luhn check.
fn card(c: &[char], start: usize) -> Option<usize> {
    let (end, digits) = digit_run(c, start, " -", 19);
    (13..=19).contains(&digits.len()).then_some(())?;
    luhn(&digits).then_some(end)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10) && digits.bytes().any(|b| b != b'0')
}

/// `AAA-GG-SSSS` with the ranges the SSA never issues excluded.
fn ssn(c: &[char], start: usize) -> Option<usize> {
    let s: String = c.get(start..start + 11)?.iter().collect();
    let b = s.as_bytes();
    let shape = b[3] == b'-'
        && b[6] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, ch)| i == 3 || i == 6 || ch.is_ascii_digit());
    if !shape {
        return None;
    }
    let (area, group, serial) = (&s[0..3], &s[4..6], &s[7..11]);
    let valid = area != "000"
        && area != "666"
        && !area.starts_with('9')
        && group != "00"
        && serial != "0000";
    valid.then_some(start + 11)
}

/// Country code, check digits, 11 to 30 alphanumerics (groups of four may be
/// separated by single spaces), passing the ISO 13616 mod-97 check.
fn iban(c: &[char], start: usize) -> Option<usize> {
    let head: String = c.get(start..start + 4)?.iter().collect();
    let h = head.as_bytes();
    if !(h[0].is_ascii_uppercase()
        && h[1].is_ascii_uppercase()
        && h[2].is_ascii_digit()
        && h[3].is_ascii_digit())
    {
        return None;
    }
    let mut body = String::new();
    let mut i = start + 4;
    let mut end = i;
    while i < c.len() && body.len() < 30 {
        let ch = c[i];
        if ch.is_ascii_uppercase() || ch.is_ascii_digit() {
            body.push(ch);
            i += 1;
            end = i;
        } else if ch == ' '
            && end == i
            && i + 1 < c.len()
            && c[i + 1].is_ascii_alphanumeric()
            && body.len().is_multiple_of(4)
        {
            i += 1;
        } else {
            break;
        }
    }
    if !(11..=30).contains(&body.len()) {
        return None;
    }
    let rearranged = format!("{body}{head}");
    let mut rem: u32 = 0;
    for ch in rearranged.chars() {
        let v = ch.to_digit(36)?;
        rem = if v > 9 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some(end)
}

/// International (`+` and 8-15 digits) or North American numbers grouped
/// 3-3-4 (`(415) 555-0132`, `415-555-0132`, `415.555.0132`, `415 555 0132`).
fn phone(c: &[char], start: usize) -> Option<usize> {
    if c[start] == '+' {
        let (end, digits) = digit_run(c, start + 1, " -.", 15);
        return (8..=15).contains(&digits.len()).then_some(end);
    }
    let group = |at: usize, n: usize| -> Option<usize> {
        let run = c.get(at..at + n)?;
        run.iter().all(|ch| ch.is_ascii_digit()).then_some(at + n)
    };
    let sep = |at: usize| {
        c.get(at)
            .is_some_and(|ch| " -.".contains(*ch))
            .then_some(at + 1)
    };
    let after_area = if c[start] == '(' {
        let close = group(start + 1, 3)?;
        (c.get(close) == Some(&')')).then_some(())?;
        // "(415) 555-0132" or "(415)555-0132"
        sep(close + 1)
            .filter(|_| c[close + 1] == ' ')
            .unwrap_or(close + 1)
    } else {
        sep(group(start, 3)?)?
    };
    let exchange = group(after_area, 3)?;
    let end = group(sep(exchange)?, 4)?;
    let area = if c[start] == '(' {
        c[start + 1]
    } else {
        c[start]
    };
    // North American area codes never start with 0 or 1.
    (area != '0' && area != '1').then_some(end)
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
