//! `/mcp`'s GET stream, for a legacy client: the server-to-client streams of
//! every server the caller sees, merged into one (requests an upstream sends
//! outside a call, list changes, resource updates, log messages), each part
//! as [`crate::upstream::merged`] relays it. A server this session has not
//! met yet is met now, and listened to before it is told
//! `notifications/initialized`, so the stream hears it from the start; one
//! that offers no stream (405), or cannot be reached, is left out (logged).
//! The stream ends when every part has ended; the client opens it again,
//! with `Last-Event-ID` resuming every server where it stood
//! ([`crate::upstream::merged_id`]; a server that cannot replay from there
//! is heard from now on).
//! A list change also makes that server's cached lists and catalog stale;
//! list changes of one kind that are ready at once reach the client as one.
//!
//! At most [`MAX_PARTS`] servers are heard, in registry order: a Workers
//! request holds at most six connections open at once, and one is left for
//! meeting servers (the rest are left out, logged).

use super::{respond, session, Ctx};
use crate::body::Body;
use crate::config::Server;
use crate::error::GatewayError;
use crate::ports::Platform;
use crate::protocol::headers::LAST_EVENT_ID;
use crate::upstream::merged::{self, Part};
use crate::upstream::merged_id::Positions;
use futures_util::future::join_all;
use futures_util::StreamExt;
use http::Response;
use std::cell::RefCell;
use std::rc::Rc;

/// Servers heard on one merged stream.
const MAX_PARTS: usize = 5;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// GET on `/mcp` (see the module docs).
    pub(super) async fn merged_stream(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Response<Body>, GatewayError> {
        let record =
            session::find(self.p, headers, &self.route.endpoint_name(), &self.owner()).await?;
        let client = self.client_session(
            Some(record.id.clone()),
            &record.protocol_version,
            record.client_params.clone(),
        );
        *client.log_level.borrow_mut() = record.log_level;
        *client.upstreams.borrow_mut() = record.upstreams;
        let ups = self.upstreams(&client);
        let heard = &self.registry.servers[..self.registry.servers.len().min(MAX_PARTS)];
        for left in &self.registry.servers[heard.len()..] {
            tracing::warn!(server = %left.id, "left out of the /mcp stream: at most {MAX_PARTS} servers are heard");
        }
        // A reconnect resumes every server where the client's last event
        // left it; an id that is not one of ours starts them all afresh.
        let last = headers
            .get(LAST_EVENT_ID)
            .and_then(|v| v.to_str().ok())
            .map(|id| {
                Positions::decode(id).unwrap_or_else(|| {
                    tracing::info!("a Last-Event-ID that is no /mcp stream's ignored");
                    Positions::default()
                })
            })
            .unwrap_or_default();
        // A server met now is listened to before it hears
        // `notifications/initialized` (see `ClientSession::listening`).
        *client.listening.borrow_mut() = Some(Default::default());
        let opened = join_all(heard.iter().map(|s| async {
            let met = ups.client.upstreams.borrow().contains_key(&s.id);
            if !met {
                ups.initialize_now(s).await?;
                if let Some(body) = ups.client.take_stream(&s.id) {
                    return Ok((body, false));
                }
            }
            let Some(at) = last.get(&s.id) else {
                return ups.open_stream(s, None).await.map(|b| (b, false));
            };
            match ups.open_stream(s, Some(at)).await {
                Ok(body) => Ok((body, true)),
                // It could not replay from there: from now on, then.
                Err(GatewayError::Upstream { message, .. }) => {
                    tracing::info!(server = %s.id, "not resumed ({message}): heard afresh");
                    ups.open_stream(s, None).await.map(|b| (b, false))
                }
                Err(e) => Err(e),
            }
        }))
        .await;
        *client.listening.borrow_mut() = None;
        let mut positions = last.clone();
        let mut parts = Vec::new();
        let mut resumed = Vec::new();
        for (server, body) in heard.iter().zip(opened) {
            match body {
                Ok((body, at_position)) => {
                    if at_position {
                        resumed.push(server.id.clone());
                    }
                    parts.push((server, body));
                }
                Err(e) => tracing::info!(server = %server.id, "left out of the /mcp stream: {e}"),
            }
        }
        positions.retain(|s| resumed.iter().any(|r| r == s));
        let positions = Rc::new(RefCell::new(positions));
        let parts: Vec<_> = parts
            .into_iter()
            .map(|(server, body)| {
                merged::part(body, self.part(server, client.min_log(), positions.clone()))
            })
            .collect();
        if parts.is_empty() {
            return Err(GatewayError::MethodNotAllowed {
                allow: "POST, DELETE",
            });
        }
        let merged = merged::fold_changes(futures_util::stream::select_all(parts).boxed_local());
        Ok(respond::sse(Body::Stream(merged)))
    }

    fn part(
        &self,
        server: &Server,
        min_log: Option<usize>,
        positions: Rc<RefCell<Positions>>,
    ) -> Part {
        let stale = self.stale();
        let id = server.id.clone();
        Part {
            server: server.id.clone(),
            redact: self.gate.redaction(server, None),
            max_event_bytes: self.upstream_limit,
            min_log,
            positions,
            on_change: Rc::new(move |method: &str| stale(&id, method)),
        }
    }
}
