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
    scan(text, kinds).0
}

/// Like [`redact`], also returning how many character inspections the scan
/// made: the measure the linear-time tests and benchmarks hold to
/// `O(text length)` on any input.
pub fn scan(text: &str, kinds: &[Kind]) -> (Option<String>, usize) {
    let mut s = Scanner::new(text);
    let out = s.run(kinds);
    (out, s.steps)
}

/// One pass over a text. Every matcher looks at a bounded window from its
/// start, except the email matcher, whose local part and domain can be
/// long; those are measured once per run of characters and remembered (see
/// [`Scanner::email`]), so the whole scan is linear in the text: no input
/// makes a matcher re-read the same long stretch from every start position.
struct Scanner {
    c: Vec<char>,
    /// Character inspections so far.
    steps: usize,
    /// The run of email local-part characters most recently measured:
    /// `(start, end)`; every position inside it ends the run at `end`.
    local_run: (usize, usize),
    /// The domain after the `@` at this index, as last measured: its end
    /// when it is a valid email domain.
    domain: Option<(usize, Option<usize>)>,
}

impl Scanner {
    fn new(text: &str) -> Scanner {
        Scanner {
            c: text.chars().collect(),
            steps: 0,
            local_run: (0, 0),
            domain: None,
        }
    }

    fn run(&mut self, kinds: &[Kind]) -> Option<String> {
        let kinds: Vec<Kind> = Kind::ALL
            .iter()
            .copied()
            .filter(|k| kinds.contains(k))
            .collect();
        let mut out = String::with_capacity(self.c.len());
        let mut changed = false;
        let mut i = 0;
        'scan: while i < self.c.len() {
            self.steps += 1;
            // Matches start at a word boundary only.
            if i == 0 || !self.c[i - 1].is_alphanumeric() {
                for kind in &kinds {
                    if let Some(end) = self.matches(*kind, i) {
                        let boundary = end == self.c.len() || !self.c[end].is_alphanumeric();
                        if boundary {
                            out.push_str(kind.placeholder());
                            changed = true;
                            i = end;
                            continue 'scan;
                        }
                    }
                }
            }
            out.push(self.c[i]);
            i += 1;
        }
        changed.then_some(out)
    }

    fn matches(&mut self, kind: Kind, start: usize) -> Option<usize> {
        match kind {
            Kind::Email => self.email(start),
            Kind::Phone => self.phone(start),
            Kind::Card => self.card(start),
            Kind::Ssn => self.ssn(start),
            Kind::Iban => self.iban(start),
        }
    }

    /// `local@domain.tld`: local part of `[A-Za-z0-9._%+-]`, a domain of
    /// labels with at least one dot and a final label of two or more letters.
    ///
    /// Linear overall: the end of the local-part run is measured once per
    /// run (every start inside the run shares it), and the domain once per
    /// `@` (every start before that `@` shares it). Starts only move forward,
    /// so one remembered run and one remembered domain suffice.
    fn email(&mut self, start: usize) -> Option<usize> {
        let local = |ch: char| ch.is_ascii_alphanumeric() || "._%+-".contains(ch);
        if !local(self.c[start]) || self.c[start] == '.' {
            return None;
        }
        let (run_start, run_end) = self.local_run;
        let at = if (run_start..run_end).contains(&start) {
            run_end
        } else {
            let mut i = start;
            while i < self.c.len() && local(self.c[i]) {
                self.steps += 1;
                i += 1;
            }
            self.local_run = (start, i);
            i
        };
        if at >= self.c.len() || self.c[at] != '@' {
            return None;
        }
        match self.domain {
            Some((seen_at, end)) if seen_at == at => end,
            _ => {
                let end = self.domain_end(at + 1);
                self.domain = Some((at, end));
                end
            }
        }
    }

    /// The end of a valid email domain starting at `from`, if there is one.
    fn domain_end(&mut self, from: usize) -> Option<usize> {
        let c = &self.c;
        let mut i = from;
        while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '-' || c[i] == '.') {
            i += 1;
        }
        self.steps += i - from;
        while i > from && c[i - 1] == '.' {
            i -= 1; // a sentence's full stop is not part of the domain
        }
        let domain = &c[from..i];
        let mut labels = domain.split(|ch| *ch == '.');
        let mut count = 0;
        let mut last: &[char] = &[];
        for label in labels.by_ref() {
            if label.is_empty() {
                return None;
            }
            count += 1;
            last = label;
        }
        let ok = count >= 2 && last.len() >= 2 && last.iter().all(|ch| ch.is_ascii_alphabetic());
        ok.then_some(i)
    }

    /// Digits with single separators between them (`seps`), at most
    /// `max_digits` (at most 19) of them: the end and the digits, kept on
    /// the stack (this runs at every digit of a text).
    fn digit_run(&mut self, start: usize, seps: &str, max_digits: usize) -> (usize, Digits) {
        let c = &self.c;
        let mut digits = Digits::default();
        let mut i = start;
        let mut end = start;
        while i < c.len() && digits.len < max_digits.min(19) {
            self.steps += 1;
            if c[i].is_ascii_digit() {
                digits.push(c[i] as u8);
                i += 1;
                end = i;
            } else if seps.contains(c[i])
                && i + 1 < c.len()
                && c[i + 1].is_ascii_digit()
                && end == i
            {
                i += 1;
            } else {
                break;
            }
        }
        (end, digits)
    }

    /// 13 to 19 digits (spaces or dashes allowed between) passing the Luhn check.
    fn card(&mut self, start: usize) -> Option<usize> {
        if !self.c[start].is_ascii_digit() {
            return None;
        }
        let (end, digits) = self.digit_run(start, " -", 19);
        (13..=19).contains(&digits.len).then_some(())?;
        luhn(digits.as_bytes()).then_some(end)
    }

    /// `AAA-GG-SSSS` with the ranges the SSA never issues excluded.
    fn ssn(&mut self, start: usize) -> Option<usize> {
        let window = self.c.get(start..start + 11)?;
        self.steps += 11;
        let shape = window.iter().enumerate().all(|(i, ch)| {
            if i == 3 || i == 6 {
                *ch == '-'
            } else {
                ch.is_ascii_digit()
            }
        });
        if !shape {
            return None;
        }
        let s: String = window.iter().collect();
        let (area, group, serial) = (&s[0..3], &s[4..6], &s[7..11]);
        let valid = area != "000"
            && area != "666"
            && !area.starts_with('9')
            && group != "00"
            && serial != "0000";
        valid.then_some(start + 11)
    }

    /// Country code, check digits, 11 to 30 alphanumerics (groups of four may
    /// be separated by single spaces), passing the ISO 13616 mod-97 check.
    fn iban(&mut self, start: usize) -> Option<usize> {
        let c = &self.c;
        let head = c.get(start..start + 4)?;
        if !(head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit())
        {
            return None;
        }
        // The mod-97 check reads the body, then the head: computed as the
        // body goes by, nothing is stored.
        let step = |rem: u32, ch: char| -> u32 {
            let v = ch.to_digit(36).unwrap_or(0);
            if v > 9 {
                (rem * 100 + v) % 97
            } else {
                (rem * 10 + v) % 97
            }
        };
        let mut rem: u32 = 0;
        let mut body = 0usize;
        let mut i = start + 4;
        let mut end = i;
        while i < c.len() && body < 30 {
            self.steps += 1;
            let ch = c[i];
            if ch.is_ascii_uppercase() || ch.is_ascii_digit() {
                rem = step(rem, ch);
                body += 1;
                i += 1;
                end = i;
            } else if ch == ' '
                && end == i
                && i + 1 < c.len()
                && c[i + 1].is_ascii_alphanumeric()
                && body.is_multiple_of(4)
            {
                i += 1;
            } else {
                break;
            }
        }
        if !(11..=30).contains(&body) {
            return None;
        }
        let rem = head.iter().fold(rem, |r, ch| step(r, *ch));
        (rem == 1).then_some(end)
    }

    /// International (`+` and 8-15 digits) or North American numbers grouped
    /// 3-3-4 (`(415) 555-0132`, `415-555-0132`, `415.555.0132`, `415 555 0132`).
    fn phone(&mut self, start: usize) -> Option<usize> {
        if self.c[start] == '+' {
            let (end, digits) = self.digit_run(start + 1, " -.", 15);
            return (8..=15).contains(&digits.len).then_some(end);
        }
        self.steps += 14;
        let c = &self.c;
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

/// Up to 19 ASCII digits.
#[derive(Default)]
struct Digits {
    bytes: [u8; 19],
    len: usize,
}

impl Digits {
    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(*b - b'0');
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
    sum.is_multiple_of(10) && digits.iter().any(|b| *b != b'0')
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
