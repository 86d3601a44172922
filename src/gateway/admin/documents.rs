//! Versioned documents: reading one as the admin API reports it, writing a
//! new version of it under optimistic concurrency, and its history.
//!
//! KV holds what the gateway serves; the [`History`] port holds every
//! version the admin API wrote, in order, strongly consistent. A write:
//! 1. reads the current version (below) and compares it with `If-Match`
//!    (412 when another change came first);
//! 2. appends the new revision to the history if its newest version is
//!    still the one read (412 when it is not: two admins cannot both win);
//! 3. publishes the document to KV (or deletes it there).
//!
//! The current version: the history's newest, while it is younger than
//! KV's propagation time (another location may still serve the one
//! before) or KV agrees with it. A document KV holds that the history does
//! not know (seeded by `make seed` or by hand) is reported as the version
//! after the history's newest (0 with no history), and recorded as such
//! before the next change, so a rollback can return to it.

use crate::error::GatewayError;
use crate::ports::{Appended, Clock, History, Kv, Platform, Revision};

/// Who wrote what was found in KV but not in the history.
const OUTSIDE: &str = "outside the admin API";

/// A document as the admin API reports it.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// Its text (`None`: it does not exist).
    pub document: Option<String>,
    /// The version `If-Match` is compared with.
    pub version: u64,
    /// The history's newest version (`None`: no history).
    pub newest: Option<u64>,
    /// Whether KV's document is not in the history yet.
    pub unrecorded: bool,
}

/// A change to make.
pub(crate) struct Change<'a> {
    /// The new text (`None`: delete).
    pub document: Option<String>,
    /// `If-Match`: the version the change was made against.
    pub if_match: Option<u64>,
    /// `create`, `replace`, `delete`, `rollback to N`, ...
    pub action: String,
    /// Who (`via|subject`).
    pub author: &'a str,
    /// How the admin API names the document (for errors).
    pub path: &'a str,
}

/// Reads document `key` as the admin API reports it, with its kept
/// revisions (newest first) the report is made from. `settle_ms` is how
/// long KV may lag a write.
pub(crate) async fn read<P: Platform>(
    p: &P,
    key: &str,
    settle_ms: u64,
) -> Result<(Vec<Revision>, Current), GatewayError> {
    let (revisions, in_kv) =
        futures_util::future::join(p.history().revisions(key), p.kv().get(key)).await;
    let revisions = revisions?;
    let in_kv = in_kv?;
    let now = p.clock().now_ms();
    let current = match revisions.first() {
        Some(newest) if newest.document == in_kv || now < newest.at_ms + settle_ms => Current {
            document: newest.document.clone(),
            version: newest.version,
            newest: Some(newest.version),
            unrecorded: false,
        },
        Some(newest) => Current {
            document: in_kv,
            version: newest.version + 1,
            newest: Some(newest.version),
            unrecorded: true,
        },
        None => Current {
            unrecorded: in_kv.is_some(),
            document: in_kv,
            version: 0,
            newest: None,
        },
    };
    Ok((revisions, current))
}

/// Version `n` among the kept `revisions` of the document at `path`.
pub(crate) fn find(revisions: Vec<Revision>, path: &str, n: u64) -> Result<Revision, GatewayError> {
    revisions
        .into_iter()
        .find(|r| r.version == n)
        .ok_or_else(|| GatewayError::NotFound(format!("{path} version {n}")))
}

