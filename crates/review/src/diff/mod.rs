//! Comparing two hierarchies: which groups appear or go, which direct members change (and
//! until when they are granted), and what access each person gains or loses through nesting.
//!
//! **Architecture invariant:** pure. Callers load the two hierarchies (from revisions, or from
//! desired and live state) and render the result.

mod render;
mod resources;
mod settings;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::definitions::Date;
use crate::hierarchy::{Group, Hierarchy};

pub use render::{
    escape_markdown, render_disagreement, render_json, render_markdown, render_text, MARKDOWN_COLLAPSE_LINES,
};
pub use resources::{
    render_resources_markdown, render_resources_text, resource_changes, PersonResources, ResourceChange,
};
pub use settings::{account_changes, setting_changes, AccountChange, SettingChange};

/// Everything that differs between a base and a head hierarchy, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HierarchyDiff {
    pub groups_added: Vec<GroupRef>,
    pub groups_removed: Vec<GroupRef>,
    /// Groups whose direct members changed (added groups list all their members here).
    pub groups_changed: Vec<GroupChange>,
    /// Effective access changes, by member then group.
    pub access: Vec<AccessChange>,
    /// People whose account on a provider moved (their access moves with it, in `access`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<AccountChange>,
    /// Settings that decide access (org.toml, policy.toml, the transition mapping), by key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<SettingChange>,
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
    /// The last day of access of added members whose grant expires.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub added_until: BTreeMap<String, Date>,
    /// Members in both whose last day of access changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expiry_changed: Vec<ExpiryChange>,
}

/// A grant that stays but ends on another day; `None` is no end date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiryChange {
    pub member: String,
    pub before: Option<Date>,
    pub after: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessChange {
    pub member: String,
    pub group: String,
    pub change: Change,
    /// The group that lists the member directly, when access comes through nesting.
    pub via: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
            && self.accounts.is_empty()
            && self.settings.is_empty()
    }

    /// Adds what the definitions change outside the hierarchy: moved accounts (with the
    /// access each gains and loses) and changed settings.
    pub fn with_definition_changes(
        mut self,
        base: Option<(&crate::definitions::Definitions, &Hierarchy)>,
        head: Option<(&crate::definitions::Definitions, &Hierarchy)>,
        settings: Vec<SettingChange>,
    ) -> HierarchyDiff {
        if let (Some((base_definitions, base_hierarchy)), Some((head_definitions, head_hierarchy))) = (base, head) {
            self.accounts = account_changes(base_definitions, head_definitions);
            self.access.extend(settings::account_access(&self.accounts, base_hierarchy, head_hierarchy));
            self.access.sort();
            self.access.dedup();
        }
        self.settings = settings;
        self
    }
}

/// Where two builds of the tool disagree about the same revisions: the access changes only
/// one of them computes (ignoring how each says it comes about).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    /// In the other build's diff only: what the other code would do that this one does not.
    pub only_other: Vec<AccessChange>,
    /// In this build's diff only.
    pub only_this: Vec<AccessChange>,
}

impl Disagreement {
    pub fn is_empty(&self) -> bool {
        self.only_other.is_empty() && self.only_this.is_empty()
    }
}

/// Compares this build's access changes with another build's of the same revisions.
pub fn compare_access(this: &[AccessChange], other: &[AccessChange]) -> Disagreement {
    let key = |a: &AccessChange| (a.member.clone(), a.group.clone(), a.change);
    let these: BTreeSet<_> = this.iter().map(key).collect();
    let others: BTreeSet<_> = other.iter().map(key).collect();
    let only = |from: &[AccessChange], absent: &BTreeSet<(String, String, Change)>| {
        from.iter().filter(|a| !absent.contains(&key(a))).cloned().collect()
    };
    Disagreement { only_other: only(other, &these), only_this: only(this, &others) }
}

