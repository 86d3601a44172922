//! The gateway's signing key and the tokens it minted, for one isolate.
//!
//! Upstreams that take a minted JWT (see [`credentials`](super::credentials))
//! get one per (caller, server), reused until shortly before it expires. The
//! key is read once per isolate from the `UPSTREAM_SIGNING_KEY` secret; its
//! public half is what `/.well-known/jwks.json` serves. The signing itself is
//! pure ([`identity::mint`](crate::identity::mint)); this is the part that
//! reads secrets, draws randomness and remembers. The same secret also
//! yields, by derivation, the key an upstream's `requestState` is sealed
//! with ([`Minter::state_key`]).

use crate::cache::Bounded;
use crate::identity::mint::{self, Signer};
use crate::identity::sealed::StateKey;
use crate::identity::Principal;
use crate::ports::{Clock, Platform};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::cell::OnceCell;
use std::rc::Rc;

/// Name of the secret holding the upstream signing key (a private JWK).
pub(crate) const SIGNING_KEY_SECRET: &str = "UPSTREAM_SIGNING_KEY";
/// A cached token is replaced this long before it expires.
const RENEW_BEFORE_MS: u64 = 30_000;

/// Mints and remembers upstream credentials.
#[derive(Default)]
pub(crate) struct Minter {
    /// The key, once read: `None` inside when the secret is unset or unusable.
    signer: OnceCell<Option<Rc<Signer>>>,
    /// The key sealed request states are made with, once derived.
    state_key: OnceCell<Option<Rc<StateKey>>>,
    /// Minted tokens by [`mint::cache_key`] and server, valid until
    /// [`RENEW_BEFORE_MS`] before they expire.
    minted: Bounded<(String, String), String>,
    /// Users' connections to OAuth servers: the vault and discovered endpoints.
    pub(crate) oauth: super::oauth::OAuthCache,
}

/// What a token is minted for.
pub(crate) struct Grant<'a> {
    /// The `iss` the gateway signs with.
    pub issuer: &'a str,
    pub principal: &'a Principal,
    pub audience: &'a str,
    pub ttl_secs: u64,
    pub server: &'a str,
}

impl Minter {
    /// The upstream signing key, read once per isolate from its secret.
    pub(crate) async fn signer<P: Platform>(&self, p: &P) -> Option<Rc<Signer>> {
        if let Some(signer) = self.signer.get() {
            return signer.clone();
        }
        let signer = match p.secret(SIGNING_KEY_SECRET).await {
            Some(jwk) => match Signer::from_jwk(&jwk) {
                Ok(s) => Some(Rc::new(s)),
                Err(e) => {
                    tracing::error!("{SIGNING_KEY_SECRET} is not usable: {e}");
                    None
                }
            },
            None => None,
        };
        self.signer.get_or_init(|| signer).clone()
    }

    /// The key an upstream's `requestState` is sealed with, derived from the
    /// signing key's secret; `None` when that secret is unset, and then no
    /// state is relayed (fail closed).
    pub(crate) async fn state_key<P: Platform>(&self, p: &P) -> Option<Rc<StateKey>> {
        if let Some(key) = self.state_key.get() {
            return key.clone();
        }
        let key = p
            .secret(SIGNING_KEY_SECRET)
            .await
            .map(|secret| Rc::new(StateKey::derive(secret.as_bytes())));
        self.state_key.get_or_init(|| key).clone()
    }

    /// A token for `grant`: the cached one while it has time left, else a
    /// freshly signed one. Fails only when there is no signing key.
    pub(crate) async fn token<P: Platform>(
        &self,
        p: &P,
        grant: &Grant<'_>,
    ) -> Result<String, String> {
        let now = p.clock().now_ms();
        let key = (
            mint::cache_key(
                grant.issuer,
                grant.principal,
                grant.audience,
                grant.ttl_secs,
            ),
            grant.server.to_string(),
        );
        if let Some(token) = self.minted.get(&key, now) {
            return Ok(token);
        }
        let signer = self
            .signer(p)
            .await
            .ok_or_else(|| format!("no signing key: set the {SIGNING_KEY_SECRET} secret"))?;
        let mut jti = [0u8; 16];
        p.random_bytes(&mut jti);
        let jti = URL_SAFE_NO_PAD.encode(jti);
        let token = signer.mint(
            grant.issuer,
            grant.principal,
            grant.audience,
            &jti,
            now,
            grant.ttl_secs,
        );
        let ttl_ms = grant.ttl_secs.clamp(1, mint::MAX_TTL_SECS) * 1000;
        let reuse_until = (now + ttl_ms).saturating_sub(RENEW_BEFORE_MS);
        self.minted.insert(key, token.clone(), reuse_until, now);
        Ok(token)
    }
}
