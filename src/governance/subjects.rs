//! Subjects: the callers a policy rule or an approver list names (users,
//! teams, roles, service accounts, anonymous callers, everyone), parsed once
//! into a checked matcher.

use crate::config::glob::Globs;
use crate::identity::Principal;
use serde::Deserialize;

/// Subjects as written in the policy document.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectSpec {
    /// JWT subjects (globs).
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// API-key subjects (globs).
    #[serde(default)]
    pub service_accounts: Vec<String>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub everyone: bool,
}

/// Checked subjects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subjects {
    users: Globs,
    teams: Vec<String>,
    roles: Vec<String>,
    service_accounts: Globs,
    anonymous: bool,
    everyone: bool,
}

impl Subjects {
    /// Checks `spec`; `what` names it in errors (`rule 'eng'`). A spec that
    /// names nobody is an error: it is always a mistake.
    pub(crate) fn parse(spec: &SubjectSpec, what: &str) -> Result<Subjects, String> {
        let names_someone = !spec.users.is_empty()
            || !spec.teams.is_empty()
            || !spec.roles.is_empty()
            || !spec.service_accounts.is_empty()
            || spec.anonymous
            || spec.everyone;
        if !names_someone {
            return Err(format!("{what}: subjects names nobody"));
        }
        let globs = |list: &[String], field: &str| Globs::parse(list, &format!("{what}: {field}"));
        Ok(Subjects {
            users: globs(&spec.users, "users")?,
            teams: spec.teams.clone(),
            roles: spec.roles.clone(),
            service_accounts: globs(&spec.service_accounts, "service_accounts")?,
            anonymous: spec.anonymous,
            everyone: spec.everyone,
        })
    }

    /// Whether `who` is one of these subjects. User rules match JWT callers
    /// and service-account rules API-key callers only, so an identity
    /// provider cannot mint a token that passes for a service account.
    pub(crate) fn matches(&self, who: &Principal) -> bool {
        if self.everyone {
            return true;
        }
        if who.is_anonymous() {
            return self.anonymous;
        }
        let account = who.via == "apikey";
        (!account && self.users.lists(&who.subject))
            || (account && self.service_accounts.lists(&who.subject))
            || self.teams.iter().any(|t| who.teams.contains(t))
            || self.roles.iter().any(|r| who.roles.contains(r))
    }
}
