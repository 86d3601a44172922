//! Gateway settings from platform variables (Workers `[vars]`, Spin variables).
//!
//! Every setting has a sane default, so an empty environment is a working
//! gateway. Values that do not parse are an error naming the variable.

use std::collections::BTreeMap;

/// Checked settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Browser origins allowed to call the gateway (`*` allows all), besides
    /// the origin of `PUBLIC_URL`. Requests without `Origin` always pass.
    pub allowed_origins: Vec<String>,
    pub allow_any_origin: bool,
    /// Region assumed when the request's location maps to none.
    pub default_region: Option<String>,
    /// Edge location (Cloudflare colo or continent code, upper case) -> region.
    pub region_map: BTreeMap<String, String>,
    /// How long a loaded registry is served from isolate memory.
    pub registry_ttl_ms: u64,
    /// Lifetime of a client session from its creation.
    pub session_ttl_ms: u64,
    /// How long an isolate reuses a session record it read (0: always ask the store).
    pub session_cache_ms: u64,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest upstream answer the gateway buffers (lists it merges).
    pub max_upstream_bytes: usize,
    /// The gateway's public base URL (resource URLs, default audiences, the
    /// `iss` of minted tokens); default: the scheme and host of each request.
    pub public_url: Option<String>,
    /// The browser origin of `public_url` (`scheme://host[:port]`, lower
    /// case, default port dropped): trusted as an `Origin` like the
    /// `ALLOWED_ORIGINS`.
    pub public_origin: Option<String>,
    /// Scopes every authenticated caller must hold (403 otherwise).
    pub required_scopes: Vec<String>,
    /// Scopes listed in the protected-resource metadata.
    pub scopes_supported: Vec<String>,
    /// How long a server's tool definitions (schemas, annotations) are reused.
    pub tool_catalog_ttl_ms: u64,
    /// Whether `tools/call` arguments are checked against the tool's
    /// `inputSchema` before they are forwarded.
    pub validate_arguments: bool,
    /// How often a call waiting for a user's approval checks for the answer.
    pub approval_poll_ms: u64,
    /// How many approval questions (elicitations the call waits on) one
    /// caller may hold open at once; past it, calls get a pending approval.
    pub approval_waits_per_caller: u64,
    /// How many sessions one caller (an anonymous one: one client address)
    /// may open per minute; each is stored until it expires.
    pub sessions_per_minute: u64,
    /// How tools and prompts are named on `/mcp`.
    pub names: Naming,
    /// Where telemetry is exported, and how much of it.
    pub telemetry: super::telemetry::Telemetry,
    /// The role whose holders may use the admin API (`/admin/`); `None`:
    /// the admin API is off.
    pub admin_role: Option<String>,
}

/// How `/mcp` names the tools and prompts of the servers behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Naming {
    /// Always `{server}__{name}` (the default: names never change when a
    /// server is added).
    #[default]
    Prefixed,
    /// The server's own names when nothing can collide (the caller sees one
    /// server), `{server}__{name}` otherwise.
    OnCollision,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allowed_origins: Vec::new(),
            allow_any_origin: false,
            default_region: None,
            region_map: BTreeMap::new(),
            registry_ttl_ms: 30_000,
            session_ttl_ms: 24 * 3600 * 1000,
            session_cache_ms: 1000,
            max_body_bytes: 1024 * 1024,
            max_upstream_bytes: 16 * 1024 * 1024,
            public_url: None,
            public_origin: None,
            required_scopes: Vec::new(),
            scopes_supported: Vec::new(),
            tool_catalog_ttl_ms: 60_000,
            validate_arguments: true,
            approval_poll_ms: 250,
            approval_waits_per_caller: 4,
            sessions_per_minute: 120,
            names: Naming::Prefixed,
            telemetry: Default::default(),
            admin_role: None,
        }
    }
}

