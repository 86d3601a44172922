//! Documents stored one per KV key under a prefix (the registry's
//! `servers/`, the models' `models/`, the trusted issuers' `auth/issuers/`), loaded and parsed as a
//! set and kept for a short TTL, so a hot isolate reads KV once per TTL, not
//! once per request. If KV fails on refresh, the last good set stays in
//! force (logged); a fresh instance that cannot read it refuses with 503.
//! Entries that do not parse are skipped and logged, never fatal to the rest.

use crate::cache::KeepLastGood;
use crate::config::models::{self, Models};
use crate::config::registry::{self, Registry};
use crate::error::GatewayError;
use crate::identity::config::{TrustConfig, ISSUER_PREFIX};
use crate::ports::{load_prefix, Clock, Platform, PortError};
use std::rc::Rc;

/// A set parsed from every entry under one KV prefix.
pub(crate) trait EntrySet: Sized {
    /// The KV prefix its entries live under.
    const PREFIX: &'static str;
    /// What it is, for log lines and the 503 message.
    const WHAT: &'static str;
    fn parse(entries: Vec<(String, String)>) -> Self;
    /// Entries skipped, each with why.
    fn problems(&self) -> &[String];
}

impl EntrySet for Registry {
    const PREFIX: &'static str = registry::KEY_PREFIX;
    const WHAT: &'static str = "the registry";
    fn parse(entries: Vec<(String, String)>) -> Self {
        Registry::from_entries(entries)
    }
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl EntrySet for Models {
    const PREFIX: &'static str = models::KEY_PREFIX;
    const WHAT: &'static str = "the model registry";
    fn parse(entries: Vec<(String, String)>) -> Self {
        Models::from_entries(entries)
    }
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl EntrySet for TrustConfig {
    const PREFIX: &'static str = ISSUER_PREFIX;
    const WHAT: &'static str = "trusted issuers";
    fn parse(entries: Vec<(String, String)>) -> Self {
        TrustConfig::from_entries(entries)
    }
    fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// One [`EntrySet`], reloaded after the TTL, last good kept.
pub(crate) struct EntrySetCache<T>(KeepLastGood<T>);

impl<T: EntrySet> EntrySetCache<T> {
    pub(crate) fn new(ttl_ms: u64) -> Self {
        EntrySetCache(KeepLastGood::new(T::WHAT, ttl_ms))
    }

    /// The current set, reloading it when older than the TTL.
    pub(crate) async fn get<P: Platform>(&self, p: &P) -> Result<Rc<T>, GatewayError> {
        self.0
            .get(p.clock().now_ms(), |_| async {
                let set = T::parse(load_prefix(p.kv(), T::PREFIX).await?);
                for problem in set.problems() {
                    tracing::error!("{}: entry skipped: {problem}", T::WHAT);
                }
                Ok::<_, PortError>(Rc::new(set))
            })
            .await
    }

    /// Drops the set so the next request reloads it, and refuses (503)
    /// should KV fail then: after a reload, a removed server or issuer is
    /// never served from memory.
    pub(crate) fn invalidate(&self) {
        self.0.forget();
    }
}
