//! The policy document as the gateway serves it: read from KV, parsed as a
//! whole, kept in isolate memory for a short TTL. A document that does not
//! parse is rejected with an error in the log and the last good policy stays
//! in force; no document at all means governance is off.
//!
//! Fail closed: when KV cannot be read and this instance has never read the
//! policy (a fresh Workers isolate, every Spin request), the request is
//! refused with 503. "Could not read the policy" never means "no policy".

use super::policy::{Policy, POLICY_KEY};
use crate::error::GatewayError;
use crate::ports::{Clock, Kv, Platform};
use std::cell::RefCell;
use std::rc::Rc;

pub struct PolicyStore {
    ttl_ms: u64,
    slot: RefCell<Option<Loaded>>,
}

/// The policy in force, when it was last checked, and the text it came from.
#[derive(Clone)]
struct Loaded {
    policy: Option<Rc<Policy>>,
    checked_ms: u64,
    text: Option<String>,
}

impl PolicyStore {
    pub fn new(ttl_ms: u64) -> Self {
        PolicyStore {
            ttl_ms,
            slot: RefCell::new(None),
        }
    }

    pub fn invalidate(&self) {
        if let Some(loaded) = self.slot.borrow_mut().as_mut() {
            loaded.checked_ms = 0;
        }
    }

    /// The policy in force (`Ok(None)`: no document, governance off), or
    /// 503 when it cannot be read and none was ever read here.
    pub async fn get<P: Platform>(&self, p: &P) -> Result<Option<Rc<Policy>>, GatewayError> {
        let now = p.clock().now_ms();
        let cached = self.slot.borrow().clone();
        if let Some(l) = &cached {
            if l.checked_ms > 0 && now.saturating_sub(l.checked_ms) < self.ttl_ms {
                return Ok(l.policy.clone());
            }
        }
        let previous = cached.as_ref().and_then(|l| l.policy.clone());
        let raw = match p.kv().get(POLICY_KEY).await {
            Ok(raw) => raw,
            Err(e) => match cached {
                // What this instance last read stays in force until KV answers.
                Some(_) => {
                    tracing::warn!("policy reload failed, keeping the previous one: {e}");
                    return Ok(previous);
                }
                None => {
                    tracing::error!("policy could not be read; refusing the request: {e}");
                    return Err(GatewayError::Unavailable(format!(
                        "the access policy could not be loaded: {e}"
                    )));
                }
            },
        };
        // Re-parse only when the document changed.
        if let Some(l) = &cached {
            if l.text == raw {
                let policy = l.policy.clone();
                *self.slot.borrow_mut() = Some(Loaded {
                    policy: policy.clone(),
                    checked_ms: now,
                    text: raw,
                });
                return Ok(policy);
            }
        }
        let policy = match &raw {
            None => None,
            Some(text) => match Policy::parse(text) {
                Ok(policy) => Some(Rc::new(policy)),
                Err(e) => {
                    tracing::error!(
                        "policy document rejected, the previous policy stays in force: {e}"
                    );
                    // Keep the last good policy; if there never was one,
                    // refuse everything rather than open everything.
                    Some(previous.unwrap_or_default())
                }
            },
        };
        *self.slot.borrow_mut() = Some(Loaded {
            policy: policy.clone(),
            checked_ms: now,
            text: raw,
        });
        Ok(policy)
    }
}
