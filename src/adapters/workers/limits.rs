//! Rate-limit counters in Durable Objects: one object per home (the
//! counters of one principal, team, server or tool; [`Limiter`]), never one
//! global object, so every counter is exact under any concurrency, homes
//! scale out independently, and all the limits a call has on one subject
//! cost one round trip. A lone counter (`check`: sessions opened, approval
//! questions) is an object of its own. The object stores the single number
//! the core's [`gcra::step`] keeps per counter; the arithmetic is the core's.

use crate::governance::gcra::Quota;
use crate::governance::gcra::{self, Decision, Rate};
use crate::ports::{Limiter, PortError, Take};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{
    durable_object, js_sys, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit,
    Response, State,
};

/// Where a lone counter's object keeps it (the key its objects have always
/// used, so their counts survive this layout).
const LONE: &str = "state";
/// The object of home `h` is named `limits:{h}`, apart from any lone
/// counter's (whose keys never start so).
const HOME: &str = "limits:";

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

/// What the object is asked to do with the counters.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Op {
    /// All allow and take their cost, or none takes anything.
    Check,
    /// Give back what an allowed check at `now_ms` took ([`gcra::release`]).
    Release,
    /// Add the cost whatever the counter holds ([`gcra::charge`]).
    Charge,
}

#[derive(Serialize, Deserialize)]
struct Ask {
    op: Op,
    now_ms: u64,
    counters: Vec<Slot>,
}

/// One counter of the object, by its storage key.
#[derive(Serialize, Deserialize)]
struct Slot {
    key: String,
    rate_limit: Option<u64>,
    window_ms: Option<u64>,
    daily: Option<u64>,
    cost: u64,
}

impl Slot {
    fn new(key: &str, quota: Quota, cost: u64) -> Slot {
        let (rate_limit, window_ms, daily) = match quota {
            Quota::Rate(r) => (Some(r.limit), Some(r.window_ms), None),
            Quota::Daily(d) => (None, None, Some(d)),
        };
        Slot {
            key: key.to_string(),
            rate_limit,
            window_ms,
            daily,
            cost,
        }
    }

