//! The `Upstream` port on the Workers `fetch` API. Response bodies stay
//! JavaScript objects: forwarded unread, an upstream's body (SSE events
//! included) flows through as it arrives; read whole, it costs one
//! `arrayBuffer()` instead of a reader and a promise per chunk.
//!
//! The global `fetch(url, init)` is called directly rather than through
//! `worker::Fetch`, which builds a `Request` and a second `RequestInit` for
//! every call: on a steady-state `tools/call` these JS objects are a visible
//! share of the isolate's CPU (bench/RESULTS.md, issue 14).

use crate::body::{Body, ByteStream, Native};
use crate::ports::{HttpClient, SendError};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use std::any::Any;
use worker::js_sys::futures::JsFuture;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys::{
    ReadableStream, ReadableStreamDefaultReader, RequestInit, RequestRedirect, Response,
    WorkerGlobalScope,
};
use worker::Headers;

#[derive(Clone, Copy, Default)]
pub struct FetchUpstream;

impl HttpClient for FetchUpstream {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Body>, SendError> {
        let (parts, body) = request.into_parts();
        let init = RequestInit::new();
        init.set_method(parts.method.as_str());
        // A redirect is answered to the gateway, not followed: a hostile
        // upstream must not steer a call, its body and its minted credential
        // to another host (the Spin host does not follow them either).
        init.set_redirect(RequestRedirect::Manual);
        init.set_headers(&super::headers(&parts.headers).0);
        if !body.is_empty() {
            init.set_body(&JsValue::from(Uint8Array::from(body.as_slice())));
        }
        let err = |e: JsValue| SendError(describe(&e));
        let global: WorkerGlobalScope = worker::js_sys::global().unchecked_into();
        let promise = global.fetch_with_str_and_init(&parts.uri.to_string(), &init);
        let resp: Response = JsFuture::from(promise)
            .await
            .map_err(err)?
            .dyn_into()
            .map_err(err)?;
        let mut builder = http::Response::builder().status(resp.status());
        for (name, value) in Headers(resp.headers()).entries() {
            builder = builder.header(name, value);
        }
        let body = match resp.body() {
            Some(_) => Body::Native(Native {
                handle: Box::new(resp),
                to_stream,
                read_all: Some(read_all),
            }),
            None => Body::empty(),
        };
        builder
            .body(body)
            .map_err(|e| SendError(format!("bad upstream response: {e}")))
    }
}

/// A thrown JavaScript value as text (a `TypeError` from `fetch` says why the
/// connection failed).
fn describe(e: &JsValue) -> String {
    match e.dyn_ref::<worker::js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

/// Reads a JavaScript response's body from Rust as a stream of chunks.
fn to_stream(handle: Box<dyn Any>) -> ByteStream {
    match handle.downcast::<Response>().map(|r| r.body()) {
        Ok(Some(stream)) => worker::ByteStream::from(stream)
            .map(|c| c.map_err(|e| e.to_string()))
            .boxed_local(),
        Ok(None) => futures_util::stream::empty().boxed_local(),
        Err(_) => {
            futures_util::stream::once(async { Err("not a JavaScript response".to_string()) })
                .boxed_local()
        }
    }
}

/// The largest body read with one `arrayBuffer()`: the runtime's buffer and
/// the copy in wasm live side by side for a moment, so this bounds the
/// extra memory a read whole may take beside a streamed one.
const WHOLE_READ_MAX: usize = 1 << 20;

/// Reads a JavaScript response's body whole, at most `limit` bytes. A body
/// sent as is, with a declared length within `limit` (and
/// [`WHOLE_READ_MAX`]), is read with one `arrayBuffer()`: the runtime reads
/// exactly that many bytes. Anything else is streamed and refused past
/// `limit` bytes (`Body::collect`), so an upstream cannot make the isolate buffer more:
/// with `Content-Encoding`, `fetch` decodes the body and the declared length
/// is the encoded one (a small gzip can decode to gigabytes); with
/// `Transfer-Encoding`, the runtime frames the body by it and ignores the
/// declared length.
fn read_all(
    handle: Box<dyn Any>,
    limit: usize,
) -> LocalBoxFuture<'static, Result<Vec<u8>, String>> {
    Box::pin(async move {
        let resp = handle
            .downcast::<Response>()
            .map_err(|_| "not a JavaScript response".to_string())?;
        let headers = resp.headers();
        let header = |name: &str| headers.get(name).ok().flatten();
        let declared = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
        let encoded = header("content-encoding")
            .is_some_and(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"));
        let framed = header("transfer-encoding").is_some();
        if !encoded && !framed && declared.is_some_and(|n| n <= limit.min(WHOLE_READ_MAX)) {
            let promise = resp.array_buffer().map_err(|e| describe(&e))?;
            let buffer = JsFuture::from(promise).await.map_err(|e| describe(&e))?;
            return Ok(Uint8Array::new(&buffer).to_vec());
        }
        match resp.body() {
            Some(stream) => read_stream(stream, limit).await,
            None => Ok(Vec::new()),
        }
    })
}

/// Reads a JavaScript body stream to its end, or until it holds more than
/// `limit` bytes (then the stream is cancelled, the upstream's transfer
/// stopped, and `Body::collect` refuses what was read). One reader whose
/// lock is never released: the stream ends with the read, and releasing a
/// reader's lock costs the runtime an exception object, which was a twentieth
/// of a steady-state call's isolate time (issue 14).
async fn read_stream(stream: ReadableStream, limit: usize) -> Result<Vec<u8>, String> {
    let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let field = |result: &JsValue, name: &str| Reflect::get(result, &JsValue::from_str(name));
    // The upstream's transfer is stopped when the body is refused; not
    // awaited (the answer is refused whatever the upstream does), and a
    // failed cancel is caught, never an unhandled rejection.
    let cancel = || {
        let cancelled = JsFuture::from(reader.cancel());
        worker::js_sys::futures::spawn_local(async move {
            let _ = cancelled.await;
        });
    };
    let mut out = Vec::new();
    loop {
        let result = JsFuture::from(reader.read())
            .await
            .map_err(|e| describe(&e))?;
        if field(&result, "done").is_ok_and(|d| d.is_truthy()) {
            return Ok(out);
        }
        let chunk: Option<Uint8Array> =
            field(&result, "value").ok().and_then(|v| v.dyn_into().ok());
        let Some(chunk) = chunk else {
            cancel();
            return Err("a body chunk that is not bytes".to_string());
        };
        let start = out.len();
        out.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut out[start..]);
        if out.len() > limit {
            cancel();
            return Ok(out);
        }
    }
}

/// The JavaScript stream inside a body this adapter made, if it is one.
pub fn native_stream(native: Native) -> Result<ReadableStream, Native> {
    match native.handle.downcast::<Response>() {
        Ok(resp) => resp.body().ok_or_else(|| Native {
            handle: resp as Box<dyn Any>,
            to_stream: native.to_stream,
            read_all: native.read_all,
        }),
        Err(handle) => Err(Native {
            handle,
            to_stream: native.to_stream,
            read_all: native.read_all,
        }),
    }
}
