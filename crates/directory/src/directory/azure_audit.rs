//! Entra ID's audit log of group memberships: Microsoft Graph
//! `GET /auditLogs/directoryAudits?$filter=category eq 'GroupManagement' and activityDateTime ge
//! <since> and targetResources/any(t: t/id eq '<group id>')`, paged by `@odata.nextLink`, on
//! the provider's client and credentials (the app needs `AuditLog.Read.All`). Events are
//! `Add member to group` and `Remove member from group`; the member is the target that is not
//! the group (its user principal name, mapped back to the person's email through
//! `people.toml`'s `azure` ids where one is set), and the group is named by the target of type
//! `Group` or the member's `Group.ObjectID` modified property.

use graph_rs_sdk::http::Method;
use serde_json::Value;

use super::azure::AzureDirectory;
use super::{AuditAction, AuditEvent, AuditLog, DirectoryError};
use crate::http_api::percent_encode;

impl AuditLog for AzureDirectory {
    fn membership_events(&self, group_email: &str, since: &str) -> Result<Vec<AuditEvent>, DirectoryError> {
        let group = self.known_group(group_email)?;
        let filter = format!(
            "category eq 'GroupManagement' and activityDateTime ge {since} and targetResources/any(t: t/id eq '{}')",
            group.id.replace('\'', "''")
        );
        let url = format!("{}/auditLogs/directoryAudits?$filter={}", self.api_root, percent_encode(&filter));
        let method = "auditLogs.directoryAudits.list";
        let first = self.request_to(Method::GET, &url, None).map_err(|e| self.error(e, method, group_email))?;
        let items =
            self.list_all(first, method, group_email).map_err(|(e, subject)| match self.error(e, &subject, "") {
                DirectoryError::Rejected(message) if message.contains("permission denied (403") => {
                    DirectoryError::Rejected(format!("{message}; reading who changed a group needs AuditLog.Read.All"))
                }
                other => other,
            })?;
        let mut events: Vec<AuditEvent> =
            items.iter().filter_map(|item| self.membership_event(item, &group.id, group_email)).collect();
        // Newest first, whatever order the pages came in.
        events.sort_by(|a, b| b.time.cmp(&a.time));
        Ok(events)
    }
}

impl AzureDirectory {
    /// One audit entry as a membership change of `group_id`, or `None` for anything else.
    fn membership_event(&self, item: &Value, group_id: &str, group_email: &str) -> Option<AuditEvent> {
        let action = match item["activityDisplayName"].as_str()? {
            "Add member to group" => AuditAction::Added,
            "Remove member from group" => AuditAction::Removed,
            _ => return None,
        };
        if item["result"].as_str().is_some_and(|result| result != "success") {
            return None;
        }
        let targets = item["targetResources"].as_array()?;
        let names_group = |target: &Value| {
            target["id"].as_str() == Some(group_id)
                || target["modifiedProperties"].as_array().into_iter().flatten().any(|p| {
                    p["displayName"] == "Group.ObjectID"
                        && [&p["newValue"], &p["oldValue"]]
                            .iter()
                            .any(|v| v.as_str().is_some_and(|v| v.trim_matches('"') == group_id))
                })
        };
        if !targets.iter().any(names_group) {
            return None;
        }
        let member = targets.iter().find(|t| t["id"].as_str() != Some(group_id))?;
        let initiated = &item["initiatedBy"];
        let actor = initiated["user"]["userPrincipalName"]
            .as_str()
            .or_else(|| initiated["app"]["displayName"].as_str())
            .or_else(|| initiated["app"]["appId"].as_str())
            .unwrap_or("unknown");
        Some(AuditEvent {
            time: item["activityDateTime"].as_str().unwrap_or_default().to_owned(),
            actor: actor.to_owned(),
            action,
            group: group_email.to_ascii_lowercase(),
            member: self.member_email(member),
        })
    }

    /// The email our definitions use for an audited member: the person whose `azure` id or
    /// principal name it is, else its principal name, else its object id.
    fn member_email(&self, target: &Value) -> String {
        let id = target["id"].as_str().unwrap_or_default();
        let principal = target["userPrincipalName"].as_str().map(str::to_ascii_lowercase);
        let person = self.people.iter().find(|(_, azure)| {
            azure.eq_ignore_ascii_case(id) || principal.as_deref().is_some_and(|p| azure.eq_ignore_ascii_case(p))
        });
        match (person, principal) {
            (Some((email, _)), _) => email.clone(),
            (None, Some(principal)) => principal,
            (None, None) => id.to_owned(),
        }
    }
}
