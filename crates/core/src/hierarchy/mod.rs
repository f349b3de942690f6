//! The expanded group hierarchy: every group the organisation should have, with its direct
//! members and the groups nested in it.
//!
//! **Architecture invariant:** pure data. Expansion and every query here do no I/O and read no
//! clock ("today" is passed in), so the same definitions give the same bytes every run.

mod expand;
mod grants;
mod render;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::definitions::Date;

pub use expand::expand;
pub use grants::{expired_grants, expiring_grants, grant_locations, ExpiredGrant, ExpiringGrant};
pub use render::{render_json, render_text};

/// All groups, keyed and ordered by full name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchy {
    pub groups: BTreeMap<String, Group>,
}

/// One group as it should exist in every directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub email: String,
    pub description: String,
    pub kind: GroupKind,
    /// Lowercased emails of people and machine accounts that are direct members.
    pub members: BTreeSet<String>,
    /// Full names of the groups that are direct members.
    pub groups: BTreeSet<String>,
    /// Last day of access of direct members whose every grant here expires (the latest date);
    /// members without an entry have no end date.
    pub expires: BTreeMap<String, Date>,
    /// Removing members needs explicit consent (`sync.pinned_groups`, e.g. administrators).
    pub pinned: bool,
    /// Emails of groups outside the definitions nested here while the organisation moves off
    /// its old groups (`[migration] transition`); only the sync adds them, for one run.
    pub external_groups: BTreeSet<String>,
}

/// Where a group comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupKind {
    Dataset { dataset: String, role: String },
    Organisation,
}

/// How a member reaches a group: the chain of groups from the one that lists the member
/// directly (first) to the group asked about (last).
pub type MembershipPath = Vec<String>;

/// At most this many paths are listed by `why`; nesting can multiply them.
pub const MAX_WHY_PATHS: usize = 64;

impl Hierarchy {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Finds a group by full name or email.
    pub fn find_group(&self, name_or_email: &str) -> Option<&Group> {
        self.groups.get(name_or_email).or_else(|| {
            let wanted = name_or_email.to_ascii_lowercase();
            self.groups.values().find(|g| g.email == wanted)
        })
    }

    /// The same hierarchy with member emails replaced where `aliases` maps them, e.g. a
    /// person's Google account when it differs from their primary email.
    pub fn with_member_aliases(&self, aliases: &HashMap<String, String>) -> Hierarchy {
        let alias = |email: &String| aliases.get(email).cloned().unwrap_or_else(|| email.clone());
        let groups = self
            .groups
            .iter()
            .map(|(name, group)| {
                let mut group = group.clone();
                group.members = group.members.iter().map(alias).collect();
                group.expires = group.expires.iter().map(|(email, date)| (alias(email), *date)).collect();
                (name.clone(), group)
            })
            .collect();
        Hierarchy { groups }
    }

    /// The same groups without expiry dates, for directories that keep none with a membership
    /// (grants still end: expired ones are not in the hierarchy).
    pub fn without_expiry(&self) -> Hierarchy {
        let groups = self
            .groups
            .iter()
            .map(|(name, group)| {
                let mut group = group.clone();
                group.expires.clear();
                (name.clone(), group)
            })
            .collect();
        Hierarchy { groups }
    }

    /// Number of direct memberships (people and nested groups).
    pub fn membership_count(&self) -> usize {
        self.groups.values().map(|g| g.members.len() + g.groups.len()).sum()
    }

    /// Everyone who is a member of `name` directly or through nested groups.
    pub fn effective_members(&self, name: &str) -> BTreeSet<&str> {
        let mut members = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut pending = vec![name];
        while let Some(current) = pending.pop() {
            if !seen.insert(current) {
                continue;
            }
            if let Some(group) = self.groups.get(current) {
                members.extend(group.members.iter().map(String::as_str));
                pending.extend(group.groups.iter().map(String::as_str));
            }
        }
        members
    }

    /// The same hierarchy without these direct members (group name, email), e.g. for a
    /// directory where they have no identity.
    pub fn without_members(mut self, removals: impl IntoIterator<Item = (String, String)>) -> Hierarchy {
        for (group, email) in removals {
            if let Some(group) = self.groups.get_mut(&group) {
                group.members.remove(&email.to_ascii_lowercase());
                group.expires.remove(&email.to_ascii_lowercase());
            }
        }
        self
    }

    /// The same hierarchy with these direct members (group name, member) added, e.g. identities
    /// a directory knows its own way; the counterpart of `without_members`.
    pub fn with_members(mut self, additions: impl IntoIterator<Item = (String, String)>) -> Hierarchy {
        self.add_members(additions);
        self
    }

    /// Adds direct members (group name, email) decided outside the definitions, e.g. machine
    /// accounts; pairs naming a group that does not exist are ignored.
    pub fn add_members(&mut self, additions: impl IntoIterator<Item = (String, String)>) {
        for (group, email) in additions {
            if let Some(group) = self.groups.get_mut(&group) {
                group.members.insert(email.to_ascii_lowercase());
            }
        }
    }

    /// Adds groups decided outside the definitions (the infrastructure's workload groups); a
    /// group the definitions already have keeps its own settings and gains the nested groups.
    pub fn add_groups(&mut self, additions: impl IntoIterator<Item = Group>) {
        for group in additions {
            match self.groups.get_mut(&group.name) {
                Some(existing) => existing.groups.extend(group.groups),
                None => {
                    self.groups.insert(group.name.clone(), group);
                }
            }
        }
    }

