//! The playground's static files (`web/playground/`), for a platform that
//! has no static-asset server of its own in front of the component: Spin.
//! On Workers the same folder is served by Workers Static Assets
//! (`[assets]` in `wrangler.toml`) before the Worker runs.
//!
//! Both builds send the same headers: they come from `web/_headers`, the
//! file Workers Static Assets reads (its format: a line with a path
//! pattern, then indented `Name: value` lines), parsed here. Paths follow
//! Workers' `auto-trailing-slash` HTML handling: `/playground` redirects to
//! `/playground/`, which is `index.html`, and `/playground/index.html`
//! redirects there too.
//!
//! Platform-free, so it is tested natively (`tests` below and
//! `tests/playground_assets.rs`).

/// The folder's files, embedded at build time: (path under `/playground/`,
/// content type, bytes).
pub(crate) const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        HTML,
        include_bytes!("../../web/playground/index.html"),
    ),
    (
        "style.css",
        CSS,
        include_bytes!("../../web/playground/style.css"),
    ),
    ("app.js", JS, include_bytes!("../../web/playground/app.js")),
    ("api.js", JS, include_bytes!("../../web/playground/api.js")),
    (
        "form.js",
        JS,
        include_bytes!("../../web/playground/form.js"),
    ),
    (
        "render.js",
        JS,
        include_bytes!("../../web/playground/render.js"),
    ),
    (
        "explore.js",
        JS,
        include_bytes!("../../web/playground/explore.js"),
    ),
    (
        "chat.js",
        JS,
        include_bytes!("../../web/playground/chat.js"),
    ),
    (
        "approvals.js",
        JS,
        include_bytes!("../../web/playground/approvals.js"),
    ),
    (
        "snippets.js",
        JS,
        include_bytes!("../../web/playground/snippets.js"),
    ),
    (
        "signin.js",
        JS,
        include_bytes!("../../web/playground/signin.js"),
    ),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// `web/_headers`, as Workers Static Assets reads it.
pub(crate) const HEADERS_FILE: &str = include_str!("../../web/_headers");

/// Where the playground lives.
const PREFIX: &str = "/playground";

/// What a request for `path` gets, when `path` is the playground's:
/// `Some((status, headers, body))`; `None` for every other path (the
/// gateway's). Only `GET` and `HEAD` are served (405 otherwise).
pub(crate) fn serve(method: &http::Method, path: &str) -> Option<http::Response<Vec<u8>>> {
    let rest = path.strip_prefix(PREFIX)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let mut response = if method != http::Method::GET && method != http::Method::HEAD {
        let mut r = http::Response::new(b"Method Not Allowed".to_vec());
        *r.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        r
    } else {
        match rest {
            "" | "/index.html" => redirect(&format!("{PREFIX}/")),
            "/" => file("index.html")?,
            _ => file(&rest[1..]).unwrap_or_else(not_found),
        }
    };
    for (name, value) in headers_for(HEADERS_FILE, path) {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    if method == http::Method::HEAD {
        response.body_mut().clear();
    }
    Some(response)
}

fn file(name: &str) -> Option<http::Response<Vec<u8>>> {
    let (_, kind, bytes) = FILES.iter().find(|(n, _, _)| *n == name)?;
    let mut r = http::Response::new(bytes.to_vec());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(kind),
    );
    Some(r)
}

fn redirect(to: &str) -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(Vec::new());
    *r.status_mut() = http::StatusCode::TEMPORARY_REDIRECT;
    if let Ok(v) = http::HeaderValue::from_str(to) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn not_found() -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(b"Not Found".to_vec());
    *r.status_mut() = http::StatusCode::NOT_FOUND;
    r
}

/// The headers `_headers` gives `path`: those of every rule whose pattern
/// matches it (a pattern is a path, or a path prefix ending in `*`), in
/// file order. Lines starting with `#` are comments. Linear in the file.
pub(crate) fn headers_for<'a>(file: &'a str, path: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut matching = false;
    for line in file.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            matching = match trimmed.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == trimmed,
            };
        } else if matching {
            if let Some((name, value)) = trimmed.split_once(':') {
                out.push((name.trim(), value.trim()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_auto_trailing_slash_and_carry_the_headers() {
        let get = http::Method::GET;
        let r = serve(&get, "/playground").unwrap();
        assert_eq!(r.status(), 307);
        assert_eq!(r.headers()["location"], "/playground/");
        let r = serve(&get, "/playground/").unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.headers().contains_key("content-security-policy"));
        assert_eq!(serve(&get, "/playground/app.js").unwrap().status(), 200);
        assert_eq!(serve(&get, "/playground/nope.js").unwrap().status(), 404);
        assert_eq!(
            serve(&http::Method::POST, "/playground/").unwrap().status(),
            405
        );
        assert!(serve(&get, "/playgroundx").is_none());
        assert!(serve(&get, "/mcp").is_none());
        let head = serve(&http::Method::HEAD, "/playground/").unwrap();
        assert!(head.body().is_empty());
    }

    #[test]
    fn every_file_of_the_folder_is_embedded_and_every_reference_resolves() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/playground");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(n, _, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "web/playground and FILES differ");
        // What the page loads (href/src) and what the modules import.
        for (name, _, bytes) in FILES {
            let text = std::str::from_utf8(bytes).unwrap();
            for marker in ["href=\"", "src=\"", "from \"./"] {
                for part in text.split(marker).skip(1) {
                    let target = part.split('"').next().unwrap().trim_start_matches("./");
                    if target.starts_with('#') || target.contains(':') || target.contains('$') {
                        continue;
                    }
                    assert!(
                        FILES.iter().any(|(n, _, _)| *n == target),
                        "{name} refers to {target}, which is not served"
                    );
                }
            }
        }
    }

    #[test]
    fn the_headers_file_is_read_as_workers_reads_it() {
        let file = "# c\n/a/*\n  X-One: 1\n  X-Two: two: 2\n/b\n  X-Three: 3\n";
        assert_eq!(
            headers_for(file, "/a/x"),
            [("X-One", "1"), ("X-Two", "two: 2")]
        );
        assert_eq!(headers_for(file, "/b"), [("X-Three", "3")]);
        assert!(headers_for(file, "/b/c").is_empty());
    }
}
