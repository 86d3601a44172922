//! Resuming a legacy upstream's call once a modern client answered the
//! questions the upstream asked in the middle of it.
//!
//! A modern (2026-07-28) client cannot answer on the call's stream: it gets
//! the questions in an `input_required` result (`gateway/modern/held.rs`)
//! and calls again with its answers. The upstream keeps working on the call
//! meanwhile: a dropped stream is not a cancellation, and a server may keep
//! what it would have sent for a `Last-Event-ID` to replay
//! (`docs/specification/2025-11-25/basic/transports.mdx` § Resumability and
//! Redelivery, in `modelcontextprotocol/modelcontextprotocol`). So the upstream
//! holds the call, not the gateway: nothing has to outlive a request at the
//! edge, on Workers or on Spin. On the retry the answers go to the upstream
//! session that asked, under the upstream's own ids, and the call's stream
//! is resumed with a GET after the last event the gateway read: what comes
//! is the result, or the upstream's next question.

use super::client::Upstreams;
use crate::error::GatewayError;
use crate::identity::sealed::Held;
use crate::ports::{Clock, Platform, UpstreamSession};
use crate::upstream::Reply;

/// How many times a resume is tried while the upstream still holds the
/// first stream (409): it lets go as soon as it sees the gateway's side
/// closed, which can come a moment after the client's retry.
const CONFLICT_TRIES: u32 = 4;

/// A call that continues a held question, instead of being sent again.
#[derive(Clone, Debug)]
pub(crate) struct Resume {
    pub server: String,
    /// The method of the call (`tools/call`, ...): only that request is
    /// resumed, not one the gateway makes on the way (a catalog listing).
    pub method: String,
    pub held: Held,
    /// The client's answers, as JSON-RPC responses under the upstream's ids.
    pub answers: Vec<Vec<u8>>,
}

/// A digest that names an upstream session without giving its id away
/// (the sealed state it goes in is readable by the client).
pub(crate) fn session_digest(session: &UpstreamSession) -> String {
    let text = format!(
        "{}\n{}",
        session.url,
        session.session_id.as_deref().unwrap_or("")
    );
    crate::identity::sha256_hex(text.as_bytes())[..32].to_string()
}

impl<P: Platform> Upstreams<'_, P> {
    /// The held call `message` to `server` continues, if it is the one.
    pub(super) fn resuming(
        &self,
        server: &crate::config::Server,
        message: &[u8],
    ) -> Option<Resume> {
        let mut slot = self.client.resuming.borrow_mut();
        let r = slot.as_ref()?;
        let method = crate::protocol::jsonrpc::method_of(message)?;
        (r.server == server.id && r.method == method).then(|| slot.take())?
    }

    /// Hands the answers to the session that asked, then resumes the call's
    /// stream after the last event read.
    pub(super) async fn resume(
        &self,
        server: &crate::config::Server,
        resume: Resume,
    ) -> Result<Reply, GatewayError> {
        let failed = |message: String| GatewayError::Upstream {
            server: server.id.clone(),
            message,
        };
        let session = self.client.upstreams.borrow().get(&server.id).cloned();
        let session = session
            .filter(|s| session_digest(s) == resume.held.session)
            .ok_or_else(|| {
                failed("the upstream session that asked is gone; call the tool again".into())
            })?;
        for answer in &resume.answers {
            self.notify_known(server, answer)
                .await
                .map_err(|e| failed(format!("the answer was not delivered: {e}")))?;
        }
        let from = Some(resume.held.resume_from.as_str());
        let mut tries = 1;
        loop {
            match self.open_stream_on(server, &session, from).await {
                Ok(body) => return Ok(Reply::Sse(body)),
                Err(GatewayError::Upstream { message, .. })
                    if message.starts_with("HTTP 409") && tries < CONFLICT_TRIES =>
                {
                    self.platform.clock().sleep(100 << tries).await;
                    tries += 1;
                }
                Err(GatewayError::MethodNotAllowed { .. }) => {
                    return Err(failed(
                        "asked a question mid-call but does not resume its stream".into(),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}
