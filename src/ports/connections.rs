//! The store of users' connections to OAuth-protected servers (see
//! `upstream/oauth/`): one record per principal and server, and the
//! connects in flight, each usable once.
//!
//! What a record holds in clear is what `/connections` and the admin view
//! show (who, which server, when, which scopes); the tokens themselves are
//! only ever stored sealed ([`crate::identity::vault`]).

use super::PortError;
use serde::{Deserialize, Serialize};

/// One principal's connection to one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// The principal's key (`Principal::key`).
    pub owner: String,
    pub server: String,
    /// Changes with every write, so two refreshes cannot both land
    /// ([`Connections::replace`]).
    pub generation: u64,
    /// The tokens, sealed under the owner and server.
    pub sealed: String,
    /// When the access token expires (ms since the epoch; 0: not said).
    pub expires_ms: u64,
    /// Whether a refresh token is held.
    pub refreshable: bool,
    /// The scopes granted, as the authorization server said.
    #[serde(default)]
    pub scope: String,
    pub connected_ms: u64,
    #[serde(default)]
    pub refreshed_ms: u64,
    /// A refresh in progress holds the record until then: others wait for
    /// its result rather than refreshing the same token again.
    #[serde(default)]
    pub refreshing_until_ms: u64,
}

/// A connect in flight: started at `/connect/{server}`, finished by the
/// callback that presents its `state` from the same browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingConnect {
    pub owner: String,
    pub server: String,
    /// The PKCE verifier, sealed under the state.
    pub verifier: String,
    /// Digest of the binding cookie the starting browser was given.
    pub browser: String,
    /// The authorization server's issuer the flow went to.
    pub issuer: String,
    pub expires_ms: u64,
}

/// Connections, readable from any instance (a Durable Object per principal
/// on Workers, the `sessions` store on Spin).
#[allow(async_fn_in_trait)]
pub trait Connections {
    async fn get(&self, owner: &str, server: &str) -> Result<Option<ConnectionRecord>, PortError>;
    /// Stores `record` whatever is there (a new connect replaces the old).
    async fn put(&self, record: &ConnectionRecord) -> Result<(), PortError>;
    /// Stores `record` only if the stored one is still of generation
    /// `expected`; whether it did.
    async fn replace(&self, record: &ConnectionRecord, expected: u64) -> Result<bool, PortError>;
    /// Removes the record; the one removed.
    async fn remove(
        &self,
        owner: &str,
        server: &str,
    ) -> Result<Option<ConnectionRecord>, PortError>;
    /// One owner's records, or (`None`) everyone's, at most `limit`.
    async fn list(
        &self,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectionRecord>, PortError>;
    /// Holds a connect in flight under the digest of its state.
    async fn hold(&self, state: &str, pending: &PendingConnect) -> Result<(), PortError>;
    /// Takes the connect held under `state`, once: a second take, from
    /// anyone, finds nothing; so does a take after it expired.
    async fn take(&self, state: &str, now_ms: u64) -> Result<Option<PendingConnect>, PortError>;
    /// Whether this is the first claim of `key` (kept until `expires_ms`):
    /// what makes a connect link usable once.
    async fn claim(&self, key: &str, expires_ms: u64) -> Result<bool, PortError>;
}
