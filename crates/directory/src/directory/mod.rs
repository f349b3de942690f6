//! Directories that hold groups: the `Directory` trait and its providers.
//!
//! The trait speaks only our own types (emails and names), so the planner and apply code in
//! `sync` work unchanged over every provider. Providers never decide what to change; they only
//! list and mutate, and they only report groups as owned when they carry the owner marker.

mod audit;
mod azure;
mod azure_audit;
mod azure_login;
mod endpoint;
mod google;
mod google_audit;
mod google_settings;
mod hail;
mod local;
mod metamist;

use std::fmt;
use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::definitions::Date;

pub use audit::{AuditAction, AuditEvent, AuditLog};
pub use azure::{AzureAuth, AzureConfig, AzureDirectory, AZURE_BATCH_SIZE};
pub(crate) use google::credentials_file_authenticator;
pub use google::{check_endpoint, GoogleAuth, GoogleConfig, GoogleDirectory};
pub use hail::{HailConfig, HailDirectory};
pub use local::LocalDirectory;
pub use metamist::{MetamistDirectory, ProjectMember};

/// A directory that cannot be read back and takes each project's whole member list in one
/// write (Metamist). Like `Directory`: no retries, no decisions; the sync keeps what it wrote.
pub trait ListDirectory: Sync {
    /// A short description for messages.
    fn describe(&self) -> String;
    /// The names of the projects the caller can see.
    fn list_projects(&self) -> Result<BTreeSet<String>, DirectoryError>;
    /// Creates a project (idempotent: a project that exists already is success).
    fn create_project(&self, project: &str, dataset: &str) -> Result<(), DirectoryError>;
    /// Replaces the project's whole member list.
    fn write_members(&self, project: &str, members: &crate::apps::metamist::MemberList) -> Result<(), DirectoryError>;
    /// HTTP requests sent so far (retries included), for providers that make them.
    fn api_calls(&self) -> Option<u64> {
        None
    }
}

/// Written into the description (or equivalent) of every group the tool creates. Groups
/// without it are never modified.
pub const OWNER_MARKER: &str = "managed-by: cpg-infra";

/// A group as the directory reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGroup {
    pub name: String,
    /// Lowercased.
    pub email: String,
    pub description: String,
    /// Whether the group carries the owner marker.
    pub owned: bool,
}

/// A direct member as the directory reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMember {
    /// Lowercased.
    pub email: String,
    /// What the directory takes the member to be; a group recorded as an account (or the
    /// reverse) does not grant what the hierarchy means.
    pub kind: MemberKind,
    /// The last day of access the directory holds for this membership, if it expires.
    pub expires: Option<Date>,
}

/// How a directory records a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    /// A person or a machine account.
    Account,
    /// A group, whose own members inherit the membership.
    Group,
    /// Anything else the directory can hold (e.g. a shared drive); never desired.
    Other,
}

impl fmt::Display for MemberKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            MemberKind::Account => "an account",
            MemberKind::Group => "a group",
            MemberKind::Other => "something else",
        })
    }
}

/// Where a directory's change feed left off: the link that asks for what changed since, and
/// every group as it was then, with object ids so that changes can be applied to it. Kept in
/// a state file between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaState {
    pub link: String,
    /// Group email → group.
    pub groups: BTreeMap<String, DeltaGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owned: bool,
    /// Member object id → member.
    pub members: BTreeMap<String, DeltaMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaMember {
    /// Lowercased.
    pub email: String,
    pub kind: MemberKind,
}

/// What is needed to create a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NewGroup {
    pub name: String,
    pub email: String,
    pub description: String,
}

/// A group's settings as a directory's settings API has them: field (`whoCanJoin`) → value as
/// the API writes it (`INVITED_CAN_JOIN`, `"true"`).
pub type GroupSettings = BTreeMap<String, String>;

/// Directories whose groups carry settings beyond their members (Google: the Groups Settings
/// API). Like `Directory`: no retries, no decisions, owned groups only.
pub trait GroupSettingsDirectory: Sync {
    /// The settings of an owned group.
    fn read_settings(&self, group_email: &str) -> Result<GroupSettings, DirectoryError>;
    /// Sets exactly the given fields of an owned group; the others keep their values.
    fn update_settings(&self, group_email: &str, fields: &GroupSettings) -> Result<(), DirectoryError>;
}

