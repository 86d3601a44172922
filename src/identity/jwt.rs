//! Verifying an inbound JWT and mapping its claims to a [`Principal`].
//!
//! Order matters: the token is parsed, its `alg` must be one the issuer
//! allows (never `none`), the key is chosen by `kid` and must be of the type
//! that algorithm needs, the signature is checked, and only then are the
//! claims read: `exp` (required) and `nbf` with the issuer's leeway, `iss`
//! exactly, `aud` against the accepted audiences. Every failure says why.

use super::config::{ClaimNames, Issuer};
use super::jwks::{Alg, KeySet, Material};
use super::Principal;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa};
use jwt_compact::{AlgorithmExt, Claims, Token, UntrustedToken};
use serde_json::{Map, Value};

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The token names a key the set does not hold (worth one JWKS refresh).
    UnknownKid(String),
    Invalid(String),
}

impl Failure {
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::UnknownKid(kid) => format!("no key with kid '{kid}'"),
            Failure::Invalid(why) => why.clone(),
        }
    }
}

/// A token that passed, with when it stops being valid and the audiences
/// it names (its own `aud`, checked again on every reuse of the verdict).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub principal: Principal,
    pub expires_ms: u64,
    pub audiences: Vec<String>,
}

impl Verified {
    /// Whether the token names one of `accepted` as its audience.
    pub(crate) fn is_for(&self, accepted: &[String]) -> bool {
        self.audiences.iter().any(|a| accepted.contains(a))
    }
}

/// The issuer a token claims, read before the signature is checked (only to
/// pick the issuer's keys; nothing else is trusted until verification).
pub fn claimed_issuer(token: &str) -> Result<String, Failure> {
    let untrusted = UntrustedToken::new(token)
        .map_err(|e| Failure::Invalid(format!("malformed token: {e}")))?;
    let claims: Claims<Map<String, Value>> = untrusted
        .deserialize_claims_unchecked()
        .map_err(|e| Failure::Invalid(format!("malformed claims: {e}")))?;
    match claims.custom.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        _ => Err(Failure::Invalid("the token has no issuer (iss)".into())),
    }
}

/// Verifies `token` for `issuer`. `keys` are the issuer's keys (inline and
/// fetched); `hs256` the shared secret when the issuer enables HS256;
/// `audiences` the `aud` values accepted.
pub fn verify(
    token: &str,
    issuer: &Issuer,
    keys: &KeySet,
    hs256: Option<&[u8]>,
    audiences: &[String],
    now_ms: u64,
) -> Result<Verified, Failure> {
    let invalid = |why: String| Failure::Invalid(why);
    let untrusted =
        UntrustedToken::new(token).map_err(|e| invalid(format!("malformed token: {e}")))?;
    let token = check_signature(&untrusted, issuer, keys, hs256)?;
    let claims = token.claims();
    let now = (now_ms / 1000) as i64;
    let leeway = issuer.leeway_secs as i64;
    let exp = claims
        .expiration
        .ok_or_else(|| invalid("the token has no expiry (exp)".into()))?
        .timestamp();
    if now > exp + leeway {
        return Err(invalid("the token has expired".into()));
    }
    if let Some(nbf) = claims.not_before {
        if now + leeway < nbf.timestamp() {
            return Err(invalid("the token is not valid yet (nbf)".into()));
        }
    }
    let custom = &claims.custom;
    if custom.get("iss").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
        return Err(invalid(
            "the token's issuer (iss) is not the expected one".into(),
        ));
    }
    // `aud` is one StringOrURI or a list of them (never split on spaces).
    let auds: Vec<String> = match custom.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        other => strings(other),
    };
    let principal = principal(custom, &issuer.claims, &issuer.issuer)?;
    let verified = Verified {
        principal,
        expires_ms: (exp.max(0) as u64) * 1000,
        audiences: auds,
    };
    if !verified.is_for(audiences) {
        return Err(invalid(format!(
            "the token's audience {:?} is not this endpoint",
            verified.audiences
        )));
    }
    Ok(verified)
}

/// Checks the token's algorithm against the issuer's and its signature
/// against the key it names (or the HS256 secret).
fn check_signature(
    untrusted: &UntrustedToken<'_>,
    issuer: &Issuer,
    keys: &KeySet,
    hs256: Option<&[u8]>,
) -> Result<Token<Map<String, Value>>, Failure> {
    let invalid = |why: String| Failure::Invalid(why);
    let alg_name = untrusted.algorithm().to_string();
    let alg = Alg::parse(&alg_name)
        .ok_or_else(|| invalid(format!("algorithm '{alg_name}' is not accepted")))?;
    if !issuer.algorithms.contains(&alg) {
        return Err(invalid(format!(
            "algorithm {alg_name} is not accepted for issuer {}",
            issuer.issuer
        )));
    }
    let kid = untrusted.header().key_id.clone();
    let checked = match alg {
        Alg::Hs256 => {
            let secret = hs256.ok_or_else(|| invalid("HS256 is not configured".into()))?;
            Hs256
                .validator::<Map<String, Value>>(&Hs256Key::new(secret))
                .validate(untrusted)
        }
        _ => {
            let key = keys.find(kid.as_deref(), alg).ok_or_else(|| match &kid {
                Some(k) => Failure::UnknownKid(k.clone()),
                None => invalid(format!(
                    "no single {alg_name} key to verify a token without kid"
                )),
            })?;
            match &key.material {
                Material::Rsa(k) if alg == Alg::Rs256 => Rsa::rs256()
                    .validator::<Map<String, Value>>(k.as_ref().as_ref())
                    .validate(untrusted),
                Material::Es256(k) if alg == Alg::Es256 => Es256.validator(k).validate(untrusted),
                Material::EdDsa(k) if alg == Alg::EdDsa => Ed25519.validator(k).validate(untrusted),
                other => {
                    return Err(invalid(format!(
                        "the key named by the token is for {}, not {alg_name}",
                        other.alg().name()
                    )))
                }
            }
        }
    };
    checked.map_err(|e| invalid(format!("signature check failed: {e}")))
}

/// Maps claims to a principal through the issuer's claim names.
fn principal(
    custom: &Map<String, Value>,
    names: &ClaimNames,
    issuer: &str,
) -> Result<Principal, Failure> {
    let subject = match custom.get(&names.subject) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(Failure::Invalid(format!(
                "the token has no subject ({})",
                names.subject
            )))
        }
    };
    let mut scopes = strings(custom.get(&names.scopes));
    if scopes.is_empty() && names.scopes == "scope" {
        scopes = strings(custom.get("scp"));
    }
    Ok(Principal {
        subject,
        teams: strings(custom.get(&names.teams)),
        roles: strings(custom.get(&names.roles)),
        scopes,
        via: format!("jwt:{issuer}"),
        client: None,
    })
}

/// A claim that is a list of strings, or one space- or comma-separated string.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}
