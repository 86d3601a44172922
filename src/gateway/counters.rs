//! Enforcing rate limits and quotas on a `tools/call` (and on the agent
//! API's model calls): every counter the policy's limits name for this
//! caller, server and tool (or model) must allow it; if one does not, the
//! call ends with 429, `Retry-After` and the name of the first limit (in
//! policy order) that refused. A token counter lets a model call through
//! while it is not past its quota and is charged the call's tokens after.
//!
//! Counters live in homes, one per subject ([`crate::ports::Limiter`]):
//! all the limits a call has on one principal, team, server or tool are
//! checked together, in one round trip that takes from all or from none,
//! and the homes are all asked at once. On Workers a home is a Durable
//! Object, so a call waits for one round trip whatever the number of
//! limits (issue 14); with limits on one subject it makes one. A refused
//! call must not consume the other homes' counters (otherwise a caller
//! refused by their own limit would still drain their team's, and one noisy
//! caller could exhaust a shared quota), so what they took for it is
//! released ([`gcra::release`]) before the 429 is sent. Until then a shared
//! counter holds those units for one round trip: a concurrent caller may
//! see them taken, never more than the refused call's one unit per counter.
//!
//! A counter that refused is remembered in the isolate until its
//! `Retry-After` ([`Refusals`]): calls it would refuse meanwhile are refused
//! here, without a round trip, so a caller hammering at their own limit
//! costs the counters nothing and holds no unit of a shared one. (The
//! counter could only let a call through earlier if units were given back
//! meanwhile; then this isolate refuses a little longer than it had to.)

use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::governance::gcra::Decision;
use crate::governance::limits::{self, Counter};
use crate::observe::audit::{self, Audit};
use crate::observe::collect::note_here;
use crate::ports::{Clock, Limiter, Platform, PortError, Take};
use futures_util::future::join_all;
use std::cell::RefCell;
use std::collections::HashMap;
use tracing::Instrument;

/// What one call consumes from each counter.
const COST: u64 = 1;
/// Refusals remembered at most; past it, the ended ones go, then all.
const MAX_REFUSALS: usize = 1024;

/// Counters that refused, until when (ms), in this isolate.
#[derive(Default)]
pub(crate) struct Refusals(RefCell<HashMap<String, u64>>);

impl Refusals {
    /// The counter and quota together: a policy that changes a limit's
    /// numbers starts afresh.
    fn key(counter: &Counter) -> String {
        format!("{}|{:?}", counter.key, counter.quota)
    }

    fn until(&self, counter: &Counter, now: u64) -> Option<u64> {
        let until = *self.0.borrow().get(&Self::key(counter))?;
        (until > now).then_some(until)
    }

    fn note(&self, counter: &Counter, until: u64, now: u64) {
        let mut map = self.0.borrow_mut();
        if map.len() >= MAX_REFUSALS {
            map.retain(|_, u| *u > now);
            if map.len() >= MAX_REFUSALS {
                map.clear();
            }
        }
        map.insert(Self::key(counter), until);
    }
}

pub(crate) async fn check_call<P: Platform>(
    p: &P,
    (gate, refusals): (&Gate, &Refusals),
    server: &Server,
    tool: &str,
) -> Result<(), GatewayError> {
    let Some(policy) = &gate.policy else {
        return Ok(());
    };
    let counters = limits::counters(&policy.limits, &gate.principal, server, tool);
    enforce(p, (gate, refusals), &counters, (&server.id, tool)).await
}

/// The counters the agent API's call of model `name` must pass, checked
/// as a tool call's are (a token counter at cost 0: it lets the call
/// through while not past its quota); the counters to charge the call's
/// tokens to afterwards ([`charge_tokens`]).
pub(crate) async fn check_model_call<P: Platform>(
    p: &P,
    (gate, refusals): (&Gate, &Refusals),
    name: &str,
) -> Result<Vec<Counter>, GatewayError> {
    let Some(policy) = &gate.policy else {
        return Ok(Vec::new());
    };
    let counters = limits::model_counters(&policy.limits, &gate.principal, name);
    enforce(
        p,
        (gate, refusals),
        &counters,
        (&format!("models/{name}"), ""),
    )
    .await?;
    Ok(counters.into_iter().filter(|c| c.tokens).collect())
}

/// Charges a model call's `tokens` to its token counters. A charge that
/// fails is logged: the call was made, and usage still counts it.
pub(crate) async fn charge_tokens<P: Platform>(p: &P, counters: &[Counter], tokens: u64) {
    let now = p.clock().now_ms();
    let charged = counters.iter().map(|c| async move {
        let take = Take {
            cost: tokens,
            ..take(c)
        };
        if let Err(e) = p.limiter().charge(&c.home, &take, now).await {
            tracing::warn!(limit = %c.limit, "tokens not charged: {e}");
        }
    });
    join_all(charged).await;
}

/// What a call costs a counter when checked: one, or for a token counter
/// nothing yet (it is charged after the call).
fn cost(counter: &Counter) -> u64 {
    match counter.tokens {
        true => 0,
        false => COST,
    }
}

