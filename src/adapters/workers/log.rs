//! `tracing` output on Workers: one line per event (what `wrangler tail`,
//! `wrangler dev` and the dashboard show), written in batches. Each
//! `console.log` call has a fixed cost far above its text's (about 3 ms
//! under `wrangler dev`, measured in issue 14: a third of a gateway call),
//! so lines are kept in the isolate and written together, in order:
//! - a request's handler, when it starts and no flush is scheduled,
//!   schedules one [`HOLD_MS`] later inside its own `waitUntil` (which keeps
//!   the isolate alive until it has run); until then every line waits for
//!   it, so the lines of many requests share one console call;
//! - a line made when no flush is scheduled, or after a scheduled one
//!   should long have run (its request was cancelled), goes out in the next
//!   microtask, before the isolate waits on anything;
//! - past [`MAX_HELD`] bytes, lines go out at once.
//!
//! The cost: a line can appear up to [`HOLD_MS`] late, under the invocation
//! whose `waitUntil` wrote it (each line names its own trace), and lines
//! still held when an isolate dies abruptly are lost with it.

use std::cell::RefCell;
use std::io::Write;
use tracing_subscriber::fmt::MakeWriter;

/// How long lines may wait for company.
const HOLD_MS: f64 = 500.0;
/// A scheduled flush this late is taken for dead.
const GRACE_MS: f64 = 2_000.0;
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
    /// When the scheduled flush is due (ms since the epoch).
    due: Option<f64>,
    /// A microtask flush is scheduled.
    soon: bool,
}

impl Held {
    /// Whether a scheduled flush will still come for lines made `now`.
    fn flush_coming(&self, now: f64) -> bool {
        self.due.is_some_and(|due| now <= due + GRACE_MS)
    }
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

/// A request handler starts: unless a flush is coming, one is scheduled
/// [`HOLD_MS`] from now in this request's `waitUntil`.
pub fn handler_started(ctx: &worker::Context) {
    let now = worker::js_sys::Date::now();
    let schedule = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let coming = h.flush_coming(now);
        if !coming {
            h.due = Some(now + HOLD_MS);
        }
        !coming
    });
    if schedule {
        ctx.wait_until(async {
            worker::Delay::from(std::time::Duration::from_millis(HOLD_MS as u64)).await;
            HELD.with(|h| h.borrow_mut().due = None);
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
            // Held for the scheduled flush, unless none will come or too
            // much waits already; then the next microtask, scheduled once.
            let now = worker::js_sys::Date::now();
            let waits = h.flush_coming(now) && h.lines.len() <= MAX_HELD;
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
