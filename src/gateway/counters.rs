//! Enforcing rate limits and quotas on a `tools/call`: every counter the
//! policy's limits name for this caller, server and tool must allow it; the
//! first that does not ends the call with 429, `Retry-After` and the limit's
//! name. Counters checked before a refusal stay consumed (a refused call
//! costs a little of the other limits, never more than one unit each).
//! The checks run one after another on purpose: checked at once, a caller
//! refused by their own limit would still drain their team's, so one noisy
//! caller could exhaust a shared quota. On Workers each check is a Durable
//! Object round trip, so every limit that covers a call adds one.

use crate::config::Server;
use crate::error::GatewayError;
use crate::governance::gate::Gate;
use crate::governance::gcra::Decision;
use crate::governance::limits;
use crate::observe::audit::{self, Audit};
use crate::observe::collect::note_here;
use crate::ports::{Clock, Limiter, Platform};

pub(crate) async fn check_call<P: Platform>(
    p: &P,
    gate: &Gate,
    server: &Server,
    tool: &str,
) -> Result<(), GatewayError> {
    let Some(policy) = &gate.policy else {
        return Ok(());
    };
    let counters = limits::counters(&policy.limits, &gate.principal, server, tool);
    if counters.is_empty() {
        return Ok(());
    }
    let now = p.clock().now_ms();
    for counter in counters {
        // One span per limit checked: each is a round trip on Workers.
        let span = tracing::info_span!("rate_limit", "mcp_edge.limit" = %counter.limit);
        let checked = p.limiter().check(&counter.key, counter.quota, 1, now);
        let decision = tracing::Instrument::instrument(checked, span.clone()).await?;
        let _in = span.enter();
        match decision {
            Decision::Allow => note_here("mcp_edge.limit.decision", "allow".into()),
            Decision::Deny { retry_after_ms } => {
                note_here("mcp_edge.limit.decision", "deny".into());
                note_here("error.type", "rate_limited".into());
                audit::record(&Audit::Limited {
                    limit: &counter.limit,
                    subject: &gate.principal.subject,
                    via: &gate.principal.via,
                    server: &server.id,
                    tool,
                    retry_after_ms,
                });
                return Err(GatewayError::RateLimited {
                    limit: counter.limit,
                    retry_after_ms,
                });
            }
        }
    }
    Ok(())
}
