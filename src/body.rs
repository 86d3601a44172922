//! The response body type shared by the core and every adapter.
//!
//! A gateway response is either fully buffered (JSON answers, errors), a stream
//! of bytes (Server-Sent Events relayed from an upstream while the tool runs),
//! or a body the platform still holds (an upstream's JSON answer that the core
//! forwards unread: on Workers it stays a JavaScript stream end to end).
//! Streams are `!Send`: wasm is single-threaded and the Workers/Spin runtimes
//! hand us `!Send` JavaScript or WASI handles.

use futures_util::future::LocalBoxFuture;
use futures_util::stream::{LocalBoxStream, StreamExt};
use std::any::Any;

/// A chunk of a streamed body, or the reason the stream broke.
pub(crate) type Chunk = Result<Vec<u8>, String>;

/// A streamed body.
pub type ByteStream = LocalBoxStream<'static, Chunk>;

/// An HTTP body: buffered bytes or a stream.
pub enum Body {
    /// The whole body, already in memory.
    Full(Vec<u8>),
    /// A body produced over time; each item is one chunk to flush to the client.
    Stream(ByteStream),
    /// A body still held by the platform, passed through without being read.
    Native(Native),
}

/// A platform body the core does not look into unless it must: the adapter
/// that made it recognises it on the way out and hands it back untouched;
/// anywhere else it is read as a stream through `to_stream`, or whole
/// through `read_all` when the core needs every byte anyway.
pub struct Native {
    pub handle: Box<dyn Any>,
    pub to_stream: fn(Box<dyn Any>) -> ByteStream,
    /// Reads the whole body, at most `limit` bytes, the platform's cheapest
    /// way (on Workers one `arrayBuffer()` when the length is declared and
    /// fits, instead of a reader and a promise per chunk); `None`: through
    /// `to_stream`.
    pub read_all: Option<ReadAll>,
}

/// How a [`Native`] body is read whole: `(handle, limit)` to its bytes.
pub type ReadAll = fn(Box<dyn Any>, usize) -> LocalBoxFuture<'static, Result<Vec<u8>, String>>;

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body::Full(Vec::new())
    }

    /// Reads the whole body into memory (used for upstream answers the gateway
    /// must inspect, such as lists it merges). Stops with an error once more than
    /// `limit` bytes arrived, so a misbehaving upstream cannot exhaust memory.
    pub async fn collect(self, limit: usize) -> Result<Vec<u8>, String> {
        let mut stream = match self {
            Body::Full(bytes) if bytes.len() > limit => return Err(too_large(limit)),
            Body::Full(bytes) => return Ok(bytes),
            Body::Native(Native {
                handle,
                read_all: Some(read_all),
                ..
            }) => {
                let bytes = read_all(handle, limit).await?;
                return match bytes.len() > limit {
                    true => Err(too_large(limit)),
                    false => Ok(bytes),
                };
            }
            other => other.into_stream(),
        };
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() > limit {
                return Err(too_large(limit));
            }
        }
        Ok(out)
    }

    /// Turns the body into a stream (a buffered body becomes a one-chunk stream).
    pub fn into_stream(self) -> ByteStream {
        match self {
            Body::Full(bytes) => futures_util::stream::once(async move { Ok(bytes) }).boxed_local(),
            Body::Stream(stream) => stream,
            Body::Native(native) => (native.to_stream)(native.handle),
        }
    }
}

/// How [`Body::collect`]'s error for a body over its limit begins.
pub(crate) const TOO_LARGE: &str = "body larger than";

fn too_large(limit: usize) -> String {
    format!("{TOO_LARGE} {limit} bytes")
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Full(text.into_bytes())
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
            Body::Native(_) => f.write_str("Body::Native"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_enforces_the_limit_on_streams() {
        let chunks: Vec<Chunk> = vec![Ok(vec![1; 600]), Ok(vec![2; 600])];
        let body = Body::Stream(futures_util::stream::iter(chunks).boxed_local());
        assert_eq!(
            body.collect(1000).await.unwrap_err(),
            "body larger than 1000 bytes"
        );
    }

    #[tokio::test]
    async fn native_bodies_are_read_through_their_adapter() {
        fn to_stream(handle: Box<dyn Any>) -> ByteStream {
            let text = *handle.downcast::<&'static str>().unwrap();
            futures_util::stream::iter(vec![Ok(text.as_bytes().to_vec())]).boxed_local()
        }
        let native = || {
            Body::Native(Native {
                handle: Box::new("held by the platform"),
                to_stream,
                read_all: None,
            })
        };
        assert_eq!(
            native().collect(100).await.unwrap(),
            b"held by the platform"
        );
        assert!(native().collect(5).await.is_err());
        let chunks: Vec<Chunk> = native().into_stream().collect().await;
        assert_eq!(chunks, vec![Ok(b"held by the platform".to_vec())]);
    }

    #[tokio::test]
    async fn a_native_body_with_its_own_whole_read_is_read_by_it_and_still_bounded() {
        fn to_stream(_: Box<dyn Any>) -> ByteStream {
            futures_util::stream::once(async { Err("streamed".to_string()) }).boxed_local()
        }
        fn read_all(
            handle: Box<dyn Any>,
            _: usize,
        ) -> LocalBoxFuture<'static, Result<Vec<u8>, String>> {
            let text = *handle.downcast::<&'static str>().unwrap();
            Box::pin(async move { Ok(text.as_bytes().to_vec()) })
        }
        let native = || {
            Body::Native(Native {
                handle: Box::new("read whole"),
                to_stream,
                read_all: Some(read_all),
            })
        };
        assert_eq!(native().collect(100).await.unwrap(), b"read whole");
        // A platform read that returns more than the limit is still refused.
        assert_eq!(
            native().collect(4).await.unwrap_err(),
            "body larger than 4 bytes"
        );
    }

    #[tokio::test]
    async fn collect_joins_chunks_and_reports_stream_errors() {
        let ok: Vec<Chunk> = vec![Ok(b"ab".to_vec()), Ok(b"cd".to_vec())];
        let body = Body::Stream(futures_util::stream::iter(ok).boxed_local());
        assert_eq!(body.collect(10).await.unwrap(), b"abcd");
        let broken: Vec<Chunk> = vec![Ok(b"ab".to_vec()), Err("reset".into())];
        let body = Body::Stream(futures_util::stream::iter(broken).boxed_local());
        assert_eq!(body.collect(10).await.unwrap_err(), "reset");
    }
}
