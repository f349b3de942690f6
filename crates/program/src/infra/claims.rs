//! Checks every name the clouds recorded: each against its cloud's rules, and names that must
//! be unique against each other.
//!
//! Owns whose fault a bad name is. A name valid without the organisation's prefix but not with
//! it is the prefix's fault when the prefix breaks a rule (`goog…`) or makes the names of most
//! owners of that kind too long: all such problems are one error at the prefix. Any other bad
//! name (a few long dataset names among short ones included) is an error at its source, once
//! per owner and kind. Two owners that would create the same name are one error naming both.
//! Pure.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::definitions::{Location, Reference};

use super::names::{NameClaim, NameKind};
use super::program::Owner;
use super::InfraError;

/// Every problem with the recorded names.
pub fn check(claims: &[NameClaim], prefix: Option<&Reference>) -> Vec<InfraError> {
    let mut errors = Vec::new();
    if prefix.is_none() && claims.iter().any(|c| c.unprefixed.is_some()) {
        errors.push(InfraError::NoNamePrefix);
    }
    // Claims come in the driver's order, which is deterministic; hashing keeps this cheap for
    // thousands of names. Too long with the prefix is the prefix's fault when it is so for most
    // of the two or more owners with names of that kind.
    let mut owners: HashMap<NameKind, (HashSet<&Owner>, HashSet<&Owner>)> = HashMap::new();
    for claim in claims.iter().filter(|c| c.unprefixed.is_some()) {
        let (all, too_long) = owners.entry(claim.kind).or_default();
        all.insert(&claim.owner);
        if prefix_fault(claim) && claim.name.len() > claim.kind.max_len() {
            too_long.insert(&claim.owner);
        }
    }
    let long_prefix_kinds: HashSet<NameKind> = owners
        .into_iter()
        .filter(|(_, (all, too_long))| all.len() >= 2 && too_long.len() * 2 > all.len())
        .map(|(kind, _)| kind)
        .collect();
    let blame_prefix = |claim: &NameClaim| {
        prefix_fault(claim) && (claim.name.len() <= claim.kind.max_len() || long_prefix_kinds.contains(&claim.kind))
    };
    let mut prefix_faults: Vec<(&NameClaim, String)> = Vec::new();
    let mut reported: HashSet<(&Owner, NameKind)> = HashSet::new();
    for claim in claims {
        let Some(problem) = claim.kind.problem(&claim.name) else { continue };
        if prefix.is_some() && blame_prefix(claim) {
            prefix_faults.push((claim, problem));
        } else if reported.insert((&claim.owner, claim.kind)) {
            errors.push(InfraError::InvalidName {
                owner: describe(&claim.owner),
                what: claim.kind.what(),
                name: claim.name.clone(),
                problem,
                location: claim.source.clone(),
            });
        }
    }
    if let (Some(prefix), Some((first, problem))) = (prefix, prefix_faults.first()) {
        errors.push(InfraError::PrefixMakesNamesInvalid {
            prefix: prefix.name.clone(),
            count: prefix_faults.len(),
            example: format!("{} `{}` {problem}", first.kind.what(), first.name),
            room: room(&prefix.name, &prefix_faults),
            location: prefix.location.clone(),
        });
    }
    errors.extend(shared_projects(claims));
    errors.extend(collisions(claims));
    errors
}

/// Two datasets in one GCP project: one error per pair, at the later one's project setting.
/// A project's APIs and project-level grants are declared by the dataset that has it, once.
fn shared_projects(claims: &[NameClaim]) -> Vec<InfraError> {
    let mut by_project: BTreeMap<&str, BTreeMap<&str, &NameClaim>> = BTreeMap::new();
    for claim in claims.iter().filter(|c| c.kind == NameKind::GcpProject) {
        if let Owner::Dataset(dataset) = &claim.owner {
            by_project.entry(&claim.name).or_default().entry(dataset).or_insert(claim);
        }
    }
    let mut errors = Vec::new();
    for (project, datasets) in by_project {
        let datasets: Vec<(&str, &NameClaim)> = datasets.into_iter().collect();
        for (i, (first, _)) in datasets.iter().enumerate() {
            for (second, claim) in &datasets[i + 1..] {
                errors.push(InfraError::SharedProject {
                    first: (*first).to_owned(),
                    second: (*second).to_owned(),
                    project: project.to_owned(),
                    location: claim.source.clone(),
                });
            }
        }
    }
    errors
}

/// Invalid with the prefix, valid without it.
fn prefix_fault(claim: &NameClaim) -> bool {
    let valid_without = claim.unprefixed.as_deref().is_some_and(|u| claim.kind.problem(u).is_none());
    valid_without && claim.kind.problem(&claim.name).is_some()
}

fn describe(owner: &Owner) -> String {
    match owner {
        Owner::Organisation => "the organisation".to_owned(),
        Owner::Dataset(name) => format!("dataset `{name}`"),
    }
}

/// For names too long with the prefix: the longest prefix they all leave room for.
fn room(prefix: &str, faults: &[(&NameClaim, String)]) -> Option<usize> {
    faults
        .iter()
        .filter(|(claim, _)| claim.name.len() > claim.kind.max_len())
        .map(|(claim, _)| (claim.kind.max_len() + prefix.len()).saturating_sub(claim.name.len()))
        .min()
}

