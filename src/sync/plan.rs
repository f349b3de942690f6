//! Planning: desired hierarchy + live state → the ordered list of changes, with conflicts and
//! safety-limit refusals. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::LiveState;
use crate::definitions::{Date, Nesting};
use crate::hierarchy::Hierarchy;

/// One change to a directory. Groups are named by email, the directory's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Put the owner marker on an existing group (with `--adopt`), so it is managed from now on.
    AdoptGroup {
        group: String,
        description: String,
    },
    CreateGroup {
        name: String,
        email: String,
        description: String,
    },
    AddMember {
        group: String,
        member: String,
        /// The last day of access, for grants that expire (directories that support it remove
        /// the member themselves after it).
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<Date>,
    },
    RemoveMember {
        group: String,
        member: String,
    },
    DeleteGroup {
        group: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Change::AdoptGroup { group, .. } => write!(f, "~ adopt  group {group}"),
            Change::CreateGroup { email, .. } => write!(f, "+ create group {email}"),
            Change::AddMember { group, member, expires: None } => write!(f, "+ add    {member} to {group}"),
            Change::AddMember { group, member, expires: Some(date) } => {
                write!(f, "+ add    {member} to {group} (until {date})")
            }
            Change::RemoveMember { group, member } => write!(f, "- remove {member} from {group}"),
            Change::DeleteGroup { group } => write!(f, "- delete group {group}"),
        }
    }
}

/// A desired group that exists in the directory without our marker: left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub group: String,
    pub reason: String,
}

/// Safety limits on removals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovalLimits {
    /// Most member removals in one run.
    pub max_removals: usize,
    /// Largest share of one group's members one run may remove (applies above one removal).
    pub max_removal_percent: u8,
}

/// How to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    pub nesting: Nesting,
    /// Delete owned groups that are no longer defined.
    pub delete_groups: bool,
    /// Take over desired groups that exist without the owner marker instead of reporting them.
    pub adopt: bool,
    pub limits: RemovalLimits,
}

/// Changes in the order they must run: creations, additions (nested groups before the groups
/// containing them), removals, deletions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    /// Why applying this plan needs `--allow-mass-removal`; empty when it does not.
    pub refusals: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts of (creations, additions, removals, deletions); adoptions count as creations.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for change in &self.changes {
            match change {
                Change::AdoptGroup { .. } | Change::CreateGroup { .. } => counts.0 += 1,
                Change::AddMember { .. } => counts.1 += 1,
                Change::RemoveMember { .. } => counts.2 += 1,
                Change::DeleteGroup { .. } => counts.3 += 1,
            }
        }
        counts
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for conflict in &self.conflicts {
            writeln!(f, "! conflict: {}: {}", conflict.group, conflict.reason)?;
        }
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        for refusal in &self.refusals {
            writeln!(f, "! refused: {refusal}")?;
        }
        let (created, added, removed, deleted) = self.counts();
        writeln!(
            f,
            "plan: {created} group(s) to create, {added} member(s) to add, {removed} to remove, {deleted} group(s) to delete"
        )
    }
}

