//! Configuration documents' version history in Durable Objects: one object
//! per document (named by its KV key), holding its kept revisions, so a
//! check of the newest version and the append after it run with no other
//! change between them (the object's input gate), and two admins writing
//! one document at once cannot both win.

use crate::ports::{append_conflict, keep_revision, Appended, History, PortError, Revision};
use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, ObjectNamespace, Request, Response, State};

/// The storage key of the kept revisions, oldest first (at most
/// [`crate::ports::REVISIONS_KEPT`] documents of at most 64 KiB: within a value's 2 MB).
const REVISIONS: &str = "revisions";

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Revisions,
    Append {
        expected: Option<u64>,
        revision: Revision,
    },
}

/// The client side: the `History` port.
pub struct DurableHistory(ObjectNamespace);

impl DurableHistory {
    pub fn new(ns: ObjectNamespace) -> Self {
        DurableHistory(ns)
    }

    async fn call<T: for<'de> Deserialize<'de>>(&self, key: &str, op: &Op) -> Result<T, PortError> {
        super::durable::call(&self.0, key, op, "config history").await
    }
}

impl History for DurableHistory {
    async fn revisions(&self, key: &str) -> Result<Vec<Revision>, PortError> {
        self.call(key, &Op::Revisions).await
    }
    async fn append(
        &self,
        key: &str,
        expected: Option<u64>,
        revision: &Revision,
    ) -> Result<Appended, PortError> {
        let op = Op::Append {
            expected,
            revision: revision.clone(),
        };
        self.call(key, &op).await
    }
}

/// The Durable Object class (`ConfigHistory` in wrangler.toml).
#[durable_object]
pub struct ConfigHistory {
    state: State,
}

impl DurableObject for ConfigHistory {
    fn new(state: State, _env: Env) -> Self {
        ConfigHistory { state }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let op: Op = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad history operation: {e}"), 400),
        };
        let storage = self.state.storage();
        let mut kept: Vec<Revision> = storage.get(REVISIONS).await?.unwrap_or_default();
        match op {
            Op::Revisions => {
                kept.reverse();
                Response::from_json(&kept)
            }
            Op::Append { expected, revision } => {
                if let Some(conflict) = append_conflict(&kept, expected) {
                    return Response::from_json(&conflict);
                }
                keep_revision(&mut kept, revision);
                storage.put(REVISIONS, &kept).await?;
                Response::from_json(&Appended::Done)
            }
        }
    }
}
