//! The core's [`Body`] as an `http_body::Body` for spin-sdk: buffered bodies
//! are one frame, streamed bodies yield each chunk as soon as the core does,
//! so relayed SSE events are not held back. The work the request deferred
//! (`Runtime::defer`: usage, the OTLP export) is started when the body is
//! dropped, that is once the response is complete: a task spawned earlier
//! and left waiting inside the component kept its outgoing request bodies
//! from being written while the response still streamed.

use crate::body::{Body, ByteStream};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Work deferred until the response is complete. Work deferred after that
/// (by work that was itself deferred) starts at once.
#[derive(Clone, Default)]
pub struct Deferred(Rc<RefCell<Queue>>);

#[derive(Default)]
struct Queue {
    work: Vec<LocalBoxFuture<'static, ()>>,
    /// The response is complete: new work starts at once.
    started: bool,
}

impl Deferred {
    /// Runs `work` once the response is complete (now, if it is).
    pub fn push(&self, work: LocalBoxFuture<'static, ()>) {
        let mut queue = self.0.borrow_mut();
        if queue.started {
            drop(queue);
            spin_sdk::wit_bindgen::spawn(work);
        } else {
            queue.work.push(work);
        }
    }

    /// The response is complete: starts what waited.
    fn start(&self) {
        let work = {
            let mut queue = self.0.borrow_mut();
            queue.started = true;
            std::mem::take(&mut queue.work)
        };
        for work in work {
            spin_sdk::wit_bindgen::spawn(work);
        }
    }
}

pub struct SpinBody {
    kind: Kind,
    after: Deferred,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(ByteStream),
}

/// Converts a core response for the Spin handler.
pub fn to_spin(response: http::Response<Body>) -> http::Response<SpinBody> {
    to_spin_then(response, Deferred::default())
}

/// Converts a core response, `after` to run once its body is complete.
pub fn to_spin_then(response: http::Response<Body>, after: Deferred) -> http::Response<SpinBody> {
    response.map(|body| SpinBody {
        kind: match body {
            Body::Full(bytes) => Kind::Full(Some(Bytes::from(bytes))),
            Body::Stream(stream) => Kind::Stream(stream),
            native @ Body::Native(_) => Kind::Stream(native.into_stream()),
        },
        after,
    })
}

impl Drop for SpinBody {
    fn drop(&mut self) {
        self.after.start();
    }
}

impl http_body::Body for SpinBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            Kind::Stream(stream) => stream.poll_next_unpin(cx).map(|item| {
                item.map(|chunk| {
                    chunk
                        .map(|c| Frame::data(Bytes::from(c)))
                        .map_err(std::io::Error::other)
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}
