//! Where in the definitions a direct membership comes from, for explanations like `why`.

use super::{Group, GroupKind};
use crate::definitions::{Definitions, Grant, Location, MemberRef};

/// The places that grant `member` (an email) direct membership of `group`: the dataset's
/// `members.toml`, the role template, or an organisation group's file.
pub fn grant_locations<'d>(definitions: &'d Definitions, group: &Group, member: &str) -> Vec<&'d Location> {
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
        .map(|grant| &grant.location)
        .collect()
}