/// Compares what should be with what is.
pub fn plan(desired: &Hierarchy, live: &LiveState, options: &PlanOptions) -> Plan {
    let mut plan = Plan::default();
    let mut adoptions = Vec::new();
    let mut creations = Vec::new();
    let mut additions = Vec::new();
    let mut removals = Vec::new();
    let mut removals_per_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut pinned_refusals = Vec::new();
    for name in desired.bottom_up_order() {
        let group = &desired.groups[name];
        let wanted = desired_members(desired, name, options.nesting);
        let current = match live.groups.get(&group.email) {
            Some(state) if !state.group.owned && !options.adopt => {
                plan.conflicts.push(Conflict {
                    group: group.email.clone(),
                    reason: "exists but is not managed by cpg-infra; left unchanged (--adopt takes it over)".to_owned(),
                });
                continue;
            }
            Some(state) if !state.group.owned => {
                adoptions
                    .push(Change::AdoptGroup { group: group.email.clone(), description: group.description.clone() });
                &state.members
            }
            Some(state) => &state.members,
            None => {
                creations.push(Change::CreateGroup {
                    name: group.name.clone(),
                    email: group.email.clone(),
                    description: group.description.clone(),
                });
                &BTreeSet::new()
            }
        };
        for member in wanted.difference(current) {
            let expires = group.expires.get(member).copied();
            additions.push(Change::AddMember { group: group.email.clone(), member: member.clone(), expires });
        }
        let leaving: Vec<&String> = current.difference(&wanted).collect();
        if !leaving.is_empty() {
            removals_per_group.insert(&group.email, (leaving.len(), current.len()));
            if group.pinned {
                pinned_refusals.push(format!(
                    "the plan removes {} member(s) of pinned group {} (sync.pinned_groups)",
                    leaving.len(),
                    group.email
                ));
            }
        }
        for member in leaving {
            removals.push(Change::RemoveMember { group: group.email.clone(), member: member.clone() });
        }
    }
    let desired_emails: BTreeSet<&str> = desired.groups.values().map(|g| g.email.as_str()).collect();
    let mut deletions = Vec::new();
    let mut deletion_refusals = Vec::new();
    if options.delete_groups {
        for (email, state) in &live.groups {
            if state.group.owned && !desired_emails.contains(email.as_str()) {
                deletions.push(Change::DeleteGroup { group: email.clone() });
                // Deleting a group removes its members too, so it needs the same consent.
                if !state.members.is_empty() {
                    let count = state.members.len();
                    deletion_refusals.push(format!("the plan deletes {email}, which has {count} member(s)"));
                }
            }
        }
    }
    plan.refusals = removal_refusals(&removals_per_group, removals.len(), &options.limits);
    plan.refusals.extend(pinned_refusals);
    plan.refusals.extend(deletion_refusals);
    plan.changes = adoptions.into_iter().chain(creations).chain(additions).chain(removals).chain(deletions).collect();
    plan
}

/// The members a group should list directly in a directory with this nesting mode.
fn desired_members(desired: &Hierarchy, name: &str, nesting: Nesting) -> BTreeSet<String> {
    let group = &desired.groups[name];
    match nesting {
        Nesting::Native => {
            let nested = group.groups.iter().filter_map(|child| desired.groups.get(child)).map(|g| g.email.clone());
            group.members.iter().cloned().chain(nested).collect()
        }
        Nesting::Flatten => desired.effective_members(name).into_iter().map(str::to_owned).collect(),
    }
}

