//! Aggregated names: `{server}__{name}`.
//!
//! Both parts use `[A-Za-z0-9_-]` so OpenAI-style function-name rules hold. A
//! qualified name is kept within 64 characters by shortening the server prefix to
//! its head plus a 4-hex-digit hash of the whole server id; the mapping is
//! deterministic, so routing needs no stored table: the gateway recomputes the
//! qualified name for each candidate server and compares.

/// The separator between server prefix and original name.
pub(crate) const SEP: &str = "__";

/// The longest qualified name the gateway aims for.
pub(crate) const MAX_LEN: usize = 64;

/// Hash digits appended to a shortened prefix.
const HASH_DIGITS: usize = 4;

/// The name a client sees for `name` on `server`.
pub(crate) fn qualify(server: &str, name: &str) -> String {
    let full = server.len() + SEP.len() + name.len();
    if full <= MAX_LEN {
        return format!("{server}{SEP}{name}");
    }
    // Room left for the prefix; a prefix shorter than hash + one char would not
    // tell servers apart, so over-long tool names keep the full prefix instead.
    let room = MAX_LEN.saturating_sub(SEP.len() + name.len());
    if room < HASH_DIGITS + 1 {
        return format!("{server}{SEP}{name}");
    }
    let head = server[..room - HASH_DIGITS].trim_end_matches('_');
    format!("{head}{:04x}{SEP}{name}", fnv16(server))
}

/// Splits a qualified name into (prefix, original name) at the first separator.
/// Server ids never contain the separator, so the original name may.
pub(crate) fn split(qualified: &str) -> Option<(&str, &str)> {
    let (prefix, name) = qualified.split_once(SEP)?;
    (!prefix.is_empty() && !name.is_empty()).then_some((prefix, name))
}

/// Finds which of `servers` a qualified name belongs to, and the original name.
pub fn resolve<I>(qualified: &str, servers: I) -> Option<(usize, &str)>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let (prefix, name) = split(qualified)?;
    servers
        .into_iter()
        .position(|s| {
            let s = s.as_ref();
            // Unshortened names (the common case) compare without allocating.
            if s.len() + SEP.len() + name.len() <= MAX_LEN {
                s == prefix
            } else {
                qualify(s, name) == qualified
            }
        })
        .map(|i| (i, name))
}

/// Whether a server id is acceptable as a prefix: `[A-Za-z0-9_-]`, no `__`, no
/// leading or trailing `_` (which would blur the separator).
pub(crate) fn valid_server_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 48
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !id.contains(SEP)
        && !id.starts_with('_')
        && !id.ends_with('_')
}

/// 16-bit fold of 32-bit FNV-1a: a stable, non-cryptographic name hash.
fn fnv16(s: &str) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_plain() {
        assert_eq!(qualify("github", "create_issue"), "github__create_issue");
        assert_eq!(
            split("github__create_issue"),
            Some(("github", "create_issue"))
        );
        assert_eq!(split("a__b__c"), Some(("a", "b__c")));
        assert_eq!(split("nosep"), None);
        assert_eq!(split("__x"), None);
    }

    #[test]
    fn long_names_stay_within_64_and_resolve_back() {
        let server = "a-very-long-server-identifier-for-the-finance-team";
        let tool = "reconcile_quarterly_ledger_entries";
        let q = qualify(server, tool);
        assert!(q.len() <= MAX_LEN, "{q} is {} long", q.len());
        assert!(q.ends_with("__reconcile_quarterly_ledger_entries"));
        let servers = ["other", server];
        assert_eq!(resolve(&q, servers), Some((1, tool)));
    }

    #[test]
    fn shortened_prefixes_differ_for_similar_servers() {
        let tool = "t".repeat(40);
        let a = qualify("finance-reporting-eu-west-primary", &tool);
        let b = qualify("finance-reporting-eu-west-secondary", &tool);
        assert_ne!(a, b);
        assert_eq!(
            resolve(
                &b,
                [
                    "finance-reporting-eu-west-primary",
                    "finance-reporting-eu-west-secondary"
                ]
            ),
            Some((1, tool.as_str()))
        );
    }

    #[test]
    fn resolve_rejects_unknown_prefixes() {
        assert_eq!(resolve("nope__echo", ["everything", "notes"]), None);
        assert_eq!(
            resolve("notes__echo", ["everything", "notes"]),
            Some((1, "echo"))
        );
    }

    #[test]
    fn server_id_rules() {
        for ok in ["a", "github", "pg-prod", "team_a-1"] {
            assert!(valid_server_id(ok), "{ok}");
        }
        for bad in ["", "a__b", "_a", "a_", "a.b", "a b", &"x".repeat(49)] {
            assert!(!valid_server_id(bad), "{bad}");
        }
    }
}