/// Compares `base` with `head`. Effective access is recomputed only for the members touched
/// by a change (walking up from the groups that list them), so a small change to a large
/// organisation stays cheap.
pub fn diff_hierarchies(base: &Hierarchy, head: &Hierarchy) -> HierarchyDiff {
    diff_hierarchies_for(base, head, AccessScope::Everyone)
}

/// Whose effective access a diff works out: everyone touched, one member, or nobody (the
/// direct member changes alone, as a history of one group or dataset needs).
#[derive(Debug, Clone, Copy)]
pub enum AccessScope<'a> {
    Everyone,
    Member(&'a str),
    Nobody,
}

/// `diff_hierarchies` with the effective access of `scope` only.
pub fn diff_hierarchies_for(base: &Hierarchy, head: &Hierarchy, scope: AccessScope) -> HierarchyDiff {
    let mut diff = HierarchyDiff::default();
    let empty = BTreeSet::new();
    let no_expiry = BTreeMap::new();
    let names: BTreeSet<&String> = base.groups.keys().chain(head.groups.keys()).collect();
    for name in names {
        let (old, new) = (base.groups.get(name), head.groups.get(name));
        match (old, new) {
            (None, Some(g)) => diff.groups_added.push(GroupRef { name: g.name.clone(), email: g.email.clone() }),
            (Some(g), None) => diff.groups_removed.push(GroupRef { name: g.name.clone(), email: g.email.clone() }),
            _ => {}
        }
        let (old_members, old_groups) = old.map_or((&empty, &empty), |g| (&g.members, &g.groups));
        let (new_members, new_groups) = new.map_or((&empty, &empty), |g| (&g.members, &g.groups));
        let (old_expires, new_expires) = (expires_of(old, &no_expiry), expires_of(new, &no_expiry));
        if old_members == new_members && old_groups == new_groups && old_expires == new_expires {
            continue;
        }
        let members_added: Vec<String> = new_members.difference(old_members).cloned().collect();
        let added_until =
            members_added.iter().filter_map(|m| new_expires.get(m).map(|date| (m.clone(), *date))).collect();
        let expiry_changed = old_members
            .intersection(new_members)
            .filter(|m| old_expires.get(*m) != new_expires.get(*m))
            .map(|m| ExpiryChange {
                member: m.clone(),
                before: old_expires.get(m).copied(),
                after: new_expires.get(m).copied(),
            })
            .collect();
        diff.groups_changed.push(GroupChange {
            name: name.clone(),
            members_added,
            members_removed: old_members.difference(new_members).cloned().collect(),
            groups_added: new_groups.difference(old_groups).cloned().collect(),
            groups_removed: old_groups.difference(new_groups).cloned().collect(),
            added_until,
            expiry_changed,
        });
    }
    diff.access = match scope {
        AccessScope::Nobody => Vec::new(),
        _ => access_changes(base, head, &diff.groups_changed, scope),
    };
    diff
}

fn expires_of<'a>(group: Option<&'a Group>, none: &'a BTreeMap<String, Date>) -> &'a BTreeMap<String, Date> {
    group.map_or(none, |g| &g.expires)
}

fn access_changes(
    base: &Hierarchy,
    head: &Hierarchy,
    changed: &[GroupChange],
    scope: AccessScope,
) -> Vec<AccessChange> {
    let mut candidates = candidate_members(base, head, changed);
    if let AccessScope::Member(member) = scope {
        candidates.retain(|candidate| *candidate == member);
    }
    let ids = GroupIds::new(base, head);
    let lookup: FastSet<&str> = candidates.iter().copied().collect();
    // Each graph scans every membership of its hierarchy: build the two at once.
    let (base_graph, head_graph) = std::thread::scope(|scope| {
        let base_graph = scope.spawn(|| MembershipGraph::new(base, &ids, &lookup));
        let head_graph = MembershipGraph::new(head, &ids, &lookup);
        (base_graph.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), head_graph)
    });
    let mut before = Reach::new(ids.names.len());
    let mut after = Reach::new(ids.names.len());
    let mut changes = Vec::new();
    for member in &candidates {
        base_graph.reach(member, &mut before);
        head_graph.reach(member, &mut after);
        let mut record = |reach: &Reach, other: &Reach, change: Change| {
            for &group in &reach.touched {
                if other.origin[group as usize] == UNREACHED {
                    let origin = reach.origin[group as usize];
                    changes.push(AccessChange {
                        member: member.to_string(),
                        group: ids.names[group as usize].to_owned(),
                        change,
                        via: (origin != group).then(|| ids.names[origin as usize].to_owned()),
                    });
                }
            }
        };
        record(&after, &before, Change::Gains);
        record(&before, &after, Change::Loses);
    }
    changes.sort();
    changes
}

