//! Importing the old system's access into the definitions: its members caches (Secret Manager
//! secrets) and its live groups, mapped onto roles of the new structure by a mapping file.
//!
//! `plan_import` is pure: it takes the definitions, the hierarchy and what was observed, and
//! returns the people and grants to add and every discrepancy between the sources. `edit`
//! writes the plan into the TOML files in place; `secrets` reads the caches. A grant the
//! hierarchy already gives is never added again, so a second import changes nothing.

mod edit;
mod gap;
mod mapping;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::definitions::{is_valid_email, Definitions};
use crate::hierarchy::Hierarchy;

pub use edit::write_plan;
pub use gap::{access_gaps, render_gaps_json, render_gaps_markdown, render_gaps_text, AccessGap, OldGroup};
pub use mapping::{load_mapping, Mapping};
pub use secrets::{parse_payload, SecretReader};

/// What was observed for one dataset role: `None` where the source does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Emails in the old cache.
    pub cache: Option<BTreeSet<String>>,
    /// Emails in the old live group.
    pub live: Option<BTreeSet<String>>,
}

/// A person the import adds to `people.toml`, marked for review.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NewPerson {
    pub key: String,
    pub email: String,
}

/// A grant the import adds to `datasets/<dataset>/members.toml`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NewGrant {
    pub dataset: String,
    pub role: String,
    /// The person key.
    pub member: String,
}

/// Where the old sources disagree, or what the import could not place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Discrepancy {
    /// In the cache but not in the live group.
    CacheOnly { dataset: String, role: String, email: String },
    /// In the live group but not in the cache.
    LiveOnly { dataset: String, role: String, email: String },
    /// An email no person in `people.toml` has: added as a new person to review.
    UnknownPerson { email: String, key: String },
    /// Not an email address; left out.
    InvalidMember { dataset: String, role: String, text: String },
    /// An old group no mapping entry covers.
    NoMapping { group: String },
    /// A mapped source that does not exist (no cache secret, no live group).
    MissingSource { dataset: String, role: String, source: String },
}

/// The whole import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    pub people: Vec<NewPerson>,
    pub grants: Vec<NewGrant>,
    pub discrepancies: Vec<Discrepancy>,
}

impl ImportPlan {
    pub fn is_empty(&self) -> bool {
        self.people.is_empty() && self.grants.is_empty()
    }
}

/// One mapped dataset role and what was seen of its old sources, with their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSources {
    pub dataset: String,
    pub role: String,
    pub cache_name: Option<String>,
    pub group_name: Option<String>,
    pub observed: Observed,
}

/// The people and grants that bring the definitions up to what the old system gave, and
/// where its caches and groups disagree. `unmapped_groups` are old groups no mapping covers.
pub fn plan_import(
    definitions: &Definitions,
    hierarchy: &Hierarchy,
    sources: &[RoleSources],
    unmapped_groups: &[String],
) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let mut keys_by_email: BTreeMap<String, String> =
        definitions.people.values().map(|p| (p.email.clone(), p.key.clone())).collect();
    for person in definitions.people.values() {
        if let Some(google) = &person.google {
            keys_by_email.insert(google.clone(), person.key.clone());
        }
    }
    let mut taken: BTreeSet<String> = definitions.people.keys().cloned().collect();
    let mut grants = BTreeSet::new();
    for source in sources {
        let (dataset, role) = (&source.dataset, &source.role);
        let cache = source.observed.cache.clone();
        let live = source.observed.live.clone();
        if let (Some(name), None) = (&source.cache_name, &cache) {
            plan.discrepancies.push(missing(dataset, role, format!("cache secret {name}")));
        }
        if let (Some(name), None) = (&source.group_name, &live) {
            plan.discrepancies.push(missing(dataset, role, format!("group {name}")));
        }
        if let (Some(cache), Some(live)) = (&cache, &live) {
            for email in cache.difference(live) {
                plan.discrepancies.push(Discrepancy::CacheOnly {
                    dataset: dataset.clone(),
                    role: role.clone(),
                    email: email.clone(),
                });
            }
            for email in live.difference(cache) {
                plan.discrepancies.push(Discrepancy::LiveOnly {
                    dataset: dataset.clone(),
                    role: role.clone(),
                    email: email.clone(),
                });
            }
        }
        let group = definitions.dataset_group_name(dataset, role);
        let effective: BTreeSet<&str> = hierarchy.effective_members(&group);
        let everyone: BTreeSet<String> = cache.into_iter().flatten().chain(live.into_iter().flatten()).collect();
        for email in everyone {
            if !is_valid_email(&email) {
                plan.discrepancies.push(Discrepancy::InvalidMember {
                    dataset: dataset.clone(),
                    role: role.clone(),
                    text: email,
                });
                continue;
            }
            if effective.contains(email.as_str()) {
                continue;
            }
            let key = match keys_by_email.get(&email) {
                Some(key) => key.clone(),
                None => {
                    let key = unique_key(&email, &taken);
                    taken.insert(key.clone());
                    keys_by_email.insert(email.clone(), key.clone());
                    plan.people.push(NewPerson { key: key.clone(), email: email.clone() });
                    plan.discrepancies.push(Discrepancy::UnknownPerson { email: email.clone(), key: key.clone() });
                    key
                }
            };
            grants.insert(NewGrant { dataset: dataset.clone(), role: role.clone(), member: key });
        }
    }
    plan.discrepancies.extend(unmapped_groups.iter().map(|group| Discrepancy::NoMapping { group: group.clone() }));
    plan.grants = grants.into_iter().collect();
    plan.people.sort();
    plan.discrepancies.sort();
    plan.discrepancies.dedup();
    plan
}

