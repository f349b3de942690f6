//! What an access diff means on cloud resources, per person: each group a person gains or
//! loses, looked up in the access matrix (`infra access`) for the buckets, registries, secrets
//! and projects granted to that group. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Change, HierarchyDiff};
use crate::infra::AccessMatrix;

/// One person's (or machine account's) resource access changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonResources {
    pub member: String,
    /// From people.toml, when known.
    pub name: Option<String>,
    pub changes: Vec<ResourceChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ResourceChange {
    pub change: Change,
    /// `read`, `mutate`, `view-logs`...
    pub level: String,
    /// `tob-wgs bucket main-web`.
    pub resource: String,
    /// The group the access comes through.
    pub through: String,
}

/// Gains are looked up in the head's matrix, losses in the base's (a removed dataset's
/// resources are only there). `names`: email → display name.
pub fn resource_changes(
    diff: &HierarchyDiff,
    base: &AccessMatrix,
    head: &AccessMatrix,
    names: &BTreeMap<String, String>,
) -> Vec<PersonResources> {
    let by_group = |matrix: &AccessMatrix| {
        let mut grants: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for grant in &matrix.grants {
            if let Some(group) = grant.who.strip_prefix("group ") {
                grants
                    .entry(group.to_owned())
                    .or_default()
                    .push((grant.level.clone(), format!("{} {}", grant.owner, grant.resource)));
            }
        }
        grants
    };
    let (base_grants, head_grants) = (by_group(base), by_group(head));
    let mut people: BTreeMap<&str, Vec<ResourceChange>> = BTreeMap::new();
    for access in &diff.access {
        let grants = match access.change {
            Change::Gains => &head_grants,
            Change::Loses => &base_grants,
        };
        for (level, resource) in grants.get(&access.group).into_iter().flatten() {
            people.entry(&access.member).or_default().push(ResourceChange {
                change: access.change,
                level: level.clone(),
                resource: resource.clone(),
                through: access.group.clone(),
            });
        }
    }
    people
        .into_iter()
        .map(|(member, mut changes)| {
            changes.sort();
            changes.dedup();
            PersonResources { member: member.to_owned(), name: names.get(member).cloned(), changes }
        })
        .collect()
}

fn who(person: &PersonResources) -> String {
    match &person.name {
        Some(name) => format!("{name} <{}>", person.member),
        None => person.member.clone(),
    }
}

fn verb(change: Change) -> &'static str {
    match change {
        Change::Gains => "gains",
        Change::Loses => "loses",
    }
}

pub fn render_resources_text(people: &[PersonResources]) -> String {
    let mut out = String::from("resource access:\n");
    if people.is_empty() {
        out.push_str("  no change to cloud resources\n");
    }
    for person in people {
        let _ = writeln!(out, "  {}", who(person));
        for change in &person.changes {
            let level = change.level.to_uppercase();
            let _ = writeln!(
                out,
                "    {} {level} on {} (through {})",
                verb(change.change),
                change.resource,
                change.through
            );
        }
    }
    out
}

pub fn render_resources_markdown(people: &[PersonResources]) -> String {
    let mut out = String::from("\n### Resource access\n\n");
    if people.is_empty() {
        out.push_str("No change to cloud resources.\n");
    }
    for person in people {
        let _ = writeln!(out, "- **{}**", super::render::escape_markdown(&who(person)));
        for change in &person.changes {
            let level = change.level.to_uppercase();
            let _ = writeln!(
                out,
                "  - {} {level} on `{}` (through `{}`)",
                verb(change.change),
                change.resource,
                change.through
            );
        }
    }
    out
}
