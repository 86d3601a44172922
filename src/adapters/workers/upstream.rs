//! The `Upstream` port on the Workers `fetch` API. Response bodies stay
//! streams, so an upstream's SSE events flow through as they arrive.

use crate::body::Body;
use crate::ports::{SendError, Upstream};
use futures_util::StreamExt;
use worker::wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, RequestInit};

#[derive(Clone, Copy, Default)]
pub struct FetchUpstream;

impl Upstream for FetchUpstream {
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
        let mut resp = Fetch::Request(req).send().await.map_err(err)?;
        let mut builder = http::Response::builder().status(resp.status_code());
        for (name, value) in resp.headers().entries() {
            builder = builder.header(name, value);
        }
        // A response without a body (202, 204) has no stream to take.
        let body = match resp.stream() {
            Ok(stream) => Body::Stream(stream.map(|c| c.map_err(|e| e.to_string())).boxed_local()),
            Err(_) => Body::empty(),
        };
        builder
            .body(body)
            .map_err(|e| SendError(format!("bad upstream response: {e}")))
    }
}
