//! Infrastructure: `infra plan` and `infra render`.
//!
//! - The example organisation: the plan (text and JSON) and the rendered programs (one
//!   project, and one per dataset) are compared with `tests/data/infra/example/`.
//! - `tests/data/infra/cases/<case>/`: a small definitions tree each. A case with
//!   `expected.txt` is invalid for infrastructure: `validate`, `infra plan` and `infra render`
//!   exit with 3, print exactly `expected.txt` on stderr, and write nothing. A case with
//!   `plan.txt` is valid: `infra plan` prints exactly `plan.txt` (its rendered program is
//!   checked against the provider packages by `tests/infra_pulumi_metadata.rs`).
//! - The driver through the dry-run cloud: the same logical design on GCP and Azure.
//! - The resource count grows with datasets × components, never with memberships.
//!
//! `UPDATE_EXPECT=1 cargo test --test infra` rewrites every expected file; read the diff before
//! committing it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, cpg, example_org, fixture_org_dir, manifest_dir, INVALID_INPUT, SUCCESS};
use cpg_infra::definitions::{Date, DirSource};
use cpg_infra::infra::{self, drive, Azure, Call, DryRun, Gcp, Owner, Ref, Value};
use cpg_infra::load::{load_expanded, Expanded};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn update() -> bool {
    std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1")
}

fn data_dir() -> PathBuf {
    manifest_dir().join("tests/data/infra")
}

/// Compares `actual` with the file at `path` (or writes it when updating); records a
/// difference in `failures`.
fn expect_file(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if update() {
        fs::create_dir_all(path.parent().expect("a parent")).expect("create the expected directory");
        fs::write(path, actual).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    match fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => failures.push(format!("{} differs:\n{}", path.display(), first_difference(&expected, actual))),
        Err(e) => failures.push(format!("cannot read {} ({e}); run with UPDATE_EXPECT=1 to create it", path.display())),
    }
}

fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => continue,
            (None, None) => return "  (only line endings differ)".to_owned(),
            (e, a) => return format!("  line {number}:\n    expected: {e:?}\n    actual:   {a:?}"),
        }
    }
    unreachable!()
}

