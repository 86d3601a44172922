//! The floor for Spin benchmarks: the least a proxy component can do.
//! Forwards every request to the `upstream` variable's origin unchanged
//! (method, path, headers, body) and returns the upstream's response as is.
//! mcp-edge is measured against this on the same host.

use spin_sdk::http::{IntoResponse, Request};

#[spin_sdk::http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let upstream = spin_sdk::variables::get("upstream").await?;
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{upstream}{path}").parse()?;
    Ok(spin_sdk::http::send(http::Request::from_parts(parts, body)).await?)
}
