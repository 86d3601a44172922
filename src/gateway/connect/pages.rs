//! The small HTML pages of the connect flow: the page a connect URL opens
//! (who connects what, and the button that starts it), and the outcome or
//! error of a step. Never framed, no script, nothing loaded, no referrer.

use super::CONFIRM_COOKIE;
use crate::body::Body;
use crate::error::GatewayError;
use crate::upstream::oauth::flow;
use http::{header, Response, StatusCode};

/// The page a connect URL opens: who connects which server, and a button.
pub(super) fn confirmation(
    server: &str,
    owner: &str,
    ticket: &str,
    confirm: &str,
    base: &str,
) -> Response<Body> {
    let text = format!(
        "You are about to connect your own account at '{server}' to the gateway caller '{owner}'. \
         Calls that caller makes to '{server}' will act as you. Continue only if that caller is you."
    );
    let form = format!(
        "<form method=\"post\" action=\"/connect/{s}\"><input type=\"hidden\" name=\"ticket\" value=\"{t}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"{c}\"><button type=\"submit\">Connect {s}</button></form>",
        s = escape(server),
        t = escape(ticket),
        c = escape(confirm),
    );
    let mut page = page_with(StatusCode::OK, &format!("Connect {server}"), &text, &form);
    let secure = if base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{CONFIRM_COOKIE}={confirm}; Path=/connect; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        flow::CONNECT_TTL_MS / 1000
    );
    page.headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("a valid cookie"));
    page
}

/// An error, as a page for the browser.
pub(super) fn error_page(e: GatewayError) -> Response<Body> {
    let status = e.status();
    let status = if status == StatusCode::OK {
        StatusCode::BAD_GATEWAY
    } else {
        status
    };
    page(status, "Not connected", &e.to_string())
}

/// A small HTML page.
pub(super) fn page(status: StatusCode, title: &str, text: &str) -> Response<Body> {
    page_with(status, title, text, "")
}

/// A small HTML page with `extra` markup (already escaped) after the text.
/// Never framed (clickjacking), no scripts, nothing loaded.
fn page_with(status: StatusCode, title: &str, text: &str, extra: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body><main>\
         <h1>{t}</h1><p>{x}</p>{extra}</main></body></html>",
        t = escape(title),
        x = escape(text)
    );
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header("x-frame-options", "DENY")
        .header("referrer-policy", "no-referrer")
        .body(Body::Full(html.into_bytes()))
        .expect("static headers")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
