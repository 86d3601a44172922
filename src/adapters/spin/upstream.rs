//! The `Upstream` port on the `wasi:http` client (spin-sdk `send`). The
//! response body stays a stream, so upstream SSE events flow through.

use crate::body::Body;
use crate::ports::{HttpClient, SendError};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyStream, Full};

#[derive(Clone, Copy, Default)]
pub struct WasiHttpUpstream;

impl HttpClient for WasiHttpUpstream {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Body>, SendError> {
        let request = request.map(|b| Full::new(Bytes::from(b)));
        let response = spin_sdk::http::send(request)
            .await
            .map_err(|e| SendError(e.to_string()))?;
        let (parts, incoming) = response.into_parts();
        let stream = BodyStream::new(incoming).filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(|d| Ok(d.to_vec())),
                Err(e) => Some(Err(e.to_string())),
            }
        });
        Ok(http::Response::from_parts(
            parts,
            Body::Stream(stream.boxed_local()),
        ))
    }
}
