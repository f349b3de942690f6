//! Reminders before access ends: per dataset, the grants whose last day falls in a window,
//! each with the renewal that would keep it, or a note that the person keeps the access
//! another way (so no renewal is needed).

use std::collections::BTreeMap;

use crate::definitions::{Date, Definitions, MemberRef};
use crate::hierarchy::Hierarchy;

/// One dataset's grants that end soon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reminder {
    pub dataset: String,
    /// GitHub user names of the dataset's data managers (from people.toml).
    pub data_managers: Vec<String>,
    pub grants: Vec<ReminderGrant>,
}

/// A grant whose last day is in the window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReminderGrant {
    /// The member as written (a person key, an email, `group:<name>`).
    pub member: String,
    /// The person's GitHub user name, when people.toml has one.
    pub github: Option<String>,
    pub role: String,
    pub expires: Date,
    /// `path:line:col` of the grant.
    pub location: String,
    /// The `groups add` command that renews it until `renew_until`.
    pub renew_command: String,
    pub renew_until: Date,
    /// Set when the member keeps this access without an end some other way (another grant,
    /// a group nested in, a role that includes this one): then nothing needs renewing.
    pub also_held: Option<String>,
}

/// What a renewal may run to.
#[derive(Debug, Clone, Copy)]
pub struct RenewalLimits {
    /// How much longer a renewal runs than the grant it renews.
    pub extend_days: i64,
    /// The latest end allowed from today (policy `max_grant_days`, the role's `max_duration`).
    pub longest_days: Option<i64>,
}

/// The reminders for grants of datasets' roles that end from `today` to `until`, one per
/// dataset with any, by dataset name. `longest_days(role)` is the policy's limit on a new
/// grant of that role (days from today), if any.
pub fn reminders(
    definitions: &Definitions,
    hierarchy: &Hierarchy,
    data_manager_role: &str,
    today: Date,
    until: Date,
    longest_days: &dyn Fn(&str) -> Option<i64>,
) -> Vec<Reminder> {
    let mut found: BTreeMap<&str, Vec<ReminderGrant>> = BTreeMap::new();
    for dataset in definitions.datasets.values() {
        for (role, grants) in &dataset.members {
            for grant in grants {
                let Some(expires) = grant.expires.filter(|date| (today..=until).contains(date)) else { continue };
                let (member, email, github) = match &grant.member {
                    MemberRef::Person(key) => {
                        let person = definitions.people.get(key);
                        (key.clone(), person.map(|p| p.email.clone()), person.and_then(|p| p.github.clone()))
                    }
                    MemberRef::Email(email) => (email.clone(), Some(email.clone()), None),
                    MemberRef::Group(group) => {
                        let short = group.strip_prefix(definitions.organisation.group_prefix.as_str()).unwrap_or(group);
                        (format!("group:{short}"), None, None)
                    }
                };
                let group = definitions.dataset_group_name(&dataset.name, role);
                let also_held = email.and_then(|email| held_without_end(hierarchy, &email, &group));
                let limits = RenewalLimits { extend_days: 90, longest_days: longest_days(role) };
                let renew_until = renewal_end(expires, today, limits);
                found.entry(&dataset.name).or_default().push(ReminderGrant {
                    renew_command: format!(
                        "cpg-infra groups add {} --dataset {} --role {role} --expires {renew_until}",
                        crate::shell::word(&member),
                        dataset.name
                    ),
                    member,
                    github,
                    role: role.clone(),
                    expires,
                    location: grant.location.to_string(),
                    renew_until,
                    also_held,
                });
            }
        }
    }
    found
        .into_iter()
        .map(|(dataset, mut grants)| {
            grants.sort_by(|a, b| (a.expires, &a.member, &a.role).cmp(&(b.expires, &b.member, &b.role)));
            Reminder {
                dataset: dataset.to_owned(),
                data_managers: github_names(definitions, dataset, data_manager_role),
                grants,
            }
        })
        .collect()
}

/// The renewal's end: the old end plus `extend_days`, within the policy's limit from today.
fn renewal_end(expires: Date, today: Date, limits: RenewalLimits) -> Date {
    let wanted = expires.add_days(limits.extend_days);
    match limits.longest_days {
        Some(days) => wanted.min(today.add_days(days)),
        None => wanted,
    }
}

/// How `email` holds `group` without an end date other than by its own expiring entry: a
/// path through a nested group whose listing has no end, or an entry here without one.
fn held_without_end(hierarchy: &Hierarchy, email: &str, group: &str) -> Option<String> {
    let email = email.to_ascii_lowercase();
    for path in hierarchy.why(&email, group) {
        let Some(first) = path.first() else { continue };
        let listed_without_end =
            hierarchy.group(first).is_some_and(|g| g.members.contains(&email) && !g.expires.contains_key(&email));
        if !listed_without_end {
            continue;
        }
        return Some(if path.len() == 1 {
            format!("another entry in {group} without an end date")
        } else {
            format!("through {} without an end date", path.join(" → "))
        });
    }
    None
}

/// The data managers' GitHub user names (people listed directly in the role).
fn github_names(definitions: &Definitions, dataset: &str, role: &str) -> Vec<String> {
    let grants = definitions.datasets.get(dataset).and_then(|d| d.members.get(role)).into_iter().flatten();
    let mut names: Vec<String> = grants
        .filter_map(|grant| match &grant.member {
            MemberRef::Person(key) => definitions.people.get(key).and_then(|p| p.github.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
