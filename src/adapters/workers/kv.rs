//! The `Kv` port on Workers KV.

use crate::ports::{Kv, PortError};
use worker::kv::KvStore;

pub struct WorkersKv(KvStore);

impl WorkersKv {
    pub fn new(store: KvStore) -> Self {
        WorkersKv(store)
    }
}

impl Kv for WorkersKv {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        self.0
            .get(key)
            .text()
            .await
            .map_err(|e| PortError(format!("KV get {key}: {e}")))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, PortError> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = self.0.list().prefix(prefix.to_string());
            if let Some(c) = cursor.take() {
                req = req.cursor(c);
            }
            let page = req
                .execute()
                .await
                .map_err(|e| PortError(format!("KV list {prefix}: {e}")))?;
            keys.extend(page.keys.into_iter().map(|k| k.name));
            match page.cursor {
                Some(c) if !page.list_complete => cursor = Some(c),
                _ => return Ok(keys),
            }
        }
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.0
            .put(key, value)
            .map_err(|e| PortError(format!("KV put {key}: {e}")))?
            .execute()
            .await
            .map_err(|e| PortError(format!("KV put {key}: {e}")))
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.0
            .delete(key)
            .await
            .map_err(|e| PortError(format!("KV delete {key}: {e}")))
    }
}
