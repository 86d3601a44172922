//! Approval records in Durable Objects: one object per approval id, so each
//! record has a single writer and the core's transitions (open, decide,
//! consume) run atomically inside it: two approvers cannot both decide, and an
//! approved call runs exactly once however many retries race. An alarm deletes
//! the record when it expires.
//!
//! The inbox (`GET /approvals`) is one more object of the same class, named
//! [`INBOX`] (a name no approval id can take: ids are `[A-Za-z0-9_-]`): it
//! notes each record opened, with its times, keeps the newest
//! [`INBOX_MAX`] live ones, and answers their ids newest first; each record
//! is then read from its own object, which alone says whether it is still
//! pending.

use crate::governance::approval::{transition, ApprovalRecord, Channel, Decided, Decision, Status};
use crate::ports::{Approvals, PortError};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, ObjectNamespace, Request, Response, State};

const RECORD: &str = "record";
/// The object holding the inbox, and its storage key.
const INBOX: &str = "inbox:approvals";
/// Notes the inbox keeps (the newest).
const INBOX_MAX: usize = 500;

/// One record noted in the inbox.
#[derive(Clone, Serialize, Deserialize)]
struct Noted {
    id: String,
    created_ms: u64,
    expires_ms: u64,
}

/// One operation on the record, as the client side sends it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Open {
        fresh: ApprovalRecord,
        now_ms: u64,
    },
    Get {
        now_ms: u64,
    },
    Decide {
        decision: Decision,
    },
    Consume {
        now_ms: u64,
    },
    /// Inbox: note a record just opened.
    Note {
        noted: Noted,
        now_ms: u64,
    },
    /// Inbox: the live notes' ids, newest first.
    Noted {
        now_ms: u64,
        limit: usize,
    },
    /// Inbox: a record decided leaves it.
    Unnote {
        id: String,
    },
}

/// The client side: the `Approvals` port.
#[derive(Clone)]
pub struct DurableApprovals(ObjectNamespace);

impl DurableApprovals {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableApprovals(ns)
    }

    async fn call<T: for<'de> Deserialize<'de>>(&self, id: &str, op: &Op) -> Result<T, PortError> {
        super::durable::call(&self.0, id, op, "approval store").await
    }
}

impl Approvals for DurableApprovals {
    async fn open(&self, fresh: &ApprovalRecord, now_ms: u64) -> Result<ApprovalRecord, PortError> {
        let op = Op::Open {
            fresh: fresh.clone(),
            now_ms,
        };
        let record: ApprovalRecord = self.call(&fresh.id, &op).await?;
        // Only calls waiting for an approver, and only when this opening
        // stored it (a live record under the id answers as is).
        if record.channel == Channel::Approver && record.nonce == fresh.nonce {
            self.note(&record, now_ms).await;
        }
        Ok(record)
    }
    async fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>, PortError> {
        self.call(id, &Op::Get { now_ms }).await
    }
    async fn decide(&self, id: &str, decision: &Decision) -> Result<Decided, PortError> {
        let op = Op::Decide {
            decision: decision.clone(),
        };
        let decided: Decided = self.call(id, &op).await?;
        if let Decided::Applied { record } = &decided {
            if record.channel == Channel::Approver {
                self.unnote(id).await;
            }
        }
        Ok(decided)
    }
    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError> {
        self.call(id, &Op::Consume { now_ms }).await
    }
    async fn pending(&self, now_ms: u64, limit: usize) -> Result<Vec<ApprovalRecord>, PortError> {
        let ids: Vec<String> = self.call(INBOX, &Op::Noted { now_ms, limit }).await?;
        let records =
            futures_util::future::join_all(ids.iter().map(|id| self.get(id, now_ms))).await;
        Ok(ids
            .iter()
            .zip(records)
            .filter_map(|(id, r)| {
                r.map_err(|e| tracing::warn!(approval = %id, "inbox: record not read: {e}"))
                    .ok()
                    .flatten()
            })
            .filter(|r| r.status == Status::Pending)
            .collect())
    }
}

