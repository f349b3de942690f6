//! Planning: desired hierarchy + live state → the ordered list of changes, with conflicts and
//! safety-limit refusals. Pure.
//!
//! A member is compared by email, by how the directory records it (a group must be a group
//! member, a person or machine account must not be) and by its last day of access.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::LiveState;
use crate::definitions::{Date, Nesting};
use crate::directory::{LiveMember, MemberKind};
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
    /// The member is recorded as the wrong kind (e.g. a group's email added as a user before
    /// the group existed): remove it and add it again, so the directory types it anew.
    ReAddMember {
        group: String,
        member: String,
        /// What the member should be.
        kind: MemberKind,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<Date>,
    },
    /// The membership stays; its last day of access changes (`None`: it no longer expires).
    SetExpiry {
        group: String,
        member: String,
        expires: Option<Date>,
        /// What the directory holds now, for the reader of the plan.
        previous: Option<Date>,
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
            Change::ReAddMember { group, member, kind, expires } => {
                write!(f, "~ re-add {member} to {group} as {kind}")?;
                match expires {
                    Some(date) => write!(f, " (until {date})"),
                    None => Ok(()),
                }
            }
            Change::SetExpiry { group, member, expires, previous } => {
                let day = |date: &Option<Date>| date.map_or_else(|| "no end date".to_owned(), |d| d.to_string());
                write!(f, "~ expiry {member} in {group}: {} → {}", day(previous), day(expires))
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

/// A group of ours the definitions no longer define, left as it is (members included) because
/// the plan was made without `delete_groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoLongerDefined {
    pub group: String,
    /// Its members, which it keeps.
    pub members: usize,
}

impl fmt::Display for NoLongerDefined {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.members {
            0 => write!(f, "! no longer defined: {}, left as it is; --delete-groups deletes it", self.group),
            members => write!(
                f,
                "! no longer defined: {}, left as it is with its {members} member(s); --delete-groups deletes it (with --allow-mass-removal, as it has members)",
                self.group
            ),
        }
    }
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
    /// Groups of ours the definitions no longer define, which the plan leaves as they are (with
    /// `delete_groups` they are deletions instead).
    pub no_longer_defined: Vec<NoLongerDefined>,
}

/// How many changes of each kind a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanCounts {
    /// Creations and adoptions.
    pub created: usize,
    pub added: usize,
    /// Memberships that stay but are re-added or get a new expiry.
    pub updated: usize,
    pub removed: usize,
    pub deleted: usize,
}

impl PlanCounts {
    fn count(&mut self, change: &Change) {
        match change {
            Change::AdoptGroup { .. } | Change::CreateGroup { .. } => self.created += 1,
            Change::AddMember { .. } => self.added += 1,
            Change::ReAddMember { .. } | Change::SetExpiry { .. } => self.updated += 1,
            Change::RemoveMember { .. } => self.removed += 1,
            Change::DeleteGroup { .. } => self.deleted += 1,
        }
    }

    fn total(&self) -> usize {
        self.created + self.added + self.updated + self.removed + self.deleted
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn counts(&self) -> PlanCounts {
        let mut counts = PlanCounts::default();
        self.changes.iter().for_each(|change| counts.count(change));
        counts
    }
}

impl Change {
    /// The email of the group the change is to.
    pub fn group_email(&self) -> &str {
        match self {
            Change::CreateGroup { email, .. } => email,
            Change::AdoptGroup { group, .. }
            | Change::AddMember { group, .. }
            | Change::ReAddMember { group, .. }
            | Change::SetExpiry { group, .. }
            | Change::RemoveMember { group, .. }
            | Change::DeleteGroup { group } => group,
        }
    }
}

/// A plan as text with its changes summed up per group (at most `groups_shown` groups, those
/// with the most changes first) instead of one line each: what a large plan prints unless
/// every line is asked for. Conflicts, groups no longer defined and refusals stay in full.
pub struct PlanSummary<'a> {
    pub plan: &'a Plan,
    pub groups_shown: usize,
}

impl fmt::Display for PlanSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let plan = self.plan;
        plan.write_conflicts(f)?;
        let mut per_group: BTreeMap<&str, PlanCounts> = BTreeMap::new();
        for change in &plan.changes {
            per_group.entry(change.group_email()).or_default().count(change);
        }
        let mut groups: Vec<(&str, PlanCounts)> = per_group.into_iter().collect();
        groups.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then(a.0.cmp(b.0)));
        for (group, counts) in groups.iter().take(self.groups_shown) {
            let mut parts = Vec::new();
            if counts.created > 0 {
                parts.push("created".to_owned());
            }
            if counts.deleted > 0 {
                parts.push("deleted".to_owned());
            }
            for (n, what) in [(counts.added, "added"), (counts.removed, "removed"), (counts.updated, "updated")] {
                if n > 0 {
                    parts.push(format!("{n} member(s) {what}"));
                }
            }
            writeln!(f, "* {group}: {}", parts.join(", "))?;
        }
        if groups.len() > self.groups_shown {
            writeln!(f, "... and {} more group(s) with changes", groups.len() - self.groups_shown)?;
        }
        writeln!(
            f,
            "{} change(s) to {} group(s), summed up per group; --verbose prints every change",
            plan.changes.len(),
            groups.len()
        )?;
        plan.write_closing(f)
    }
}