/// Writes `change` to document `key`; the version written.
pub(crate) async fn write<P: Platform>(
    p: &P,
    key: &str,
    now: &Current,
    change: Change<'_>,
) -> Result<u64, GatewayError> {
    let lost = |current: Option<u64>| GatewayError::PreconditionFailed {
        path: change.path.to_string(),
        current,
    };
    if change.if_match.is_some_and(|v| v != now.version) {
        return Err(lost(now.document.as_ref().map(|_| now.version)));
    }
    let at_ms = p.clock().now_ms();
    let mut expected = now.newest;
    if now.unrecorded {
        let found = Revision {
            version: now.version,
            document: now.document.clone(),
            author: OUTSIDE.into(),
            at_ms,
            action: "found in KV".into(),
        };
        append(p, key, expected, &found, &lost).await?;
        expected = Some(now.version);
    }
    let version = expected.map_or(1, |v| v + 1);
    let revision = Revision {
        version,
        document: change.document.clone(),
        author: change.author.to_string(),
        at_ms,
        action: change.action,
    };
    append(p, key, expected, &revision, &lost).await?;
    if let Err(e) = publish(p, key, &change.document).await {
        // KV still serves the version before: say so in the history too,
        // or for a while the admin API would report (and a retry take as
        // done) a change callers never see.
        let undone = Revision {
            version: version + 1,
            document: now.document.clone(),
            author: change.author.to_string(),
            at_ms,
            action: format!("not published (KV write failed): back to {}", now.version),
        };
        // KV may have taken the write after all (an answer lost on the
        // way): put back what the history now says, best effort.
        if let Err(e) = publish(p, key, &now.document).await {
            tracing::warn!(key, "the version before could not be put back either: {e}");
        }
        let kept = p.history().append(key, Some(version), &undone).await;
        let note = match kept {
            Ok(Appended::Done) => "the history says so (a new version); retry the change",
            _ => "the history could not say so; read it again before retrying",
        };
        return Err(GatewayError::Unavailable(format!(
            "{} could not be written to KV ({e}); {note}",
            change.path
        )));
    }
    settle(p, key, version).await;
    Ok(version)
}

/// Writes (or deletes) the document in KV.
async fn publish<P: Platform>(
    p: &P,
    key: &str,
    document: &Option<String>,
) -> Result<(), crate::ports::PortError> {
    match document {
        Some(text) => p.kv().put(key, text).await,
        None => p.kv().delete(key).await,
    }
}

/// Two admins' KV writes can land in either order; each writer, once its
/// own is done, makes sure KV holds the newest version, not its own if a
/// newer one was appended meanwhile, and checks again after republishing
/// (a third writer may have come), a few times at most. Best effort:
/// logged when it fails; KV can still end a version behind while writers
/// keep coming, until the next change (the history stays right).
async fn settle<P: Platform>(p: &P, key: &str, mine: u64) {
    let mut published = mine;
    for _ in 0..SETTLE_ROUNDS {
        let newest = match p.history().revisions(key).await {
            Ok(revisions) => revisions.into_iter().next(),
            Err(e) => {
                tracing::warn!(key, "could not check KV holds the newest version: {e}");
                return;
            }
        };
        let Some(newest) = newest.filter(|n| n.version > published) else {
            return;
        };
        if let Err(e) = publish(p, key, &newest.document).await {
            tracing::warn!(
                key,
                version = newest.version,
                "newest version not republished: {e}"
            );
            return;
        }
        published = newest.version;
    }
}

/// How many times a writer checks KV holds the newest version.
const SETTLE_ROUNDS: usize = 3;

async fn append<P: Platform>(
    p: &P,
    key: &str,
    expected: Option<u64>,
    revision: &Revision,
    lost: &impl Fn(Option<u64>) -> GatewayError,
) -> Result<(), GatewayError> {
    match p.history().append(key, expected, revision).await? {
        Appended::Done => Ok(()),
        Appended::Conflict(newest) => Err(lost(newest)),
    }
}

/// A revision as the version list shows it (no document).
pub(crate) fn summary(r: &Revision) -> serde_json::Value {
    serde_json::json!({
        "version": r.version,
        "action": r.action,
        "author": r.author,
        "at_ms": r.at_ms,
        "deleted": r.document.is_none(),
    })
}

/// A document's text as JSON for an answer (it was checked when stored;
/// text that is not JSON any more is shown as a string).
pub(crate) fn as_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into()))
}