impl DurableApprovals {
    /// Notes a record just opened in the inbox. A record the inbox missed
    /// is still decided at its own address; the miss is logged.
    pub(crate) async fn note(&self, record: &ApprovalRecord, now_ms: u64) {
        let noted = Noted {
            id: record.id.clone(),
            created_ms: record.created_ms,
            expires_ms: record.expires_ms,
        };
        if let Err(e) = self.call::<bool>(INBOX, &Op::Note { noted, now_ms }).await {
            tracing::warn!(approval = %record.id, "approval not noted in the inbox: {e}");
        }
    }

    /// Takes a decided record out of the inbox (a miss only costs the
    /// inbox a place until the record expires; logged).
    async fn unnote(&self, id: &str) {
        let op = Op::Unnote { id: id.to_string() };
        if let Err(e) = self.call::<bool>(INBOX, &op).await {
            tracing::warn!(approval = %id, "decided approval not taken out of the inbox: {e}");
        }
    }
}

/// The Durable Object class (`ApprovalStore` in wrangler.toml).
#[durable_object(alarm)]
pub struct ApprovalStore {
    state: State,
}

impl ApprovalStore {
    /// Stores `record` and moves the alarm to its expiry.
    async fn keep(&self, record: &ApprovalRecord) -> worker::Result<()> {
        let storage = self.state.storage();
        storage.put(RECORD, record).await?;
        // The alarm takes an offset from now.
        let in_ms = record
            .expires_ms
            .saturating_sub(worker::Date::now().as_millis());
        storage.set_alarm(in_ms as i64).await
    }

    /// The inbox's operations (only on the [`INBOX`] object): the notes
    /// live at `now_ms`, newest first, at most [`INBOX_MAX`].
    async fn inbox(&self, op: Op) -> worker::Result<Response> {
        let storage = self.state.storage();
        let mut notes: Vec<Noted> = storage.get(INBOX).await?.unwrap_or_default();
        match op {
            Op::Note { noted, now_ms } => {
                notes.retain(|n| n.expires_ms > now_ms && n.id != noted.id);
                notes.push(noted);
                notes.sort_by_key(|n| std::cmp::Reverse(n.created_ms));
                notes.truncate(INBOX_MAX);
                storage.put(INBOX, &notes).await?;
                Response::from_json(&true)
            }
            Op::Unnote { id } => {
                notes.retain(|n| n.id != id);
                storage.put(INBOX, &notes).await?;
                Response::from_json(&true)
            }
            Op::Noted { now_ms, limit } => {
                let ids: Vec<&str> = notes
                    .iter()
                    .filter(|n| n.expires_ms > now_ms)
                    .take(limit)
                    .map(|n| n.id.as_str())
                    .collect();
                Response::from_json(&ids)
            }
            _ => Response::error("not an inbox operation", 400),
        }
    }

    async fn forget(&self) -> worker::Result<()> {
        let storage = self.state.storage();
        storage.delete_all().await?;
        storage.delete_alarm().await
    }
}

impl DurableObject for ApprovalStore {
    fn new(state: State, _env: Env) -> Self {
        ApprovalStore { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let op: Op = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad approval operation: {e}"), 400),
        };
        // Requests to one object run one at a time between awaits on storage,
        // and the input gate holds others while storage is awaited, so each
        // read-transition-write below is atomic.
        if let Op::Note { .. } | Op::Noted { .. } | Op::Unnote { .. } = op {
            return self.inbox(op).await;
        }
        let held = self.state.storage().get::<ApprovalRecord>(RECORD).await?;
        match op {
            Op::Open { fresh, now_ms } => {
                let record = transition::open(held.clone(), &fresh, now_ms);
                if held.as_ref() != Some(&record) {
                    self.keep(&record).await?;
                }
                Response::from_json(&record)
            }
            Op::Get { now_ms } => Response::from_json(&held.filter(|r| r.is_live(now_ms))),
            Op::Decide { decision } => {
                let decided = transition::decide(held, &decision);
                if let Decided::Applied { record } = &decided {
                    self.keep(record).await?;
                }
                Response::from_json(&decided)
            }
            Op::Consume { now_ms } => {
                let used = transition::consume(held.as_ref(), now_ms);
                if used {
                    self.forget().await?;
                }
                Response::from_json(&used)
            }
            Op::Note { .. } | Op::Noted { .. } | Op::Unnote { .. } => {
                Response::error("not an inbox operation here", 400)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("expired")
    }
}
