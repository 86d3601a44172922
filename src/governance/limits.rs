//! Rate limits and quotas from the policy document, and which counters a
//! `tools/call` or a model call of the agent API touches.
//!
//! A limit counts per principal, per team, per server or per tool, as
//! requests per window (GCRA) or as a daily quota (reset at midnight UTC),
//! optionally only for some servers and tools. A limit naming `models`
//! counts the agent API's calls of those models instead (per principal or
//! team), in calls or, with `"unit": "tokens"`, in the tokens the provider
//! reports (charged after each call: [`crate::governance::gcra::charge`]).
//! Each distinct counter is its own key, kept in the home of what it counts
//! by (one Durable Object per principal, team, server or tool on Workers),
//! so no counter is global.

use super::gcra::{Quota, Rate};
use crate::config::glob::Globs;
use crate::config::Server;
use crate::identity::Principal;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitSpec {
    /// What it is for, for people reading the document (not evaluated).
    #[serde(default, rename = "description")]
    pub _description: Option<String>,
    pub name: String,
    pub per: Per,
    /// Requests allowed per window (with `window_secs`).
    pub requests: Option<u64>,
    pub window_secs: Option<u64>,
    /// Requests allowed per UTC day.
    pub daily: Option<u64>,
    /// Only calls to these servers (globs); empty: all.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Only calls of these tools (globs, as the server names them); empty: all.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Only the agent API's calls of these models (globs): a limit naming
    /// models counts no tool call.
    #[serde(default)]
    pub models: Vec<String>,
    /// What a model limit counts: calls (the default) or tokens.
    #[serde(default)]
    pub unit: Unit,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Each call is one.
    #[default]
    Calls,
    /// A model call's prompt and completion tokens, as its provider reports
    /// them (model limits only).
    Tokens,
}

/// What a limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Principal,
    Team,
    Server,
    Tool,
}

/// A checked limit.
#[derive(Debug, Clone)]
pub struct Limit {
    pub name: String,
    pub per: Per,
    pub quota: Quota,
    servers: Globs,
    tools: Globs,
    /// Some: a limit of model calls, which counts no tool call.
    models: Option<Globs>,
    unit: Unit,
}

/// Limit names the gateway's own counters use as key prefixes.
const RESERVED: [&str; 2] = ["sessions", "approval-waits"];

/// Refuses two limits of one name: they would count in one key, and a 429
/// could not say which refused.
pub(crate) fn check_unique(limits: &[Limit]) -> Result<(), String> {
    for (i, l) in limits.iter().enumerate() {
        if limits[..i].iter().any(|o| o.name == l.name) {
            return Err(format!("limit '{}': two limits have this name", l.name));
        }
    }
    Ok(())
}

/// One counter a call must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// The limit's name (what a 429 names).
    pub limit: String,
    /// The storage key: limit name plus what it counts by.
    pub key: String,
    /// What it counts by (`principal`'s key, `team:{t}`, `server:{s}`,
    /// `tool:{s}:{t}`): counters of one home are checked in one round trip
    /// ([`crate::ports::Limiter::check_together`]).
    pub home: String,
    pub quota: Quota,
    /// Counts tokens: checked at cost 0 before the call, charged after it.
    pub tokens: bool,
}

