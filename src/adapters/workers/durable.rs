//! The client side of a Durable Object that takes one JSON operation per
//! request and answers JSON (approvals, the configuration history).

use crate::ports::PortError;
use serde::{de::DeserializeOwned, Serialize};
use worker::{Method, ObjectNamespace, Request, RequestInit};

/// Sends `op` to the object named `name` in `ns`; its JSON answer. `what`
/// names the store in errors (`approval store`, `config history`).
pub(super) async fn call<T: DeserializeOwned>(
    ns: &ObjectNamespace,
    name: &str,
    op: &impl Serialize,
    what: &str,
) -> Result<T, PortError> {
    let err = |e: worker::Error| PortError(format!("{what}: {e}"));
    let stub = ns
        .id_from_name(name)
        .and_then(|oid| oid.get_stub())
        .map_err(err)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(op).expect("serializes").into()));
    // The host is never resolved: the stub delivers to the object.
    let req = Request::new_with_init("https://object/op", &init).map_err(err)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(err)?;
    if resp.status_code() != 200 {
        return Err(PortError(format!("{what} answered {}", resp.status_code())));
    }
    resp.json().await.map_err(err)
}
