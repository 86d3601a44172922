//! The scanner behind [`redact`](super::redact): one pass over a text's
//! characters, each matcher looking at a bounded window from its start,
//! except the email matcher, whose long runs are measured once and
//! remembered; so the pass is linear in the text on any input.

use super::{Kind, Tally};

/// One pass over a text. Every matcher looks at a bounded window from its
/// start, except the email matcher, whose local part and domain can be
/// long; those are measured once per run of characters and remembered (see
/// [`Scanner::email`]), so the whole scan is linear in the text: no input
/// makes a matcher re-read the same long stretch from every start position.
pub(super) struct Scanner {
    c: Vec<char>,
    /// Character inspections so far.
    pub(super) steps: usize,
    /// The run of email local-part characters most recently measured:
    /// `(start, end)`; every position inside it ends the run at `end`.
    local_run: (usize, usize),
    /// The domain after the `@` at this index, as last measured: its end
    /// when it is a valid email domain.
    domain: Option<(usize, Option<usize>)>,
    /// Matches replaced, by kind.
    pub(super) tally: Tally,
}

impl Scanner {
    pub(super) fn new(text: &str) -> Scanner {
        Scanner {
            c: text.chars().collect(),
            steps: 0,
            local_run: (0, 0),
            domain: None,
            tally: Tally::default(),
        }
    }

    pub(super) fn run(&mut self, kinds: &[Kind]) -> Option<String> {
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
                            self.tally.0[kind.index()] += 1;
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
