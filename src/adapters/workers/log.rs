//! `tracing` output on Workers: one console line per event (what `wrangler
//! tail`, `wrangler dev` and the dashboard show).

use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber once per isolate; later calls are no-ops.
pub fn init() {
    crate::adapters::log::init(Console, now_ns);
}

/// Workers' wall clock (`Date.now()`, milliseconds; it advances across I/O
/// only) in nanoseconds.
fn now_ns() -> u64 {
    (worker::js_sys::Date::now() * 1_000_000.0) as u64
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
