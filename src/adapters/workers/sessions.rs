//! Sessions in Durable Objects: one object per session id (not one global
//! object), so sessions scale out and any isolate anywhere reaches the same
//! record. The object is a tiny record store; the gateway core decides what a
//! session means. An alarm deletes the record when the session expires.

use crate::ports::{PortError, SessionRecord, Sessions, UpstreamChange};
use serde::Deserialize;
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

const RECORD: &str = "record";

/// The client side: the `Sessions` port.
#[derive(Clone)]
pub struct DurableSessions(ObjectNamespace);

impl DurableSessions {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableSessions(ns)
    }

    async fn call(
        &self,
        id: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Response, PortError> {
        let err = |e: worker::Error| PortError(format!("session store: {e}"));
        let stub = self
            .0
            .id_from_name(id)
            .and_then(|oid| oid.get_stub())
            .map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            init.with_body(Some(b.into()));
        }
        let req = Request::new_with_init(&format!("https://session{path}"), &init).map_err(err)?;
        stub.fetch_with_request(req).await.map_err(err)
    }
}

async fn json<T: for<'de> Deserialize<'de>>(mut resp: Response) -> Result<Option<T>, PortError> {
    match resp.status_code() {
        404 => Ok(None),
        200 => resp
            .json()
            .await
            .map(Some)
            .map_err(|e| PortError(format!("session store: {e}"))),
        s => Err(PortError(format!("session store answered {s}"))),
    }
}

impl Sessions for DurableSessions {
    async fn create(&self, record: &SessionRecord) -> Result<(), PortError> {
        let body = serde_json::to_string(record).expect("record serializes");
        let resp = self
            .call(&record.id, Method::Post, "/create", Some(body))
            .await?;
        match resp.status_code() {
            200 => Ok(()),
            s => Err(PortError(format!("session store answered {s} to create"))),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        json(self.call(id, Method::Get, "/get", None).await?).await
    }

    async fn set_upstream(&self, id: &str, change: &UpstreamChange) -> Result<bool, PortError> {
        let body = serde_json::to_string(change).expect("serializes");
        let resp = self.call(id, Method::Post, "/upstream", Some(body)).await?;
        Ok(json::<bool>(resp).await?.unwrap_or(false))
    }

    async fn set_log_level(&self, id: &str, level: &str) -> Result<bool, PortError> {
        let body = serde_json::to_string(level).expect("serializes");
        let resp = self
            .call(id, Method::Post, "/log-level", Some(body))
            .await?;
        Ok(json::<bool>(resp).await?.unwrap_or(false))
    }

    async fn delete(&self, id: &str) -> Result<Option<SessionRecord>, PortError> {
        json(self.call(id, Method::Delete, "/delete", None).await?).await
    }
}

/// The Durable Object class (`SessionStore` in wrangler.toml).
#[durable_object(alarm)]
pub struct SessionStore {
    state: State,
}

impl DurableObject for SessionStore {
    fn new(state: State, _env: Env) -> Self {
        SessionStore { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let storage = self.state.storage();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/create") => {
                let record: SessionRecord = req.json().await?;
                storage.put(RECORD, &record).await?;
                // The alarm takes an offset from now.
                let in_ms = record
                    .expires_ms
                    .saturating_sub(worker::Date::now().as_millis());
                storage.set_alarm(in_ms as i64).await?;
                Response::ok("")
            }
            (Method::Get, "/get") => match storage.get::<SessionRecord>(RECORD).await? {
                Some(record) => Response::from_json(&record),
                None => Response::error("no session", 404),
            },
            (Method::Post, "/upstream") => {
                let change: UpstreamChange = req.json().await?;
                let Some(mut record) = storage.get::<SessionRecord>(RECORD).await? else {
                    return Response::from_json(&false);
                };
                record.apply(&change);
                storage.put(RECORD, &record).await?;
                Response::from_json(&true)
            }
            (Method::Post, "/log-level") => {
                let level: String = req.json().await?;
                let Some(mut record) = storage.get::<SessionRecord>(RECORD).await? else {
                    return Response::from_json(&false);
                };
                record.log_level = Some(level);
                storage.put(RECORD, &record).await?;
                Response::from_json(&true)
            }
            (Method::Delete, "/delete") => match storage.get::<SessionRecord>(RECORD).await? {
                Some(record) => {
                    storage.delete_all().await?;
                    storage.delete_alarm().await?;
                    Response::from_json(&record)
                }
                None => Response::error("no session", 404),
            },
            _ => Response::error("unknown session store operation", 400),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("expired")
    }
}