impl Limit {
    pub(crate) fn from_spec(spec: LimitSpec) -> Result<Limit, String> {
        let name = spec.name;
        if name.is_empty() || name.contains(['/', ' ']) {
            return Err(format!(
                "limit '{name}': name must be non-empty, without '/' or spaces"
            ));
        }
        // The gateway's own counters' keys start so (`sessions/{owner}`,
        // `approval-waits/{caller}`): a limit of that name would share them.
        if RESERVED.contains(&name.as_str()) {
            return Err(format!(
                "limit '{name}': the name is reserved for the gateway's own counters"
            ));
        }
        let quota = match (spec.requests, spec.window_secs, spec.daily) {
            (Some(n), Some(w), None) if n > 0 && w > 0 => Quota::Rate(Rate {
                limit: n,
                window_ms: w * 1000,
            }),
            (None, None, Some(d)) if d > 0 => Quota::Daily(d),
            _ => {
                return Err(format!(
                    "limit '{name}': give either requests and window_secs (both > 0) or daily (> 0)"
                ))
            }
        };
        let globs =
            |list: &[String], what: &str| Globs::parse(list, &format!("limit '{name}': {what}"));
        let models = match spec.models.is_empty() {
            true => None,
            false => Some(globs(&spec.models, "models")?),
        };
        let bad = |why: &str| Err(format!("limit '{name}': {why}"));
        match (&models, spec.unit, spec.per) {
            (None, Unit::Tokens, _) => return bad("unit tokens counts model calls: name models"),
            (Some(_), _, Per::Server | Per::Tool) => {
                return bad("a limit of model calls counts per principal or per team")
            }
            (Some(_), _, _) if !(spec.servers.is_empty() && spec.tools.is_empty()) => {
                return bad(
                    "a limit counts either model calls (models) or tool calls (servers, tools)",
                )
            }
            _ => {}
        }
        Ok(Limit {
            models,
            unit: spec.unit,
            servers: globs(&spec.servers, "servers")?,
            tools: globs(&spec.tools, "tools")?,
            name: name.clone(),
            per: spec.per,
            quota,
        })
    }

    fn covers(&self, server: &Server, tool: &str) -> bool {
        self.models.is_none() && self.servers.allows(&server.id) && self.tools.allows(tool)
    }
}

/// The counters a call of `tool` on `server` by `who` must pass.
pub fn counters(limits: &[Limit], who: &Principal, server: &Server, tool: &str) -> Vec<Counter> {
    let covering = limits.iter().filter(|l| l.covers(server, tool));
    counters_of(covering, who, Some((server, tool)))
}

/// The counters a call of model `name` by `who` must pass.
pub fn model_counters(limits: &[Limit], who: &Principal, name: &str) -> Vec<Counter> {
    let covering = limits
        .iter()
        .filter(|l| l.models.as_ref().is_some_and(|m| m.lists(name)));
    counters_of(covering, who, None)
}

