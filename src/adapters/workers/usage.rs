//! Usage rows in Durable Objects: one object per UTC day (`UsageStore` in
//! wrangler.toml), so every add is exact under any concurrency (an object
//! handles one request at a time) and a day is read from one place. Each
//! row is one storage key (the row's key as JSON), its counts as JSON.

use crate::ports::{PortError, Usage, UsageCount, UsageKey};
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

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
        day: &str,
        method: Method,
        body: Option<String>,
    ) -> Result<Response, PortError> {
        let err = |e: worker::Error| PortError(format!("usage store: {e}"));
        let stub = self
            .0
            .id_from_name(day)
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
        let resp = self.call(day, Method::Post, Some(body)).await?;
        match resp.status_code() {
            200..=299 => Ok(()),
            s => Err(PortError(format!("usage store: HTTP {s}"))),
        }
    }

    async fn day(&self, day: &str) -> Result<Vec<(UsageKey, UsageCount)>, PortError> {
        let mut resp = self.call(day, Method::Get, None).await?;
        resp.json()
            .await
            .map_err(|e| PortError(format!("usage store: {e}")))
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
            storage.list().await?.for_each(&mut |value, key| {
                let (Some(key), Some(value)) = (key.as_string(), value.as_string()) else {
                    return;
                };
                if let (Ok(k), Ok(v)) = (serde_json::from_str(&key), serde_json::from_str(&value)) {
                    rows.push((k, v));
                }
            });
            return Response::from_json(&rows);
        }
        let add: Add = req.json().await?;
        let key = serde_json::to_string(&add.key).expect("serializes");
        let mut count: UsageCount = storage
            .get::<String>(&key)
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        count.add(&add.count);
        storage
            .put(&key, serde_json::to_string(&count).expect("serializes"))
            .await?;
        Response::empty()
    }
}
