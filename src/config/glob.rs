//! Name patterns for tool filters: `*` matches any run of characters, `?` one
//! character, everything else itself. Enough for `read_*` or `*_admin` without a
//! regex engine in the wasm bundle.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(String);

impl Glob {
    pub(crate) fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        Ok(Glob(pattern.to_string()))
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        matches(self.0.as_bytes(), name.as_bytes())
    }
}

/// A list of patterns as filters are written: an empty list means any name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Globs(Vec<Glob>);

impl Globs {
    /// Compiles `patterns`; an error names the field by `context` (such as
    /// `rule 'x': tools`).
    pub(crate) fn parse(patterns: &[String], context: &str) -> Result<Globs, String> {
        patterns
            .iter()
            .map(|p| Glob::new(p).map_err(|e| format!("{context}: {e}")))
            .collect::<Result<_, _>>()
            .map(Globs)
    }

    /// Whether the filter lets `name` through: the list is empty (any) or
    /// one pattern matches.
    pub(crate) fn allows(&self, name: &str) -> bool {
        self.0.is_empty() || self.lists(name)
    }

    /// Whether one pattern matches `name` (an empty list lists nobody).
    pub(crate) fn lists(&self, name: &str) -> bool {
        self.0.iter().any(|g| g.matches(name))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice,
/// never exponential.
fn matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_rules() {
        let g = |p: &str, s: &str| Glob::new(p).unwrap().matches(s);
        assert!(g("echo", "echo"));
        assert!(!g("echo", "echo2"));
        assert!(g("read_*", "read_file"));
        assert!(g("read_*", "read_"));
        assert!(!g("read_*", "write_file"));
        assert!(g("*_admin", "user_admin"));
        assert!(g("a*b*c", "axxbyyc"));
        assert!(!g("a*b*c", "axxbyy"));
        assert!(g("ech?", "echo"));
        assert!(g("*", ""));
        assert!(Glob::new("").is_err());
    }
}
