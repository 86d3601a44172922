//! Connections in Durable Objects (`CONNECTIONS` binding, class
//! `ConnectionStore`):
//!
//! - one object per principal (`conn:{owner}`) holds that principal's
//!   records, by server: reads, writes and the generation-checked replace
//!   run inside it, one request at a time, so two refreshes of one token
//!   cannot both land;
//! - one object per connect in flight (`connect:{state digest}`) holds it
//!   until taken, once; an alarm removes it when it expires;
//! - one index object (`connections:index`) notes which principal has a
//!   record for which server (no token), for the admin view.
//!
//! The records hold their tokens sealed (`identity/vault.rs`); this store
//! never sees them in clear.

use super::durable::call;
use crate::ports::{ConnectionRecord, Connections, PendingConnect, PortError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use worker::{durable_object, DurableObject, Env, ObjectNamespace, Request, Response, State};

const RECORDS: &str = "records";
const PENDING: &str = "pending";
const CLAIMED: &str = "claimed";
const INDEX: &str = "connections:index";
/// The index's storage keys: `pair:{owner}\n{server}`.
const PAIR: &str = "pair:";
const WHAT: &str = "connection store";

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Get {
        server: String,
    },
    Put {
        record: ConnectionRecord,
    },
    Replace {
        record: ConnectionRecord,
        expected: u64,
    },
    Remove {
        server: String,
    },
    List {
        limit: usize,
    },
    Hold {
        pending: PendingConnect,
    },
    Take {
        now_ms: u64,
    },
    /// The first claim of this object's name, kept until `expires_ms`.
    Claim {
        expires_ms: u64,
    },
    /// Index: a record of `owner` for `server` exists (or, `present:
    /// false`, no longer).
    Note {
        owner: String,
        server: String,
        present: bool,
    },
    /// Index: the noted pairs.
    Noted {
        limit: usize,
    },
}

#[derive(Clone)]
pub struct DurableConnections(ObjectNamespace);

impl DurableConnections {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableConnections(ns)
    }

    async fn owner<T: for<'de> Deserialize<'de>>(
        &self,
        owner: &str,
        op: &Op,
    ) -> Result<T, PortError> {
        call(&self.0, &format!("conn:{owner}"), op, WHAT).await
    }

    async fn note(&self, owner: &str, server: &str, present: bool) -> Result<(), PortError> {
        let op = Op::Note {
            owner: owner.to_string(),
            server: server.to_string(),
            present,
        };
        call::<bool>(&self.0, INDEX, &op, WHAT).await.map(drop)
    }
}

impl Connections for DurableConnections {
    async fn get(&self, owner: &str, server: &str) -> Result<Option<ConnectionRecord>, PortError> {
        let op = Op::Get {
            server: server.to_string(),
        };
        self.owner(owner, &op).await
    }
    async fn put(&self, record: &ConnectionRecord) -> Result<(), PortError> {
        // Noted first: an index entry without a record is harmless (the
        // admin view skips it), a record missing from the index is not.
        self.note(&record.owner, &record.server, true).await?;
        let op = Op::Put {
            record: record.clone(),
        };
        self.owner::<bool>(&record.owner, &op).await.map(drop)
    }
    async fn replace(&self, record: &ConnectionRecord, expected: u64) -> Result<bool, PortError> {
        let op = Op::Replace {
            record: record.clone(),
            expected,
        };
        self.owner(&record.owner, &op).await
    }
    async fn remove(
        &self,
        owner: &str,
        server: &str,
    ) -> Result<Option<ConnectionRecord>, PortError> {
        let op = Op::Remove {
            server: server.to_string(),
        };
        let removed: Option<ConnectionRecord> = self.owner(owner, &op).await?;
        if let Err(e) = self.note(owner, server, false).await {
            tracing::warn!("connection index not updated: {e}");
        }
        Ok(removed)
    }
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectionRecord>, PortError> {
        if let Some(owner) = owner {
            return self.owner(owner, &Op::List { limit }).await;
        }
        let pairs: Vec<(String, String)> = call(&self.0, INDEX, &Op::Noted { limit }, WHAT).await?;
        let owners: BTreeSet<&str> = pairs.iter().map(|(o, _)| o.as_str()).collect();
        let op = Op::List { limit };
        let lists = futures_util::future::join_all(
            owners
                .iter()
                .map(|o| self.owner::<Vec<ConnectionRecord>>(o, &op)),
        )
        .await;
        let mut all = Vec::new();
        for list in lists {
            all.extend(list?);
        }
        all.truncate(limit);
        Ok(all)
    }
    async fn hold(&self, state: &str, pending: &PendingConnect) -> Result<(), PortError> {
        let op = Op::Hold {
            pending: pending.clone(),
        };
        call::<bool>(&self.0, &format!("connect:{state}"), &op, WHAT)
            .await
            .map(drop)
    }
    async fn take(&self, state: &str, now_ms: u64) -> Result<Option<PendingConnect>, PortError> {
        call(
            &self.0,
            &format!("connect:{state}"),
            &Op::Take { now_ms },
            WHAT,
        )
        .await
    }
    async fn claim(&self, key: &str, expires_ms: u64) -> Result<bool, PortError> {
        call(
            &self.0,
            &format!("claim:{key}"),
            &Op::Claim { expires_ms },
            WHAT,
        )
        .await
    }
}