fn removal_refusals(per_group: &BTreeMap<&str, (usize, usize)>, total: usize, limits: &RemovalLimits) -> Vec<String> {
    let mut refusals = Vec::new();
    if total > limits.max_removals {
        refusals.push(format!(
            "the plan removes {total} members; the limit is {} (sync.max_removals)",
            limits.max_removals
        ));
    }
    for (group, &(removed, current)) in per_group {
        if removed == current {
            refusals.push(format!("the plan removes every member ({removed}) of {group}"));
        } else if removed > 1 && removed * 100 > current * usize::from(limits.max_removal_percent) {
            refusals.push(format!(
                "the plan removes {removed} of {current} members of {group}; the limit is {}% (sync.max_removal_percent)",
                limits.max_removal_percent
            ));
        }
    }
    refusals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::LiveGroup;
    use crate::hierarchy::tests::hierarchy;
    use crate::sync::LiveGroupState;

    const OPTIONS: PlanOptions = PlanOptions {
        nesting: Nesting::Native,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: 10, max_removal_percent: 50 },
    };

    fn live(groups: &[(&str, bool, &[&str])]) -> LiveState {
        let groups = groups
            .iter()
            .map(|(name, owned, members)| {
                let email = format!("{name}@groups.example.org");
                let group = LiveGroup {
                    name: name.to_string(),
                    email: email.clone(),
                    description: String::new(),
                    owned: *owned,
                };
                (email, LiveGroupState { group, members: members.iter().map(|m| m.to_string()).collect() })
            })
            .collect();
        LiveState { groups }
    }

    fn lines(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn empty_directory_gets_groups_then_members_bottom_up() {
        let desired = hierarchy(&[("web", &["w@o.org"], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let plan = plan(&desired, &LiveState::default(), &OPTIONS);
        assert_eq!(
            lines(&plan),
            [
                "+ create group analysis@groups.example.org",
                "+ create group web@groups.example.org",
                "+ add    a@o.org to analysis@groups.example.org",
                "+ add    analysis@groups.example.org to web@groups.example.org",
                "+ add    w@o.org to web@groups.example.org",
            ]
        );
        assert!(plan.refusals.is_empty());
    }

    #[test]
    fn matching_directory_needs_no_changes() {
        let desired = hierarchy(&[("web", &["w@o.org"], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let current =
            live(&[("web", true, &["w@o.org", "analysis@groups.example.org"]), ("analysis", true, &["a@o.org"])]);
        assert!(plan(&desired, &current, &OPTIONS).is_empty());
    }

    #[test]
    fn flatten_lists_transitive_people_instead_of_groups() {
        let desired = hierarchy(&[("web", &["w@o.org"], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let options = PlanOptions { nesting: Nesting::Flatten, ..OPTIONS };
        let current = live(&[("web", true, &["w@o.org"]), ("analysis", true, &["a@o.org"])]);
        assert_eq!(lines(&plan(&desired, &current, &options)), ["+ add    a@o.org to web@groups.example.org"]);
    }

    #[test]
    fn unowned_groups_are_conflicts_and_untouched() {
        let desired = hierarchy(&[("web", &["w@o.org"], &[])]);
        let current = live(&[("web", false, &[])]);
        let plan = plan(&desired, &current, &OPTIONS);
        assert!(plan.changes.is_empty());
        assert_eq!(plan.conflicts.len(), 1);
    }

    #[test]
    fn emptying_a_group_or_removing_too_many_is_refused() {
        let desired = hierarchy(&[("a", &[], &[]), ("b", &["k@o.org"], &[])]);
        let current = live(&[("a", true, &["x@o.org"]), ("b", true, &["k@o.org", "y@o.org", "z@o.org"])]);
        let plan = plan(&desired, &current, &OPTIONS);
        assert_eq!(plan.refusals.len(), 2, "{:?}", plan.refusals);
        assert!(plan.refusals[0].contains("every member (1) of a@"));
        assert!(plan.refusals[1].contains("removes 2 of 3 members of b@"));
    }

    #[test]
    fn adopting_takes_over_an_unowned_group_and_reconciles_its_members() {
        let desired = hierarchy(&[("web", &["w@o.org"], &[])]);
        let current = live(&[("web", false, &["w@o.org", "x@o.org", "y@o.org"])]);
        let options = PlanOptions {
            adopt: true,
            limits: RemovalLimits { max_removals: 10, max_removal_percent: 100 },
            ..OPTIONS
        };
        let plan = plan(&desired, &current, &options);
        assert!(plan.conflicts.is_empty());
        assert_eq!(
            lines(&plan),
            [
                "~ adopt  group web@groups.example.org",
                "- remove x@o.org from web@groups.example.org",
                "- remove y@o.org from web@groups.example.org",
            ]
        );
    }

    #[test]
    fn any_removal_from_a_pinned_group_is_refused() {
        let mut desired = hierarchy(&[("admins", &["a@o.org", "b@o.org", "c@o.org"], &[])]);
        let current = live(&[("admins", true, &["a@o.org", "b@o.org", "c@o.org", "d@o.org"])]);
        assert!(plan(&desired, &current, &OPTIONS).refusals.is_empty(), "one removal of four is within the limits");
        desired.groups.get_mut("admins").unwrap().pinned = true;
        let refusals = plan(&desired, &current, &OPTIONS).refusals;
        assert_eq!(
            refusals,
            ["the plan removes 1 member(s) of pinned group admins@groups.example.org (sync.pinned_groups)"]
        );
    }

    #[test]
    fn stale_owned_groups_are_deleted_only_when_asked() {
        let desired = hierarchy(&[]);
        let current = live(&[("old", true, &[]), ("theirs", false, &[])]);
        assert!(plan(&desired, &current, &OPTIONS).is_empty());
        let options = PlanOptions { delete_groups: true, ..OPTIONS };
        assert_eq!(lines(&plan(&desired, &current, &options)), ["- delete group old@groups.example.org"]);
    }
}
