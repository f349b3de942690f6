//! The access model, asserted over the access matrix (`cpg-infra infra access`): every workload
//! identity has what its component needs, least privilege holds on every dataset, through every
//! dependency, for the frozen test organisation and for the synthetic large one (with every
//! workload component); `docs/ACCESS.md` is the example organisation's matrix.

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

/// The synthetic organisation with every workload component on every dataset and the
/// organisation's services configured.
fn synthetic() -> Expanded {
    let mut files = generate(SyntheticShape { datasets: 40, ..SyntheticShape::large() });
    for (path, text) in files.iter_mut() {
        if path.ends_with("/dataset.toml") {
            *text = text.replacen(
                "components = [",
                "components = [\"hail\", \"cromwell\", \"notebooks\", \"metamist\", ",
                1,
            );
        }
        if path == "groups/org.toml" {
            *text = text
                .replacen(
                    "[services]\n",
                    "[services]\ncromwell-runner = \"cromwell@synthetic.iam.gserviceaccount.com\"\nmetadata-server = \"metamist@synthetic.iam.gserviceaccount.com\"\n",
                    1,
                )
                .replacen(
                    "[infra]\n",
                    "[infra]\nadministrators = \"platform-admins\"\n",
                    1,
                )
                + "\n[infra.gcp]\norganisation_id = \"42\"\n\
                   analysis_runner_service = \"projects/ar/locations/r/services/server\"\n\
                   metadata_service = \"projects/mm/locations/r/services/metamist\"\n\
                   analysis_runner_registry = \"projects/ar/locations/r/repositories/images\"\n\
                   git_token_secret = \"projects/ar/secrets/token\"\nnotebooks_project = \"nb\"\n";
        }
    }
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
                // Only the full access level (standard only APPENDs); no organisation group,
                // person or other account holds it.
                assert_eq!(role.as_deref(), Some("full"), "{who} can MUTATE {dataset} {bucket}: only full may");
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

/// What each workload needs, from the old system's access model (docs/INTERNALS.md, "Infrastructure"):
/// the component, the resource's owner (`{ds}` the dataset, or the organisation), the resource,
/// the level, and who: `group {ds}-<role>` (reached through nesting counts), an account of the
/// dataset, a service, or an organisation group.
const NEEDS: &[(&str, &str, &str, &str, &str)] = &[
    ("analysis-runner", "{ds}", "external analysis-runner-service", "invoke", "group {ds}-analysis"),
    ("analysis-runner", "{ds}", "project", "use-requester-pays", "group {ds}-analysis"),
    ("analysis-runner", "{ds}", "project", "use-requester-pays", "group {ds}-test"),
    ("analysis-runner", "{ds}", "project", "use-requester-pays", "group {ds}-standard"),
    ("analysis-runner", "{ds}", "project", "use-requester-pays", "group {ds}-full"),
    ("cromwell", "{ds}", "project", "report-batch-jobs", "account {ds}/cromwell-test"),
    ("cromwell", "{ds}", "project", "report-batch-jobs", "account {ds}/cromwell-standard"),
    ("cromwell", "{ds}", "project", "report-batch-jobs", "account {ds}/cromwell-full"),
    ("cromwell", "{ds}", "project", "edit-batch-jobs", "service cromwell-runner"),
    ("cromwell", "{ds}", "account cromwell-test", "use", "account {ds}/cromwell-test"),
    ("cromwell", "{ds}", "account cromwell-test", "use", "service cromwell-runner"),
    ("cromwell", "{ds}", "account cromwell-full", "use", "account {ds}/cromwell-full"),
    ("cromwell", "{ds}", "account cromwell-full", "use", "service cromwell-runner"),
    ("cromwell", "{ds}", "secret cromwell-test-key", "read", "account {ds}/hail-test"),
    ("cromwell", "{ds}", "secret cromwell-full-key", "read", "service analysis-runner"),
    ("hail", "{ds}", "bucket hail", "mutate", "account {ds}/hail-test"),
    ("hail", "{ds}", "bucket hail", "mutate", "account {ds}/hail-standard"),
    ("hail", "{ds}", "bucket hail", "mutate", "account {ds}/hail-full"),
    ("hail", "{ds}", "bucket hail", "mutate", "service analysis-runner"),
    ("spark", "{ds}", "account dataproc-test", "use", "account {ds}/hail-test"),
    ("spark", "{ds}", "account dataproc-full", "use", "account {ds}/hail-full"),
    ("spark", "{ds}", "project", "admin-clusters", "account {ds}/hail-standard"),
    ("spark", "{ds}", "project", "run-clusters", "account {ds}/hail-standard"),
    ("spark", "{ds}", "project", "run-clusters", "account {ds}/dataproc-standard"),
    ("spark", "{ds}", "project", "view-clusters", "group {ds}-analysis"),
    ("notebooks", "{ds}", "external notebooks-project", "run-compute", "account {ds}/notebooks"),
    ("notebooks", "{ds}", "account notebooks", "use", "group {ds}-analysis"),
    // APPEND is read and create: standard accounts read and write web reports.
    ("storage", "{ds}", "bucket main-web", "append", "group {ds}-standard"),
    ("storage", "{ds}", "bucket main", "read", "group {ds}-data-manager"),
    ("registry", "{ds}", "registry images", "write", "group {ds}-standard"),
    ("registry", "{ds}", "registry images", "write", "group {ds}-full"),
    ("registry", "{ds}", "registry images-dev", "read", "group {ds}-test"),
    ("registry", "{ds}", "registry images-dev", "write", "group {ds}-test"),
    ("registry", "{ds}", "registry images-dev", "write", "group {ds}-test-full"),
    ("registry", "{ds}", "registry images-dev", "read", "group {ds}-full"),
    ("analysis-runner", "organisation", "bucket config", "read", "group {ds}-analysis"),
    ("analysis-runner", "organisation", "bucket config", "read", "group {ds}-test"),
    ("analysis-runner", "organisation", "bucket config", "read", "group {ds}-standard"),
    ("analysis-runner", "organisation", "bucket config", "read", "group {ds}-full"),
    ("analysis-runner", "organisation", "external git-token-secret", "read", "group {ds}-test"),
    ("analysis-runner", "organisation", "external git-token-secret", "read", "group {ds}-full"),
    ("analysis-runner", "organisation", "external analysis-runner-registry", "read", "group {ds}-standard"),
    ("metamist", "organisation", "external metadata-service", "invoke", "group {ds}-analysis"),
    ("metamist", "organisation", "external metadata-service", "invoke", "group {ds}-metadata-access"),
    // The common dataset's reference data, for the test level and analysts of every dataset.
    ("test-storage", "common", "bucket main", "read", "group {ds}-test"),
    ("test-storage", "common", "bucket main", "read", "group {ds}-analysis"),
];

/// Memberships workloads need: (component, group, member), `{ds}` the dataset; a member
/// `account {ds}/<name>` is the account's email, `service <name>` the service's.
const MEMBERSHIPS: &[(&str, &str, &str)] = &[
    ("notebooks", "{ds}-analysis", "account {ds}/notebooks"),
    ("metamist", "{ds}-main-list", "service metadata-server"),
    ("cromwell", "cromwell-access", "account {ds}/hail-test"),
    ("cromwell", "cromwell-access", "account {ds}/hail-full"),
    ("hail", "{ds}-standard", "account {ds}/hail-standard"),
    ("spark", "{ds}-full", "account {ds}/dataproc-full"),
];

fn check_workloads(expanded: &Expanded) -> usize {
    let definitions = &expanded.definitions;
    let matrix = access_matrix(definitions);
    let common = definitions.organisation.common_dataset.clone().expect("a common dataset");
    let mut checked = 0;
    for dataset in definitions.datasets.values().filter(|d| d.gcp.is_some()) {
        let ds = dataset.name.as_str();
        let fill = |text: &str| text.replace("{ds}", ds);
        for (component, owner, resource, level, who) in NEEDS {
            let who = fill(who);
            let group_exists = who.strip_prefix("group ").is_none_or(|g| expanded.hierarchy.group(g).is_some());
            if !dataset.components.contains(*component) || !group_exists {
                continue;
            }
            let owner = match *owner {
                "organisation" => "organisation".to_owned(),
                "common" => common.clone(),
                _ => ds.to_owned(),
            };
            if *owner == common
                && *component == "test-storage"
                && !definitions.datasets[&common].components.contains("test-storage")
            {
                continue;
            }
            let reached = matrix.effective(&expanded.hierarchy, &owner, resource);
            assert!(
                reached.get(&who).is_some_and(|levels| levels.contains(*level)),
                "{ds} ({component}): {who} lacks {level} on {owner} {resource}; it has {:?}",
                reached.get(&who)
            );
            checked += 1;
        }
        for (component, group, member) in MEMBERSHIPS {
            if !dataset.components.contains(*component) {
                continue;
            }
            let email = match fill(member).split_once(' ') {
                Some(("account", account)) => {
                    let name = account.split_once('/').map_or(account, |(_, n)| n);
                    format!(
                        "{name}@{}.iam.gserviceaccount.com",
                        dataset.gcp.as_ref().map_or("", |g| g.project.as_str())
                    )
                }
                Some(("service", name)) => definitions.organisation.services[name].clone(),
                _ => unreachable!("members are accounts or services"),
            };
            let group = definitions.org_group_name(&fill(group));
            let members = expanded.hierarchy.effective_members(&group);
            assert!(members.contains(email.as_str()), "{ds} ({component}): {email} is not in {group}");
            checked += 1;
        }
    }
    checked
}

#[test]
fn workloads_have_what_their_components_need_in_the_test_organisation() {
    let checked = check_workloads(&fixture());
    assert!(checked > 60, "{checked} needs checked");
}

#[test]
fn workloads_have_what_their_components_need_in_a_large_organisation_with_dependencies() {
    let checked = check_workloads(&synthetic());
    assert!(checked > 40 * 50, "{checked} needs checked");
}

/// Machine accounts act as accounts only where they must; no group mints tokens, acts as an
/// access-level account or reads a machine-account key. The two group grants the old system
/// made too (analysts use their notebook account; data managers make keys for the sequencing
/// provider's upload account) are the only ones, and are named in docs/INTERNALS.md.
fn check_no_group_acts_as_a_machine_account(expanded: &Expanded) {
    let matrix = access_matrix(&expanded.definitions);
    let deliberate = [("account notebooks", "use", "analysis"), ("account main-upload", "manage-keys", "data-manager")];
    let mut seen = 0;
    for grant in matrix.grants.iter().filter(|g| g.resource.starts_with("account ")) {
        seen += 1;
        let Some(role) = role_of(&expanded.hierarchy, &grant.who) else {
            assert!(!grant.who.starts_with("group "), "an organisation group acts as a machine account: {grant:?}");
            assert_ne!(grant.level, "impersonate", "nobody mints tokens for a machine account: {grant:?}");
            continue;
        };
        assert!(
            deliberate
                .iter()
                .any(|(resource, level, r)| *resource == grant.resource && *level == grant.level && *r == role),
            "group {} ({role}) may {} {}",
            grant.who,
            grant.level,
            grant.resource
        );
    }
    assert!(seen > 0, "the organisation has machine accounts");
    for grant in matrix.grants.iter().filter(|g| g.resource.starts_with("secret ") && g.resource.ends_with("-key")) {
        assert!(!grant.who.starts_with("group "), "a group reads a machine-account key: {grant:?}");
    }
}

#[test]
fn no_group_can_act_as_a_machine_account() {
    check_no_group_acts_as_a_machine_account(&fixture());
    check_no_group_acts_as_a_machine_account(&synthetic());
}

/// Access-level groups hold machine accounts only, directly or through nesting: no person of
/// people.toml (by email or Google account) is ever in one.
fn check_no_person_in_access_levels(expanded: &Expanded) {
    let people: BTreeMap<&str, &str> = expanded
        .definitions
        .people
        .values()
        .flat_map(|p| [Some(p.email.as_str()), p.google.as_deref()].into_iter().flatten().map(|e| (e, p.key.as_str())))
        .collect();
    let mut checked = 0;
    for group in expanded.hierarchy.groups.values() {
        let GroupKind::Dataset { role, .. } = &group.kind else { continue };
        if !["test", "standard", "full"].contains(&role.as_str()) {
            continue;
        }
        for member in expanded.hierarchy.effective_members(&group.name) {
            assert!(!people.contains_key(member), "{} holds the person {member}", group.name);
            checked += 1;
        }
    }
    assert!(checked > 0, "access-level groups have machine accounts");
}

#[test]
fn no_person_is_in_an_access_level_group() {
    check_no_person_in_access_levels(&fixture());
    check_no_person_in_access_levels(&synthetic());
    // The shipped example too, not only its frozen copy.
    let example = load_expanded(&DirSource::new(manifest_dir()), TODAY).expect("the example organisation is valid");
    check_no_person_in_access_levels(&example);
}

#[test]
fn time_limited_main_reads_are_opt_in_approved_and_only_for_those_named() {
    let expanded = fixture();
    let matrix = access_matrix(&expanded.definitions);
    let requests: Vec<_> = matrix.grants.iter().filter(|g| g.level.contains("on request")).collect();
    let reads: Vec<_> = requests.iter().filter(|g| g.level.starts_with("read")).collect();
    // tob-wgs names someone; common gets the path because tob-wgs's group is nested in its.
    let owners: Vec<&str> = reads.iter().map(|g| g.owner.as_str()).collect();
    assert_eq!(owners, ["common", "tob-wgs"], "{reads:#?}");
    for grant in &reads {
        let approvers = format!("approved by group {}-data-manager", grant.owner);
        assert!(grant.level.ends_with(&approvers), "{grant:?}");
        let group = grant.who.strip_prefix("group ").expect("a group");
        let eligible: Vec<&str> = expanded.hierarchy.effective_members(group).into_iter().collect();
        assert_eq!(eligible, ["priya.raman@example.org"], "{group}: only those the definitions name");
    }
    // The administrators' emergency write: a day at most, approved by another administrator.
    let writes: Vec<_> = requests.iter().filter(|g| g.level.starts_with("mutate")).collect();
    assert_eq!(
        writes.len(),
        expanded.definitions.datasets.values().filter(|d| d.components.contains("storage")).count()
    );
    for grant in writes {
        assert_eq!(grant.who, "group platform-admins", "{grant:?}");
        assert_eq!(grant.level, "mutate on request (at most 1 day), approved by group platform-admins");
    }
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
