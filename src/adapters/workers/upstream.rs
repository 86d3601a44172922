//! The `Upstream` port on the Workers `fetch` API. Response bodies stay
//! streams, so an upstream's SSE events flow through as they arrive.

use crate::body::{Body, ByteStream, Native};
use crate::ports::{HttpClient, SendError};
use futures_util::StreamExt;
use std::any::Any;
use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys::ReadableStream;
use worker::ResponseBody;
use worker::{Fetch, Headers, Method, RequestInit};

#[derive(Clone, Copy, Default)]
pub struct FetchUpstream;

impl HttpClient for FetchUpstream {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Body>, SendError> {
        let (parts, body) = request.into_parts();
        let mut init = RequestInit::new();
        init.with_method(Method::from(parts.method.to_string()))
            .with_headers(Headers::from(&parts.headers));
        if !body.is_empty() {
            init.with_body(Some(JsValue::from(worker::js_sys::Uint8Array::from(
                body.as_slice(),
            ))));
        }
        let err = |e: worker::Error| SendError(e.to_string());
        let req = worker::Request::new_with_init(&parts.uri.to_string(), &init).map_err(err)?;
        let resp = Fetch::Request(req).send().await.map_err(err)?;
        let mut builder = http::Response::builder().status(resp.status_code());
        for (name, value) in resp.headers().entries() {
            builder = builder.header(name, value);
        }
        // The body stays a JavaScript stream: forwarded as is, it never enters
        // wasm; read (lists, SSE relays), it becomes a byte stream.
        let body = match resp.into_parts().1 {
            ResponseBody::Stream(stream) => Body::Native(Native {
                handle: Box::new(stream),
                to_stream,
            }),
            ResponseBody::Body(bytes) => Body::Full(bytes),
            ResponseBody::Empty => Body::empty(),
        };
        builder
            .body(body)
            .map_err(|e| SendError(format!("bad upstream response: {e}")))
    }
}

/// Reads a JavaScript response stream from Rust.
fn to_stream(handle: Box<dyn Any>) -> ByteStream {
    match handle.downcast::<ReadableStream>() {
        Ok(stream) => worker::ByteStream::from(*stream)
            .map(|c| c.map_err(|e| e.to_string()))
            .boxed_local(),
        Err(_) => futures_util::stream::once(async { Err("not a JavaScript stream".to_string()) })
            .boxed_local(),
    }
}

/// The JavaScript stream inside a body this adapter made, if it is one.
pub fn native_stream(native: Native) -> Result<ReadableStream, Native> {
    match native.handle.downcast::<ReadableStream>() {
        Ok(stream) => Ok(*stream),
        Err(handle) => Err(Native {
            handle,
            to_stream: native.to_stream,
        }),
    }
}
