//! The Admin SDK Reports API's group membership audit (`activities.list` for
//! `groups_enterprise`), as far as the drift report reads it.
//!
//! Wire facts it follows (developers.google.com/workspace/admin/reports/v1/reference/activities/list
//! and …/appendix/activity/groups-enterprise):
//! - `GET admin/reports/v1/activity/users/{userKey|all}/applications/{applicationName}`;
//!   `startTime`/`endTime` (RFC 3339), `eventName`, `filters` (`name==value` or `name<>value`,
//!   comma-separated, on the events' parameters), `maxResults` (1..=1000, default 1000),
//!   `pageToken`.
//! - Answers `{"kind":"admin#reports#activities","items":[…],"nextPageToken":…}`, newest first;
//!   `items` is left out when there is none. Each activity has `id{time,uniqueQualifier,
//!   applicationName,customerId}`, `actor{email,profileId,callerType}` and `events[{type,name,
//!   parameters[{name,value}]}]`; membership changes are `type` `moderator_action`, `name`
//!   `add_member` / `remove_member` with `group_id`, `member_id`, `member_role`, `member_type`.
//! - Audit data arrives late (support.google.com/a/answer/7061566, "Data retention and lag
//!   times": minutes to hours): an event stays out of listings for `audit_lag` reads.
//! - Reading needs the `admin.reports.audit.readonly` scope: a token without it is 403.

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::{ApiError, Context};

/// The only application the emulator keeps events for.
pub(super) const GROUPS_ENTERPRISE: &str = "groups_enterprise";
/// The documented maximum (and default) of `maxResults`.
const MAX_RESULTS: usize = 1000;

/// One membership change in the audit log.
struct Activity {
    time: String,
    unique_qualifier: String,
    actor: String,
    name: &'static str,
    group: String,
    member: String,
    member_type: &'static str,
    /// Listings that will still leave it out.
    lag: u32,
}

/// The customer's group audit log, oldest first.
#[derive(Default)]
pub(super) struct ActivityLog {
    activities: Vec<Activity>,
    /// Reads a new event stays invisible for.
    pub(super) lag: u32,
}

impl ActivityLog {
    /// Records `member` added to (`added`) or removed from `group` by `actor`, now.
    pub(super) fn record(&mut self, actor: &str, added: bool, group: &str, member: &str, member_type: &'static str) {
        let serial = self.activities.len() as u64 + 1;
        self.activities.push(Activity {
            time: super::rfc3339(SystemTime::now()),
            unique_qualifier: format!("{}", 7_000_000_000_000_000_000u64 - serial * 7919),
            actor: actor.to_ascii_lowercase(),
            name: if added { "add_member" } else { "remove_member" },
            group: group.to_ascii_lowercase(),
            member: member.to_ascii_lowercase(),
            member_type,
            lag: self.lag,
        });
    }

    /// `activities.list`: the matching visible events, newest first, one page.
    pub(super) fn list(
        &mut self,
        user_key: &str,
        application: &str,
        customer: &str,
        context: &Context,
        max_page_size: usize,
    ) -> Result<Value, ApiError> {
        if application != GROUPS_ENTERPRISE {
            return Err(ApiError::invalid(&format!("applicationName {application} has no events here")));
        }
        let filters = parse_filters(context.param("filters").unwrap_or_default())?;
        let size = match context.param("maxResults") {
            None => MAX_RESULTS,
            Some(text) => match text.parse::<usize>() {
                Ok(size) if (1..=MAX_RESULTS).contains(&size) => size,
                _ => return Err(ApiError::invalid("maxResults must be between 1 and 1000")),
            },
        };
        let size = size.min(max_page_size);
        let start = context.param("startTime").map(check_time).transpose()?;
        let end = context.param("endTime").map(check_time).transpose()?;
        let event_name = context.param("eventName");
        // The page token is the position after the last event served, counted from the newest.
        let skip = match context.param("pageToken") {
            None => 0,
            Some(token) => token
                .strip_prefix("reports-")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| ApiError::invalid("pageToken is not a token this listing gave"))?,
        };
        let mut matching = Vec::new();
        for activity in self.activities.iter_mut().rev() {
            if activity.lag > 0 {
                activity.lag -= 1;
                continue;
            }
            let parameter = |name: &str| match name {
                "group_id" => Some(activity.group.as_str()),
                "member_id" => Some(activity.member.as_str()),
                "member_type" => Some(activity.member_type),
                "member_role" => Some("MEMBER"),
                _ => None,
            };
            let wanted = (user_key == "all" || user_key.eq_ignore_ascii_case(&activity.actor))
                && event_name.is_none_or(|name| name == activity.name)
                && start.as_deref().is_none_or(|start| &activity.time[..19] >= start)
                && end.as_deref().is_none_or(|end| &activity.time[..19] <= end)
                && filters.iter().all(|(name, equal, value)| (parameter(name) == Some(value.as_str())) == *equal);
            if wanted {
                matching.push(activity_json(activity, customer));
            }
        }
        let mut response = Map::new();
        response.insert("kind".to_owned(), json!("admin#reports#activities"));
        let page: Vec<Value> = matching.iter().skip(skip).take(size).cloned().collect();
        if skip + page.len() < matching.len() {
            response.insert("nextPageToken".to_owned(), json!(format!("reports-{}", skip + page.len())));
        }
        if !page.is_empty() {
            response.insert("items".to_owned(), Value::Array(page));
        }
        Ok(Value::Object(response))
    }
}

fn activity_json(activity: &Activity, customer: &str) -> Value {
    let parameter = |name: &str, value: &str| json!({ "name": name, "value": value });
    json!({
        "kind": "admin#reports#activity",
        "id": {
            "time": activity.time,
            "uniqueQualifier": activity.unique_qualifier,
            "applicationName": GROUPS_ENTERPRISE,
            "customerId": customer,
        },
        "actor": { "email": activity.actor, "profileId": "1044", "callerType": "USER" },
        "events": [{
            "type": "moderator_action",
            "name": activity.name,
            "parameters": [
                parameter("group_id", &activity.group),
                parameter("member_id", &activity.member),
                parameter("member_role", "MEMBER"),
                parameter("member_type", activity.member_type),
                parameter("namespace", ""),
            ],
        }],
    })
}

/// `group_id==a@b,member_type<>GROUP` → (name, is-equality, value).
fn parse_filters(text: &str) -> Result<Vec<(String, bool, String)>, ApiError> {
    let mut filters = Vec::new();
    for part in text.split(',').filter(|part| !part.is_empty()) {
        let (name, equal, value) = if let Some((name, value)) = part.split_once("==") {
            (name, true, value)
        } else if let Some((name, value)) = part.split_once("<>") {
            (name, false, value)
        } else {
            return Err(ApiError::invalid(&format!(
                "filters: `{part}` is not `parameter==value` or `parameter<>value`"
            )));
        };
        filters.push((name.trim().to_owned(), equal, value.trim().to_ascii_lowercase()));
    }
    Ok(filters)
}

/// RFC 3339 in UTC as the API documents it (`2010-10-28T10:26:35.000Z`), to the second:
/// compared as text, which orders such times correctly.
fn check_time(text: &str) -> Result<String, ApiError> {
    let shaped = text.len() >= 20 && text.ends_with('Z') && text.as_bytes().get(10) == Some(&b'T');
    if shaped {
        Ok(text[..19].to_owned())
    } else {
        Err(ApiError::invalid(&format!("{text} is not an RFC 3339 time in UTC")))
    }
}