    /// `name` and every group nested in it, at any depth.
    pub fn nested_groups(&self, name: &str) -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut pending = vec![name];
        while let Some(current) = pending.pop() {
            if let Some(group) = self.groups.get(current) {
                if seen.insert(group.name.as_str()) {
                    pending.extend(group.groups.iter().map(String::as_str));
                }
            }
        }
        seen
    }

    /// For each group, the groups it is directly nested in.
    pub fn parents(&self) -> HashMap<&str, Vec<&str>> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for group in self.groups.values() {
            for child in &group.groups {
                parents.entry(child.as_str()).or_default().push(group.name.as_str());
            }
        }
        parents
    }

    /// Every path by which `member` (an email) belongs to `group`, shortest first.
    pub fn why(&self, member: &str, group: &str) -> Vec<MembershipPath> {
        let member = member.to_ascii_lowercase();
        let mut paths = Vec::new();
        // Depth-first from the asked group down through nested groups; the hierarchy is
        // acyclic (expansion checks it), and the chain guard keeps a bad input finite.
        let mut stack: Vec<Vec<&str>> = vec![vec![group]];
        while let Some(chain) = stack.pop() {
            if paths.len() >= MAX_WHY_PATHS {
                break;
            }
            let Some(current) = self.groups.get(*chain.last().unwrap_or(&group)) else {
                continue;
            };
            if current.members.contains(&member) {
                paths.push(chain.iter().rev().map(|s| s.to_string()).collect());
            }
            for child in current.groups.iter().rev() {
                if !chain.contains(&child.as_str()) {
                    let mut next = chain.clone();
                    next.push(child);
                    stack.push(next);
                }
            }
        }
        paths.sort_by(|a: &MembershipPath, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        paths
    }

    /// Groups ordered so that every nested group comes before the groups containing it.
    pub fn bottom_up_order(&self) -> Vec<&str> {
        let mut order = Vec::with_capacity(self.groups.len());
        let mut entered: BTreeSet<&str> = BTreeSet::new();
        for name in self.groups.keys() {
            // Post-order depth-first search; a group is emitted when its marker pops, after
            // every group nested in it.
            let mut stack: Vec<(&str, bool)> = vec![(name.as_str(), false)];
            while let Some((current, children_done)) = stack.pop() {
                if children_done {
                    order.push(current);
                    continue;
                }
                let Some(group) = self.groups.get(current) else {
                    continue;
                };
                if !entered.insert(current) {
                    continue;
                }
                stack.push((current, true));
                for child in group.groups.iter().rev() {
                    if !entered.contains(child.as_str()) {
                        stack.push((child.as_str(), false));
                    }
                }
            }
        }
        order
    }
}

/// A hierarchy of organisation groups from `(name, people, nested groups)` outlines: a compact
/// way for the crates' tests to state a hierarchy.
pub fn outline(groups: &[(&str, &[&str], &[&str])]) -> Hierarchy {
    let groups = groups
        .iter()
        .map(|(name, members, nested)| {
            let group = Group {
                name: name.to_string(),
                email: format!("{name}@groups.example.org"),
                description: String::new(),
                kind: GroupKind::Organisation,
                members: members.iter().map(|m| m.to_string()).collect(),
                groups: nested.iter().map(|g| g.to_string()).collect(),
                expires: BTreeMap::new(),
                pinned: false,
                external_groups: BTreeSet::new(),
            };
            (name.to_string(), group)
        })
        .collect();
    Hierarchy { groups }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::outline as hierarchy;

    #[test]
    fn effective_members_follow_nesting() {
        let h = hierarchy(&[
            ("web", &["w@x.org"], &["analysis"]),
            ("analysis", &["a@x.org"], &["dm"]),
            ("dm", &["d@x.org"], &[]),
        ]);
        let web: Vec<&str> = h.effective_members("web").into_iter().collect();
        assert_eq!(web, ["a@x.org", "d@x.org", "w@x.org"]);
        assert_eq!(h.effective_members("dm").len(), 1);
    }

    #[test]
    fn why_lists_every_path_shortest_first() {
        let h = hierarchy(&[
            ("web", &[], &["meta", "analysis"]),
            ("meta", &[], &["analysis"]),
            ("analysis", &[], &["dm"]),
            ("dm", &["d@x.org"], &[]),
        ]);
        let paths = h.why("D@x.org", "web");
        assert_eq!(paths, vec![vec!["dm", "analysis", "web"], vec!["dm", "analysis", "meta", "web"]]);
        assert!(h.why("nobody@x.org", "web").is_empty());
    }

    #[test]
    fn aliases_replace_member_emails() {
        let h = hierarchy(&[("g", &["a@o.org", "b@o.org"], &[])]);
        let aliases = HashMap::from([("a@o.org".to_owned(), "a@gmail.com".to_owned())]);
        let aliased = h.with_member_aliases(&aliases);
        let members: Vec<&String> = aliased.groups["g"].members.iter().collect();
        assert_eq!(members, ["a@gmail.com", "b@o.org"]);
    }

    #[test]
    fn bottom_up_order_puts_children_first() {
        let h = hierarchy(&[("a", &[], &["b", "c"]), ("b", &[], &["c"]), ("c", &[], &[])]);
        assert_eq!(h.bottom_up_order(), ["c", "b", "a"]);
    }
}