/// Members whose effective access may differ: those added or removed directly, and everyone
/// inside a nested group that was added or removed.
fn candidate_members<'a>(base: &'a Hierarchy, head: &'a Hierarchy, changed: &'a [GroupChange]) -> BTreeSet<&'a str> {
    let mut candidates = BTreeSet::new();
    for change in changed {
        candidates.extend(change.members_added.iter().map(String::as_str));
        candidates.extend(change.members_removed.iter().map(String::as_str));
        for child in &change.groups_added {
            candidates.extend(head.effective_members(child));
        }
        for child in &change.groups_removed {
            candidates.extend(base.effective_members(child));
        }
    }
    candidates
}

/// FNV-1a: the diff hashes every membership of both hierarchies, and these keys are short
/// trusted strings, so a simple hash beats SipHash's flood resistance here.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type FastBuild = std::hash::BuildHasherDefault<Fnv>;
type FastMap<K, V> = HashMap<K, V, FastBuild>;
type FastSet<K> = HashSet<K, FastBuild>;

/// Dense ids for the group names of both hierarchies, so walks use arrays, not maps.
struct GroupIds<'h> {
    ids: FastMap<&'h str, u32>,
    names: Vec<&'h str>,
}

impl<'h> GroupIds<'h> {
    fn new(base: &'h Hierarchy, head: &'h Hierarchy) -> Self {
        let names: Vec<&str> = base
            .groups
            .keys()
            .chain(head.groups.keys())
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids = names.iter().enumerate().map(|(id, name)| (*name, id as u32)).collect();
        GroupIds { ids, names }
    }
}

const UNREACHED: u32 = u32::MAX;

/// The groups one member reaches: `origin[g]` is the nearest group listing the member
/// directly (g itself for direct membership) or `UNREACHED`; `touched` lists the reached ids.
struct Reach {
    origin: Vec<u32>,
    touched: Vec<u32>,
}

impl Reach {
    fn new(groups: usize) -> Reach {
        Reach { origin: vec![UNREACHED; groups], touched: Vec::new() }
    }
}

/// One hierarchy as arrays: who contains each group, and which groups list each candidate.
struct MembershipGraph<'h> {
    parents: Vec<Vec<u32>>,
    direct: FastMap<&'h str, Vec<u32>>,
}

impl<'h> MembershipGraph<'h> {
    fn new(hierarchy: &'h Hierarchy, ids: &GroupIds, candidates: &FastSet<&str>) -> Self {
        let mut parents = vec![Vec::new(); ids.names.len()];
        let mut direct: FastMap<&str, Vec<u32>> = FastMap::default();
        for group in hierarchy.groups.values() {
            let id = ids.ids[group.name.as_str()];
            for child in &group.groups {
                if let Some(&child) = ids.ids.get(child.as_str()) {
                    parents[child as usize].push(id);
                }
            }
            for member in &group.members {
                if candidates.contains(member.as_str()) {
                    direct.entry(member.as_str()).or_default().push(id);
                }
            }
        }
        MembershipGraph { parents, direct }
    }

