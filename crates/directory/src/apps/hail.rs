//! Hail Batch billing projects: one per dataset with the `hail` component, named after the
//! dataset. Its users are the dataset's hail machine accounts per access level, the people of
//! the dataset's analysis group who have a Hail Batch username, and the billing aggregator.
//! Pure: definitions and hierarchy in, a desired hierarchy out.

use std::collections::{BTreeMap, BTreeSet};

use crate::definitions::{Definitions, HailSettings};
use crate::hierarchy::{Group, GroupKind, Hierarchy};

/// The access levels whose hail accounts use a dataset's billing project.
const LEVELS: &[&str] = &["test", "standard", "full"];

/// What each billing project should hold, and the people left out (no Hail Batch username).
pub struct HailDesired {
    pub projects: Hierarchy,
    /// Analysts without a `hail_batch` username in people.toml: email → the datasets they
    /// analyse, in order.
    pub without_username: BTreeMap<String, Vec<String>>,
    /// The datasets' Hail Batch users per access level, which the sync creates when missing
    /// (as the old system did); every other user must exist already.
    pub machine_users: BTreeSet<String>,
}

/// The billing projects and their users.
pub fn desired(definitions: &Definitions, hierarchy: &Hierarchy, settings: &HailSettings) -> HailDesired {
    let username_by_email: BTreeMap<&str, &str> =
        definitions.people.values().filter_map(|p| p.hail_batch.as_deref().map(|u| (p.email.as_str(), u))).collect();
    // People by email, once: analysts are many times the datasets.
    let people: BTreeSet<&str> = definitions.people.values().map(|p| p.email.as_str()).collect();
    let mut groups = BTreeMap::new();
    let mut without_username: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut machine_users = BTreeSet::new();
    for dataset in definitions.datasets.values().filter(|d| d.components.contains("hail")) {
        let mut users: BTreeSet<String> = settings.aggregator.iter().cloned().collect();
        for level in LEVELS {
            let user = settings.account_usernames.replace("{dataset}", &dataset.name).replace("{level}", level);
            machine_users.insert(user.clone());
            users.insert(user);
        }
        let analysis = definitions.dataset_group_name(&dataset.name, "analysis");
        for email in hierarchy.effective_members(&analysis) {
            match username_by_email.get(email) {
                Some(username) => {
                    users.insert((*username).to_owned());
                }
                None if people.contains(email) => {
                    without_username.entry(email.to_owned()).or_default().push(dataset.name.clone());
                }
                // Machine accounts and raw emails have no Hail Batch user.
                None => {}
            }
        }
        let group = Group {
            name: dataset.name.clone(),
            email: dataset.name.clone(),
            description: format!("Hail Batch billing project of {}", dataset.name),
            kind: GroupKind::Dataset { dataset: dataset.name.clone(), role: "hail-batch".to_owned() },
            members: users,
            groups: BTreeSet::new(),
            expires: BTreeMap::new(),
            pinned: false,
            external_groups: BTreeSet::new(),
        };
        groups.insert(dataset.name.clone(), group);
    }
    HailDesired { projects: Hierarchy { groups }, without_username, machine_users }
}
