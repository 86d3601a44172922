//! `tracing` output on Workers: one console line per event (what `wrangler
//! tail` and the dashboard show). No timestamps: the runtime adds its own and
//! `SystemTime` is unavailable on wasm32-unknown-unknown.

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber once per isolate; later calls are no-ops.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(Console)
        .without_time()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

#[derive(Clone, Copy)]
struct Console;

/// Buffers one formatted event and prints it on drop.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        worker::console_log!("{}", text.trim_end());
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}