/// A directory call that failed, classified so the sync engine knows whether to retry.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DirectoryError {
    #[error("group {0} does not exist")]
    GroupNotFound(String),
    #[error("{call}: throttled by the directory")]
    Throttled { call: String, retry_after: Option<Duration> },
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("refusing to modify {0}: it is not managed by cpg-infra")]
    NotOwned(String),
    #[error("{0}")]
    Storage(String),
    #[error("another sync holds the lock {0}")]
    Locked(String),
    /// The credentials lack an OAuth scope a whole API needs: every call would fail alike.
    #[error("{0}")]
    MissingScope(String),
    /// The stored change-feed link is no longer accepted; only a full read helps.
    #[error("{0}: the stored delta link has expired")]
    DeltaExpired(String),
    /// The member does not exist in the directory (and the sync may not create it): that
    /// member's failure, the same for every group it was to join.
    #[error("{member}: {reason}")]
    UnknownMember { member: String, reason: String },
    /// The directory cannot be synced with these credentials (e.g. they see only part of it):
    /// nothing more is sent this run.
    #[error("{0}")]
    Stopped(String),
}

impl DirectoryError {
    /// Transient failures that a later attempt may get past.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DirectoryError::Throttled { .. } | DirectoryError::Unavailable(_))
    }

    /// How long the directory asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DirectoryError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A place groups live. Implementations must be safe to call from several threads at once.
///
/// Mutations are idempotent: adding an existing member or removing an absent one succeeds.
pub trait Directory: Sync {
    /// A short description for messages, e.g. `local directory .cpg-infra/directory.json`.
    fn describe(&self) -> String;
    /// Every group in the directory's domain, owned or not.
    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError>;
    /// Direct members of a group (people, machine accounts and groups), with how each is
    /// recorded and when it expires. Reading is allowed for any group in the domain; only
    /// changes need ownership.
    fn list_members(&self, group_email: &str) -> Result<Vec<LiveMember>, DirectoryError>;
    /// One group by email, owned or not; `None` when the directory has no such group. The
    /// default lists every group: providers that can look one up should.
    fn get_group(&self, group_email: &str) -> Result<Option<LiveGroup>, DirectoryError> {
        Ok(self.list_groups()?.into_iter().find(|group| group.email.eq_ignore_ascii_case(group_email)))
    }
    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError>;
    /// Puts the owner marker on an existing group (and the given description).
    fn adopt_group(&self, group_email: &str, description: &str) -> Result<(), DirectoryError>;
    /// Adds a member; `expires` is the last day of access, which the directory keeps with the
    /// membership (directories that expire memberships themselves remove it after that day).
    fn add_member(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError>;
    /// Sets (or with `None` clears) the last day of access of an existing membership.
    fn set_expiry(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError>;
    fn remove_member(&self, group_email: &str, member_email: &str) -> Result<(), DirectoryError>;
    /// Most members `add_members` and `remove_members` take in one call; 1 means the provider
    /// has no batched calls and `apply` sends one change at a time.
    fn batch_size(&self) -> usize {
        1
    }
    /// Adds up to `batch_size` members to one group; one result per member, in order, so one
    /// refused member fails alone. Default: one `add_member` call each.
    fn add_members(&self, group_email: &str, members: &[(String, Option<Date>)]) -> Vec<Result<(), DirectoryError>> {
        members.iter().map(|(member, expires)| self.add_member(group_email, member, *expires)).collect()
    }
    /// Removes up to `batch_size` members from one group; one result per member, in order.
    /// Default: one `remove_member` call each.
    fn remove_members(&self, group_email: &str, members: &[String]) -> Vec<Result<(), DirectoryError>> {
        members.iter().map(|member| self.remove_member(group_email, member)).collect()
    }
    fn delete_group(&self, group_email: &str) -> Result<(), DirectoryError>;
    /// The members the additions about to be sent name, all at once, so a directory that must
    /// resolve members first can look them up together. Errors are left to the additions.
    fn prepare_members(&self, _member_emails: &[&str]) {}
    /// Every group and its direct members through the directory's change feed: everything
    /// when `since` is `None`, else only what changed after it, applied to it. `None` for
    /// directories without a change feed.
    fn read_delta(&self, _since: Option<&DeltaState>) -> Option<Result<DeltaState, DirectoryError>> {
        None
    }
    /// The directory's group settings, for directories that have them.
    fn group_settings(&self) -> Option<&dyn GroupSettingsDirectory> {
        None
    }
    /// The directory's own audit log of membership changes, for directories that keep one.
    fn audit_log(&self) -> Option<&dyn AuditLog> {
        None
    }
    /// What the run should tell the user once about this directory, e.g. a capability the
    /// directory turned out not to have.
    fn notices(&self) -> Vec<String> {
        Vec::new()
    }
    /// HTTP requests sent so far (retries included), for providers that make them.
    fn api_calls(&self) -> Option<u64> {
        None
    }
    /// Makes buffered changes durable; called once after apply, even after failures.
    fn flush(&self) -> Result<(), DirectoryError> {
        Ok(())
    }
}
