//! Approval records in Durable Objects: one object per approval id, so each
//! record has a single writer and the core's transitions (open, decide,
//! consume) run atomically inside it: two approvers cannot both decide, and an
//! approved call runs exactly once however many retries race. An alarm deletes
//! the record when it expires.

use crate::governance::approval::{transition, ApprovalRecord, Decided, Decision};
use crate::ports::{Approvals, PortError};
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, ObjectNamespace, Request, RequestInit, Response,
    State,
};

const RECORD: &str = "record";

/// One operation on the record, as the client side sends it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Open { fresh: ApprovalRecord, now_ms: u64 },
    Get { now_ms: u64 },
    Decide { decision: Decision },
    Consume { now_ms: u64 },
}

/// The client side: the `Approvals` port.
#[derive(Clone)]
pub struct DurableApprovals(ObjectNamespace);

impl DurableApprovals {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableApprovals(ns)
    }

    async fn call<T: for<'de> Deserialize<'de>>(&self, id: &str, op: &Op) -> Result<T, PortError> {
        let err = |e: worker::Error| PortError(format!("approval store: {e}"));
        let stub = self
            .0
            .id_from_name(id)
            .and_then(|oid| oid.get_stub())
            .map_err(err)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(serde_json::to_string(op).expect("serializes").into()));
        let req = Request::new_with_init("https://approvals/op", &init).map_err(err)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(err)?;
        if resp.status_code() != 200 {
            return Err(PortError(format!(
                "approval store answered {}",
                resp.status_code()
            )));
        }
        resp.json().await.map_err(err)
    }
}

impl Approvals for DurableApprovals {
    async fn open(&self, fresh: &ApprovalRecord, now_ms: u64) -> Result<ApprovalRecord, PortError> {
        let op = Op::Open {
            fresh: fresh.clone(),
            now_ms,
        };
        self.call(&fresh.id, &op).await
    }
    async fn get(&self, id: &str, now_ms: u64) -> Result<Option<ApprovalRecord>, PortError> {
        self.call(id, &Op::Get { now_ms }).await
    }
    async fn decide(&self, id: &str, decision: &Decision) -> Result<Decided, PortError> {
        let op = Op::Decide {
            decision: decision.clone(),
        };
        self.call(id, &op).await
    }
    async fn consume(&self, id: &str, now_ms: u64) -> Result<bool, PortError> {
        self.call(id, &Op::Consume { now_ms }).await
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
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("expired")
    }
}
