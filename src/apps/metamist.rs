//! Metamist projects: each dataset with the `metamist` component has a project named after it
//! and a `-test` project. A member holds the roles reader, contributor and writer through the
//! dataset roles `[providers.metamist.main|test]` map them from. Each (project, role) is one
//! desired "group" named `<project>/<role>`, whose members are the effective members of the
//! mapped dataset groups: Metamist knows accounts, not groups. Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::definitions::{Definitions, MetamistSettings};
use crate::hierarchy::{Group, GroupKind, Hierarchy};

/// The desired group of one role in one project.
pub fn role_group(project: &str, role: &str) -> String {
    format!("{project}/{role}")
}

/// The project and role of a desired group's name, if it is one.
pub fn split_role_group(group: &str) -> Option<(&str, &str)> {
    group.rsplit_once('/')
}

/// The datasets' projects as (project, dataset, is the test project), sorted.
pub fn projects(definitions: &Definitions) -> Vec<(String, String, bool)> {
    let mut projects = Vec::new();
    for dataset in definitions.datasets.values().filter(|d| d.components.contains("metamist")) {
        projects.push((dataset.name.clone(), dataset.name.clone(), false));
        projects.push((format!("{}-test", dataset.name), dataset.name.clone(), true));
    }
    projects.sort();
    projects
}

/// Every project role's members. `aliases` maps a person's email to the account they sign in
/// to Metamist with (their Google account), as the Google directory does.
pub fn desired(definitions: &Definitions, hierarchy: &Hierarchy, settings: &MetamistSettings) -> Hierarchy {
    let mut groups = BTreeMap::new();
    for (project, dataset_name, test) in projects(definitions) {
        let Some(dataset) = definitions.datasets.get(&dataset_name) else { continue };
        let mapping = if test { &settings.test } else { &settings.main };
        for (role, dataset_roles) in mapping {
            let mut members = BTreeSet::new();
            // A role the dataset lacks (its component is not listed) grants nothing.
            for dataset_role in dataset_roles.iter().filter(|r| definitions.dataset_has_role(dataset, r)) {
                let group = definitions.dataset_group_name(&dataset.name, dataset_role);
                members.extend(hierarchy.effective_members(&group).into_iter().map(str::to_owned));
            }
            let name = role_group(&project, role);
            let group = Group {
                name: name.clone(),
                email: name.clone(),
                description: format!("Metamist {role}s of {project}"),
                kind: GroupKind::Dataset { dataset: dataset.name.clone(), role: format!("metamist-{role}") },
                members,
                groups: BTreeSet::new(),
                expires: BTreeMap::new(),
                pinned: false,
                external_groups: BTreeSet::new(),
            };
            groups.insert(name, group);
        }
    }
    Hierarchy { groups }
}
