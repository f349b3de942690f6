//! Expansion: roles × datasets + dependencies + organisation groups → `Hierarchy`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Group, GroupKind, Hierarchy};
use crate::definitions::{Date, Definitions, Diagnostics, Grant, Location, MemberRef};
use crate::graph::find_cycles;

/// Expands validated definitions into the hierarchy as of `today` (expired grants are left
/// out). Fails only on group nesting cycles, which need the whole expansion to see.
pub fn expand(definitions: &Definitions, today: Date) -> Result<Hierarchy, Diagnostics> {
    let person_emails = definitions.people.values().map(|p| (p.key.as_str(), p.email.as_str())).collect();
    let mut builder = Builder { definitions, today, person_emails, groups: BTreeMap::new(), edges: Vec::new() };
    builder.add_dataset_groups();
    builder.add_dependencies();
    builder.add_organisation_groups();
    builder.check_cycles()?;
    Ok(Hierarchy { groups: builder.groups })
}

struct Builder<'a> {
    definitions: &'a Definitions,
    today: Date,
    person_emails: HashMap<&'a str, &'a str>,
    groups: BTreeMap<String, Group>,
    /// Every nesting edge (parent, child) with where it was written, for cycle errors.
    edges: Vec<(String, String, Location)>,
}

impl Builder<'_> {
    fn add_dataset_groups(&mut self) {
        let definitions = self.definitions;
        for dataset in definitions.datasets.values() {
            for role in definitions.roles.values() {
                if !definitions.dataset_has_role(dataset, &role.name) {
                    continue;
                }
                let name = definitions.dataset_group_name(&dataset.name, &role.name);
                let description = if role.description.is_empty() {
                    format!("{} of dataset {}", role.name, dataset.name)
                } else {
                    format!("{} (dataset {})", role.description, dataset.name)
                };
                let kind = GroupKind::Dataset { dataset: dataset.name.clone(), role: role.name.clone() };
                let mut group = self.new_group(name, description, kind);
                for include in &role.includes {
                    if definitions.dataset_has_role(dataset, &include.name) {
                        let child = definitions.dataset_group_name(&dataset.name, &include.name);
                        self.nest(&mut group, child, &include.location);
                    }
                }
                let grants = role.members.iter().chain(dataset.members.get(&role.name).into_iter().flatten());
                self.grant_all(&mut group, grants);
                self.groups.insert(group.name.clone(), group);
            }
        }
    }

    fn add_dependencies(&mut self) {
        let definitions = self.definitions;
        let grants = &definitions.dependency_grants;
        for dataset in definitions.datasets.values() {
            let mut full: BTreeMap<&str, Location> = BTreeMap::new();
            if let Some(common) = &definitions.organisation.common_dataset {
                if *common != dataset.name {
                    full.insert(common, dataset.location.clone());
                }
            }
            for dependency in &dataset.depends_on {
                full.insert(&dependency.name, dependency.location.clone());
            }
            for (dependency, location) in full {
                for role in &grants.shared_roles {
                    self.nest_across(dependency, role, &dataset.name, role, &location);
                }
            }
            for dependency in &dataset.depends_on_readonly {
                for (their_role, our_roles) in &grants.readonly {
                    for our_role in our_roles {
                        self.nest_across(&dependency.name, their_role, &dataset.name, our_role, &dependency.location);
                    }
                }
            }
        }
    }

    /// `dependency-their_role` includes `dataset-our_role`, when both datasets have those roles.
    fn nest_across(&mut self, dependency: &str, their_role: &str, dataset: &str, our_role: &str, location: &Location) {
        let definitions = self.definitions;
        let (Some(theirs), Some(ours)) = (definitions.datasets.get(dependency), definitions.datasets.get(dataset))
        else {
            return;
        };
        if definitions.dataset_has_role(theirs, their_role) && definitions.dataset_has_role(ours, our_role) {
            let parent = definitions.dataset_group_name(dependency, their_role);
            let child = definitions.dataset_group_name(dataset, our_role);
            if let Some(group) = self.groups.get_mut(&parent) {
                self.edges.push((parent, child.clone(), location.clone()));
                group.groups.insert(child);
            }
        }
    }

    fn add_organisation_groups(&mut self) {
        let definitions = self.definitions;
        for group in definitions.groups.values() {
            let name = definitions.org_group_name(&group.name);
            let mut expanded = self.new_group(name, group.description.clone(), GroupKind::Organisation);
            self.grant_all(&mut expanded, &group.members);
            self.groups.insert(expanded.name.clone(), expanded);
        }
    }

    fn new_group(&self, name: String, description: String, kind: GroupKind) -> Group {
        let email = self.definitions.group_email(&name);
        let pinned = self.definitions.organisation.sync.pinned_groups.contains(&name);
        Group {
            name,
            email,
            description,
            kind,
            members: BTreeSet::new(),
            groups: BTreeSet::new(),
            expires: BTreeMap::new(),
            pinned,
            external_groups: BTreeSet::new(),
        }
    }

    /// Adds grants that have not expired to a group under construction.
    fn grant_all<'g>(&mut self, group: &mut Group, grants: impl IntoIterator<Item = &'g Grant>) {
        let mut granted: Vec<(String, Option<Date>)> = Vec::new();
        for grant in grants {
            if grant.expires.is_some_and(|expires| expires < self.today) {
                continue;
            }
            let member = match &grant.member {
                MemberRef::Person(key) => match self.person_emails.get(key.as_str()) {
                    Some(email) => (*email).to_owned(),
                    None => continue,
                },
                MemberRef::Email(email) => email.clone(),
                MemberRef::Group(child) => {
                    self.nest(group, child.clone(), &grant.location);
                    continue;
                }
            };
            granted.push((member, grant.expires));
        }
        // Sorted input builds the set in one pass instead of one search per member.
        granted.sort_unstable();
        let merged = merge_expiries(granted);
        for (member, expires) in &merged {
            if let Some(date) = expires {
                group.expires.insert(member.clone(), *date);
            }
        }
        let mut members: BTreeSet<String> = merged.into_iter().map(|(member, _)| member).collect();
        group.members.append(&mut members);
    }

    fn nest(&mut self, parent: &mut Group, child: String, location: &Location) {
        self.edges.push((parent.name.clone(), child.clone(), location.clone()));
        parent.groups.insert(child);
    }

    fn check_cycles(&self) -> Result<(), Diagnostics> {
        let mut graph: BTreeMap<&str, Vec<(&str, &Location)>> =
            self.groups.keys().map(|k| (k.as_str(), Vec::new())).collect();
        for (parent, child, location) in &self.edges {
            if let Some(children) = graph.get_mut(parent.as_str()) {
                children.push((child.as_str(), location));
            }
        }
        for children in graph.values_mut() {
            children.sort_by(|a, b| a.0.cmp(b.0));
        }
        let mut diagnostics = Diagnostics::default();
        for cycle in find_cycles(&graph) {
            let path = cycle.names.join(" → ");
            diagnostics.push(cycle.closing_edge.clone(), format!("groups are nested in a cycle: {path}"));
        }
        let diagnostics = diagnostics.finish();
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(diagnostics)
        }
    }
}

