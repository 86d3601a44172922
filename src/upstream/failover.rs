//! Which regional endpoint of a server to try first, and in which order to fall
//! back. Pure ordering; the client does the trying and the logging.

use crate::config::{Endpoint, Server};

/// Endpoints in the order to try them:
/// 1. the endpoint an upstream session already lives on (sessions do not move),
/// 2. the endpoint in the caller's region,
/// 3. the rest in registry order.
pub(crate) fn order<'a>(
    server: &'a Server,
    region: Option<&str>,
    sticky_url: Option<&str>,
) -> Vec<&'a Endpoint> {
    order_endpoints(&server.endpoints, region, sticky_url)
}

/// The same order over any regional endpoints (a model's too).
pub(crate) fn order_endpoints<'a>(
    endpoints: &'a [Endpoint],
    region: Option<&str>,
    sticky_url: Option<&str>,
) -> Vec<&'a Endpoint> {
    let mut out: Vec<&Endpoint> = Vec::with_capacity(endpoints.len());
    let mut push = |ep: &'a Endpoint| {
        if !out.iter().any(|e| std::ptr::eq(*e, ep)) {
            out.push(ep);
        }
    };
    if let Some(url) = sticky_url {
        endpoints
            .iter()
            .filter(|e| e.url == url)
            .for_each(&mut push);
    }
    if let Some(region) = region {
        endpoints
            .iter()
            .filter(|e| e.region == region)
            .for_each(&mut push);
    }
    endpoints.iter().for_each(push);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Server {
        Server::parse(
            "s",
            r#"{"endpoints":[{"region":"us","url":"http://us/"},{"region":"eu","url":"http://eu/"},{"region":"ap","url":"http://ap/"}]}"#,
        )
        .unwrap()
    }

    fn regions(eps: Vec<&Endpoint>) -> Vec<&str> {
        eps.into_iter().map(|e| e.region.as_str()).collect()
    }

    #[test]
    fn caller_region_first_then_registry_order() {
        let s = server();
        assert_eq!(regions(order(&s, None, None)), ["us", "eu", "ap"]);
        assert_eq!(regions(order(&s, Some("eu"), None)), ["eu", "us", "ap"]);
        assert_eq!(regions(order(&s, Some("mars"), None)), ["us", "eu", "ap"]);
    }

    #[test]
    fn an_existing_session_pins_its_endpoint() {
        let s = server();
        assert_eq!(
            regions(order(&s, Some("eu"), Some("http://ap/"))),
            ["ap", "eu", "us"]
        );
        assert_eq!(
            regions(order(&s, Some("eu"), Some("http://gone/"))),
            ["eu", "us", "ap"]
        );
    }
}
