//! The policy document as the gateway serves it: read from KV, parsed as a
//! whole, kept in isolate memory for a short TTL. A document that does not
//! parse is rejected with an error in the log and the last good policy stays
//! in force; no document at all means governance is off.
//!
//! Fail closed: when KV cannot be read and this instance has never read the
//! policy (a fresh Workers isolate, every Spin request), the request is
//! refused with 503. "Could not read the policy" never means "no policy".

use crate::cache::KeepLastGood;
use crate::error::GatewayError;
use crate::governance::policy::{Policy, POLICY_KEY};
use crate::ports::{Clock, Kv, Platform};
use std::rc::Rc;

pub(crate) struct PolicyStore(KeepLastGood<Loaded>);

/// The policy in force and the text it came from (`None`: no document).
struct Loaded {
    policy: Option<Rc<Policy>>,
    text: Option<String>,
}

impl PolicyStore {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        PolicyStore(KeepLastGood::new("the access policy", ttl_ms))
    }

    /// Marks the policy stale so the next request rereads it.
    pub(crate) fn invalidate(&self) {
        self.0.invalidate();
    }

    /// The policy in force (`Ok(None)`: no document, governance off), or
    /// 503 when it cannot be read and none was ever read here.
    pub(crate) async fn get<P: Platform>(&self, p: &P) -> Result<Option<Rc<Policy>>, GatewayError> {
        let loaded = self
            .0
            .get(p.clock().now_ms(), |previous| async move {
                let text = p.kv().get(POLICY_KEY).await?;
                // Re-parse only when the document changed.
                if let Some(previous) = previous.as_ref().filter(|l| l.text == text) {
                    return Ok(previous.clone());
                }
                let policy = match &text {
                    None => None,
                    Some(doc) => match Policy::parse(doc) {
                        Ok(policy) => Some(Rc::new(policy)),
                        Err(e) => {
                            tracing::error!(
                                "policy document rejected, the previous policy stays in force: {e}"
                            );
                            // Keep the last good policy; if there never was
                            // one, refuse everything rather than open it all.
                            Some(previous.and_then(|l| l.policy.clone()).unwrap_or_default())
                        }
                    },
                };
                Ok::<_, crate::ports::PortError>(Rc::new(Loaded { policy, text }))
            })
            .await?;
        Ok(loaded.policy.clone())
    }
}
