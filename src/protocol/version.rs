//! MCP protocol revisions the gateway speaks on its client side, negotiation,
//! and the `MCP-Protocol-Version` header rules of Streamable HTTP.

use super::error::ProtocolError;

/// Revisions served on the client side, newest first.
pub(crate) const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// The revision offered when the client asks for one the gateway does not know.
pub(crate) const LATEST: &str = SUPPORTED[0];

/// The stateless revisions: no `initialize`, no sessions; every request
/// carries its own version and capabilities (MCP 2026-07-28,
/// `docs/specification/2026-07-28/basic/transports/streamable-http.mdx`).
pub(crate) const MODERN: &[&str] = &["2026-07-28"];

/// Which era a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Era {
    /// 2025-11-25 and earlier: `initialize`, then a session.
    #[default]
    Legacy,
    /// 2026-07-28: stateless, one self-contained request per POST.
    Modern,
}

impl Era {
    /// From a request's headers: `MCP-Protocol-Version` absent or a
    /// session-era revision, or an `Mcp-Session-Id` present (only a session
    /// has one), is legacy, answered exactly as before; anything else is read
    /// as a modern request, so an unknown revision is answered by the modern
    /// rules (-32022 naming what the gateway speaks).
    pub fn of_request(headers: &http::HeaderMap) -> Era {
        let version = headers
            .get(super::headers::PROTOCOL_VERSION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        // 2024-11-05 is a session-era revision too: its clients are answered
        // as before (with 2025-11-25 offered), not as broken modern ones.
        match version {
            Some(v)
                if !v.is_empty()
                    && v != "2024-11-05"
                    && !SUPPORTED.contains(&v)
                    && !headers.contains_key(super::headers::SESSION_ID) =>
            {
                Era::Modern
            }
            _ => Era::Legacy,
        }
    }
}

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
    fn the_era_follows_the_version_header_and_a_session() {
        let era = |pairs: &[(&str, &str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            Era::of_request(&h)
        };
        let v = "mcp-protocol-version";
        assert_eq!(era(&[]), Era::Legacy);
        assert_eq!(era(&[(v, "2025-11-25")]), Era::Legacy);
        assert_eq!(era(&[(v, "2025-03-26")]), Era::Legacy);
        assert_eq!(era(&[(v, "2024-11-05")]), Era::Legacy);
        assert_eq!(era(&[(v, "")]), Era::Legacy);
        assert_eq!(era(&[(v, "2024-11-05")]), Era::Legacy);
        assert_eq!(era(&[(v, "")]), Era::Legacy);
        assert_eq!(era(&[(v, "2026-07-28")]), Era::Modern);
        assert_eq!(era(&[(v, "2099-01-01")]), Era::Modern);
        // A session's request with a revision it never negotiated stays a
        // legacy request (a 400 of its era).
        assert_eq!(era(&[(v, "1.0"), ("mcp-session-id", "x")]), Era::Legacy);
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