/// Names that two owners would both create, one error per pair of owners, at the later
/// owner's source.
fn collisions(claims: &[NameClaim]) -> Vec<InfraError> {
    let mut by_name: HashMap<(NameKind, &str, &str), Vec<&NameClaim>> = HashMap::new();
    for claim in claims {
        if let Some(namespace) = &claim.namespace {
            by_name.entry((claim.kind, namespace, &claim.name)).or_default().push(claim);
        }
    }
    // Only names with two owners, sorted for the same output every time.
    let by_name: BTreeMap<(NameKind, &str, &str), Vec<&NameClaim>> =
        by_name.into_iter().filter(|(_, claims)| claims.iter().any(|c| c.owner != claims[0].owner)).collect();
    type Shared<'c> = BTreeMap<(NameKind, &'c str), Vec<&'c str>>;
    let mut pairs: BTreeMap<(&Owner, &Owner), (Shared, Location)> = BTreeMap::new();
    for ((kind, namespace, name), claims) in &by_name {
        let owners: BTreeMap<&Owner, &NameClaim> = claims.iter().map(|c| (&c.owner, *c)).collect();
        let owners: Vec<(&Owner, &NameClaim)> = owners.into_iter().collect();
        for (i, (first, _)) in owners.iter().enumerate() {
            for (second, claim) in &owners[i + 1..] {
                let entry = pairs.entry((*first, *second)).or_insert_with(|| (BTreeMap::new(), claim.source.clone()));
                entry.0.entry((*kind, namespace)).or_default().push(name);
            }
        }
    }
    pairs
        .into_iter()
        .map(|((first, second), (shared, location))| {
            let names: Vec<String> = shared
                .iter()
                .map(|((kind, namespace), names)| {
                    let within = if namespace.is_empty() { String::new() } else { format!(" in {namespace}") };
                    format!("{} {}{within}", kind.what(), list(names))
                })
                .collect();
            InfraError::NameCollision {
                first: describe(first),
                second: describe(second),
                names: names.join("; "),
                location,
            }
        })
        .collect()
}

/// Quoted, at most three, then how many more.
fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().take(3).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0..=3 => quoted.join(", "),
        more => format!("{} and {} more", quoted.join(", "), more - 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(kind: NameKind, name: &str, unprefixed: Option<&str>, owner: &str) -> NameClaim {
        NameClaim {
            kind,
            namespace: Some(String::new()),
            name: name.to_owned(),
            unprefixed: unprefixed.map(str::to_owned),
            owner: Owner::Dataset(owner.to_owned()),
            source: Location::file(&format!("datasets/{owner}/dataset.toml")),
        }
    }

    fn prefix(name: &str) -> Reference {
        Reference { name: name.to_owned(), location: Location::file("groups/org.toml") }
    }

    #[test]
    fn a_long_prefix_is_one_error_at_the_prefix() {
        let long = "p".repeat(20);
        let claims: Vec<NameClaim> = ["alpha", "beta", "delta", "gamma"]
            .iter()
            .map(|d| claim(NameKind::AzureStorageAccount, &format!("{long}{d}"), Some(d), d))
            .collect();
        let errors = check(&claims, Some(&prefix(&long)));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(matches!(&errors[0], InfraError::PrefixMakesNamesInvalid { count: 3, room: Some(19), .. }));
    }

    #[test]
    fn a_bad_dataset_name_is_its_own_error_once_per_kind() {
        let claims = vec![
            claim(NameKind::GcsBucket, "egi-google-x-main", Some("google-x-main"), "google-x"),
            claim(NameKind::GcsBucket, "egi-google-x-test", Some("google-x-test"), "google-x"),
        ];
        let errors = check(&claims, Some(&prefix("egi")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].to_string().contains("`egi-google-x-main` must not contain `google`"), "{}", errors[0]);
    }

    #[test]
    fn the_same_name_from_two_owners_is_one_error_naming_both() {
        let claims = vec![
            claim(NameKind::AzureStorageAccount, "egitobwgs", Some("tobwgs"), "tob.wgs"),
            claim(NameKind::AzureKeyVault, "egitobwgskv", Some("tobwgskv"), "tob.wgs"),
            claim(NameKind::AzureStorageAccount, "egitobwgs", Some("tobwgs"), "tobwgs"),
            claim(NameKind::AzureKeyVault, "egitobwgskv", Some("tobwgskv"), "tobwgs"),
        ];
        let errors = check(&claims, Some(&prefix("egi")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        let message = errors[0].to_string();
        assert!(message.contains("dataset `tob.wgs` and dataset `tobwgs`"), "{message}");
        assert!(
            message.contains("Azure storage account name `egitobwgs`; Azure Key Vault name `egitobwgskv`"),
            "{message}"
        );
        assert_eq!(errors[0].location(), Location::file("datasets/tobwgs/dataset.toml"));
    }

    #[test]
    fn without_a_prefix_global_names_are_an_error() {
        let claims = vec![claim(NameKind::GcsBucket, "members-group-cache", Some("members-group-cache"), "x")];
        assert_eq!(check(&claims, None), [InfraError::NoNamePrefix]);
    }
}
