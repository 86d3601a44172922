//! `tracing` output on Workers: one line per event (what `wrangler tail`,
//! `wrangler dev` and the dashboard show). The lines written in one run of
//! the isolate (up to its next await) go out in one `console.log`, in
//! order: each console call has a fixed cost (about 1.5 ms under `wrangler
//! dev`, measured in issue 14, against a few µs for the text), and a
//! request's audit lines (authenticated, policy, ...) mostly come in one
//! run. The flush is a microtask, so it runs before the isolate waits on
//! anything and nothing is held back.

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

thread_local! {
    /// Lines waiting for the flush; `None` when no flush is scheduled.
    static PENDING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end();
        let first = PENDING.with(|p| {
            let mut pending = p.borrow_mut();
            let first = pending.is_none();
            let lines = pending.get_or_insert_with(String::new);
            if !first {
                lines.push('\n');
            }
            lines.push_str(text);
            first
        });
        if first {
            worker::wasm_bindgen_futures::spawn_local(async {
                if let Some(lines) = PENDING.with(|p| p.borrow_mut().take()) {
                    worker::console_log!("{lines}");
                }
            });
        }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}
