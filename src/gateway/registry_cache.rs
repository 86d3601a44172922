//! The registry as the gateway serves it: loaded from KV, parsed, and kept in
//! isolate memory for a short TTL so a hot isolate reads KV once per TTL, not
//! once per request. If KV fails on refresh, the last good registry stays in
//! force (logged); a fresh instance that cannot read it refuses with 503.

use crate::cache::KeepLastGood;
use crate::config::registry::{Registry, KEY_PREFIX};
use crate::error::GatewayError;
use crate::ports::{load_prefix, Clock, Platform, PortError};
use std::rc::Rc;

pub struct RegistryCache(KeepLastGood<Registry>);

impl RegistryCache {
    pub fn new(ttl_ms: u64) -> Self {
        RegistryCache(KeepLastGood::new("the registry", ttl_ms))
    }

    /// The current registry, reloading it when older than the TTL.
    pub async fn get<P: Platform>(&self, p: &P) -> Result<Rc<Registry>, GatewayError> {
        self.0
            .get(p.clock().now_ms(), |_| async {
                let registry = Registry::from_entries(load_prefix(p.kv(), KEY_PREFIX).await?);
                for problem in &registry.problems {
                    tracing::error!("registry entry skipped: {problem}");
                }
                Ok::<_, PortError>(Rc::new(registry))
            })
            .await
    }

    /// Marks the registry stale so the next request reloads it.
    pub fn invalidate(&self) {
        self.0.invalidate();
    }
}
