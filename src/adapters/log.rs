//! `tracing` output for the wasm builds: one line per event, no timestamps
//! (the host adds its own, and `SystemTime` does not exist on
//! wasm32-unknown-unknown), no colours. Each adapter supplies where lines go.

use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber once per isolate or instance; later calls are no-ops.
pub(crate) fn init<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .without_time()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
