//! What a client asks to hear on a listen stream, and how much of it a
//! server can deliver (`SubscriptionsListenRequest.params.notifications`
//! in `schema/2026-07-28/schema.ts`).

use crate::error::GatewayError;
use crate::protocol::jsonrpc::Request;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most resource URIs one listen may name: each costs a
/// `resources/subscribe` per legacy upstream and a comparison per update.
pub(crate) const MAX_URIS: usize = 100;

/// What a client asks to hear (`SubscriptionsListenRequest.params
/// .notifications` in `schema/2026-07-28/schema.ts`); every field is
/// optional, an absent one is not asked for.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Filter {
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) tools_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) prompts_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) resources_list_changed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) resource_subscriptions: Option<Vec<String>>,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl Filter {
    /// The request's filter; a field of the wrong type is invalid params.
    pub(crate) fn of(req: &Request) -> Result<Filter, GatewayError> {
        #[derive(Deserialize)]
        struct Params {
            #[serde(default)]
            notifications: Filter,
        }
        let params: Params = req.params_as()?;
        let mut filter = params.notifications;
        if let Some(uris) = &mut filter.resource_subscriptions {
            let mut seen = std::collections::HashSet::new();
            uris.retain(|u| seen.insert(u.clone()));
            if uris.len() > MAX_URIS {
                return Err(GatewayError::InvalidParams(format!(
                    "notifications.resourceSubscriptions names {} URIs; at most {MAX_URIS}",
                    uris.len()
                )));
            }
        }
        Ok(filter)
    }

    /// What of this filter a server with `capabilities` can deliver.
    pub(crate) fn honored_by(&self, capabilities: &Value) -> Filter {
        let declares = |feature: &str, flag: &str| {
            capabilities
                .pointer(&format!("/{feature}/{flag}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Filter {
            tools_list_changed: self.tools_list_changed && declares("tools", "listChanged"),
            prompts_list_changed: self.prompts_list_changed && declares("prompts", "listChanged"),
            resources_list_changed: self.resources_list_changed
                && declares("resources", "listChanged"),
            resource_subscriptions: self
                .resource_subscriptions
                .clone()
                .filter(|uris| !uris.is_empty() && declares("resources", "subscribe")),
        }
    }

    /// What both filters ask for.
    pub(super) fn within(&self, other: &Filter) -> Filter {
        let uris = match (&self.resource_subscriptions, &other.resource_subscriptions) {
            (Some(mine), Some(theirs)) => {
                let theirs: std::collections::HashSet<&String> = theirs.iter().collect();
                Some(
                    mine.iter()
                        .filter(|u| theirs.contains(u))
                        .cloned()
                        .collect::<Vec<_>>(),
                )
            }
            _ => None,
        };
        Filter {
            tools_list_changed: self.tools_list_changed && other.tools_list_changed,
            prompts_list_changed: self.prompts_list_changed && other.prompts_list_changed,
            resources_list_changed: self.resources_list_changed && other.resources_list_changed,
            resource_subscriptions: uris.filter(|u| !u.is_empty()),
        }
    }

    /// Everything either filter asks for.
    pub(super) fn union(mut self, other: &Filter) -> Filter {
        self.tools_list_changed |= other.tools_list_changed;
        self.prompts_list_changed |= other.prompts_list_changed;
        self.resources_list_changed |= other.resources_list_changed;
        if let Some(uris) = &other.resource_subscriptions {
            let mine = self.resource_subscriptions.get_or_insert_with(Vec::new);
            for uri in uris {
                if !mine.contains(uri) {
                    mine.push(uri.clone());
                }
            }
        }
        self
    }

    /// Whether nothing is asked for.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a notification is one this filter asks for.
    pub(crate) fn admits(&self, method: &str, params: Option<&Value>) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools_list_changed,
            "notifications/prompts/list_changed" => self.prompts_list_changed,
            "notifications/resources/list_changed" => self.resources_list_changed,
            "notifications/resources/updated" => {
                let uri = params.and_then(|p| p.get("uri")).and_then(Value::as_str);
                match (&self.resource_subscriptions, uri) {
                    (Some(uris), Some(uri)) => uris.iter().any(|u| u == uri),
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// A filter as a client writes it (the relay's tests use it too).
    pub(in super::super) fn filter(v: Value) -> Filter {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_filter_is_honored_only_as_far_as_a_server_declares() {
        let asked = filter(json!({"toolsListChanged": true, "promptsListChanged": true,
            "resourceSubscriptions": ["file:///a"]}));
        let caps = json!({"tools": {"listChanged": true}, "prompts": {}, "resources": {"subscribe": true}});
        let honored = asked.honored_by(&caps);
        assert_eq!(
            serde_json::to_value(&honored).unwrap(),
            json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
        );
        assert!(asked.honored_by(&json!({"tools": {}})).is_empty());
        let both = honored.union(&filter(json!({"promptsListChanged": true,
            "resourceSubscriptions": ["file:///a", "file:///b"]})));
        assert_eq!(
            serde_json::to_value(&both).unwrap(),
            json!({"toolsListChanged": true, "promptsListChanged": true,
                "resourceSubscriptions": ["file:///a", "file:///b"]})
        );
    }
}
