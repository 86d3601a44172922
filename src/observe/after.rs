//! The work after a request, run by the platform once the response is on
//! its way (Workers `waitUntil`; on Spin a task the instance runs after its
//! response body completes): wait for the request's batch to complete (its
//! span closes after the last byte of a streamed answer), add its usage row,
//! export it. Nothing here can delay or fail the call it describes.

use super::collect::{Finished, Shared};
use super::{export, usage};
use crate::config::Telemetry;
use crate::ports::{Platform, Usage};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

static USAGE_WARNED: AtomicBool = AtomicBool::new(false);

pub(crate) async fn after<P: Platform + 'static>(p: Rc<P>, batch: Shared, telemetry: Telemetry) {
    Finished(batch.clone()).await;
    let row = {
        let batch = batch.lock().unwrap_or_else(|e| e.into_inner());
        usage::row(&batch)
    };
    if let Some((day, key, count)) = row {
        if let Err(e) = p.usage().add(&day, &key, &count).await {
            // Usage is attribution, not access: a store that is down costs
            // rows, never the call, and is logged once per isolate.
            if !USAGE_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("usage not recorded: {e}");
            }
        }
    }
    export::export(&p, &batch, &telemetry).await;
}
