//! `tracing` output on Workers: one line per event (what `wrangler tail`,
//! `wrangler dev` and the dashboard show), written in batches. Each
//! `console.log` call has a fixed cost far above its text's (about 3 ms
//! under `wrangler dev`, measured in issue 14: a third of a gateway call),
//! so lines are kept in the isolate and written together, in order:
//! - lines written while a request's handler runs wait for a flush that a
//!   handler schedules when it ends, [`HOLD_MS`] later, inside its own
//!   `waitUntil` (which keeps the isolate alive until it has run), so the
//!   lines of many requests share one console call;
//! - lines written when no handler runs (a streamed body, work after a
//!   response) go out in the next microtask, before the isolate waits on
//!   anything;
//! - past [`MAX_HELD`] bytes, lines go out at once.

use std::cell::RefCell;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// How long a handler's lines may wait for company.
const HOLD_MS: u64 = 500;
/// The most text held back.
const MAX_HELD: usize = 64 * 1024;

/// Installs the subscriber once per isolate; later calls are no-ops.
pub fn init() {
    crate::adapters::log::init(Console, now_ns);
}

/// Workers' wall clock (`Date.now()`, milliseconds; it advances across I/O
/// only) in nanoseconds.
fn now_ns() -> u64 {
    (worker::js_sys::Date::now() * 1_000_000.0) as u64
}

#[derive(Default)]
struct Held {
    lines: String,
    /// Request handlers running now.
    handlers: usize,
    /// A handler's delayed flush is scheduled.
    held: bool,
    /// A microtask flush is scheduled.
    soon: bool,
}

thread_local! {
    static HELD: RefCell<Held> = RefCell::default();
}

/// Writes every held line in one console call.
fn flush() {
    let lines = HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.soon = false;
        std::mem::take(&mut h.lines)
    });
    if !lines.is_empty() {
        worker::console_log!("{lines}");
    }
}

fn flush_soon() {
    worker::wasm_bindgen_futures::spawn_local(async { flush() });
}

/// A request handler starts: its lines are held.
pub fn handler_started() {
    HELD.with(|h| h.borrow_mut().handlers += 1);
}

/// A request handler ends: unless one is scheduled already, a flush of
/// every held line runs [`HOLD_MS`] later in this request's `waitUntil`.
pub fn handler_ended(ctx: &worker::Context) {
    let schedule = HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.handlers = h.handlers.saturating_sub(1);
        !h.lines.is_empty() && !std::mem::replace(&mut h.held, true)
    });
    if schedule {
        ctx.wait_until(async {
            worker::Delay::from(std::time::Duration::from_millis(HOLD_MS)).await;
            HELD.with(|h| h.borrow_mut().held = false);
            flush();
        });
    }
}

#[derive(Clone, Copy)]
struct Console;

/// Buffers one formatted event and holds it on drop.
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
        let soon = HELD.with(|h| {
            let mut h = h.borrow_mut();
            if !h.lines.is_empty() {
                h.lines.push('\n');
            }
            h.lines.push_str(text.trim_end());
            // Held for a handler's flush, unless none will come or too much
            // waits already; then the next microtask, scheduled once.
            let waits = (h.held || h.handlers > 0) && h.lines.len() <= MAX_HELD;
            !waits && !std::mem::replace(&mut h.soon, true)
        });
        if soon {
            flush_soon();
        }
    }
}

impl<'a> MakeWriter<'a> for Console {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}