fn counters_of<'l>(
    limits: impl Iterator<Item = &'l Limit>,
    who: &Principal,
    call: Option<(&Server, &str)>,
) -> Vec<Counter> {
    let mut out = Vec::new();
    for l in limits {
        let mut push = |by: String| {
            out.push(Counter {
                limit: l.name.clone(),
                key: format!("{}/{by}", l.name),
                home: by,
                quota: l.quota,
                tokens: l.unit == Unit::Tokens,
            })
        };
        match l.per {
            Per::Principal => push(who.key()),
            // A caller in no team is not exempt: team-less callers share
            // one bucket, as if "no team" were a team, so a `per: team`
            // quota bounds them together (a key no team name can produce).
            Per::Team if who.teams.is_empty() => push("no-team".to_string()),
            Per::Team => who.teams.iter().for_each(|t| push(format!("team:{t}"))),
            // Model limits are never per server or tool (refused at parse).
            Per::Server => {
                if let Some((server, _)) = call {
                    push(format!("server:{}", server.id))
                }
            }
            Per::Tool => {
                if let Some((server, tool)) = call {
                    push(format!("tool:{}:{tool}", server.id))
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(json: &str) -> Result<Limit, String> {
        Limit::from_spec(serde_json::from_str(json).map_err(|e| e.to_string())?)
    }

    #[test]
    fn reserved_and_repeated_names_are_refused() {
        for name in RESERVED {
            let e = limit(&format!(
                r#"{{"name":"{name}","per":"principal","daily":1}}"#
            ));
            assert!(e.unwrap_err().contains("reserved"));
        }
        let two = [
            limit(r#"{"name":"a","per":"principal","daily":1}"#).unwrap(),
            limit(r#"{"name":"a","per":"team","requests":1,"window_secs":1}"#).unwrap(),
        ];
        assert!(check_unique(&two).unwrap_err().contains("two limits"));
        assert!(check_unique(&two[..1]).is_ok());
    }

    #[test]
    fn parses_rates_and_quotas() {
        let l = limit(
            r#"{"name":"burst","per":"tool","requests":5,"window_secs":60,"tools":["echo"]}"#,
        )
        .unwrap();
        assert_eq!(
            l.quota,
            Quota::Rate(Rate {
                limit: 5,
                window_ms: 60_000
            })
        );
        assert_eq!(
            limit(r#"{"name":"d","per":"team","daily":100}"#)
                .unwrap()
                .quota,
            Quota::Daily(100)
        );
        for bad in [
            r#"{"name":"x","per":"tool","requests":5}"#,
            r#"{"name":"x","per":"tool","requests":5,"window_secs":60,"daily":3}"#,
            r#"{"name":"x","per":"tool","daily":0}"#,
            r#"{"name":"a b","per":"tool","daily":1}"#,
            r#"{"name":"x","per":"galaxy","daily":1}"#,
        ] {
            assert!(limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn model_limits_count_model_calls_only() {
        let server =
            Server::parse("s", r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#).unwrap();
        let p = Principal {
            subject: "alice".into(),
            teams: vec!["eng".into()],
            roles: vec![],
            scopes: vec![],
            via: "apikey".into(),
            client: None,
        };
        let limits: Vec<Limit> = [
            r#"{"name":"calls","per":"principal","requests":5,"window_secs":60,"models":["gpt-*"]}"#,
            r#"{"name":"tok","per":"team","daily":1000,"models":["*"],"unit":"tokens"}"#,
            r#"{"name":"tools","per":"principal","daily":9}"#,
        ]
        .iter()
        .map(|j| limit(j).unwrap())
        .collect();
        let of = |c: Vec<Counter>| c.into_iter().map(|c| (c.key, c.tokens)).collect::<Vec<_>>();
        assert_eq!(
            of(model_counters(&limits, &p, "gpt-4")),
            [
                ("calls/apikey|alice".to_string(), false),
                ("tok/team:eng".to_string(), true)
            ]
        );
        assert_eq!(
            of(model_counters(&limits, &p, "claude")),
            [("tok/team:eng".to_string(), true)]
        );
        assert_eq!(
            of(counters(&limits, &p, &server, "echo")),
            [("tools/apikey|alice".to_string(), false)]
        );
        for bad in [
            r#"{"name":"x","per":"principal","daily":1,"unit":"tokens"}"#,
            r#"{"name":"x","per":"tool","daily":1,"models":["m"]}"#,
            r#"{"name":"x","per":"team","daily":1,"models":["m"],"servers":["s"]}"#,
        ] {
            assert!(limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_kind_counts_by_its_own_key() {
        let server = Server::parse(
            "notes",
            r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#,
        )
        .unwrap();
        let p = Principal {
            subject: "alice".into(),
            teams: vec!["eng".into(), "ops".into()],
            roles: vec![],
            scopes: vec![],
            via: "apikey".into(),
            client: None,
        };
        let limits: Vec<Limit> = [
            r#"{"name":"user","per":"principal","requests":10,"window_secs":1}"#,
            r#"{"name":"team","per":"team","daily":100}"#,
            r#"{"name":"srv","per":"server","requests":10,"window_secs":1}"#,
            r#"{"name":"echo","per":"tool","requests":10,"window_secs":1,"tools":["echo"]}"#,
            r#"{"name":"other","per":"server","daily":1,"servers":["db"]}"#,
        ]
        .iter()
        .map(|j| limit(j).unwrap())
        .collect();
        let keys: Vec<String> = counters(&limits, &p, &server, "echo")
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(
            keys,
            [
                "user/apikey|alice",
                "team/team:eng",
                "team/team:ops",
                "srv/server:notes",
                "echo/tool:notes:echo"
            ]
        );
        assert_eq!(
            counters(&limits, &p, &server, "add").len(),
            4,
            "the echo limit covers echo only"
        );
        let loner = Principal {
            teams: vec![],
            ..p.clone()
        };
        let keys: Vec<String> = counters(&limits, &loner, &server, "add")
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert!(
            keys.contains(&"team/no-team".to_string()),
            "a caller without teams still passes the team limit: {keys:?}"
        );
    }
}