/// Every counter must allow the call (`target`: server and tool, as the
/// audit names them); see the module docs.
async fn enforce<P: Platform>(
    p: &P,
    (gate, refusals): (&Gate, &Refusals),
    counters: &[Counter],
    (server, tool): (&str, &str),
) -> Result<(), GatewayError> {
    if counters.is_empty() {
        return Ok(());
    }
    let now = p.clock().now_ms();
    if let Some((counter, until)) = counters
        .iter()
        .find_map(|c| refusals.until(c, now).map(|u| (c, u)))
    {
        let span = tracing::info_span!("rate_limit", "mcp_edge.limit" = %counter.limit);
        let _in = span.enter();
        note_here("mcp_edge.limit.decision", "deny".into());
        note_here("mcp_edge.limit.refused", counter.limit.as_str().into());
        note_here("mcp_edge.limit.remembered", "true".into());
        note_here("error.type", "rate_limited".into());
        return Err(refuse(gate, server, tool, counter, until - now));
    }
    let homes = homes(counters);
    let answers = join_all(homes.iter().map(|home| check(p, home, now))).await;
    // Each counter's decision (`None`: not asked, after a refusal in its
    // home), and the first refusal in policy order.
    let mut decided: Vec<Option<Result<Decision, PortError>>> = vec![None; counters.len()];
    for (home, answer) in homes.iter().zip(&answers) {
        for (n, &i) in home.members.iter().enumerate() {
            decided[i] = match answer {
                Ok(decisions) => decisions.get(n).copied().map(Ok),
                Err(e) => Some(Err(e.clone())),
            };
        }
    }
    for (decision, counter) in decided.iter().zip(counters) {
        if let Some(Ok(Decision::Deny { retry_after_ms })) = decision {
            refusals.note(counter, now.saturating_add(*retry_after_ms), now);
        }
    }
    let refusal = decided.iter().zip(counters).find_map(|(d, c)| match d {
        Some(Ok(Decision::Allow)) | None => None,
        Some(Ok(Decision::Deny { retry_after_ms })) => Some(Ok((c, *retry_after_ms))),
        Some(Err(e)) => Some(Err(e.clone())),
    });
    let Some(refusal) = refusal else {
        return Ok(());
    };
    // Give back what the homes that allowed took, then refuse (a home that
    // refused took nothing). A release that fails leaves one unit taken on
    // that counter: logged, the call is refused anyway.
    let allowed = homes.iter().zip(&answers).filter(|(_, a)| {
        a.as_ref()
            .is_ok_and(|d| d.iter().all(|d| *d == Decision::Allow))
    });
    let taken = allowed.flat_map(|(home, _)| {
        home.members
            .iter()
            .map(|&i| &counters[i])
            .filter(|c| cost(c) > 0)
            .map(|c| async move {
                if let Err(e) = p.limiter().release(&c.home, &take(c), now).await {
                    tracing::warn!(limit = %c.limit, "could not release a refused call's unit: {e}");
                }
            })
    });
    join_all(taken).await;
    let (counter, retry_after_ms) = refusal?;
    Err(refuse(gate, server, tool, counter, retry_after_ms))
}

/// The counters of one home, checked in one round trip.
struct Home<'c> {
    name: &'c str,
    /// Indexes into the call's counters, in policy order.
    members: Vec<usize>,
    counters: &'c [Counter],
}

/// The call's counters by home, in the order each home first appears.
fn homes(counters: &[Counter]) -> Vec<Home<'_>> {
    let mut homes: Vec<Home<'_>> = Vec::new();
    for (i, c) in counters.iter().enumerate() {
        match homes.iter_mut().find(|h| h.name == c.home) {
            Some(home) => home.members.push(i),
            None => homes.push(Home {
                name: &c.home,
                members: vec![i],
                counters,
            }),
        }
    }
    homes
}

/// What checking `counter` asks of the limiter.
fn take(counter: &Counter) -> Take<'_> {
    Take {
        key: &counter.key,
        quota: counter.quota,
        cost: cost(counter),
    }
}

/// The audit record and the error of a call `counter` refused.
fn refuse(
    gate: &Gate,
    server: &str,
    tool: &str,
    counter: &Counter,
    retry_after_ms: u64,
) -> GatewayError {
    audit::record(&Audit::Limited {
        limit: &counter.limit,
        subject: &gate.principal.subject,
        via: &gate.principal.via,
        server,
        tool,
        retry_after_ms,
    });
    GatewayError::RateLimited {
        limit: counter.limit.clone(),
        retry_after_ms,
    }
}

/// One home's round trip, in its own span: the limits it checks (joined by
/// commas), the decision, and on a refusal the limit that refused.
async fn check<P: Platform>(p: &P, home: &Home<'_>, now: u64) -> Result<Vec<Decision>, PortError> {
    let members = || home.members.iter().map(|&i| &home.counters[i]);
    let names: Vec<&str> = members().map(|c| c.limit.as_str()).collect();
    let span = tracing::info_span!("rate_limit", "mcp_edge.limit" = %names.join(","));
    let takes: Vec<Take<'_>> = members().map(take).collect();
    let checked = p.limiter().check_together(home.name, &takes, now);
    let decisions = checked.instrument(span.clone()).await.and_then(|d| {
        // Answers may stop at a refusal; short of one, every counter must
        // have answered (fail closed: an unasked counter allows nothing).
        match d.len() == takes.len() || d.iter().any(|d| *d != Decision::Allow) {
            true => Ok(d),
            false => Err(PortError(format!(
                "rate limiter: {} answers for {} counters",
                d.len(),
                takes.len()
            ))),
        }
    });
    let _in = span.enter();
    match &decisions {
        Ok(d) => match d.iter().position(|d| *d != Decision::Allow) {
            None => note_here("mcp_edge.limit.decision", "allow".into()),
            Some(refused) => {
                note_here("mcp_edge.limit.decision", "deny".into());
                let name = names.get(refused).copied().unwrap_or_default();
                note_here("mcp_edge.limit.refused", name.into());
                note_here("error.type", "rate_limited".into());
            }
        },
        Err(_) => note_here("error.type", "unavailable".into()),
    }
    decisions
}