    /// Breadth-first walk up from every group listing `member`, so the first origin to reach
    /// a group is a nearest one. Clears what the previous walk left in `reach`.
    fn reach(&self, member: &str, reach: &mut Reach) {
        for &group in &reach.touched {
            reach.origin[group as usize] = UNREACHED;
        }
        reach.touched.clear();
        let mut queue: VecDeque<(u32, u32)> = self.direct.get(member).into_iter().flatten().map(|&g| (g, g)).collect();
        while let Some((group, origin)) = queue.pop_front() {
            if reach.origin[group as usize] != UNREACHED {
                continue;
            }
            reach.origin[group as usize] = origin;
            reach.touched.push(group);
            for &parent in &self.parents[group as usize] {
                if reach.origin[parent as usize] == UNREACHED {
                    queue.push_back((parent, origin));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::outline as hierarchy;

    #[test]
    fn identical_hierarchies_have_no_diff() {
        let h = hierarchy(&[("a", &["x@o.org"], &["b"]), ("b", &["y@o.org"], &[])]);
        assert!(diff_hierarchies(&h, &h).is_empty());
    }

    #[test]
    fn member_added_below_gains_access_above() {
        let base = hierarchy(&[("web", &[], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let head = hierarchy(&[("web", &[], &["analysis"]), ("analysis", &["a@o.org", "b@o.org"], &[])]);
        let diff = diff_hierarchies(&base, &head);
        assert_eq!(diff.groups_changed.len(), 1);
        assert_eq!(diff.groups_changed[0].members_added, ["b@o.org"]);
        let access: Vec<String> =
            diff.access.iter().map(|a| format!("{} {:?} {} {:?}", a.member, a.change, a.group, a.via)).collect();
        assert_eq!(access, ["b@o.org Gains analysis None", "b@o.org Gains web Some(\"analysis\")"]);
    }

    #[test]
    fn removing_a_nested_group_loses_access_but_keeps_other_paths() {
        let base = hierarchy(&[("top", &["a@o.org"], &["mid"]), ("mid", &["a@o.org", "b@o.org"], &[])]);
        let head = hierarchy(&[("top", &["a@o.org"], &[]), ("mid", &["a@o.org", "b@o.org"], &[])]);
        let diff = diff_hierarchies(&base, &head);
        // a is still a direct member of top, so only b loses it.
        assert_eq!(diff.access.len(), 1);
        assert_eq!(diff.access[0].member, "b@o.org");
        assert_eq!(diff.access[0].change, Change::Loses);
        assert_eq!(diff.access[0].via.as_deref(), Some("mid"));
    }

    #[test]
    fn expiry_moves_and_new_time_limited_grants_are_changes_without_access_changes() {
        let day = |text: &str| text.parse::<Date>().unwrap();
        let base = hierarchy(&[("g", &["a@o.org", "b@o.org"], &[])]);
        let mut head = hierarchy(&[("g", &["a@o.org", "b@o.org", "c@o.org"], &[])]);
        let mut moved = base.clone();
        moved.groups.get_mut("g").unwrap().expires.insert("a@o.org".to_owned(), day("2027-03-31"));
        head.groups.get_mut("g").unwrap().expires.insert("b@o.org".to_owned(), day("2027-01-31"));
        head.groups.get_mut("g").unwrap().expires.insert("c@o.org".to_owned(), day("2027-06-30"));
        let diff = diff_hierarchies(&moved, &head);
        let change = &diff.groups_changed[0];
        assert_eq!(change.added_until, BTreeMap::from([("c@o.org".to_owned(), day("2027-06-30"))]));
        assert_eq!(
            change.expiry_changed,
            [
                ExpiryChange { member: "a@o.org".to_owned(), before: Some(day("2027-03-31")), after: None },
                ExpiryChange { member: "b@o.org".to_owned(), before: None, after: Some(day("2027-01-31")) },
            ]
        );
        let only_expiry = diff_hierarchies(&base, &moved);
        assert!(!only_expiry.is_empty(), "a moved expiry is a difference");
        assert!(only_expiry.access.is_empty(), "{:?}", only_expiry.access);
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
