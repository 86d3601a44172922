//! The registry as the gateway serves it: loaded from KV, parsed, and kept in
//! isolate memory for a short TTL so a hot isolate reads KV once per TTL, not
//! once per request. If KV fails on refresh, the last good registry stays in
//! force (logged) rather than failing every request.

use crate::config::registry::{Registry, KEY_PREFIX};
use crate::error::GatewayError;
use crate::ports::{Clock, Kv, Platform, PortError};
use std::cell::RefCell;
use std::rc::Rc;

pub struct RegistryCache {
    ttl_ms: u64,
    slot: RefCell<Option<(Rc<Registry>, u64)>>,
}

impl RegistryCache {
    pub fn new(ttl_ms: u64) -> Self {
        RegistryCache {
            ttl_ms,
            slot: RefCell::new(None),
        }
    }

    /// The current registry, reloading it when older than the TTL.
    pub async fn get<P: Platform>(&self, p: &P) -> Result<Rc<Registry>, GatewayError> {
        let now = p.clock().now_ms();
        let cached = self.slot.borrow().clone();
        if let Some((reg, at)) = &cached {
            if now.saturating_sub(*at) < self.ttl_ms {
                return Ok(reg.clone());
            }
        }
        match load(p.kv()).await {
            Ok(reg) => {
                for problem in &reg.problems {
                    tracing::error!("registry entry skipped: {problem}");
                }
                let reg = Rc::new(reg);
                *self.slot.borrow_mut() = Some((reg.clone(), now));
                Ok(reg)
            }
            Err(e) => match cached {
                Some((reg, _)) => {
                    tracing::warn!("registry reload failed, serving the previous one: {e}");
                    Ok(reg)
                }
                None => Err(GatewayError::Unavailable(format!(
                    "the registry could not be loaded: {e}"
                ))),
            },
        }
    }

    /// Drops the cached registry (tests, admin reloads).
    pub fn invalidate(&self) {
        *self.slot.borrow_mut() = None;
    }
}

/// Reads every `servers/` entry (in parallel) and parses them.
pub async fn load<K: Kv>(kv: &K) -> Result<Registry, PortError> {
    let keys = kv.list(KEY_PREFIX).await?;
    let values = futures_util::future::join_all(keys.iter().map(|k| kv.get(k))).await;
    let mut entries = Vec::with_capacity(keys.len());
    for (key, value) in keys.into_iter().zip(values) {
        // A key listed but gone by the time we read it was deleted meanwhile.
        if let Some(value) = value? {
            entries.push((key, value));
        }
    }
    Ok(Registry::from_entries(entries))
}
