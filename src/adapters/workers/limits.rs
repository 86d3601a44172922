//! Rate-limit counters in Durable Objects: one object per counter key (never
//! one global object), so every counter is exact under any concurrency and
//! counters scale out independently. The object stores the single number the
//! core's [`gcra::step`] keeps per counter; the arithmetic is the core's.

use crate::governance::gcra::Quota;
use crate::governance::gcra::{self, Decision, Rate};
use crate::ports::{Limiter, PortError};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

const STATE: &str = "state";

/// The counter as stored. JavaScript numbers hold integers exactly only up to
/// 2^53, and a daily quota's state (day and count in one `u64`) is larger,
/// so the state is stored as decimal text; plain numbers written by earlier
/// versions are still read.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(String),
    Number(u64),
}

impl Stored {
    fn value(self) -> Option<u64> {
        match self {
            Stored::Text(t) => t.parse().ok(),
            Stored::Number(n) => Some(n),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Check {
    rate_limit: Option<u64>,
    window_ms: Option<u64>,
    daily: Option<u64>,
    cost: u64,
    now_ms: u64,
    /// Give back `cost` taken by an allowed check at `now_ms` instead
    /// ([`gcra::release`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    release: bool,
    /// Add `cost` whatever the counter holds ([`gcra::charge`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    charge: bool,
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    allow: bool,
    retry_after_ms: u64,
}

/// The client side: the `Limiter` port.
#[derive(Clone)]
pub struct DurableLimiter(ObjectNamespace);

impl DurableLimiter {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableLimiter(ns)
    }
}

impl DurableLimiter {
    /// One round trip to the counter's object.
    async fn send(&self, key: &str, check: &Check) -> Result<Outcome, PortError> {
        let err = |e: worker::Error| PortError(format!("rate limiter: {e}"));
        let stub = self
            .0
            .id_from_name(key)
            .and_then(|id| id.get_stub())
            .map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(
            serde_json::to_string(check).expect("serializes").into(),
        ));
        let req = Request::new_with_init("https://limits/check", &init).map_err(err)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(err)?;
        resp.json().await.map_err(err)
    }
}

impl Check {
    fn new(quota: Quota, cost: u64, now_ms: u64, release: bool) -> Check {
        Check::with(quota, cost, now_ms, release, false)
    }

    fn with(quota: Quota, cost: u64, now_ms: u64, release: bool, charge: bool) -> Check {
        let (rate_limit, window_ms, daily) = match quota {
            Quota::Rate(r) => (Some(r.limit), Some(r.window_ms), None),
            Quota::Daily(d) => (None, None, Some(d)),
        };
        Check {
            rate_limit,
            window_ms,
            daily,
            cost,
            now_ms,
            release,
            charge,
        }
    }
}

impl Limiter for DurableLimiter {
    async fn check(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<Decision, PortError> {
        let outcome = self
            .send(key, &Check::new(quota, cost, now_ms, false))
            .await?;
        Ok(if outcome.allow {
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after_ms: outcome.retry_after_ms,
            }
        })
    }

    async fn release(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        checked_ms: u64,
    ) -> Result<(), PortError> {
        self.send(key, &Check::new(quota, cost, checked_ms, true))
            .await
            .map(drop)
    }

    async fn charge(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<(), PortError> {
        self.send(key, &Check::with(quota, cost, now_ms, false, true))
            .await
            .map(drop)
    }
}

/// The Durable Object class (`RateCounter` in wrangler.toml).
#[durable_object(fetch)]
pub struct RateCounter {
    state: State,
    /// The counter, once read: the object is single-threaded and storage
    /// writes go through it, so memory and storage never disagree.
    value: Cell<Counter>,
}

/// The counter as this object knows it.
#[derive(Clone, Copy)]
enum Counter {
    /// Not read from storage yet.
    Unread,
    /// Read: the stored state (`None`: never counted).
    Read(Option<u64>),
}

impl DurableObject for RateCounter {
    fn new(state: State, _env: Env) -> Self {
        RateCounter {
            state,
            value: Cell::new(Counter::Unread),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let check: Check = req.json().await?;
        let quota = match (check.rate_limit, check.window_ms, check.daily) {
            (Some(limit), Some(window_ms), _) => Quota::Rate(Rate { limit, window_ms }),
            (_, _, Some(daily)) => Quota::Daily(daily),
            _ => return Response::error("bad counter request", 400),
        };
        let storage = self.state.storage();
        let current = match self.value.get() {
            Counter::Read(v) => v,
            Counter::Unread => storage.get::<Stored>(STATE).await?.and_then(Stored::value),
        };
        let (decision, next) = if check.release {
            let next = gcra::release(quota, current, check.now_ms, check.cost);
            (Decision::Allow, next)
        } else if check.charge {
            let next = gcra::charge(quota, current, check.now_ms, check.cost);
            (Decision::Allow, Some(next))
        } else {
            gcra::step(quota, current, check.now_ms, check.cost)
        };
        if let Some(next) = next {
            self.value.set(Counter::Read(Some(next)));
            storage.put(STATE, Stored::Text(next.to_string())).await?;
        } else {
            self.value.set(Counter::Read(current));
        }
        let outcome = match decision {
            Decision::Allow => Outcome {
                allow: true,
                retry_after_ms: 0,
            },
            Decision::Deny { retry_after_ms } => Outcome {
                allow: false,
                retry_after_ms,
            },
        };
        Response::from_json(&outcome)
    }
}