/// Every file under `dir`, relative, with its contents.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(base: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, files);
            } else {
                let relative = path.strip_prefix(base).expect("under base").to_path_buf();
                files.insert(relative, fs::read_to_string(&path).expect("readable"));
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

/// Checks (or rewrites) a whole directory of expected files against `actual`.
fn expect_tree(expected_dir: &Path, actual: &BTreeMap<PathBuf, String>, failures: &mut Vec<String>) {
    if update() {
        let _ = fs::remove_dir_all(expected_dir);
    }
    for (relative, text) in actual {
        expect_file(&expected_dir.join(relative), text, failures);
    }
    for relative in files_under(expected_dir).keys() {
        if !actual.contains_key(relative) {
            failures.push(format!("{} was expected but not written", expected_dir.join(relative).display()));
        }
    }
}

fn render(root: &Path, per_dataset: bool) -> (tempfile::TempDir, common::Run) {
    let out = tempfile::tempdir().expect("temporary directory");
    let out_arg = out.path().to_string_lossy().into_owned();
    let mut args = vec!["infra", "render", "--out", out_arg.as_str()];
    if per_dataset {
        args.push("--per-dataset");
    }
    let run = cpg(root, &args);
    (out, run)
}

#[test]
fn example_organisation_plan_and_programs_match_snapshots() {
    let org = example_org();
    let expected = data_dir().join("example");
    let mut failures = Vec::new();
    let plan = cpg(org.path(), &["infra", "plan"]);
    plan.expect_code(SUCCESS);
    expect_file(&expected.join("plan.txt"), &plan.stdout, &mut failures);
    let json = cpg(org.path(), &["infra", "plan", "--format", "json"]);
    json.expect_code(SUCCESS);
    expect_file(&expected.join("plan.json"), &json.stdout, &mut failures);
    let (single, run) = render(org.path(), false);
    run.expect_code(SUCCESS);
    expect_tree(&expected.join("pulumi"), &files_under(single.path()), &mut failures);
    let (split, run) = render(org.path(), true);
    run.expect_code(SUCCESS);
    expect_tree(&expected.join("pulumi-per-dataset"), &files_under(split.path()), &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn cases_report_every_problem_or_match_their_plan() {
    let cases_dir = data_dir().join("cases");
    let mut cases: Vec<PathBuf> = fs::read_dir(&cases_dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", cases_dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let plan = cpg(case, &["infra", "plan"]);
        let valid = if update() { plan.code == SUCCESS } else { case.join("plan.txt").exists() };
        if valid {
            if plan.code != SUCCESS {
                failures.push(format!("{name}: `infra plan` should succeed\n{plan}"));
            }
            expect_file(&case.join("plan.txt"), &plan.stdout, &mut failures);
            continue;
        }
        if plan.code != INVALID_INPUT || !plan.stdout.is_empty() {
            failures.push(format!("{name}: `infra plan` should exit with {INVALID_INPUT} and print nothing\n{plan}"));
        }
        expect_file(&case.join("expected.txt"), &plan.stderr, &mut failures);
        let validate = cpg(case, &["validate"]);
        if validate.code != INVALID_INPUT || validate.stderr != plan.stderr {
            failures.push(format!("{name}: `validate` should fail like `infra plan`\n{validate}"));
        }
        let copy = tempfile::tempdir().expect("temporary directory");
        copy_dir(case, copy.path());
        let (out, render) = render(copy.path(), false);
        if render.code != INVALID_INPUT || render.stderr != plan.stderr {
            failures.push(format!("{name}: `infra render` should fail like `infra plan`\n{render}"));
        }
        if out.path().join("Pulumi.yaml").exists() {
            failures.push(format!("{name}: `infra render` wrote a program for invalid definitions"));
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn plan_json_counts_resources_and_marks_the_adopted_one() {
    let org = example_org();
    let run = cpg(org.path(), &["infra", "plan", "--format", "json"]);
    run.expect_code(SUCCESS);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let resources = plan["resources"].as_array().expect("a list");
    assert_eq!(plan["summary"]["resources"].as_u64(), Some(resources.len() as u64));
    let adopted: Vec<(&str, &str)> = resources
        .iter()
        .filter(|r| !r["adopt"].is_null())
        .map(|r| (r["name"].as_str().unwrap(), r["adopt"].as_str().unwrap()))
        .collect();
    assert_eq!(adopted, [("tob-wgs-gcp-bucket-main", "egi-tob-wgs-main")]);
    for cloud in ["gcp", "azure"] {
        assert!(resources.iter().any(|r| r["cloud"] == cloud && r["owner"] == "tob-wgs"), "tob-wgs on {cloud}");
    }
}

fn example() -> Expanded {
    load_expanded(&DirSource::new(fixture_org_dir()), TODAY).expect("the example organisation is valid")
}

/// The calls that make a dataset's design; budgets are per cloud and keys cross clouds.
fn design_calls<'c>(calls: &'c [Call], owner: &str) -> Vec<&'c Call> {
    calls.iter().filter(|c| c.owner == owner && !["cross-cloud", "budget"].contains(&c.component.as_str())).collect()
}

/// The driver gives a dataset on both clouds the same calls on each; only keys shared across
/// clouds differ, because a managed identity has no key to share. What Azure cannot provide
/// only ever narrows access (time-limited access, key management, Google service accounts),
/// and each is a note.
#[test]
fn the_same_dataset_gets_the_same_design_on_gcp_and_azure() {
    let expanded = example();
    let definitions = &expanded.definitions;
    let mut gcp = Gcp::new(definitions);
    let mut azure = Azure::new(definitions);
    let mut gcp_calls = DryRun::wrapping(&mut gcp);
    let mut azure_calls = DryRun::wrapping(&mut azure);
    let report = drive(definitions, &mut [&mut gcp_calls, &mut azure_calls]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (gcp_calls, azure_calls) = (gcp_calls.calls().to_vec(), azure_calls.calls().to_vec());
    for owner in ["organisation", "common", "tob-wgs"] {
        let on_gcp = design_calls(&gcp_calls, owner);
        let on_azure = design_calls(&azure_calls, owner);
        assert!(!on_gcp.is_empty(), "{owner} has a design");
        // Azure's release bucket cannot bill its readers: a note (below), the same bucket.
        // Cromwell keys kept as secrets exist where accounts have keys (GCP), a note elsewhere.
        // Dataproc (spark) is Google Cloud's: Azure declines it in `prepare` and gets none of it.
        let asked = |calls: &[&Call]| {
            calls
                .iter()
                .filter(|c| !c.action.contains("-key") && !c.action.starts_with("key of"))
                .filter(|c| c.component != "spark" || c.action.starts_with("prepare"))
                .map(|c| c.action.replace(", requester pays", ""))
                .collect::<Vec<_>>()
        };
        assert_eq!(asked(&on_gcp), asked(&on_azure), "{owner}: the same calls on both clouds");
        assert!(on_gcp.iter().all(|c| c.outcome.is_ok()), "{owner}: every call is provided on GCP");
        // Azure may decline only grants whose absence narrows access, and the workload needs
        // it has no counterpart for yet (the organisation's Google Cloud services, Batch,
        // Dataproc), each a note in the plan.
        for call in on_azure.iter().filter(|c| c.outcome.is_err()) {
            let narrowing = ["to service ", " on request, ", "grant manage-keys ", "key of machine account"]
                .iter()
                .any(|k| call.action.contains(k));
            let not_yet =
                ["on the organisation's ", "batch-jobs on the project", "clusters on the project", "prepare for spark"]
                    .iter()
                    .any(|k| call.action.contains(k));
            assert!(narrowing || not_yet, "{owner}: Azure cannot provide {call}, which is not a narrowing grant");
        }
    }
    // The GCP hail accounts' keys go into Azure Key Vault; Azure's identities have none to share.
    let cross = |calls: &[Call]| -> Vec<String> {
        calls.iter().filter(|c| c.component == "cross-cloud").map(ToString::to_string).collect()
    };
    let on_gcp = cross(&gcp_calls);
    assert_eq!(on_gcp.len(), 3, "{on_gcp:#?}");
    assert!(on_gcp.iter().all(|c| c.contains("key of machine account tob-wgs/hail-") && !c.contains("unsupported")));
    let on_azure = cross(&azure_calls);
    assert_eq!(on_azure.iter().filter(|c| c.contains("unsupported: machine-account keys")).count(), 3);
    assert!(on_azure.contains(&"tob-wgs cross-cloud: secret hail-test-gcp-key".to_owned()), "{on_azure:#?}");
    assert!(on_azure
        .iter()
        .any(|c| c.contains("grant read on secret tob-wgs/hail-test-gcp-key to account tob-wgs/hail-test")));
    // Read there by the account of the same name only: a group that read it could act as it.
    assert!(!on_azure.iter().any(|c| c.contains("-gcp-key to group")), "{on_azure:#?}");
    // Each cloud gets its own share of a budget, never the whole amount twice.
    let budget = |calls: &[Call]| {
        calls.iter().find(|c| c.owner == "tob-wgs" && c.action.starts_with("monthly budget")).map(|c| c.action.clone())
    };
    assert!(budget(&gcp_calls).is_some_and(|b| b.starts_with("monthly budget 15000 AUD")), "{:?}", budget(&gcp_calls));
    assert!(
        budget(&azure_calls).is_some_and(|b| b.starts_with("monthly budget 5000 AUD")),
        "{:?}",
        budget(&azure_calls)
    );
    let notes = report.notes.join("\n");
    assert!(notes.contains("tob-wgs: machine-account keys of hail-test, hail-standard, hail-full on azure"), "{notes}");
    assert!(notes.contains("tob-wgs on azure: no read access to main on request"), "{notes}");
    assert!(notes.contains("tob-wgs bucket release on azure: not requester pays"), "{notes}");
    assert!(report.notes.iter().all(|n| n.contains("azure")), "{notes}");
}

/// The cross-cloud reference is a `${resource.output}` interpolation inside one program.
#[test]
fn an_azure_key_vault_secret_holds_the_gcp_hail_key() {
    let expanded = example();
    let build = infra::build(&expanded.definitions).expect("a valid design");
    let secret = &build.program.resources["tob-wgs-azure-secret-hail-test-gcp-key"];
    assert_eq!(secret.type_token, "azure-native:keyvault:Secret");
    assert_eq!(
        secret.properties["properties"],
        Value::map([("value", Value::output("tob-wgs-gcp-account-hail-test-key", "privateKey"))])
    );
    assert_eq!(build.program.resources["tob-wgs-gcp-account-hail-test-key"].type_token, "gcp:serviceaccount:Key");
    // Split per dataset, both ends stay in the dataset's project; the dataset's storage config
    // goes into the organisation's config bucket through a stack reference. The members-cache
    // files are the sync's: no Pulumi object writes them.
    let projects = infra::per_owner(&build.program, "Example");
    let tob_wgs = projects.iter().find(|p| p.dir == "datasets/tob-wgs").expect("a tob-wgs project");
    assert!(tob_wgs.program.resources.contains_key("tob-wgs-gcp-account-hail-test-key"));
    let config = &tob_wgs.program.resources["tob-wgs-gcp-blob-storage-config"];
    let mut roots = Vec::new();
    config.visit_refs(&mut |r: &Ref| roots.push(r.root.clone()));
    assert!(roots.contains(&"organisation-stack".to_owned()), "{roots:?}");
    assert!(roots.contains(&"tob-wgs-gcp-bucket-main".to_owned()), "{roots:?}");
    assert_eq!(tob_wgs.program.resources["organisation-stack"].type_token, "pulumi:pulumi:StackReference");
    assert!(tob_wgs.program.outputs.contains_key("tob-wgs-gcp-blob-storage-config-content"));
    let objects = build.program.resources.values().filter(|r| r.type_token == "gcp:storage:BucketObject");
    assert!(objects.clone().all(|r| r.origin.component == "config"), "only storage configs are objects");
    let organisation = projects.iter().find(|p| p.dir == "organisation").expect("an organisation project");
    assert!(organisation.program.outputs.contains_key("organisation-gcp-bucket-members-group-cache-name"));
}

#[test]
fn render_is_deterministic_and_reports_stale_dataset_projects() {
    let org = example_org();
    let (first, run) = render(org.path(), true);
    run.expect_code(SUCCESS);
    let out_arg = first.path().to_string_lossy().into_owned();
    let again = cpg(org.path(), &["infra", "render", "--per-dataset", "--out", &out_arg]);
    again.expect_code(SUCCESS);
    let (second, _) = render(org.path(), true);
    assert_eq!(files_under(first.path()), files_under(second.path()), "the same definitions give the same bytes");
    // A dataset that goes away leaves its project for `pulumi destroy`, with a warning.
    fs::remove_dir_all(org.path().join("datasets/acute-care")).expect("remove a dataset");
    let after = cpg(org.path(), &["infra", "render", "--per-dataset", "--out", &out_arg]);
    after.expect_code(SUCCESS);
    assert!(after.stderr.contains("datasets/acute-care is no longer produced"), "{after}");
    assert!(first.path().join("datasets/acute-care/Pulumi.yaml").exists(), "nothing is deleted");
}

/// Resources per dataset of the synthetic organisation.
fn resources_by_owner(files: BTreeMap<String, String>) -> (BTreeMap<Owner, usize>, usize) {
    let expanded = load_expanded(&MemorySource::new(files), TODAY).expect("valid");
    let build = infra::build(&expanded.definitions).expect("a valid design");
    let mut counts = BTreeMap::new();
    for resource in build.program.resources.values() {
        *counts.entry(resource.origin.owner.clone()).or_default() += 1;
    }
    (counts, expanded.hierarchy.membership_count())
}

#[test]
fn resource_count_follows_datasets_and_components_not_memberships() {
    let shape = SyntheticShape { datasets: 12, people: 400, variant: 0 };
    let files = generate(shape);
    let (base, memberships) = resources_by_owner(files.clone());
    // Every members.toml cut down to its data managers: far fewer memberships.
    let trimmed: BTreeMap<String, String> = files
        .iter()
        .map(|(path, text)| {
            let text = if path.ends_with("members.toml") {
                text.lines().filter(|l| l.starts_with("data-manager")).map(|l| format!("{l}\n")).collect()
            } else {
                text.clone()
            };
            (path.clone(), text)
        })
        .collect();
    let (fewer, trimmed_memberships) = resources_by_owner(trimmed);
    assert!(trimmed_memberships * 4 < memberships, "{trimmed_memberships} vs {memberships}");
    assert_eq!(fewer, base, "memberships do not change the resources");
    // Twice the datasets: each new dataset adds what every dataset has.
    let (bigger, _) = resources_by_owner(generate(SyntheticShape { datasets: 24, ..shape }));
    let per_dataset = base[&Owner::Dataset("ds0005".to_owned())];
    assert!(per_dataset > 40);
    for d in 1..24 {
        assert_eq!(bigger[&Owner::Dataset(format!("ds{d:04}"))], per_dataset, "ds{d:04}");
    }
    let total = |counts: &BTreeMap<Owner, usize>| counts.values().sum::<usize>();
    assert_eq!(total(&bigger) - total(&base), 12 * per_dataset);
}

#[test]
fn the_standalone_dry_run_records_and_prints_without_a_cloud() {
    let expanded = example();
    let mut gcp = DryRun::standalone("gcp", |d| d.gcp.is_some());
    let mut azure = DryRun::standalone("azure", |d| d.azure.is_some());
    let report = drive(&expanded.definitions, &mut [&mut gcp, &mut azure]);
    assert!(report.errors.is_empty() && report.notes.is_empty(), "{report:?}");
    let printed = azure.to_string();
    assert!(
        printed.contains(
            "azure perth-neuro storage: bucket main [versioned, old versions kept 30 days, abort unfinished uploads after 7 days]\n"
        ),
        "{printed}"
    );
    assert!(printed.contains(
        "azure perth-neuro storage: bucket main-tmp [delete after 8 days, abort unfinished uploads after 7 days]\n"
    ));
    assert!(printed.contains("azure tob-wgs cross-cloud: secret hail-test-gcp-key\n"));
    assert!(gcp.to_string().contains("gcp tob-wgs budget: monthly budget 15000 AUD alerting at 50%, 90%, 100%"));
}

#[test]
fn render_refuses_a_folder_that_holds_the_other_layout() {
    let org = example_org();
    let (per_dataset, run) = render(org.path(), true);
    run.expect_code(SUCCESS);
    let before = files_under(per_dataset.path());
    let out_arg = per_dataset.path().to_string_lossy().into_owned();
    let single = cpg(org.path(), &["infra", "render", "--out", &out_arg]);
    single.expect_code(INVALID_INPUT);
    assert!(single.stderr.contains("holds the per-dataset layout"), "{single}");
    assert!(!single.stderr.contains("pulumi destroy"), "no stack is called stale: {single}");
    assert_eq!(files_under(per_dataset.path()), before, "nothing was written");

    let (single_out, run) = render(org.path(), false);
    run.expect_code(SUCCESS);
    let out_arg = single_out.path().to_string_lossy().into_owned();
    let split = cpg(org.path(), &["infra", "render", "--per-dataset", "--out", &out_arg]);
    split.expect_code(INVALID_INPUT);
    assert!(split.stderr.contains("holds the single-project layout"), "{split}");
    assert!(!single_out.path().join("organisation").exists(), "nothing was written");
}

/// A first `pulumi up` creates a new project and enables its APIs before anything inside it:
/// no property refers to them, so every resource of acute-care (whose project the program
/// creates) depends on the project, and each on the API its type is served by.
#[test]
fn resources_in_a_created_project_wait_for_the_project_and_their_api() {
    let expanded = example();
    let program = cpg_infra::infra::build(&expanded.definitions).expect("builds").program;
    let project = "acute-care-gcp-project";
    assert_eq!(program.resources[project].type_token, "gcp:organizations:Project");
    let mut checked = 0;
    for (name, resource) in &program.resources {
        let in_project = name.starts_with("acute-care-gcp-") && name != project;
        if !in_project {
            continue;
        }
        let depends_on = &resource.options.depends_on;
        assert!(depends_on.iter().any(|d| d == project), "{name} does not wait for the project: {depends_on:?}");
        let api = match resource.type_token.split(':').nth(1) {
            Some("storage") => Some("acute-care-gcp-api-storage"),
            Some("serviceaccount") => Some("acute-care-gcp-api-iam"),
            Some("secretmanager") => Some("acute-care-gcp-api-secretmanager"),
            _ => None,
        };
        if let Some(api) = api {
            assert!(program.resources.contains_key(api), "{api} is enabled");
            assert!(depends_on.iter().any(|d| d == api), "{name} does not wait for {api}: {depends_on:?}");
        }
        checked += 1;
    }
    assert!(checked > 10, "acute-care has its resources on GCP ({checked})");
    // hgdp's project exists already: its resources wait only for their APIs.
    let bucket = &program.resources["hgdp-gcp-bucket-main"];
    assert_eq!(bucket.options.depends_on, ["hgdp-gcp-api-storage"]);
}