fn missing(dataset: &str, role: &str, source: String) -> Discrepancy {
    Discrepancy::MissingSource { dataset: dataset.to_owned(), role: role.to_owned(), source }
}

/// A person key from an email's local part (`Jane.Doe+x@…` → `jane-doe-x`: no dots, which
/// TOML would read as nested keys), unique among `taken`.
fn unique_key(email: &str, taken: &BTreeSet<String>) -> String {
    let local = email.split('@').next().unwrap_or(email).to_ascii_lowercase();
    let base: String = local
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_') { c } else { '-' })
        .collect();
    let base = base.trim_matches('-').to_owned();
    let base = if base.is_empty() { "person".to_owned() } else { base };
    let mut key = base.clone();
    let mut n = 2;
    while taken.contains(&key) {
        key = format!("{base}-{n}");
        n += 1;
    }
    key
}

/// The plan and its discrepancies for a person to read.
pub fn render_text(plan: &ImportPlan) -> String {
    let mut out = String::new();
    for person in &plan.people {
        let _ = writeln!(out, "+ person {} <{}> (review)", person.key, person.email);
    }
    for grant in &plan.grants {
        let _ = writeln!(out, "+ {} {}: {}", grant.dataset, grant.role, grant.member);
    }
    if !plan.discrepancies.is_empty() {
        let _ = writeln!(out, "discrepancies:");
        for discrepancy in &plan.discrepancies {
            let _ = writeln!(out, "  {}", describe(discrepancy));
        }
    }
    let _ = writeln!(
        out,
        "import: {} person(s) to add, {} grant(s) to add, {} discrepancy(ies)",
        plan.people.len(),
        plan.grants.len(),
        plan.discrepancies.len()
    );
    out
}

/// The same as Markdown, for a pull request.
pub fn render_markdown(plan: &ImportPlan) -> String {
    let mut out = String::from("## Import from the old groups\n\n");
    let _ = writeln!(out, "| change | who |\n|---|---|");
    for person in &plan.people {
        let _ = writeln!(out, "| new person `{}` (review) | {} |", person.key, person.email);
    }
    for grant in &plan.grants {
        let _ = writeln!(out, "| {} {} | `{}` |", grant.dataset, grant.role, grant.member);
    }
    if !plan.discrepancies.is_empty() {
        out.push_str("\n### Discrepancies\n\n");
        for discrepancy in &plan.discrepancies {
            let _ = writeln!(out, "- {}", describe(discrepancy));
        }
    }
    out
}

pub fn render_json(plan: &ImportPlan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}

fn describe(discrepancy: &Discrepancy) -> String {
    match discrepancy {
        Discrepancy::CacheOnly { dataset, role, email } => {
            format!("{dataset} {role}: {email} is in the old cache but not in the live group")
        }
        Discrepancy::LiveOnly { dataset, role, email } => {
            format!("{dataset} {role}: {email} is in the live group but not in the old cache")
        }
        Discrepancy::UnknownPerson { email, key } => {
            format!("{email} is not in people.toml: added as `{key}` to review")
        }
        Discrepancy::InvalidMember { dataset, role, text } => {
            format!("{dataset} {role}: `{text}` is not an email; left out")
        }
        Discrepancy::NoMapping { group } => format!("{group}: no mapping entry covers this old group"),
        Discrepancy::MissingSource { dataset, role, source } => format!("{dataset} {role}: {source} does not exist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_local_part_and_never_collide() {
        let taken: BTreeSet<String> = ["jane-doe".to_owned()].into();
        assert_eq!(unique_key("Jane.Doe@other.org", &taken), "jane-doe-2");
        assert_eq!(unique_key("sam+lab@example.org", &taken), "sam-lab");
    }
}
