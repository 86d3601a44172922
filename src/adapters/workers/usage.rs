//! Usage rows in Durable Objects (`UsageStore` in wrangler.toml): a day's
//! rows are spread over [`SHARDS`] objects by the row's key, so every add
//! is exact under any concurrency (an object handles one request at a time,
//! and a row lives in one object) while no single object takes every call
//! of the day; a day is read from its shards side by side. Each row is one
//! storage key (a SHA-256 of the row's key: storage keys are bounded, team
//! lists are not), its value the row's key and counts as JSON.

use crate::ports::{PortError, Usage, UsageCount, UsageKey};
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

/// Objects per day.
const SHARDS: u64 = 16;

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

impl Usage for DurableUsage {
    async fn add(&self, day: &str, key: &UsageKey, count: &UsageCount) -> Result<(), PortError> {
        let body = serde_json::to_string(&Add {
            key: key.clone(),
            count: *count,
        })
        .expect("serializes");
        let resp = self
            .call(&shard(day, key), Method::Post, Some(body))
            .await?;
        match resp.status_code() {
            200..=299 => Ok(()),
            s => Err(PortError(format!("usage store: HTTP {s}"))),
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
        let add: Add = req.json().await?;
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
        Response::empty()
    }
}