impl Plan {
    fn write_conflicts(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for conflict in &self.conflicts {
            writeln!(f, "! conflict: {}: {}", conflict.group, conflict.reason)?;
        }
        Ok(())
    }

    /// The groups no longer defined, the refusals and the counts.
    fn write_closing(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for group in &self.no_longer_defined {
            writeln!(f, "{group}")?;
        }
        for refusal in &self.refusals {
            writeln!(f, "! refused: {refusal}")?;
        }
        let PlanCounts { created, added, updated, removed, deleted } = self.counts();
        writeln!(
            f,
            "plan: {created} group(s) to create, {added} member(s) to add, {removed} to remove, {updated} to update, {deleted} group(s) to delete"
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.write_conflicts(f)?;
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        self.write_closing(f)
    }
}

/// Compares what should be with what is.
pub fn plan(desired: &Hierarchy, live: &LiveState, options: &PlanOptions) -> Plan {
    plan_some(desired, live, options, None)
}

/// `plan` for the groups in `only` (emails), when `live` was read for those alone: other
/// desired groups are not created, and no other live group is removed or deleted. Nested
/// groups outside `only` still resolve, through the whole `desired`.
pub fn plan_groups(desired: &Hierarchy, live: &LiveState, options: &PlanOptions, only: &BTreeSet<String>) -> Plan {
    plan_some(desired, live, options, Some(only))
}

fn plan_some(desired: &Hierarchy, live: &LiveState, options: &PlanOptions, only: Option<&BTreeSet<String>>) -> Plan {
    let planned = |email: &str| only.is_none_or(|only| only.contains(email));
    let mut plan = Plan::default();
    let mut adoptions = Vec::new();
    let mut creations = Vec::new();
    let mut additions = Vec::new();
    let mut removals = Vec::new();
    let mut removals_per_group: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut pinned_refusals = Vec::new();
    let nothing = BTreeMap::new();
    for name in desired.bottom_up_order() {
        let group = &desired.groups[name];
        if !planned(&group.email) {
            continue;
        }
        let wanted = desired_members(desired, name, options.nesting);
        let current: &BTreeMap<String, LiveMember> = match live.groups.get(&group.email) {
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
                &nothing
            }
        };
        for (member, kind) in &wanted {
            let expires = group.expires.get(member).copied();
            let (group, member) = (group.email.clone(), member.clone());
            match current.get(&member) {
                None => additions.push(Change::AddMember { group, member, expires }),
                Some(live) if !kind_matches(*kind, live.kind) => {
                    additions.push(Change::ReAddMember { group, member, kind: *kind, expires })
                }
                Some(live) if live.expires != expires => {
                    additions.push(Change::SetExpiry { group, member, expires, previous: live.expires })
                }
                Some(_) => {}
            }
        }
        let leaving: Vec<&String> = current.keys().filter(|member| !wanted.contains_key(*member)).collect();
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
    let undefined = live
        .groups
        .iter()
        .filter(|(email, state)| state.group.owned && !desired_emails.contains(email.as_str()) && planned(email));
    for (email, state) in undefined {
        if !options.delete_groups {
            plan.no_longer_defined.push(NoLongerDefined { group: email.clone(), members: state.members.len() });
            continue;
        }
        deletions.push(Change::DeleteGroup { group: email.clone() });
        // Deleting a group removes its members too, so it needs the same consent.
        if !state.members.is_empty() {
            let count = state.members.len();
            deletion_refusals.push(format!("the plan deletes {email}, which has {count} member(s)"));
        }
    }
    plan.refusals = removal_refusals(&removals_per_group, removals.len(), &options.limits);
    plan.refusals.extend(pinned_refusals);
    plan.refusals.extend(deletion_refusals);
    plan.changes = adoptions.into_iter().chain(creations).chain(additions).chain(removals).chain(deletions).collect();
    plan
}

/// Whether a member recorded as `live` is what the hierarchy means by `wanted`: a group must be
/// recorded as a group, and an account as anything but a group.
fn kind_matches(wanted: MemberKind, live: MemberKind) -> bool {
    match wanted {
        MemberKind::Group => live == MemberKind::Group,
        MemberKind::Account | MemberKind::Other => live != MemberKind::Group,
    }
}

/// The members a group should list directly in a directory with this nesting mode, and what
/// each is.
pub(super) fn desired_members(desired: &Hierarchy, name: &str, nesting: Nesting) -> BTreeMap<String, MemberKind> {
    let group = &desired.groups[name];
    match nesting {
        Nesting::Native => {
            let accounts = group.members.iter().map(|m| (m.clone(), MemberKind::Account));
            let nested = group
                .groups
                .iter()
                .filter_map(|child| desired.groups.get(child))
                .map(|g| (g.email.clone(), MemberKind::Group));
            let external = group.external_groups.iter().map(|email| (email.clone(), MemberKind::Group));
            accounts.chain(nested).chain(external).collect()
        }
        Nesting::Flatten => {
            // Groups outside the definitions cannot be flattened: their members are not known.
            let external = group.external_groups.iter().map(|email| (email.clone(), MemberKind::Group));
            let people = desired.effective_members(name).into_iter().map(|m| (m.to_owned(), MemberKind::Account));
            people.chain(external).collect()
        }
    }
}

pub(crate) fn removal_refusals(
    per_group: &BTreeMap<&str, (usize, usize)>,
    total: usize,
    limits: &RemovalLimits,
) -> Vec<String> {
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
    use crate::hierarchy::outline as hierarchy;
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
                let members = members.iter().map(|m| (m.to_string(), recorded(m, None))).collect();
                (email, LiveGroupState { group, members })
            })
            .collect();
        LiveState { groups }
    }

    /// A member as a directory that got it right records it: groups live in the groups domain.
    fn recorded(email: &str, expires: Option<Date>) -> LiveMember {
        let kind = if email.ends_with("@groups.example.org") { MemberKind::Group } else { MemberKind::Account };
        LiveMember { email: email.to_owned(), kind, expires }
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
    fn a_member_recorded_as_the_wrong_kind_is_re_added_without_counting_as_a_removal() {
        let desired = hierarchy(&[("web", &["w@o.org"], &["analysis"]), ("analysis", &[], &[])]);
        let mut current = live(&[("web", true, &["w@o.org", "analysis@groups.example.org"]), ("analysis", true, &[])]);
        let web = current.groups.get_mut("web@groups.example.org").unwrap();
        web.members.get_mut("analysis@groups.example.org").unwrap().kind = MemberKind::Account;
        web.members.get_mut("w@o.org").unwrap().kind = MemberKind::Group;
        let plan = plan(&desired, &current, &OPTIONS);
        assert_eq!(
            lines(&plan),
            [
                "~ re-add analysis@groups.example.org to web@groups.example.org as a group",
                "~ re-add w@o.org to web@groups.example.org as an account",
            ]
        );
        assert_eq!(plan.counts(), PlanCounts { updated: 2, ..PlanCounts::default() });
        assert!(plan.refusals.is_empty());
    }

    #[test]
    fn expiry_is_compared_and_changed_in_place() {
        let day = |text: &str| text.parse::<Date>().unwrap();
        let mut desired = hierarchy(&[("g", &["a@o.org", "b@o.org", "c@o.org", "d@o.org"], &[])]);
        let expires = &mut desired.groups.get_mut("g").unwrap().expires;
        expires.insert("a@o.org".to_owned(), day("2027-03-31"));
        expires.insert("c@o.org".to_owned(), day("2027-06-30"));
        expires.insert("d@o.org".to_owned(), day("2027-01-31"));
        let mut current = live(&[("g", true, &["a@o.org", "b@o.org", "c@o.org", "d@o.org"])]);
        let members = &mut current.groups.get_mut("g@groups.example.org").unwrap().members;
        members.get_mut("a@o.org").unwrap().expires = Some(day("2027-01-31"));
        members.get_mut("b@o.org").unwrap().expires = Some(day("2027-02-28"));
        members.get_mut("d@o.org").unwrap().expires = Some(day("2027-01-31"));
        assert_eq!(
            lines(&plan(&desired, &current, &OPTIONS)),
            [
                "~ expiry a@o.org in g@groups.example.org: 2027-01-31 → 2027-03-31",
                "~ expiry b@o.org in g@groups.example.org: 2027-02-28 → no end date",
                "~ expiry c@o.org in g@groups.example.org: no end date → 2027-06-30",
            ]
        );
    }

    #[test]
    fn stale_owned_groups_are_deleted_only_when_asked() {
        let desired = hierarchy(&[]);
        let current = live(&[("old", true, &[]), ("kept", true, &["a@o.org"]), ("theirs", false, &[])]);
        let left = plan(&desired, &current, &OPTIONS);
        assert!(left.is_empty());
        // Said, with what --delete-groups would do; a group that is not ours is not mentioned.
        let said: Vec<String> =
            left.to_string().lines().filter(|l| l.contains("no longer defined")).map(str::to_owned).collect();
        assert_eq!(
            said,
            [
                "! no longer defined: kept@groups.example.org, left as it is with its 1 member(s); --delete-groups deletes it (with --allow-mass-removal, as it has members)",
                "! no longer defined: old@groups.example.org, left as it is; --delete-groups deletes it",
            ]
        );
        let options = PlanOptions { delete_groups: true, ..OPTIONS };
        let deleting = plan(&desired, &current, &options);
        assert_eq!(
            lines(&deleting),
            ["- delete group kept@groups.example.org", "- delete group old@groups.example.org"]
        );
        assert!(deleting.no_longer_defined.is_empty());
        // A plan of some groups says only what it read.
        let only = BTreeSet::from(["old@groups.example.org".to_owned()]);
        let some = plan_groups(&desired, &current, &OPTIONS, &only);
        assert_eq!(some.no_longer_defined, [NoLongerDefined { group: "old@groups.example.org".into(), members: 0 }]);
    }
}
