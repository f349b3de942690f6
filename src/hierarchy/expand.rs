//! Expansion: roles × datasets + dependencies + organisation groups → `Hierarchy`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Group, GroupKind, Hierarchy};
use crate::definitions::{Date, Definitions, Diagnostics, Grant, Location, MemberRef};
use crate::graph::find_cycles;

/// Expands validated definitions into the hierarchy as of `today` (expired grants are left
/// out). Fails only on group nesting cycles, which need the whole expansion to see.
pub fn expand(definitions: &Definitions, today: Date) -> Result<Hierarchy, Diagnostics> {
    let mut builder = Builder { definitions, today, groups: BTreeMap::new(), edges: Vec::new() };
    builder.add_dataset_groups();
    builder.add_dependencies();
    builder.add_organisation_groups();
    builder.check_cycles()?;
    Ok(Hierarchy { groups: builder.groups })
}

struct Builder<'a> {
    definitions: &'a Definitions,
    today: Date,
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
                self.insert_group(name.clone(), description, kind);
                for include in &role.includes {
                    if definitions.dataset_has_role(dataset, &include.name) {
                        let child = definitions.dataset_group_name(&dataset.name, &include.name);
                        self.nest(&name, child, &include.location);
                    }
                }
                let grants = role.members.iter().chain(dataset.members.get(&role.name).into_iter().flatten());
                for grant in grants {
                    self.grant(&name, grant);
                }
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
            self.nest(&parent, child, location);
        }
    }

    fn add_organisation_groups(&mut self) {
        let definitions = self.definitions;
        for group in definitions.groups.values() {
            let name = definitions.org_group_name(&group.name);
            self.insert_group(name.clone(), group.description.clone(), GroupKind::Organisation);
            for grant in &group.members {
                self.grant(&name, grant);
            }
        }
    }

    fn insert_group(&mut self, name: String, description: String, kind: GroupKind) {
        let email = self.definitions.group_email(&name);
        self.groups.entry(name.clone()).or_insert(Group {
            name,
            email,
            description,
            kind,
            members: BTreeSet::new(),
            groups: BTreeSet::new(),
        });
    }

    /// Adds one grant to a group; organisation groups referenced before they are inserted are
    /// created empty here and filled when their own definition is expanded.
    fn grant(&mut self, group: &str, grant: &Grant) {
        if grant.expires.is_some_and(|expires| expires < self.today) {
            return;
        }
        let member = match &grant.member {
            MemberRef::Person(key) => match self.definitions.people.get(key) {
                Some(person) => person.email.clone(),
                None => return,
            },
            MemberRef::Email(email) => email.clone(),
            MemberRef::Group(child) => {
                self.nest(group, child.clone(), &grant.location);
                return;
            }
        };
        if let Some(group) = self.groups.get_mut(group) {
            group.members.insert(member);
        }
    }

    fn nest(&mut self, parent: &str, child: String, location: &Location) {
        if let Some(group) = self.groups.get_mut(parent) {
            self.edges.push((parent.to_owned(), child.clone(), location.clone()));
            group.groups.insert(child);
        }
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
