//! `tracing` for the wasm builds: one log line per event, no timestamps
//! (the host adds its own, and `SystemTime` does not exist on
//! wasm32-unknown-unknown), no colours; and the telemetry collector
//! ([`crate::observe::Collector`]) beside it, which keeps each request's
//! spans and audit events for export. Each adapter supplies where lines go
//! and its wall clock.

use crate::observe::Collector;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber once per isolate or instance; later calls are no-ops.
pub(crate) fn init<W>(writer: W, now_ns: fn() -> u64)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .without_time()
        .with_ansi(false);
    let _ = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(lines)
        .with(Collector::new(now_ns))
        .try_init();
}
