//! MCP protocol revisions the gateway speaks on its client side, negotiation,
//! and the `MCP-Protocol-Version` header rules of Streamable HTTP.

use super::error::ProtocolError;

/// Revisions served on the client side, newest first.
pub(crate) const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The revision offered when the client asks for one the gateway does not know.
pub(crate) const LATEST: &str = SUPPORTED[0];

/// What a request without `MCP-Protocol-Version` is taken to speak (spec rule).
pub(crate) const HEADERLESS_DEFAULT: &str = "2025-03-26";

/// Picks the revision to answer an `initialize` with: the client's own when the
/// gateway supports it, else the latest (the client then decides whether to go on).
pub(crate) fn negotiate(requested: &str) -> &'static str {
    SUPPORTED
        .iter()
        .copied()
        .find(|v| *v == requested)
        .unwrap_or(LATEST)
}

/// Whether the gateway speaks this revision.
pub(crate) fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// Checks the `MCP-Protocol-Version` header of a post-initialize request and
/// returns the revision the request speaks. Missing means 2025-03-26; a value
/// the gateway does not speak is a 400.
pub(crate) fn check_header(header: Option<&str>) -> Result<&'static str, ProtocolError> {
    match header.map(str::trim) {
        None => Ok(HEADERLESS_DEFAULT),
        Some(v) => SUPPORTED
            .iter()
            .copied()
            .find(|s| *s == v)
            .ok_or_else(|| ProtocolError::BadProtocolVersion(v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_keeps_known_and_falls_back_to_latest() {
        assert_eq!(negotiate("2025-06-18"), "2025-06-18");
        assert_eq!(negotiate("2025-03-26"), "2025-03-26");
        assert_eq!(negotiate("2024-11-05"), LATEST);
        assert_eq!(negotiate("garbage"), LATEST);
    }

    #[test]
    fn header_rules() {
        assert_eq!(check_header(None).unwrap(), "2025-03-26");
        assert_eq!(check_header(Some("2025-11-25")).unwrap(), "2025-11-25");
        assert_eq!(
            check_header(Some("1999-01-01")).unwrap_err(),
            ProtocolError::BadProtocolVersion("1999-01-01".into())
        );
    }
}
