//! MCP methods, parsed once from a message's `method` so that dispatch is a
//! `match` the compiler holds to every case: a method added here is an
//! error wherever it is not yet handled. Unknown methods stay [`Method::Other`]
//! (a newer revision's or an extension's) and keep their exact name, so the
//! per-server endpoint can pass them through byte for byte.
//!
//! Names from `schema/2025-11-25/schema.ts` in
//! `modelcontextprotocol/modelcontextprotocol` (`ClientRequest`,
//! `ClientNotification`).

/// A client request's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method<'a> {
    Initialize,
    Ping,
    /// One of the paginated lists.
    List(ListKind),
    ToolsCall,
    PromptsGet,
    ResourcesRead,
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    CompletionComplete,
    LoggingSetLevel,
    /// 2026-07-28: what the server speaks and offers (replaces the handshake).
    Discover,
    /// 2026-07-28: a long-lived stream of the notifications the client asks
    /// for (replaces `resources/subscribe` and the GET stream).
    SubscriptionsListen,
    /// Any other method, by its name.
    Other(&'a str),
}

impl<'a> Method<'a> {
    pub(crate) fn parse(name: &'a str) -> Method<'a> {
        match name {
            "initialize" => Method::Initialize,
            "ping" => Method::Ping,
            "tools/list" => Method::List(ListKind::Tools),
            "prompts/list" => Method::List(ListKind::Prompts),
            "resources/list" => Method::List(ListKind::Resources),
            "resources/templates/list" => Method::List(ListKind::ResourceTemplates),
            "tools/call" => Method::ToolsCall,
            "prompts/get" => Method::PromptsGet,
            "resources/read" => Method::ResourcesRead,
            "resources/subscribe" => Method::ResourcesSubscribe,
            "resources/unsubscribe" => Method::ResourcesUnsubscribe,
            "completion/complete" => Method::CompletionComplete,
            "logging/setLevel" => Method::LoggingSetLevel,
            "server/discover" => Method::Discover,
            "subscriptions/listen" => Method::SubscriptionsListen,
            other => Method::Other(other),
        }
    }

    /// The method's name on the wire.
    pub(crate) fn name(self) -> &'a str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::List(kind) => kind.method(),
            Method::ToolsCall => "tools/call",
            Method::PromptsGet => "prompts/get",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::Discover => "server/discover",
            Method::SubscriptionsListen => "subscriptions/listen",
            Method::Other(name) => name,
        }
    }
}

/// A client notification's method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice<'a> {
    Initialized,
    Cancelled,
    Progress,
    RootsListChanged,
    /// Any other `notifications/*`, by its name.
    Other(&'a str),
}

impl<'a> Notice<'a> {
    pub(crate) fn parse(name: &'a str) -> Notice<'a> {
        match name {
            "notifications/initialized" => Notice::Initialized,
            "notifications/cancelled" => Notice::Cancelled,
            "notifications/progress" => Notice::Progress,
            "notifications/roots/list_changed" => Notice::RootsListChanged,
            other => Notice::Other(other),
        }
    }
}

/// The four list methods (each paginated, each merged on `/mcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub(crate) fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The result field holding the items.
    pub(crate) fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// Tools and prompts are named `{server}__{name}`; resources keep their URIs.
    pub(crate) fn prefixes_names(self) -> bool {
        matches!(self, ListKind::Tools | ListKind::Prompts)
    }
}

/// The cached lists a list change makes stale.
pub(crate) fn lists_of(method: &str) -> &'static [&'static str] {
    match method {
        "notifications/tools/list_changed" => &["tools/list"],
        "notifications/prompts/list_changed" => &["prompts/list"],
        "notifications/resources/list_changed" => &["resources/list", "resources/templates/list"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_parses_back_to_its_name() {
        let names = [
            "initialize",
            "ping",
            "tools/list",
            "prompts/list",
            "resources/list",
            "resources/templates/list",
            "tools/call",
            "prompts/get",
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
            "completion/complete",
            "logging/setLevel",
            "server/discover",
            "tasks/get",
        ];
        for name in names {
            assert_eq!(Method::parse(name).name(), name);
        }
        assert_eq!(Method::parse("tasks/get"), Method::Other("tasks/get"));
        assert_eq!(Method::parse("Tools/List"), Method::Other("Tools/List"));
        assert_eq!(
            Method::parse("resources/templates/list"),
            Method::List(ListKind::ResourceTemplates)
        );
        assert_eq!(Notice::parse("notifications/cancelled"), Notice::Cancelled);
        assert_eq!(
            Notice::parse("notifications/x"),
            Notice::Other("notifications/x")
        );
    }
}
