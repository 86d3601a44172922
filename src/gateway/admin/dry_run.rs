//! `POST /admin/policy/dry-run`: what a candidate policy would change,
//! before it is stored. The body is the candidate; the answer lists, for
//! each principal and each team that would gain or lose access, the tools
//! (`{server}__{tool}` as on `/mcp`; a whole server where its tools could
//! not be listed), and for each tool who gains and loses it.
//!
//! Which principals: the gateway keeps no directory of its callers, so it
//! weighs those it knows of: every API key's principal (revoked ones left
//! out) and every principal with usage in the last [`USAGE_DAYS`] days
//! (their teams as recorded; a token's roles are not recorded, so a rule
//! naming only roles shows for API keys alone). Each team met stands for
//! a member with that team alone. Tools are the registry's, as the admin's
//! own tool catalog lists them.

use super::kinds::Kind;
use super::{answer, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::governance::policy::Policy;
use crate::identity::config::{ApiKeyRecord, APIKEY_PREFIX};
use crate::identity::Principal;
use crate::ports::{load_prefix, Clock, Platform, Usage};
use crate::protocol::names;
use http::{Response, StatusCode};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// How far back usage names principals.
const USAGE_DAYS: u64 = 7;

/// What one principal or team may reach, tool by tool.
type Reach = BTreeSet<String>;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    pub(super) async fn dry_run(&self, body: &[u8]) -> Result<Response<Body>, GatewayError> {
        let text = std::str::from_utf8(body).unwrap_or_default();
        let candidate = Rc::new(
            Policy::parse(&Kind::Policy.check(None, text)?).expect("checked by the same parser"),
        );
        let current = self.gw.policy.get(self.p).await?;
        let registry = self.gw.registry.get(self.p).await?;
        let servers: Vec<&Server> = registry.servers.iter().map(|s| &**s).collect();
        let tools = self.all_tools(&servers).await?;
        let mut subjects = self.known_principals().await?;
        let teams: BTreeSet<String> = subjects.values().flat_map(|p| p.teams.clone()).collect();
        let reach = |principal: &Principal, policy: Option<Rc<Policy>>| {
            let gate = Gate {
                principal: principal.clone(),
                policy,
            };
            reachable(&gate, &servers, &tools)
        };
        let considered = subjects.len();
        let mut principals = Vec::new();
        let mut by_tool: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (key, principal) in std::mem::take(&mut subjects) {
            let (gains, loses) = diff(
                &reach(&principal, current.clone()),
                &reach(&principal, Some(candidate.clone())),
            );
            for t in &gains {
                by_tool.entry(t.clone()).or_default().0.push(key.clone());
            }
            for t in &loses {
                by_tool.entry(t.clone()).or_default().1.push(key.clone());
            }
            if !gains.is_empty() || !loses.is_empty() {
                principals.push(json!({"principal": key, "teams": principal.teams, "gains": gains, "loses": loses}));
            }
        }
        let mut team_changes = Vec::new();
        for team in &teams {
            let member = Principal {
                subject: format!("(a member of {team})"),
                teams: vec![team.clone()],
                roles: Vec::new(),
                scopes: Vec::new(),
                via: "team".into(),
                client: None,
            };
            let (gains, loses) = diff(
                &reach(&member, current.clone()),
                &reach(&member, Some(candidate.clone())),
            );
            if !gains.is_empty() || !loses.is_empty() {
                team_changes.push(json!({"team": team, "gains": gains, "loses": loses}));
            }
        }
        let tool_changes: Vec<serde_json::Value> = by_tool
            .into_iter()
            .map(|(tool, (gained, lost))| json!({"tool": tool, "gained_by": gained, "lost_by": lost}))
            .collect();
        let unlisted: Vec<&str> = servers
            .iter()
            .zip(&tools)
            .filter(|(_, t)| t.is_none())
            .map(|(s, _)| s.id.as_str())
            .collect();
        let body = json!({
            "principals": principals,
            "teams": team_changes,
            "tools": tool_changes,
            "considered": {
                "principals": considered,
                "teams": teams.len(),
                "servers": servers.len(),
                "unlisted_servers": unlisted,
            },
        });
        Ok(answer(StatusCode::OK, body, None))
    }

    /// Each server's tool names (`None`: it could not be listed).
    async fn all_tools(
        &self,
        servers: &[&Server],
    ) -> Result<Vec<Option<Vec<String>>>, GatewayError> {
        Ok(self
            .tool_listings(servers)
            .await?
            .into_iter()
            .map(|l| match l {
                Ok(Some(entry)) => Some(entry.tools().map(|t| t.name().to_string()).collect()),
                _ => None,
            })
            .collect())
    }

    /// The principals the gateway knows of, by key (`via|subject`).
    async fn known_principals(&self) -> Result<BTreeMap<String, Principal>, GatewayError> {
        let mut known = BTreeMap::new();
        for (_, text) in load_prefix(self.p.kv(), APIKEY_PREFIX).await? {
            if let Ok(record) = serde_json::from_str::<ApiKeyRecord>(&text) {
                if !record.revoked {
                    let principal = record.principal();
                    known.insert(principal.key(), principal);
                }
            }
        }
        let now_ms = self.p.clock().now_ms();
        for back in 0..USAGE_DAYS {
            let at = now_ms.saturating_sub(back * 86_400_000);
            let Some(day) = crate::observe::usage::day_of(at.saturating_mul(1_000_000)) else {
                continue;
            };
            for (row, _) in self.p.usage().day(&day).await? {
                let Some((via, subject)) = row.principal.split_once('|') else {
                    continue;
                };
                known
                    .entry(row.principal.clone())
                    .or_insert_with(|| Principal {
                        subject: subject.to_string(),
                        teams: row
                            .team
                            .split(',')
                            .filter(|t| !t.is_empty())
                            .map(str::to_string)
                            .collect(),
                        roles: Vec::new(),
                        scopes: Vec::new(),
                        via: via.to_string(),
                        client: None,
                    });
            }
        }
        Ok(known)
    }
}

/// Which tools (or whole unlisted servers) `gate` lets through.
fn reachable(gate: &Gate, servers: &[&Server], tools: &[Option<Vec<String>>]) -> Reach {
    let mut reach = Reach::new();
    for (server, listed) in servers.iter().zip(tools) {
        if !gate.server(server) {
            continue;
        }
        match listed {
            Some(tools) => reach.extend(
                tools
                    .iter()
                    .filter(|t| gate.tool(server, t))
                    .map(|t| names::qualify(&server.id, t)),
            ),
            None => {
                reach.insert(format!("{} (whole server)", server.id));
            }
        }
    }
    reach
}

/// What `after` has that `before` lacks, and the reverse.
fn diff(before: &Reach, after: &Reach) -> (Vec<String>, Vec<String>) {
    (
        after.difference(before).cloned().collect(),
        before.difference(after).cloned().collect(),
    )
}