/// One entry per member of a sorted grant list, with the end of its access: none if any grant
/// is permanent (`None` sorts first), else the latest date (sorts last).
fn merge_expiries(sorted: Vec<(String, Option<Date>)>) -> Vec<(String, Option<Date>)> {
    let mut merged: Vec<(String, Option<Date>)> = Vec::with_capacity(sorted.len());
    for (member, expires) in sorted {
        match merged.last_mut() {
            Some((last, kept)) if *last == member => {
                if kept.is_some() {
                    *kept = expires;
                }
            }
            _ => merged.push((member, expires)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(day: u8) -> Option<Date> {
        Some(Date { year: 2027, month: 1, day })
    }

    fn merged(grants: &[(&str, Option<Date>)]) -> Vec<(String, Option<Date>)> {
        let mut sorted: Vec<(String, Option<Date>)> = grants.iter().map(|(m, e)| (m.to_string(), *e)).collect();
        sorted.sort_unstable();
        merge_expiries(sorted)
    }

    #[test]
    fn the_latest_expiry_wins_and_a_permanent_grant_removes_it() {
        let result = merged(&[
            ("a", date(5)),
            ("a", date(9)),
            ("a", date(7)),
            ("b", None),
            ("b", date(3)),
            ("c", date(3)),
            ("c", None),
            ("d", None),
        ]);
        assert_eq!(result, [("a".into(), date(9)), ("b".into(), None), ("c".into(), None), ("d".into(), None)]);
    }
}
