//! Metamist projects: each dataset with the `metamist` component has a project named after it
//! and a `-test` project. Metamist cannot tell who holds a project's roles (no route reads a
//! project's members) and takes a project's whole member list in one write, so the desired
//! state of a project is its whole list: member → roles, every role Metamist knows. A member
//! holds a role through what `[providers.metamist.main|test]` maps it from: dataset roles (the
//! effective members of the dataset's role group) and `group:<name>` organisation groups; the
//! sync's own account always holds `project_member_admin`, or a write would lock it out.
//! Pure: one project at a time, so nothing here holds the whole organisation's lists.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::definitions::{Definitions, MetamistSettings};
use crate::hierarchy::Hierarchy;

/// One project's member list: member (lowercased) → the roles they hold.
pub type MemberList = BTreeMap<String, BTreeSet<String>>;

/// One of the organisation's Metamist projects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetamistProject {
    pub name: String,
    pub dataset: String,
    /// The dataset's `-test` project.
    pub test: bool,
}

/// The datasets' projects, sorted by name.
pub fn projects(definitions: &Definitions) -> Vec<MetamistProject> {
    let mut projects = Vec::new();
    for dataset in definitions.datasets.values().filter(|d| d.components.contains("metamist")) {
        let name = dataset.name.clone();
        projects.push(MetamistProject { name: name.clone(), dataset: name.clone(), test: false });
        projects.push(MetamistProject { name: format!("{name}-test"), dataset: name, test: true });
    }
    projects.sort();
    projects
}

/// The whole member list `project` should have. `aliases` maps a person's email to the account
/// they sign in to Metamist with (their Google account), as the Google directory does.
pub fn member_list(
    definitions: &Definitions,
    hierarchy: &Hierarchy,
    settings: &MetamistSettings,
    aliases: &HashMap<String, String>,
    project: &MetamistProject,
) -> MemberList {
    let mut list = MemberList::new();
    let Some(dataset) = definitions.datasets.get(&project.dataset) else { return list };
    let mapping = if project.test { &settings.test } else { &settings.main };
    for (role, sources) in mapping {
        for source in sources {
            let group = match source.strip_prefix("group:") {
                Some(org_group) => definitions.org_group_name(org_group),
                // A role the dataset lacks (its component is not listed) grants nothing.
                None if definitions.dataset_has_role(dataset, source) => {
                    definitions.dataset_group_name(&dataset.name, source)
                }
                None => continue,
            };
            for member in hierarchy.effective_members(&group) {
                let account = aliases.get(member).map_or(member, String::as_str).to_ascii_lowercase();
                list.entry(account).or_default().insert(role.clone());
            }
        }
    }
    if let Some(account) = &settings.account {
        list.entry(account.clone()).or_default().insert("project_member_admin".to_owned());
    }
    list
}
