//! The agent API: an OpenAI-compatible chat endpoint whose tool loop the
//! gateway runs itself, so an application that is not an MCP client (a
//! chat UI, a backend job, any OpenAI SDK user) gets governed MCP tools
//! with one HTTP call.
//!
//! - `POST /v1/chat/completions`: the model is a registry entry
//!   (`models/{name}`, [`crate::config::models`]); the tools offered are the
//!   caller's on `/mcp`, as named there ([`tools`]); the loop ([`run`])
//!   calls the model ([`model_call`], in either provider's wire,
//!   [`provider`]) and runs its tool calls through the pipeline; the answer
//!   is OpenAI's ([`answer`]).
//! - `GET /v1/models[/{name}]`: the models this caller may use.
//!
//! Authenticated as `/mcp` is (a token for `/mcp` opens it), and governed
//! the same way: a model the caller may not use is unknown (404) like a
//! server it may not see. The caller's credential never reaches the
//! provider: the provider's key comes from the model's secret.
//!
//! One trace per request: an `invoke_agent` request span, a `chat` span
//! per model call and an `execute_tool` span per tool call, with the
//! pipeline's own spans (policy, limits, upstream attempts) under it.

mod answer;
mod model_call;
mod outcome;
mod provider;
mod request;
mod run;
mod tools;
mod turn;

/// The most of one upstream answer an agent request reads (a tool's
/// result, a page of tools): up to 16 calls are read side by side, and the
/// model sees only the first 64 KiB of each ([`turn`]).
pub(super) const MAX_READ_BYTES: usize = 1024 * 1024;

use super::ingest::{self, Route};
use super::{respond, Ctx, Gateway};
use crate::body::Body;
use crate::config::Model;
use crate::error::GatewayError;
use crate::observe::collect::note;
use crate::ports::{Clock, Platform};
use http::{Method, Response};
use request::ChatRequest;
use serde_json::json;
use std::rc::Rc;

impl<P: Platform + Clone + 'static> Ctx<'_, P> {
    /// `/v1/chat/completions` or `/v1/models`. `self.route` is `/mcp`'s,
    /// whose tools the loop uses; `route` is the one requested.
    /// `gw` is the gateway `self.gw` borrows: a streamed answer runs the
    /// loop after this returns, so it holds the gateway itself.
    pub(super) async fn agent(
        &self,
        route: &Route,
        req: http::Request<Vec<u8>>,
        gw: &Rc<Gateway>,
    ) -> Result<Response<Body>, GatewayError> {
        match (route, req.method()) {
            (Route::Models(name), &Method::GET) => self.models_list(name.as_deref()).await,
            (Route::Models(_), _) => Err(GatewayError::MethodNotAllowed { allow: "GET" }),
            (_, &Method::POST) => self.chat(req, gw).await,
            _ => Err(GatewayError::MethodNotAllowed { allow: "POST" }),
        }
    }

    /// The models the caller may use, in OpenAI's list shape; or one of
    /// them (`name`), as OpenAI answers `GET /v1/models/{model}`.
    async fn models_list(&self, name: Option<&str>) -> Result<Response<Body>, GatewayError> {
        let describe = |m: &Model| {
            json!({
                "id": m.name, "object": "model", "created": 0, "owned_by": "mcp-edge",
                "description": m.description, "provider": m.provider.otel_name(),
            })
        };
        let body = match name {
            Some(name) => describe(&*self.model(name).await?),
            None => {
                let models = self.gw.models.get(self.p).await?;
                let data: Vec<_> = models
                    .models
                    .iter()
                    .filter(|m| self.gate.model(m))
                    .map(|m| describe(m))
                    .collect();
                json!({"object": "list", "data": data})
            }
        };
        Ok(respond::private(respond::json(
            body.to_string().into_bytes(),
        )))
    }

    async fn chat(
        &self,
        req: http::Request<Vec<u8>>,
        gw: &Rc<Gateway>,
    ) -> Result<Response<Body>, GatewayError> {
        // JSON and within the body limit: a form a web page could post
        // without asking is not.
        ingest::check_json_body(req.headers(), req.body().len(), &self.gw.settings)?;
        let chat = ChatRequest::parse(req.body())?;
        let model = self.model(&chat.model).await?;
        if let Some(what) = provider::refuses(model.provider, &chat.passed) {
            return Err(GatewayError::InvalidRequest(format!(
                "'{what}' is not supported by model '{}' ({} wire)",
                model.name,
                model.provider.otel_name()
            )));
        }
        note("gen_ai.operation.name", "invoke_agent".into());
        note("gen_ai.request.model", model.name.clone().into());
        let head = answer::Head {
            id: self.completion_id(),
            created: self.p.clock().now_ms() / 1000,
            model: model.name.clone(),
        };
        if !chat.stream {
            return match self.run_loop(&model, &chat, None).await {
                Ok(out) => Ok(answer::completion(&head, &out)),
                Err(f) if f.after_tools => Ok(answer::failed(f.error)),
                Err(f) => Err(f.error),
            };
        }
        // The loop runs as the response's body is read: it owns what this
        // request's view borrows.
        let progress = answer::Progress::new(head);
        let (gw, p, reporting) = (gw.clone(), self.p.clone(), progress.clone());
        let (region, registry, traced) = (
            self.region.clone(),
            self.registry.clone(),
            self.traced.clone(),
        );
        let (identity, gate) = (self.identity.clone(), self.gate.clone());
        let upstream_limit = self.upstream_limit;
        let run = async move {
            let ctx = Ctx {
                gw: &gw,
                p: &p,
                route: Route::Aggregate,
                region,
                registry,
                identity,
                gate,
                traced,
                upstream_limit,
            };
            let out = ctx.run_loop(&model, &chat, Some(&reporting)).await;
            out.map_err(|f| f.error)
        };
        Ok(answer::stream(progress, Box::pin(run)))
    }

    /// The model `name`, when it exists and the caller may use it; a model
    /// it may not use is as unknown as one that does not exist.
    async fn model(&self, name: &str) -> Result<Rc<Model>, GatewayError> {
        let models = self.gw.models.get(self.p).await?;
        models
            .get(name)
            .filter(|m| self.gate.model(m))
            .cloned()
            .ok_or_else(|| {
                GatewayError::NotFound(format!(
                    "no model '{name}' (GET /v1/models lists the models you may use)"
                ))
            })
    }

    fn completion_id(&self) -> String {
        let mut bytes = [0u8; 12];
        self.p.random_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("chatcmpl-{hex}")
    }
}
