//! Microsoft Graph's directory audit log (`GET /v1.0/auditLogs/directoryAudits`), as far as the
//! drift report reads it: the group membership events.
//!
//! Wire facts it follows (learn.microsoft.com/graph/api/directoryaudit-list and
//! …/resources/directoryaudit): a `{"value":[…]}` collection, newest first, paged with `$top`
//! and `@odata.nextLink`; `$filter` supports `category eq '…'`, `activityDisplayName eq '…'`,
//! `activityDateTime ge|le <time>` (unquoted) and `targetResources/any(t: t/id eq '…')`, joined
//! by `and`; anything else is 400. An event has `category` `GroupManagement`,
//! `activityDisplayName` `Add member to group` / `Remove member from group`, `activityDateTime`,
//! `result`, `initiatedBy` (`user` with `userPrincipalName`, or `app` with `displayName` and
//! `appId`; the other `null`) and `targetResources`: the member (`type` `User`,
//! `ServicePrincipal` or `Group`, with a `Group.ObjectID` modified property naming the group)
//! and the group itself (`type` `Group`). The documented example lists the group first; the
//! emulator lists the member first, as entries for member changes commonly come, and the
//! client accepts either order. Events arrive late (Entra's reporting latency is
//! minutes: learn.microsoft.com/entra/identity/monitoring-health/reference-reports-latency): an
//! event stays out of listings for `AzureEmulatorOptions::audit_lag` reads.

use serde_json::{json, Value};

/// Who made a change.
pub(crate) enum Initiator {
    /// An application (the sync's app registration): display name and app id.
    App(String, String),
    /// A person signed in: user principal name and object id.
    User(String, String),
}

/// One membership change.
struct AuditEntry {
    /// 1 for the first event: the id and the correlation id are made from it.
    serial: usize,
    time: String,
    initiator: Initiator,
    added: bool,
    group_id: String,
    group_name: String,
    member_id: String,
    member_type: &'static str,
    member_principal_name: Option<String>,
    /// Listings that will still leave it out.
    lag: u32,
}

/// A member as the audit log names it.
pub(crate) struct AuditedMember<'a> {
    pub(crate) id: &'a str,
    /// `User`, `ServicePrincipal` or `Group`.
    pub(crate) kind: &'static str,
    pub(crate) principal_name: Option<&'a str>,
}

/// The tenant's directory audit log, oldest first.
#[derive(Default)]
pub(crate) struct DirectoryAudits {
    entries: Vec<AuditEntry>,
    lag: u32,
}

impl DirectoryAudits {
    pub(crate) fn with_lag(lag: u32) -> DirectoryAudits {
        DirectoryAudits { entries: Vec::new(), lag }
    }

    pub(crate) fn record(
        &mut self,
        initiator: Initiator,
        added: bool,
        (group_id, group_name): (&str, &str),
        member: AuditedMember,
    ) {
        let serial = self.entries.len() + 1;
        self.entries.push(AuditEntry {
            serial,
            time: crate::google::rfc3339(std::time::SystemTime::now()),
            initiator,
            added,
            group_id: group_id.to_owned(),
            group_name: group_name.to_owned(),
            member_id: member.id.to_owned(),
            member_type: member.kind,
            member_principal_name: member.principal_name.map(str::to_owned),
            lag: self.lag,
        });
    }

    /// The visible events matching `filter`, newest first; `Err` names an unsupported clause.
    pub(crate) fn list(&mut self, filter: Option<&str>) -> Result<Vec<Value>, String> {
        let clauses = match filter {
            Some(filter) => parse_filter(filter)?,
            None => Vec::new(),
        };
        let mut found = Vec::new();
        for entry in self.entries.iter_mut().rev() {
            if entry.lag > 0 {
                entry.lag -= 1;
                continue;
            }
            let event = event_json(entry);
            if clauses.iter().all(|clause| clause.matches(&event)) {
                found.push(event);
            }
        }
        Ok(found)
    }
}

