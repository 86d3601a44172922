//! The core's [`Body`] as an `http_body::Body` for spin-sdk: buffered bodies
//! are one frame, streamed bodies yield each chunk as soon as the core does,
//! so relayed SSE events are not held back.

use crate::body::{Body, ByteStream};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub enum SpinBody {
    Full(Option<Bytes>),
    Stream(ByteStream),
}

/// Converts a core response for the Spin handler.
pub fn to_spin(response: http::Response<Body>) -> http::Response<SpinBody> {
    response.map(|body| match body {
        Body::Full(bytes) => SpinBody::Full(Some(Bytes::from(bytes))),
        Body::Stream(stream) => SpinBody::Stream(stream),
        native @ Body::Native(_) => SpinBody::Stream(native.into_stream()),
    })
}

impl http_body::Body for SpinBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            SpinBody::Full(bytes) => Poll::Ready(
                bytes
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(Frame::data(b))),
            ),
            SpinBody::Stream(stream) => stream.poll_next_unpin(cx).map(|item| {
                item.map(|chunk| {
                    chunk
                        .map(|c| Frame::data(Bytes::from(c)))
                        .map_err(std::io::Error::other)
                })
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SpinBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SpinBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SpinBody::Full(None) => SizeHint::with_exact(0),
            SpinBody::Stream(_) => SizeHint::default(),
        }
    }
}
