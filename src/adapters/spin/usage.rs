//! Usage rows on Spin: `wasi:keyvalue` atomic increments in the `sessions`
//! store, one counter per row and figure
//! (`usage/{day}/{row id}/{calls|errors|upstream_ms|input_tokens|output_tokens}`, the row id a SHA-256
//! of the row's key, so keys stay short whatever the names), and the row's
//! key itself beside them (`usage/{day}/{row id}/row`, written by every add
//! before its counters).
//! Each counter is exact under concurrency; the three of a row are not
//! updated together, so a read during an add can see a call counted before
//! its error or upstream time (never lost). Rows are kept until an operator
//! deletes them.

use crate::ports::{PortError, Usage, UsageCount, UsageKey};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

const PREFIX: &str = "usage/";
const FIGURES: [&str; 5] = [
    "calls",
    "errors",
    "upstream_ms",
    "input_tokens",
    "output_tokens",
];

#[derive(Clone, Copy, Default)]
pub struct AtomicUsage;

fn bucket() -> Result<store::Bucket, PortError> {
    store::open(super::kv::SESSION_STORE).map_err(|e| PortError(format!("usage store: {e:?}")))
}

fn add_to(bucket: &store::Bucket, key: &str, by: u64) -> Result<u64, PortError> {
    let by = i64::try_from(by).unwrap_or(i64::MAX);
    atomics::increment(bucket, key, by)
        .map(|n| n.max(0) as u64)
        .map_err(|e| PortError(format!("usage increment: {e:?}")))
}

impl Usage for AtomicUsage {
    async fn add(&self, day: &str, key: &UsageKey, count: &UsageCount) -> Result<(), PortError> {
        let bucket = bucket()?;
        let json = serde_json::to_string(key).expect("serializes");
        let row = &crate::identity::sha256_hex(json.as_bytes())[..32];
        // The row's key first (the same bytes every time), so no counter
        // is ever without it.
        let store = spin_sdk::key_value::Store::open(super::kv::SESSION_STORE)
            .await
            .map_err(|e| PortError(format!("usage store: {e:?}")))?;
        store
            .set(&format!("{PREFIX}{day}/{row}/row"), json.as_bytes())
            .await
            .map_err(|e| PortError(format!("usage row: {e:?}")))?;
        let values = [
            count.calls,
            count.errors,
            count.upstream_ms,
            count.input_tokens,
            count.output_tokens,
        ];
        // A model's token counters exist only for model rows.
        for (figure, by) in FIGURES
            .iter()
            .zip(values)
            .filter(|(f, by)| *by > 0 || !f.ends_with("tokens"))
        {
            add_to(&bucket, &format!("{PREFIX}{day}/{row}/{figure}"), by)?;
        }
        Ok(())
    }

    async fn day(&self, day: &str) -> Result<Vec<(UsageKey, UsageCount)>, PortError> {
        let store = spin_sdk::key_value::Store::open(super::kv::SESSION_STORE)
            .await
            .map_err(|e| PortError(format!("usage store: {e:?}")))?;
        let keys: Vec<String> = store
            .get_keys()
            .await
            .collect()
            .await
            .map_err(|e| PortError(format!("usage keys: {e:?}")))?;
        let bucket = bucket()?;
        let prefix = format!("{PREFIX}{day}/");
        let mut rows: std::collections::BTreeMap<String, (Option<UsageKey>, UsageCount)> =
            Default::default();
        for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
            let Some((row, figure)) = key[prefix.len()..].split_once('/') else {
                continue;
            };
            let entry = rows.entry(row.to_string()).or_default();
            if figure == "row" {
                let text = store
                    .get(key)
                    .await
                    .map_err(|e| PortError(format!("usage row: {e:?}")))?;
                entry.0 = text.and_then(|t| serde_json::from_slice(&t).ok());
                continue;
            }
            // An increment by 0 reads a counter as the store keeps it.
            let n = add_to(&bucket, key, 0)?;
            match figure {
                "calls" => entry.1.calls = n,
                "errors" => entry.1.errors = n,
                "upstream_ms" => entry.1.upstream_ms = n,
                "input_tokens" => entry.1.input_tokens = n,
                "output_tokens" => entry.1.output_tokens = n,
                _ => {}
            }
        }
        Ok(rows
            .into_values()
            .filter_map(|(key, count)| Some((key?, count)))
            .collect())
    }
}
