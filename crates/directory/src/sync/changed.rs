//! Which groups two desired hierarchies disagree on, as a directory would see them: a sync
//! after a change to the definitions needs to read and plan only those.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::desired_members;
use crate::definitions::{Date, Nesting};
use crate::directory::MemberKind;
use crate::hierarchy::Hierarchy;

/// What the planner compares for one group: its name, description, pinning and the members it
/// should list directly (with `nesting`), each with its kind and last day of access.
#[derive(Debug, PartialEq, Eq)]
struct Wanted<'a> {
    name: &'a str,
    description: &'a str,
    pinned: bool,
    members: BTreeMap<String, (MemberKind, Option<Date>)>,
}

fn wanted_by_email(desired: &Hierarchy, nesting: Nesting) -> BTreeMap<&str, Wanted<'_>> {
    desired
        .groups
        .iter()
        .map(|(name, group)| {
            let members = desired_members(desired, name, nesting)
                .into_iter()
                .map(|(member, kind)| {
                    let expires = group.expires.get(&member).copied();
                    (member, (kind, expires))
                })
                .collect();
            let wanted = Wanted { name: &group.name, description: &group.description, pinned: group.pinned, members };
            (group.email.as_str(), wanted)
        })
        .collect()
}

/// The emails of the groups created, removed or changed from `before` to `after`. With
/// flattened nesting a change to a nested group changes every group that contains it.
pub fn changed_groups(before: &Hierarchy, after: &Hierarchy, nesting: Nesting) -> BTreeSet<String> {
    let before = wanted_by_email(before, nesting);
    let after = wanted_by_email(after, nesting);
    let emails: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    emails.into_iter().filter(|email| before.get(email) != after.get(email)).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::outline as hierarchy;

    fn emails(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| format!("{name}@groups.example.org")).collect()
    }

    #[test]
    fn only_the_groups_that_differ_are_changed() {
        let before = hierarchy(&[("a", &["x@example.org"], &[]), ("b", &[], &["a"]), ("gone", &[], &[])]);
        let after =
            hierarchy(&[("a", &["x@example.org", "y@example.org"], &[]), ("b", &[], &["a"]), ("new", &[], &[])]);
        // Natively, b lists a as one member: a's people are a's business.
        assert_eq!(changed_groups(&before, &after, Nesting::Native), emails(&["a", "gone", "new"]));
        // Flattened, b lists a's people itself.
        assert_eq!(changed_groups(&before, &after, Nesting::Flatten), emails(&["a", "b", "gone", "new"]));
        assert!(changed_groups(&after, &after, Nesting::Flatten).is_empty());
    }

    #[test]
    fn a_new_end_date_is_a_change() {
        let before = hierarchy(&[("a", &["x@example.org"], &[])]);
        let mut after = before.clone();
        after.groups.get_mut("a").unwrap().expires.insert("x@example.org".into(), "2027-01-31".parse().unwrap());
        assert_eq!(changed_groups(&before, &after, Nesting::Native), emails(&["a"]));
    }
}
