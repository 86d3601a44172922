//! `GET /admin/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&by=team|principal|server|tool`:
//! the usage counters (calls, errors, upstream time; `observe::usage`)
//! summed per team, principal, server or tool over whole UTC days.
//!
//! `from` and `to` default to today and span at most [`MAX_DAYS`] days;
//! `by` defaults to `server`. A call by a member of several teams counts
//! for each of them under `by=team` (`(none)`: callers without a team).
//! Rows come most calls first.

use super::{answer, Ctx};
use crate::body::Body;
use crate::error::GatewayError;
use crate::ports::{Clock, Platform, Usage, UsageCount};
use chrono::NaiveDate;
use http::{Response, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;

/// The longest span one request reads (one read per day).
pub(crate) const MAX_DAYS: i64 = 31;

/// What rows are summed by.
#[derive(Clone, Copy)]
enum By {
    Team,
    Principal,
    Server,
    Tool,
}

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    pub(super) async fn usage(&self, query: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let bad = |why: String| GatewayError::InvalidRequest(format!("usage: {why}"));
        let mut from = None;
        let mut to = None;
        let mut by = By::Server;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let day = || {
                NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map_err(|_| bad(format!("{name} must be a day, YYYY-MM-DD (got '{value}')")))
            };
            match name {
                "from" => from = Some(day()?),
                "to" => to = Some(day()?),
                "by" => {
                    by = match value {
                        "team" => By::Team,
                        "principal" => By::Principal,
                        "server" => By::Server,
                        "tool" => By::Tool,
                        _ => {
                            return Err(bad(format!(
                                "by is team, principal, server or tool (got '{value}')"
                            )))
                        }
                    }
                }
                _ => return Err(bad(format!("unknown parameter '{name}' (from, to, by)"))),
            }
        }
        let now_secs = (self.p.clock().now_ms() / 1000) as i64;
        let today = chrono::DateTime::from_timestamp(now_secs, 0)
            .map(|t| t.date_naive())
            .ok_or_else(|| GatewayError::Internal("the clock is out of range".into()))?;
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to);
        let span = (to - from).num_days() + 1;
        if span < 1 {
            return Err(bad("from is after to".into()));
        }
        if span > MAX_DAYS {
            return Err(bad(format!(
                "at most {MAX_DAYS} days at once (asked {span})"
            )));
        }
        let days: Vec<String> = from
            .iter_days()
            .take(span as usize)
            .map(|d| d.to_string())
            .collect();
        let read = futures_util::future::join_all(days.iter().map(|d| self.p.usage().day(d))).await;
        let mut sums: BTreeMap<String, UsageCount> = BTreeMap::new();
        for rows in read {
            for (key, count) in rows? {
                let names: Vec<String> = match by {
                    By::Team if key.team.is_empty() => vec!["(none)".into()],
                    By::Team => key.team.split(',').map(str::to_string).collect(),
                    By::Principal => vec![key.principal],
                    By::Server => vec![key.server],
                    // A model's row (`models/{name}`) names no tool.
                    By::Tool if key.tool.is_empty() => vec![key.server],
                    By::Tool => vec![crate::protocol::names::qualify(&key.server, &key.tool)],
                };
                for name in names {
                    sums.entry(name).or_default().add(&count);
                }
            }
        }
        let mut rows: Vec<(String, UsageCount)> = sums.into_iter().collect();
        rows.sort_by(|a, b| b.1.calls.cmp(&a.1.calls).then_with(|| a.0.cmp(&b.0)));
        let rows: Vec<serde_json::Value> = rows
            .into_iter()
            .map(|(name, c)| {
                let mut row = json!({"key": name, "calls": c.calls, "errors": c.errors, "upstream_ms": c.upstream_ms});
                // Model rows (`models/{name}`) carry their tokens.
                if c.input_tokens + c.output_tokens > 0 {
                    row["input_tokens"] = c.input_tokens.into();
                    row["output_tokens"] = c.output_tokens.into();
                }
                row
            })
            .collect();
        let by = match by {
            By::Team => "team",
            By::Principal => "principal",
            By::Server => "server",
            By::Tool => "tool",
        };
        let body = json!({"from": from.to_string(), "to": to.to_string(), "by": by, "rows": rows});
        Ok(answer(StatusCode::OK, body, None))
    }
}
