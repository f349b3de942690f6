//! What a directory's own audit log says about membership changes: who added or removed whom,
//! and when. The drift report reads it for the groups a sync found changed by hand.

use serde::Serialize;

use super::DirectoryError;

/// A membership change as the directory's audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When it happened, RFC 3339 in UTC as the directory reports it.
    pub time: String,
    /// Who made it: a person's sign-in name, or an application's name or id.
    pub actor: String,
    pub action: AuditAction,
    /// Lowercased group email.
    pub group: String,
    /// Lowercased member email (or the directory's id for members it cannot name).
    pub member: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Added,
    Removed,
}

/// A directory's audit log. Like `Directory`: no retries of its own, no decisions.
pub trait AuditLog: Sync {
    /// The membership changes of `group_email` from `since` (RFC 3339, UTC) to now, newest
    /// first. Audit logs are late by minutes to hours: a change may not be there yet.
    fn membership_events(&self, group_email: &str, since: &str) -> Result<Vec<AuditEvent>, DirectoryError>;
}
