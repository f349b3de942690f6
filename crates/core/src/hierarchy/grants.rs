//! Where in the definitions a direct membership comes from, for explanations like `why`.

use super::{Group, GroupKind, Hierarchy};
use crate::definitions::{Date, Definitions, Grant, Location, MemberRef};

/// The places that grant `member` (an email) direct membership of `group`: the dataset's
/// `members.toml`, the role template, or an organisation group's file.
pub fn grant_locations<'d>(definitions: &'d Definitions, group: &Group, member: &str) -> Vec<&'d Location> {
    grants_to(definitions, group, member).into_iter().map(|grant| &grant.location).collect()
}

/// A grant that would make a member part of a group, had it not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredGrant<'d> {
    /// The group the grant was written for (the asked group or one nested in it).
    pub group: String,
    pub expired: Date,
    pub location: &'d Location,
}

/// The expired grants that gave `member` (an email) `target` or a group nested in it; for
/// explaining why someone who had access no longer has it.
pub fn expired_grants<'d>(
    definitions: &'d Definitions,
    hierarchy: &Hierarchy,
    member: &str,
    target: &str,
    today: Date,
) -> Vec<ExpiredGrant<'d>> {
    let inside = hierarchy.nested_groups(target);
    let mut found = Vec::new();
    for group in hierarchy.groups.values().filter(|g| inside.contains(g.name.as_str())) {
        for grant in grants_to(definitions, group, member) {
            if let Some(expired) = grant.expires.filter(|date| *date < today) {
                found.push(ExpiredGrant { group: group.name.clone(), expired, location: &grant.location });
            }
        }
    }
    found.sort_by(|a, b| b.expired.cmp(&a.expired).then_with(|| a.location.cmp(b.location)));
    found
}

/// Every grant of `member` (an email) written for `group`, expired or not.
fn grants_to<'d>(definitions: &'d Definitions, group: &Group, member: &str) -> Vec<&'d Grant> {
    let grants: Vec<&Grant> = match &group.kind {
        GroupKind::Dataset { dataset, role } => {
            let listed = definitions.datasets.get(dataset).and_then(|d| d.members.get(role)).into_iter().flatten();
            let template = definitions.roles.get(role).map(|r| r.members.iter()).into_iter().flatten();
            listed.chain(template).collect()
        }
        GroupKind::Organisation => {
            let name = group.name.strip_prefix(&definitions.organisation.group_prefix).unwrap_or(&group.name);
            definitions.groups.get(name).map(|g| g.members.iter().collect()).unwrap_or_default()
        }
    };
    let member = member.to_ascii_lowercase();
    grants
        .into_iter()
        .filter(|grant| match &grant.member {
            MemberRef::Person(key) => definitions.people.get(key).is_some_and(|p| p.email == member),
            MemberRef::Email(email) => *email == member,
            MemberRef::Group(_) => false,
        })
        .collect()
}

/// A grant whose last day falls in a window, for `groups expiring`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpiringGrant<'d> {
    /// The member as the directory knows it: a person's email, a raw email, or a group's
    /// full name.
    pub member: String,
    /// The group's full name; a role template grant names `<role> (every dataset)`.
    pub group: String,
    pub expires: Date,
    #[serde(serialize_with = "location_text")]
    pub location: &'d Location,
}

fn location_text<S: serde::Serializer>(location: &&Location, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(location)
}

/// Every grant written in the definitions whose last day is from `from` to `until`, both
/// included, soonest first.
pub fn expiring_grants(definitions: &Definitions, from: Date, until: Date) -> Vec<ExpiringGrant<'_>> {
    let datasets = definitions.datasets.values().flat_map(|dataset| {
        dataset.members.iter().flat_map(move |(role, grants)| {
            grants.iter().map(move |grant| (definitions.dataset_group_name(&dataset.name, role), grant))
        })
    });
    let groups = definitions
        .groups
        .values()
        .flat_map(|group| group.members.iter().map(move |grant| (definitions.org_group_name(&group.name), grant)));
    let roles = definitions
        .roles
        .values()
        .flat_map(|role| role.members.iter().map(move |grant| (format!("{} (every dataset)", role.name), grant)));
    let mut found: Vec<ExpiringGrant> = datasets
        .chain(groups)
        .chain(roles)
        .filter_map(|(group, grant)| {
            let expires = grant.expires.filter(|date| (from..=until).contains(date))?;
            let member = match &grant.member {
                MemberRef::Person(key) => definitions.people.get(key).map_or_else(|| key.clone(), |p| p.email.clone()),
                MemberRef::Email(email) => email.clone(),
                MemberRef::Group(name) => format!("group:{name}"),
            };
            Some(ExpiringGrant { member, group, expires, location: &grant.location })
        })
        .collect();
    found.sort_by(|a, b| (a.expires, &a.member, &a.group).cmp(&(b.expires, &b.member, &b.group)));
    found
}
