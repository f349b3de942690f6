//! Comparing two hierarchies: which groups appear or go, which direct members change, and what
//! access each person gains or loses through nesting.
//!
//! **Architecture invariant:** pure. Callers load the two hierarchies (from revisions, or from
//! desired and live state) and render the result.

mod render;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use serde::Serialize;

use crate::hierarchy::Hierarchy;

pub use render::{render_json, render_markdown, render_text, MARKDOWN_COLLAPSE_LINES};

/// Everything that differs between a base and a head hierarchy, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HierarchyDiff {
    pub groups_added: Vec<GroupRef>,
    pub groups_removed: Vec<GroupRef>,
    /// Groups whose direct members changed (added groups list all their members here).
    pub groups_changed: Vec<GroupChange>,
    /// Effective access changes, by member then group.
    pub access: Vec<AccessChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRef {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupChange {
    pub name: String,
    pub members_added: Vec<String>,
    pub members_removed: Vec<String>,
    pub groups_added: Vec<String>,
    pub groups_removed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessChange {
    pub member: String,
    pub group: String,
    pub change: Change,
    /// The group that lists the member directly, when access comes through nesting.
    pub via: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Gains,
    Loses,
}

impl HierarchyDiff {
    pub fn is_empty(&self) -> bool {
        self.groups_added.is_empty()
            && self.groups_removed.is_empty()
            && self.groups_changed.is_empty()
            && self.access.is_empty()
    }
}

/// Compares `base` with `head`. Effective access is recomputed only for groups whose direct
/// membership changed and the groups that contain them, so small changes to a large
/// organisation stay cheap.
pub fn diff_hierarchies(base: &Hierarchy, head: &Hierarchy) -> HierarchyDiff {
    let mut diff = HierarchyDiff::default();
    let empty = BTreeSet::new();
    let names: BTreeSet<&String> = base.groups.keys().chain(head.groups.keys()).collect();
    let mut changed_names = Vec::new();
    for name in names {
        let (old, new) = (base.groups.get(name), head.groups.get(name));
        match (old, new) {
            (None, Some(g)) => diff.groups_added.push(GroupRef {
                name: g.name.clone(),
                email: g.email.clone(),
            }),
            (Some(g), None) => diff.groups_removed.push(GroupRef {
                name: g.name.clone(),
                email: g.email.clone(),
            }),
            _ => {}
        }
        let (old_members, old_groups) = old.map_or((&empty, &empty), |g| (&g.members, &g.groups));
        let (new_members, new_groups) = new.map_or((&empty, &empty), |g| (&g.members, &g.groups));
        if old_members == new_members && old_groups == new_groups {
            continue;
        }
        changed_names.push(name.as_str());
        diff.groups_changed.push(GroupChange {
            name: name.clone(),
            members_added: new_members.difference(old_members).cloned().collect(),
            members_removed: old_members.difference(new_members).cloned().collect(),
            groups_added: new_groups.difference(old_groups).cloned().collect(),
            groups_removed: old_groups.difference(new_groups).cloned().collect(),
        });
    }
    diff.access = access_changes(base, head, &changed_names);
    diff
}

fn access_changes(base: &Hierarchy, head: &Hierarchy, changed: &[&str]) -> Vec<AccessChange> {
    let affected = with_ancestors(changed, &[base, head]);
    let mut base_effective = EffectiveMembers::new(base);
    let mut head_effective = EffectiveMembers::new(head);
    let mut changes = Vec::new();
    for group in affected {
        let before = base_effective.of(group);
        let after = head_effective.of(group);
        for member in after.difference(&before) {
            let via = innermost_group(head, member, group);
            changes.push(AccessChange {
                member: member.to_string(),
                group: group.to_owned(),
                change: Change::Gains,
                via,
            });
        }
        for member in before.difference(&after) {
            let via = innermost_group(base, member, group);
            changes.push(AccessChange {
                member: member.to_string(),
                group: group.to_owned(),
                change: Change::Loses,
                via,
            });
        }
    }
    changes.sort();
    changes
}

/// `changed` plus every group that contains one of them, in either hierarchy.
fn with_ancestors<'a>(changed: &[&'a str], hierarchies: &[&'a Hierarchy]) -> BTreeSet<&'a str> {
    let parents: Vec<HashMap<&str, Vec<&str>>> = hierarchies.iter().map(|h| h.parents()).collect();
    let mut affected: BTreeSet<&str> = BTreeSet::new();
    let mut pending: Vec<&str> = changed.to_vec();
    while let Some(name) = pending.pop() {
        if !affected.insert(name) {
            continue;
        }
        for index in &parents {
            pending.extend(index.get(name).into_iter().flatten().copied());
        }
    }
    affected
}

/// The nearest group under `group` that lists `member` directly, or `None` if `group` does.
fn innermost_group(hierarchy: &Hierarchy, member: &str, group: &str) -> Option<String> {
    let mut queue = VecDeque::from([group]);
    let mut seen = BTreeSet::new();
    while let Some(current) = queue.pop_front() {
        if !seen.insert(current) {
            continue;
        }
        let Some(g) = hierarchy.groups.get(current) else {
            continue;
        };
        if g.members.contains(member) {
            return (current != group).then(|| current.to_owned());
        }
        queue.extend(g.groups.iter().map(String::as_str));
    }
    None
}

/// Memoised transitive membership of one hierarchy.
struct EffectiveMembers<'h> {
    hierarchy: &'h Hierarchy,
    memo: HashMap<&'h str, Rc<BTreeSet<&'h str>>>,
}

impl<'h> EffectiveMembers<'h> {
    fn new(hierarchy: &'h Hierarchy) -> Self {
        EffectiveMembers {
            hierarchy,
            memo: HashMap::new(),
        }
    }

    /// Recursion depth is the nesting depth, which expansion keeps acyclic.
    fn of(&mut self, name: &str) -> Rc<BTreeSet<&'h str>> {
        if let Some(known) = self.memo.get(name) {
            return Rc::clone(known);
        }
        let Some((key, group)) = self.hierarchy.groups.get_key_value(name) else {
            return Rc::new(BTreeSet::new());
        };
        let mut members: BTreeSet<&'h str> = group.members.iter().map(String::as_str).collect();
        for child in &group.groups {
            members.extend(self.of(child).iter().copied());
        }
        let members = Rc::new(members);
        self.memo.insert(key.as_str(), Rc::clone(&members));
        members
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::tests::hierarchy;

    #[test]
    fn identical_hierarchies_have_no_diff() {
        let h = hierarchy(&[("a", &["x@o.org"], &["b"]), ("b", &["y@o.org"], &[])]);
        assert!(diff_hierarchies(&h, &h).is_empty());
    }

    #[test]
    fn member_added_below_gains_access_above() {
        let base = hierarchy(&[("web", &[], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let head = hierarchy(&[
            ("web", &[], &["analysis"]),
            ("analysis", &["a@o.org", "b@o.org"], &[]),
        ]);
        let diff = diff_hierarchies(&base, &head);
        assert_eq!(diff.groups_changed.len(), 1);
        assert_eq!(diff.groups_changed[0].members_added, ["b@o.org"]);
        let access: Vec<String> = diff
            .access
            .iter()
            .map(|a| format!("{} {:?} {} {:?}", a.member, a.change, a.group, a.via))
            .collect();
        assert_eq!(
            access,
            [
                "b@o.org Gains analysis None",
                "b@o.org Gains web Some(\"analysis\")"
            ]
        );
    }

    #[test]
    fn removing_a_nested_group_loses_access_but_keeps_other_paths() {
        let base = hierarchy(&[
            ("top", &["a@o.org"], &["mid"]),
            ("mid", &["a@o.org", "b@o.org"], &[]),
        ]);
        let head = hierarchy(&[
            ("top", &["a@o.org"], &[]),
            ("mid", &["a@o.org", "b@o.org"], &[]),
        ]);
        let diff = diff_hierarchies(&base, &head);
        // a is still a direct member of top, so only b loses it.
        assert_eq!(diff.access.len(), 1);
        assert_eq!(diff.access[0].member, "b@o.org");
        assert_eq!(diff.access[0].change, Change::Loses);
        assert_eq!(diff.access[0].via.as_deref(), Some("mid"));
    }

    #[test]
    fn added_and_removed_groups_are_listed() {
        let base = hierarchy(&[("old", &["a@o.org"], &[])]);
        let head = hierarchy(&[("new", &["a@o.org"], &[])]);
        let diff = diff_hierarchies(&base, &head);
        assert_eq!(diff.groups_added[0].name, "new");
        assert_eq!(diff.groups_removed[0].name, "old");
        assert_eq!(diff.access.len(), 2);
    }
}
