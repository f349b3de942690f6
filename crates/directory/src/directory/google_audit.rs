//! Google's audit log of group memberships: the Admin SDK Reports API, `activities.list` for
//! the `groups_enterprise` application (events `add_member` and `remove_member`, whose
//! parameters `group_id` and `member_id` are the emails), one paged listing per group with
//! `filters=group_id==<email>`. The tree has no maintained client crate for this API, so the
//! calls go through `http_api` with the provider's own credentials, asking for the
//! `admin.reports.audit.readonly` scope (the signing-in account needs the Reports privilege).

use std::sync::OnceLock;

use hyper::Method;
use serde_json::Value;

use super::google::GoogleDirectory;
use super::{AuditAction, AuditEvent, AuditLog, DirectoryError, GoogleAuth};
use crate::http_api::{percent_encode, ApiClient};

const PRODUCTION_ENDPOINT: &str = "https://admin.googleapis.com/";
const REPORTS_SCOPE: &str = "https://www.googleapis.com/auth/admin.reports.audit.readonly";
/// The API's largest page.
const MAX_RESULTS: &str = "1000";
/// Pages followed for one group at most: a group changed thousands of times in the window is
/// reported from its newest events.
const MAX_PAGES: usize = 10;

/// The Reports API client, made on first use (most syncs never read the audit log).
pub(crate) struct Reports {
    /// `None`: production.
    endpoint: Option<String>,
    auth: GoogleAuth,
    client: OnceLock<Result<ApiClient, DirectoryError>>,
}

impl Reports {
    pub(crate) fn new(endpoint: Option<String>, auth: GoogleAuth) -> Reports {
        Reports { endpoint, auth, client: OnceLock::new() }
    }

    fn client(&self) -> Result<&ApiClient, DirectoryError> {
        let connected = self.client.get_or_init(|| {
            let endpoint = self.endpoint.as_deref().unwrap_or(PRODUCTION_ENDPOINT);
            ApiClient::connect_scoped(endpoint, &self.auth, REPORTS_SCOPE)
        });
        connected.as_ref().map_err(Clone::clone)
    }

    /// Requests sent so far.
    pub(crate) fn calls(&self) -> u64 {
        self.client.get().and_then(|client| client.as_ref().ok()).map_or(0, ApiClient::calls)
    }
}

impl AuditLog for GoogleDirectory {
    fn membership_events(&self, group_email: &str, since: &str) -> Result<Vec<AuditEvent>, DirectoryError> {
        let client = self.reports.client()?;
        let call = "reports.activities.list";
        let base = format!(
            "admin/reports/v1/activity/users/all/applications/groups_enterprise?maxResults={MAX_RESULTS}&startTime={}&filters={}",
            percent_encode(since),
            percent_encode(&format!("group_id=={}", group_email.to_ascii_lowercase())),
        );
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let path = match &token {
                None => base.clone(),
                Some(token) => format!("{base}&pageToken={}", percent_encode(token)),
            };
            let (status, body) = client.send(Method::GET, &path, Vec::new(), call).map_err(missing_scope)?;
            if status.as_u16() == 404 {
                return Err(DirectoryError::Storage(format!(
                    "{call}: 404: the Reports API is not at {}",
                    client.endpoint()
                )));
            }
            let page: Value = serde_json::from_slice(&body)
                .map_err(|e| DirectoryError::Storage(format!("{call}: not an activities listing: {e}")))?;
            events.extend(page["items"].as_array().into_iter().flatten().flat_map(membership_changes));
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(events)
    }
}

/// A 403 for a token without the Reports scope says which scope it needs.
fn missing_scope(error: DirectoryError) -> DirectoryError {
    match error {
        DirectoryError::Rejected(message) if message.contains("insufficient authentication scopes") => {
            DirectoryError::MissingScope(format!(
                "reports.activities.list: the credentials lack the scope {REPORTS_SCOPE}, which reading who changed a group needs (and the account needs the Reports administrator privilege)"
            ))
        }
        other => other,
    }
}

/// The `add_member` / `remove_member` events of one activity.
fn membership_changes(activity: &Value) -> Vec<AuditEvent> {
    let time = activity["id"]["time"].as_str().unwrap_or_default();
    // A change made by an application without a user has no actor email, only its key.
    let actor = activity["actor"]["email"].as_str().or_else(|| activity["actor"]["key"].as_str()).unwrap_or("unknown");
    let mut changes = Vec::new();
    for event in activity["events"].as_array().into_iter().flatten() {
        let action = match event["name"].as_str() {
            Some("add_member") => AuditAction::Added,
            Some("remove_member") => AuditAction::Removed,
            _ => continue,
        };
        let parameter = |name: &str| {
            event["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name)
                .and_then(|p| p["value"].as_str())
                .map(str::to_ascii_lowercase)
        };
        if let (Some(group), Some(member)) = (parameter("group_id"), parameter("member_id")) {
            changes.push(AuditEvent { time: time.to_owned(), actor: actor.to_owned(), action, group, member });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_activity_yields_its_membership_events_and_skips_others() {
        let activity = json!({
            "id": {"time": "2026-12-01T10:00:00.000Z", "applicationName": "groups_enterprise"},
            "actor": {"email": "Admin@Example.org", "callerType": "USER"},
            "events": [
                {"type": "moderator_action", "name": "add_member", "parameters": [
                    {"name": "group_id", "value": "G@groups.example.org"},
                    {"name": "member_id", "value": "x@example.org"}]},
                {"type": "moderator_action", "name": "add_info_setting", "parameters": []},
            ],
        });
        let events = membership_changes(&activity);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, AuditAction::Added);
        assert_eq!(events[0].group, "g@groups.example.org");
        assert_eq!(events[0].actor, "Admin@Example.org");
    }
}