impl Settings {
    /// Every variable the settings read (Spin declares them in lower case).
    pub const VARIABLES: &'static [&'static str] = &[
        "ALLOWED_ORIGINS",
        "DEFAULT_REGION",
        "REGION_MAP",
        "REGISTRY_TTL_SECS",
        "SESSION_TTL_SECS",
        "SESSION_CACHE_MS",
        "MAX_BODY_BYTES",
        "MAX_UPSTREAM_BYTES",
        "PUBLIC_URL",
        "REQUIRED_SCOPES",
        "SCOPES_SUPPORTED",
        "TOOL_CATALOG_TTL_SECS",
        "VALIDATE_ARGUMENTS",
        "APPROVAL_POLL_MS",
        "APPROVAL_WAITS_PER_CALLER",
        "SESSIONS_PER_MINUTE",
        "NAMES_ON_MCP",
        "ADMIN_ROLE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_SERVICE_NAME",
    ];

    /// The gateway's own secrets, read by name besides [`Self::VARIABLES`].
    pub const SECRETS: &'static [&'static str] = &[
        "UPSTREAM_SIGNING_KEY",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "CONNECTIONS_KEY",
    ];

    /// Whether `name` is one of the gateway's own settings or secrets
    /// (either case: Spin names variables in lower case). A registry entry
    /// or an issuer naming one as the secret to send upstream or verify
    /// with is refused: whoever may write those documents (the admin API)
    /// must not be able to send the gateway's signing key to a server of
    /// their choosing.
    pub fn is_own(name: &str) -> bool {
        let name = name.trim();
        Self::VARIABLES
            .iter()
            .chain(Self::SECRETS)
            .any(|own| own.eq_ignore_ascii_case(name))
    }

    /// Reads settings through `var` (name -> value).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(v) = var("ALLOWED_ORIGINS") {
            for origin in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if origin == "*" {
                    s.allow_any_origin = true;
                } else {
                    s.allowed_origins
                        .push(origin.trim_end_matches('/').to_ascii_lowercase());
                }
            }
        }
        s.default_region = var("DEFAULT_REGION")
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty());
        if let Some(v) = var("REGION_MAP") {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (loc, region) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("REGION_MAP: '{pair}' is not LOCATION=region"))?;
                s.region_map.insert(
                    loc.trim().to_ascii_uppercase(),
                    region.trim().to_ascii_lowercase(),
                );
            }
        }
        number(&var, "REGISTRY_TTL_SECS", |n| s.registry_ttl_ms = n * 1000)?;
        number(&var, "SESSION_TTL_SECS", |n| s.session_ttl_ms = n * 1000)?;
        // 0 is meaningful here (no cache).
        whole_number(&var, "SESSION_CACHE_MS", |n| s.session_cache_ms = n)?;
        number(&var, "MAX_BODY_BYTES", |n| s.max_body_bytes = n as usize)?;
        number(&var, "MAX_UPSTREAM_BYTES", |n| {
            s.max_upstream_bytes = n as usize
        })?;
        if let Some(v) = var("PUBLIC_URL").map(|v| v.trim().trim_end_matches('/').to_string()) {
            if !v.is_empty() {
                let uri = v
                    .parse::<http::Uri>()
                    .ok()
                    .filter(|u| u.scheme().is_some() && u.host().is_some())
                    .ok_or_else(|| format!("PUBLIC_URL: '{v}' is not an absolute URL"))?;
                s.public_origin = Some(origin_of(&uri));
                s.public_url = Some(v);
            }
        }
        s.admin_role = var("ADMIN_ROLE")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        s.required_scopes = list(var("REQUIRED_SCOPES"));
        s.scopes_supported = list(var("SCOPES_SUPPORTED"));
        for scope in &s.required_scopes {
            if !s.scopes_supported.contains(scope) {
                s.scopes_supported.push(scope.clone());
            }
        }
        number(&var, "TOOL_CATALOG_TTL_SECS", |n| {
            s.tool_catalog_ttl_ms = n * 1000
        })?;
        number(&var, "APPROVAL_POLL_MS", |n| s.approval_poll_ms = n)?;
        number(&var, "SESSIONS_PER_MINUTE", |n| s.sessions_per_minute = n)?;
        // 0 is meaningful (never hold a question open).
        whole_number(&var, "APPROVAL_WAITS_PER_CALLER", |n| {
            s.approval_waits_per_caller = n
        })?;
        if let Some(v) = var("NAMES_ON_MCP") {
            s.names = match v.trim().to_ascii_lowercase().as_str() {
                "prefixed" => Naming::Prefixed,
                "on_collision" => Naming::OnCollision,
                _ => {
                    return Err(format!(
                        "NAMES_ON_MCP: '{v}' is not prefixed or on_collision"
                    ))
                }
            };
        }
        s.telemetry = super::telemetry::Telemetry::from_vars(&var);
        if let Some(v) = var("VALIDATE_ARGUMENTS") {
            s.validate_arguments = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("VALIDATE_ARGUMENTS: '{v}' is not true or false")),
            };
        }
        Ok(s)
    }

    /// The region to prefer for a request from `location` (colo first, then continent).
    pub(crate) fn region_for(&self, colo: Option<&str>, continent: Option<&str>) -> Option<String> {
        [colo, continent]
            .into_iter()
            .flatten()
            .find_map(|loc| self.region_map.get(&loc.to_ascii_uppercase()).cloned())
            .or_else(|| self.default_region.clone())
    }
}

