//! The access model, asserted over the access matrix (`cpg-infra infra access`): least privilege
//! holds on every dataset, through every dependency, for the frozen test organisation and for
//! the synthetic large one; `docs/ACCESS.md` is the example organisation's matrix.

mod common;

use std::collections::BTreeMap;

use common::{cpg, example_org, fixture_org_dir, manifest_dir, SUCCESS};
use cpg_infra::definitions::{Date, DirSource};
use cpg_infra::hierarchy::{GroupKind, Hierarchy};
use cpg_infra::infra::{access_matrix, AccessMatrix};
use cpg_infra::load::{load_expanded, Expanded};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn fixture() -> Expanded {
    load_expanded(&DirSource::new(fixture_org_dir()), TODAY).expect("the test organisation is valid")
}

fn synthetic() -> Expanded {
    let files = generate(SyntheticShape { datasets: 40, ..SyntheticShape::large() });
    load_expanded(&MemorySource::new(files), TODAY).expect("the synthetic organisation is valid")
}

/// The role of a dataset group, e.g. `full` for `tob-wgs-full`.
fn role_of<'h>(hierarchy: &'h Hierarchy, who: &str) -> Option<&'h str> {
    let name = who.strip_prefix("group ")?;
    match &hierarchy.group(name)?.kind {
        GroupKind::Dataset { role, .. } => Some(role.as_str()),
        GroupKind::Organisation => None,
    }
}

/// Whether `who` (`group <name>`) is listed directly in some dataset's `full` group.
fn in_a_full_group(hierarchy: &Hierarchy, who: &str) -> bool {
    let name = who.strip_prefix("group ").unwrap_or(who);
    hierarchy.groups.values().any(|group| {
        matches!(&group.kind, GroupKind::Dataset { role, .. } if role == "full") && group.groups.contains(name)
    })
}

/// Every (dataset, bucket) of the matrix.
fn buckets(matrix: &AccessMatrix) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = matrix
        .grants
        .iter()
        .filter(|g| g.owner != "organisation" && g.resource.starts_with("bucket "))
        .map(|g| (g.owner.clone(), g.resource.clone()))
        .collect();
    all.sort();
    all.dedup();
    all
}

/// Who reaches `level` on a bucket, directly or through nesting.
fn reaching(
    expanded: &Expanded,
    matrix: &AccessMatrix,
    dataset: &str,
    bucket: &str,
    level: &str,
) -> BTreeMap<String, Option<String>> {
    matrix
        .effective(&expanded.hierarchy, dataset, bucket)
        .into_iter()
        .filter(|(_, levels)| levels.contains(level))
        .map(|(who, _)| {
            let role = role_of(&expanded.hierarchy, &who).map(str::to_owned);
            (who, role)
        })
        .collect()
}

fn check_least_privilege(expanded: &Expanded) {
    let matrix = access_matrix(&expanded.definitions);
    let all = buckets(&matrix);
    assert!(all.iter().any(|(_, b)| b == "bucket main"), "the organisation has main buckets");
    for (dataset, bucket) in &all {
        let mutators = reaching(expanded, &matrix, dataset, bucket, "mutate");
        let primary = bucket == "bucket main" || bucket == "bucket archive";
        let main_buckets = matches!(bucket.as_str(), "bucket main-analysis" | "bucket main-web" | "bucket main-tmp");
        for (who, role) in &mutators {
            if primary || main_buckets {
                match role {
                    // Dataset groups: only the full access level (standard only APPENDs).
                    Some(role) => assert_eq!(role, "full", "{who} can MUTATE {dataset} {bucket}: only full may"),
                    // Organisation groups: only as members the role template puts in `full`.
                    None => assert!(
                        in_a_full_group(&expanded.hierarchy, who),
                        "{who} can MUTATE {dataset} {bucket} without being in a full group"
                    ),
                }
            }
        }
        if primary {
            // Data managers read main; they never write it.
            let data_managers = reaching(expanded, &matrix, dataset, bucket, "read");
            if bucket == "bucket main" {
                assert!(
                    data_managers.values().any(|r| r.as_deref() == Some("data-manager")),
                    "{dataset}: data managers read main"
                );
            }
        }
    }
    // The members cache is read by the organisation's services and nobody else.
    let cache: Vec<_> = matrix
        .grants
        .iter()
        .filter(|g| g.owner == "organisation" && g.resource == "bucket members-group-cache")
        .collect();
    assert!(!cache.is_empty(), "the members cache has readers");
    for grant in cache {
        assert!(grant.who.starts_with("service "), "{grant:?}");
        assert_eq!(grant.level, "read", "{grant:?}");
    }
    // Time-limited access is never permanent.
    for grant in matrix.grants.iter().filter(|g| g.who.ends_with("-tmp-main-read-access")) {
        assert!(grant.level.contains("on request (at most 7 days)"), "{grant:?}");
    }
}

#[test]
fn only_full_mutates_primary_data_in_the_test_organisation() {
    check_least_privilege(&fixture());
}

#[test]
fn only_full_mutates_primary_data_in_a_large_organisation_with_dependencies() {
    check_least_privilege(&synthetic());
}

#[test]
fn data_managers_mutate_upload_buckets_only() {
    let expanded = fixture();
    let matrix = access_matrix(&expanded.definitions);
    let upload = reaching(&expanded, &matrix, "tob-wgs", "bucket upload", "mutate");
    assert!(upload.values().any(|r| r.as_deref() == Some("data-manager")), "{upload:?}");
    for (dataset, bucket) in buckets(&matrix) {
        // Test buckets are written by analysts (test-full includes analysis), data managers too.
        if bucket.ends_with("upload") || bucket.starts_with("bucket test") {
            continue;
        }
        let mutators = reaching(&expanded, &matrix, &dataset, &bucket, "mutate");
        assert!(
            !mutators.values().any(|r| r.as_deref() == Some("data-manager")),
            "data managers MUTATE {dataset} {bucket}: {mutators:?}"
        );
    }
}

#[test]
fn machine_accounts_reach_the_common_datasets_reference_data_through_their_groups() {
    let expanded = fixture();
    let hail = "hail-standard@example-tob-wgs.iam.gserviceaccount.com";
    let standard = expanded.hierarchy.group("tob-wgs-standard").expect("tob-wgs-standard");
    assert!(standard.members.contains(hail), "{standard:?}");
    assert!(!expanded.hierarchy.why(hail, "common-main-read").is_empty(), "hail reads the common dataset");
    assert!(!expanded.hierarchy.why(hail, "common-images-reader").is_empty(), "hail pulls the common images");
    assert!(expanded.hierarchy.why(hail, "common-full").is_empty(), "a standard account is not full anywhere");
}

#[test]
fn access_matrix_of_the_example_is_docs_access_md() {
    let org = example_org();
    let run = cpg(org.path(), &["infra", "access", "--format", "markdown"]);
    run.expect_code(SUCCESS);
    // The live example, not the frozen copy: the document describes what is shipped.
    let live = cpg(&manifest_dir(), &["infra", "access", "--format", "markdown"]);
    live.expect_code(SUCCESS);
    let path = manifest_dir().join("docs/ACCESS.md");
    if std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &live.stdout).expect("write docs/ACCESS.md");
    }
    let document = std::fs::read_to_string(&path).expect("docs/ACCESS.md");
    assert!(
        document == live.stdout,
        "docs/ACCESS.md is stale: run `cpg-infra infra access --format markdown > docs/ACCESS.md`"
    );
    assert!(run.stdout.contains("| bucket main | mutate | `group tob-wgs-full` |"), "{run}");
}
