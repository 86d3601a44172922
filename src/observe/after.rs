//! The work after a request, run by the platform once the response is on
//! its way (Workers `waitUntil`; on Spin a task the instance runs after its
//! response body completes): wait for the request's batch to complete (its
//! span closes after the last byte of a streamed answer), add its usage row,
//! export it. Nothing here can delay or fail the call it describes.

use super::collect::{Finished, Shared};
use super::{export, usage};
use crate::config::Telemetry;
use crate::ports::{with_timeout, Platform, Usage};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

static USAGE_WARNED: AtomicBool = AtomicBool::new(false);

/// How long adding a usage row may take.
const USAGE_TIMEOUT_MS: u64 = 5_000;

pub(crate) async fn after<P: Platform + 'static>(p: Rc<P>, batch: Shared, telemetry: Telemetry) {
    Finished(batch.clone()).await;
    let rows = {
        let batch = batch.lock().unwrap_or_else(|e| e.into_inner());
        usage::rows(&batch)
    };
    let record = async {
        let add = rows
            .iter()
            .map(|(day, key, count)| p.usage().add(day, key, count));
        let added = with_timeout(
            p.clock(),
            USAGE_TIMEOUT_MS,
            futures_util::future::join_all(add),
        );
        let why = match added.await {
            Some(results) => match results.into_iter().find_map(Result::err) {
                None => return,
                Some(e) => e.0,
            },
            None => format!("no answer in {USAGE_TIMEOUT_MS} ms"),
        };
        // Usage is attribution, not access: a store that is down costs
        // rows, never the call, and is logged once per isolate.
        if !USAGE_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!("usage not recorded: {why}");
        }
    };
    // Side by side: a slow usage store does not hold the export back.
    futures_util::future::join(record, export::export(&p, &batch, &telemetry)).await;
}
