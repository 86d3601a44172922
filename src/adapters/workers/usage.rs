//! Usage rows in Durable Objects (`UsageStore` in wrangler.toml): a day's
//! rows are spread over [`SHARDS`] objects by the row's key, so every add
//! is exact under any concurrency (an object handles one request at a time,
//! and a row lives in one object) while no single object takes every call
//! of the day; a day is read from its shards side by side. Each row is one
//! storage key (a SHA-256 of the row's key: storage keys are bounded, team
//! lists are not), its value the row's key and counts as JSON.
//!
//! An isolate serves many calls, so their rows wait up to [`FLUSH_MS`] in
//! the isolate ([`Pending`]) and go out merged, one request per shard: the
//! call whose row found no flush scheduled runs it, inside its own
//! `waitUntil` (which keeps the isolate alive until it is done); the others
//! only add their counts. No call waits on another's work.

use crate::observe::pending::{Added, Pending};
use crate::ports::{PortError, Usage, UsageCount, UsageKey};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

/// Objects per day.
const SHARDS: u64 = 16;
/// How long rows wait in the isolate before they are written.
const FLUSH_MS: u64 = 1_000;

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::default();
}

/// The object (`{day}/{shard}`) that holds `key`'s row of `day`.
fn shard(day: &str, key: &UsageKey) -> String {
    let digest =
        crate::identity::sha256_hex(serde_json::to_string(key).expect("serializes").as_bytes());
    let n = u64::from_str_radix(&digest[..8], 16).unwrap_or(0) % SHARDS;
    format!("{day}/{n}")
}

#[derive(Serialize, Deserialize)]
struct Add {
    key: UsageKey,
    count: UsageCount,
}

/// What the object is sent: rows to add.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Adds {
    Many(Vec<Add>),
    One(Add),
}

/// The client side: the `Usage` port.
#[derive(Clone)]
pub struct DurableUsage(ObjectNamespace);

impl DurableUsage {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableUsage(ns)
    }

    async fn call(
        &self,
        object: &str,
        method: Method,
        body: Option<String>,
    ) -> Result<Response, PortError> {
        let err = |e: worker::Error| PortError(format!("usage store: {e}"));
        let stub = self
            .0
            .id_from_name(object)
            .and_then(|id| id.get_stub())
            .map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(method).with_body(body.map(Into::into));
        let req = Request::new_with_init("https://usage/day", &init).map_err(err)?;
        stub.fetch_with_request(req).await.map_err(err)
    }
}

impl DurableUsage {
    /// Writes `rows` (`(day, key, count)`), one request per shard, side by
    /// side; on failure, the first error and how many rows went with it.
    async fn write(
        &self,
        rows: Vec<(String, UsageKey, UsageCount)>,
    ) -> Result<(), (PortError, usize)> {
        let mut shards: BTreeMap<String, Vec<Add>> = BTreeMap::new();
        for (day, key, count) in rows {
            shards
                .entry(shard(&day, &key))
                .or_default()
                .push(Add { key, count });
        }
        let sends = shards.into_iter().map(|(object, adds)| async move {
            let lost = adds.len();
            let body = serde_json::to_string(&Adds::Many(adds)).expect("serializes");
            match self.call(&object, Method::Post, Some(body)).await {
                Ok(resp) if (200..300).contains(&resp.status_code()) => Ok(()),
                Ok(resp) => Err((
                    PortError(format!("usage store: HTTP {}", resp.status_code())),
                    lost,
                )),
                Err(e) => Err((e, lost)),
            }
        });
        let mut failed: Option<(PortError, usize)> = None;
        for (e, lost) in futures_util::future::join_all(sends)
            .await
            .into_iter()
            .filter_map(Result::err)
        {
            failed.get_or_insert((e, 0)).1 += lost;
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Usage for DurableUsage {
    async fn add(&self, day: &str, key: &UsageKey, count: &UsageCount) -> Result<(), PortError> {
        let now = worker::Date::now().as_millis();
        match PENDING.with(|p| p.borrow_mut().add(day, key, count, now)) {
            Added::Waiting => Ok(()),
            Added::Alone => {
                let row = vec![(day.into(), key.clone(), *count)];
                self.write(row).await.map_err(|(e, _)| e)
            }
            Added::Flush => {
                worker::Delay::from(std::time::Duration::from_millis(FLUSH_MS)).await;
                let rows = PENDING.with(|p| p.borrow_mut().take());
                // Not tried again: a shard that failed may have written
                // some of its rows, and a count added twice is worse for
                // attribution than one lost (the loss is logged).
                self.write(rows)
                    .await
                    .map_err(|(e, lost)| PortError(format!("{} ({lost} rows lost)", e.0)))
            }
        }
    }

    async fn day(&self, day: &str) -> Result<Vec<(UsageKey, UsageCount)>, PortError> {
        let reads = (0..SHARDS).map(|n| async move {
            let mut resp = self.call(&format!("{day}/{n}"), Method::Get, None).await?;
            resp.json::<Vec<(UsageKey, UsageCount)>>()
                .await
                .map_err(|e| PortError(format!("usage store: {e}")))
        });
        let mut rows = Vec::new();
        for shard in futures_util::future::join_all(reads).await {
            rows.extend(shard?);
        }
        Ok(rows)
    }
}

/// The Durable Object class: one day's rows.
#[durable_object(fetch)]
pub struct UsageStore {
    state: State,
}

impl DurableObject for UsageStore {
    fn new(state: State, _env: Env) -> Self {
        UsageStore { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let storage = self.state.storage();
        if req.method() == Method::Get {
            let mut rows: Vec<(UsageKey, UsageCount)> = Vec::new();
            storage.list().await?.for_each(&mut |value, _key| {
                if let Some(row) = value
                    .as_string()
                    .and_then(|v| serde_json::from_str::<Add>(&v).ok())
                {
                    rows.push((row.key, row.count));
                }
            });
            return Response::from_json(&rows);
        }
        let adds = match req.json::<Adds>().await? {
            Adds::Many(adds) => adds,
            Adds::One(add) => vec![add],
        };
        for add in adds {
            let id = crate::identity::sha256_hex(
                serde_json::to_string(&add.key)
                    .expect("serializes")
                    .as_bytes(),
            );
            let mut row = storage
                .get::<String>(&id)
                .await?
                .and_then(|v| serde_json::from_str::<Add>(&v).ok())
                .unwrap_or(Add {
                    key: add.key,
                    count: UsageCount::default(),
                });
            row.count.add(&add.count);
            storage
                .put(&id, serde_json::to_string(&row).expect("serializes"))
                .await?;
        }
        Response::empty()
    }
}
