//! Name patterns for tool filters: `*` matches any run of characters, `?` one
//! character, everything else itself. Enough for `read_*` or `*_admin` without a
//! regex engine in the wasm bundle.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        Ok(Glob(pattern.to_string()))
    }

    pub fn matches(&self, name: &str) -> bool {
        matches(self.0.as_bytes(), name.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