/// The Durable Object class (`ConnectionStore` in wrangler.toml).
#[durable_object(alarm)]
pub struct ConnectionStore {
    state: State,
}

impl ConnectionStore {
    async fn records(&self) -> worker::Result<BTreeMap<String, ConnectionRecord>> {
        Ok(self.state.storage().get(RECORDS).await?.unwrap_or_default())
    }
}

impl DurableObject for ConnectionStore {
    fn new(state: State, _env: Env) -> Self {
        ConnectionStore { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let op: Op = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad connection operation: {e}"), 400),
        };
        // One request at a time between storage awaits (the input gate):
        // each read-check-write below is atomic.
        let storage = self.state.storage();
        match op {
            Op::Get { server } => Response::from_json(&self.records().await?.get(&server)),
            Op::Put { record } => {
                let mut records = self.records().await?;
                records.insert(record.server.clone(), record);
                storage.put(RECORDS, &records).await?;
                Response::from_json(&true)
            }
            Op::Replace { record, expected } => {
                let mut records = self.records().await?;
                let current = records.get(&record.server).map(|r| r.generation);
                if current != Some(expected) {
                    return Response::from_json(&false);
                }
                records.insert(record.server.clone(), record);
                storage.put(RECORDS, &records).await?;
                Response::from_json(&true)
            }
            Op::Remove { server } => {
                let mut records = self.records().await?;
                let removed = records.remove(&server);
                storage.put(RECORDS, &records).await?;
                Response::from_json(&removed)
            }
            Op::List { limit } => {
                let records = self.records().await?;
                let listed: Vec<&ConnectionRecord> = records.values().take(limit).collect();
                Response::from_json(&listed)
            }
            Op::Hold { pending } => {
                storage.put(PENDING, &pending).await?;
                let in_ms = pending
                    .expires_ms
                    .saturating_sub(worker::Date::now().as_millis());
                storage.set_alarm(in_ms as i64).await?;
                Response::from_json(&true)
            }
            Op::Take { now_ms } => {
                let held: Option<PendingConnect> = storage.get(PENDING).await?;
                if held.is_some() {
                    storage.delete_all().await?;
                }
                Response::from_json(&held.filter(|p| now_ms < p.expires_ms))
            }
            Op::Claim { expires_ms } => {
                if storage.get::<u64>(CLAIMED).await?.is_some() {
                    return Response::from_json(&false);
                }
                storage.put(CLAIMED, expires_ms).await?;
                let in_ms = expires_ms.saturating_sub(worker::Date::now().as_millis());
                storage.set_alarm(in_ms as i64).await?;
                Response::from_json(&true)
            }
            // One storage key per pair: a write touches only its own.
            Op::Note {
                owner,
                server,
                present,
            } => {
                let key = format!("{PAIR}{owner}\n{server}");
                match present {
                    true => storage.put(&key, true).await?,
                    false => drop(storage.delete(&key).await?),
                }
                Response::from_json(&true)
            }
            Op::Noted { limit } => {
                let options = worker::ListOptions::new().prefix(PAIR).limit(limit);
                let mut pairs: Vec<(String, String)> = Vec::new();
                storage
                    .list_with_options(options)
                    .await?
                    .for_each(&mut |_value, key| {
                        let pair = key.as_string();
                        let pair = pair.as_deref().and_then(|k| k.strip_prefix(PAIR));
                        if let Some((owner, server)) = pair.and_then(|p| p.split_once('\n')) {
                            pairs.push((owner.to_string(), server.to_string()));
                        }
                    });
                Response::from_json(&pairs)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        // Only connects in flight and claims set alarms: the expired one goes.
        self.state.storage().delete_all().await?;
        Response::ok("expired")
    }
}