/// The browser origin of an absolute URL, as an `Origin` header spells it.
fn origin_of(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    match uri.port_u16().filter(|p| Some(*p) != default) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// A comma- or space-separated list.
fn list(v: Option<String>) -> Vec<String> {
    v.map(|v| {
        v.split([',', ' '])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

/// A whole number greater than 0.
fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    set: impl FnOnce(u64),
) -> Result<(), String> {
    let mut read = None;
    whole_number(var, name, |n| read = Some(n))?;
    match read {
        Some(0) => Err(format!("{name}: must be greater than 0")),
        Some(n) => {
            set(n);
            Ok(())
        }
        None => Ok(()),
    }
}

/// A whole number, 0 included.
fn whole_number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    set: impl FnOnce(u64),
) -> Result<(), String> {
    if let Some(v) = var(name) {
        let n: u64 = v
            .trim()
            .parse()
            .map_err(|_| format!("{name}: '{v}' is not a whole number"))?;
        set(n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn empty_environment_gives_defaults() {
        assert_eq!(Settings::from_vars(vars(&[])).unwrap(), Settings::default());
    }

    #[test]
    fn parses_every_variable() {
        let s = Settings::from_vars(vars(&[
            (
                "ALLOWED_ORIGINS",
                "https://App.example/, http://localhost:6274",
            ),
            ("DEFAULT_REGION", "US"),
            ("REGION_MAP", "eu=eu-west, NA=us, FRA=eu-central"),
            ("REGISTRY_TTL_SECS", "5"),
            ("MAX_BODY_BYTES", "2048"),
        ]))
        .unwrap();
        assert_eq!(
            s.allowed_origins,
            ["https://app.example", "http://localhost:6274"]
        );
        assert_eq!(s.registry_ttl_ms, 5000);
        assert_eq!(s.max_body_bytes, 2048);
        assert_eq!(
            s.region_for(Some("FRA"), Some("EU")).as_deref(),
            Some("eu-central")
        );
        assert_eq!(
            s.region_for(Some("CDG"), Some("EU")).as_deref(),
            Some("eu-west")
        );
        assert_eq!(s.region_for(None, Some("AS")).as_deref(), Some("us"));
    }

    #[test]
    fn variables_lists_exactly_what_is_read() {
        let asked = std::cell::RefCell::new(Vec::new());
        Settings::from_vars(|k| {
            asked.borrow_mut().push(k.to_string());
            None
        })
        .unwrap();
        let mut asked = asked.into_inner();
        asked.sort();
        let mut declared = Settings::VARIABLES.to_vec();
        declared.sort();
        assert_eq!(asked, declared);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Settings::from_vars(vars(&[("MAX_BODY_BYTES", "lots")])).unwrap_err();
        assert_eq!(e, "MAX_BODY_BYTES: 'lots' is not a whole number");
        let e = Settings::from_vars(vars(&[("REGION_MAP", "eu")])).unwrap_err();
        assert!(e.contains("REGION_MAP"));
    }
}