fn event_json(entry: &AuditEntry) -> Value {
    let initiated_by = match &entry.initiator {
        Initiator::App(name, app_id) => json!({
            "user": null,
            "app": { "appId": app_id, "displayName": name, "servicePrincipalId": app_id, "servicePrincipalName": null },
        }),
        Initiator::User(upn, id) => json!({
            "user": { "id": id, "displayName": null, "userPrincipalName": upn, "ipAddress": "203.0.113.7" },
            "app": null,
        }),
    };
    let quoted = |text: &str| Value::String(format!("\"{text}\""));
    json!({
        "id": format!("Directory_{:08X}_GROUPS", entry.serial),
        "category": "GroupManagement",
        "correlationId": format!("c0ffee00-0000-4000-8000-{:012x}", entry.serial),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": if entry.added { "Add member to group" } else { "Remove member from group" },
        "activityDateTime": entry.time,
        "loggedByService": "Core Directory",
        "operationType": if entry.added { "Assign" } else { "Unassign" },
        "initiatedBy": initiated_by,
        "targetResources": [
            {
                "id": entry.member_id,
                "displayName": null,
                "type": entry.member_type,
                "userPrincipalName": entry.member_principal_name,
                "modifiedProperties": [
                    { "displayName": "Group.ObjectID", "oldValue": if entry.added { Value::Null } else { quoted(&entry.group_id) }, "newValue": if entry.added { quoted(&entry.group_id) } else { Value::Null } },
                    { "displayName": "Group.DisplayName", "oldValue": if entry.added { Value::Null } else { quoted(&entry.group_name) }, "newValue": if entry.added { quoted(&entry.group_name) } else { Value::Null } },
                ],
            },
            { "id": entry.group_id, "displayName": entry.group_name, "type": "Group", "groupType": "azureAD", "modifiedProperties": [] },
        ],
        "additionalDetails": [],
    })
}

/// One supported `$filter` clause.
enum Clause {
    Equals(&'static str, String),
    Time { at_least: bool, time: String },
    TargetId(String),
}

impl Clause {
    fn matches(&self, event: &Value) -> bool {
        match self {
            Clause::Equals(field, value) => event[*field].as_str() == Some(value.as_str()),
            // RFC 3339 in UTC orders as text, to the second.
            Clause::Time { at_least, time } => {
                let at = event["activityDateTime"].as_str().unwrap_or_default();
                let at = &at[..at.len().min(19)];
                if *at_least {
                    at >= time.as_str()
                } else {
                    at <= time.as_str()
                }
            }
            Clause::TargetId(id) => {
                event["targetResources"].as_array().into_iter().flatten().any(|t| t["id"].as_str() == Some(id.as_str()))
            }
        }
    }
}

fn parse_filter(filter: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    for part in filter.split(" and ") {
        let part = part.trim();
        let quoted = |rest: &str| {
            let rest = rest.trim();
            rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')).map(|v| v.replace("''", "'"))
        };
        let clause = if let Some(rest) = part.strip_prefix("category eq ") {
            quoted(rest).map(|v| Clause::Equals("category", v))
        } else if let Some(rest) = part.strip_prefix("activityDisplayName eq ") {
            quoted(rest).map(|v| Clause::Equals("activityDisplayName", v))
        } else if let Some(rest) = part.strip_prefix("activityDateTime ge ") {
            time(rest).map(|time| Clause::Time { at_least: true, time })
        } else if let Some(rest) = part.strip_prefix("activityDateTime le ") {
            time(rest).map(|time| Clause::Time { at_least: false, time })
        } else {
            let compact: String = part.chars().filter(|c| !c.is_whitespace()).collect();
            compact
                .strip_prefix("targetResources/any(t:t/ideq")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|rest| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
                .map(|id| Clause::TargetId(id.to_owned()))
        };
        clauses.push(clause.ok_or_else(|| format!("Invalid filter clause: {part}"))?);
    }
    Ok(clauses)
}

/// An unquoted `2026-11-27T00:00:00Z`, to the second.
fn time(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() >= 20 && text.ends_with('Z') && text.as_bytes()[10] == b'T').then(|| text[..19].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_take_the_documented_clauses_and_refuse_others() {
        let mut log = DirectoryAudits::default();
        let member = AuditedMember { id: "u1", kind: "User", principal_name: Some("x@example.org") };
        log.record(Initiator::User("admin@example.org".into(), "a1".into()), true, ("g1", "G"), member);
        let found = log
            .list(Some("category eq 'GroupManagement' and activityDateTime ge 2000-01-01T00:00:00Z and targetResources/any(t: t/id eq 'g1')"))
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["initiatedBy"]["user"]["userPrincipalName"], "admin@example.org");
        assert!(log.list(Some("targetResources/any(t: t/id eq 'g2')")).unwrap().is_empty());
        assert!(log.list(Some("activityDateTime ge 2999-01-01T00:00:00Z")).unwrap().is_empty());
        assert!(log.list(Some("result eq 'success'")).is_err());
    }
}