    fn quota(&self) -> Option<Quota> {
        match (self.rate_limit, self.window_ms, self.daily) {
            (Some(limit), Some(window_ms), _) => Some(Quota::Rate(Rate { limit, window_ms })),
            (_, _, Some(daily)) => Some(Quota::Daily(daily)),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Outcome {
    allow: bool,
    retry_after_ms: u64,
}

impl From<Decision> for Outcome {
    fn from(d: Decision) -> Outcome {
        match d {
            Decision::Allow => Outcome {
                allow: true,
                retry_after_ms: 0,
            },
            Decision::Deny { retry_after_ms } => Outcome {
                allow: false,
                retry_after_ms,
            },
        }
    }
}

impl From<&Outcome> for Decision {
    fn from(o: &Outcome) -> Decision {
        match o.allow {
            true => Decision::Allow,
            false => Decision::Deny {
                retry_after_ms: o.retry_after_ms,
            },
        }
    }
}

/// The client side: the `Limiter` port.
#[derive(Clone)]
pub struct DurableLimiter(ObjectNamespace);

impl DurableLimiter {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableLimiter(ns)
    }

    /// One round trip to object `name`: `op` on `counters`, one decision
    /// each (an answer of any other length is an error: fail closed).
    async fn send(
        &self,
        name: &str,
        op: Op,
        now_ms: u64,
        counters: Vec<Slot>,
    ) -> Result<Vec<Decision>, PortError> {
        let err = |e: worker::Error| PortError(format!("rate limiter: {e}"));
        let asked = counters.len();
        let ask = Ask {
            op,
            now_ms,
            counters,
        };
        let stub = self.0.get_by_name(name).map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(
            serde_json::to_string(&ask).expect("serializes").into(),
        ));
        let req = Request::new_with_init("https://limits/check", &init).map_err(err)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(err)?;
        if resp.status_code() != 200 {
            return Err(PortError(format!(
                "rate limiter: counter object answered {}",
                resp.status_code()
            )));
        }
        let outcomes: Vec<Outcome> = resp.json().await.map_err(err)?;
        if outcomes.len() != asked {
            return Err(PortError(format!(
                "rate limiter: {} answers for {asked} counters",
                outcomes.len()
            )));
        }
        Ok(outcomes.iter().map(Decision::from).collect())
    }
}

/// The counters of `takes` as the object of their home keeps them.
fn slots(takes: &[Take<'_>]) -> Vec<Slot> {
    takes
        .iter()
        .map(|t| Slot::new(t.key, t.quota, t.cost))
        .collect()
}

impl Limiter for DurableLimiter {
    async fn check(
        &self,
        key: &str,
        quota: Quota,
        cost: u64,
        now_ms: u64,
    ) -> Result<Decision, PortError> {
        let lone = vec![Slot::new(LONE, quota, cost)];
        let mut decisions = self.send(key, Op::Check, now_ms, lone).await?;
        Ok(decisions.remove(0))
    }

    async fn check_together(
        &self,
        home: &str,
        takes: &[Take<'_>],
        now_ms: u64,
    ) -> Result<Vec<Decision>, PortError> {
        let name = format!("{HOME}{home}");
        self.send(&name, Op::Check, now_ms, slots(takes)).await
    }

    async fn charge(&self, home: &str, take: &Take<'_>, now_ms: u64) -> Result<(), PortError> {
        let name = format!("{HOME}{home}");
        let sent = self.send(&name, Op::Charge, now_ms, slots(&[*take]));
        sent.await.map(drop)
    }

    async fn release(&self, home: &str, take: &Take<'_>, checked_ms: u64) -> Result<(), PortError> {
        let name = format!("{HOME}{home}");
        let sent = self.send(&name, Op::Release, checked_ms, slots(&[*take]));
        sent.await.map(drop)
    }
}

/// The Durable Object class (`RateCounter` in wrangler.toml).
#[durable_object(fetch)]
pub struct RateCounter {
    state: State,
    /// The counters read so far, by storage key (`None`: never counted):
    /// the object is single-threaded and storage writes go through it, so
    /// memory and storage never disagree.
    read: RefCell<HashMap<String, Option<u64>>>,
}

impl RateCounter {
    /// The stored state of each of `keys`, read from storage once.
    async fn load(&self, keys: &[&str]) -> worker::Result<()> {
        let storage = self.state.storage();
        for key in keys {
            if self.read.borrow().contains_key(*key) {
                continue;
            }
            let value = storage.get::<Stored>(key).await?.and_then(Stored::value);
            // Never over a state another request set meanwhile.
            self.read
                .borrow_mut()
                .entry(key.to_string())
                .or_insert(value);
        }
        Ok(())
    }
}

impl DurableObject for RateCounter {
    fn new(state: State, _env: Env) -> Self {
        RateCounter {
            state,
            read: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let ask: Ask = req.json().await?;
        let mut slots = Vec::with_capacity(ask.counters.len());
        for slot in &ask.counters {
            let Some(quota) = slot.quota() else {
                return Response::error("bad counter request", 400);
            };
            slots.push((slot.key.as_str(), quota, slot.cost));
        }
        let keys: Vec<&str> = slots.iter().map(|s| s.0).collect();
        self.load(&keys).await?;
        let stored = |key: &str| self.read.borrow().get(key).copied().flatten();
        let now = ask.now_ms;
        let allowed = || vec![Decision::Allow; slots.len()];
        let (decisions, next) = match ask.op {
            Op::Check => gcra::step_together(slots.iter().copied(), stored, now),
            Op::Release => (
                allowed(),
                slots
                    .iter()
                    .filter_map(|&(key, quota, cost)| {
                        Some((key, gcra::release(quota, stored(key), now, cost)?))
                    })
                    .collect(),
            ),
            Op::Charge => (
                allowed(),
                slots
                    .iter()
                    .map(|&(key, quota, cost)| (key, gcra::charge(quota, stored(key), now, cost)))
                    .collect(),
            ),
        };
        if !next.is_empty() {
            // One write for all (a plain object: `put` takes its own
            // properties as the entries), as decimal text (see `Stored`).
            let write = js_sys::Object::new();
            for (key, state) in next {
                self.read.borrow_mut().insert(key.to_string(), Some(state));
                js_sys::Reflect::set(&write, &key.into(), &state.to_string().into())?;
            }
            self.state.storage().put_multiple_raw(write).await?;
        }
        let outcomes: Vec<Outcome> = decisions.into_iter().map(Outcome::from).collect();
        Response::from_json(&outcomes)
    }
}
