//! Telemetry tests' helpers: the collector installed as the process's
//! subscriber, a harness exporting to `http://otel.test` whose posts are
//! kept, and readers of the OTLP JSON posted.

use super::Harness;
use mcp_edge::body::Body;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;

pub const EXPORT_KEY: &str = "otlp-secret-4f1c";

pub fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    fn now_ns() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    }
    let subscriber = tracing_subscriber::registry().with(mcp_edge::observe::Collector::new(now_ns));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// One post the receiver got: (signal, headers, JSON body).
pub type Post = (String, http::HeaderMap, Value);

/// A harness exporting to `http://otel.test`, whose posts are kept.
pub fn harness(extra: &[(&str, &str)]) -> (Harness, Rc<RefCell<Vec<Post>>>) {
    install();
    let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel.test/")];
    vars.extend_from_slice(extra);
    let settings = mcp_edge::config::Settings::from_vars(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let h = Harness::with_settings(settings);
    let posts: Rc<RefCell<Vec<Post>>> = Rc::default();
    for signal in ["traces", "logs", "metrics"] {
        let posts = posts.clone();
        h.p.http
            .mount_fn(&format!("http://otel.test/v1/{signal}"), move |req| {
                let body = serde_json::from_slice(req.body()).expect("an OTLP JSON body");
                posts
                    .borrow_mut()
                    .push((signal.to_string(), req.headers().clone(), body));
                Box::pin(async { http::Response::new(Body::Full(b"{}".to_vec())) })
            });
    }
    h.p.runtime.secrets.borrow_mut().insert(
        "OTEL_EXPORTER_OTLP_HEADERS".into(),
        format!("x-otlp-key={EXPORT_KEY}"),
    );
    (h, posts)
}

/// Sends `req`, runs the after-response work, and returns what was posted
/// for it.
pub async fn exported(
    h: &Harness,
    posts: &Rc<RefCell<Vec<Post>>>,
    req: http::Request<Vec<u8>>,
) -> (u16, Vec<Post>) {
    posts.borrow_mut().clear();
    let status = h.send(req).await.status;
    tokio::time::timeout(std::time::Duration::from_secs(10), h.p.run_deferred())
        .await
        .expect("the export finishes");
    (status, posts.borrow().clone())
}

pub fn signal<'a>(posts: &'a [Post], name: &str) -> Option<&'a Value> {
    posts.iter().find(|(s, _, _)| s == name).map(|(_, _, b)| b)
}

pub fn spans_of(posts: &[Post]) -> Vec<Value> {
    let Some(t) = signal(posts, "traces") else {
        return Vec::new();
    };
    t["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .unwrap()
        .clone()
}

pub fn attr(item: &Value, key: &str) -> Value {
    item["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| a["value"].clone())
        .unwrap_or(Value::Null)
}

pub fn s(v: &str) -> Value {
    json!({ "stringValue": v })
}

pub fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

/// Today's UTC day, as usage rows name it.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .date_naive()
        .to_string()
}
