//! Hail Batch billing projects synced like a directory, through the real HTTP client against
//! the Hail Batch emulator: the dataset's project is (re)opened and holds the hail accounts
//! of each level, the analysts with a Hail Batch username and the aggregator; projects that
//! are not the organisation's are never touched; a no-op reads one listing.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::{cpg_with_env, example_org, Run, SUCCESS};
use cpg_infra::emulator::hail::HailEmulator;

const TOKEN: &str = "hail-test-token";

/// The test organisation with Hail Batch enabled and amara given a Hail Batch username.
fn hail_org() -> tempfile::TempDir {
    let org = example_org();
    let root = org.path();
    let path = root.join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}\n[providers.hail]\nenabled = true\naggregator = \"billing-aggregator\"\n"))
        .unwrap();
    let people = root.join("groups/people.toml");
    let text = fs::read_to_string(&people).unwrap();
    let text = text.replacen("[people.amara]\n", "[people.amara]\nhail_batch = \"amara\"\n", 1);
    fs::write(&people, text).unwrap();
    org
}

fn sync(root: &Path, emulator: &HailEmulator, args: &[&str]) -> Run {
    let mut all = vec!["groups", "sync", "--provider", "hail", "--no-cache"];
    all.extend_from_slice(args);
    let base = emulator.base_url();
    cpg_with_env(root, &all, &[("CPG_INFRA_HAIL_ENDPOINT", &base), ("CPG_INFRA_HAIL_TOKEN", TOKEN)])
}

fn users(emulator: &HailEmulator, project: &str) -> BTreeSet<String> {
    emulator.projects()[project].users.clone()
}

#[test]
fn the_billing_project_follows_the_groups_and_foreign_projects_are_left_alone() {
    let org = hail_org();
    let root = org.path();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    // tob-wgs's project was closed by hand; another lab's project shares the service.
    emulator.insert_project("tob-wgs", &["left.over"], "closed");
    emulator.insert_project("other-lab", &["someone"], "open");

    let dry = sync(root, &emulator, &[]);
    dry.expect_code(SUCCESS);
    assert_eq!(emulator.projects()["tob-wgs"].status, "closed", "a dry run changes nothing");

    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    let expected: BTreeSet<String> =
        ["amara", "billing-aggregator", "tob-wgs-full", "tob-wgs-standard", "tob-wgs-test"].map(str::to_owned).into();
    assert_eq!(emulator.projects()["tob-wgs"].status, "open", "{run}");
    assert_eq!(users(&emulator, "tob-wgs"), expected, "{run}");
    assert_eq!(emulator.calls().get("billing_projects.reopen"), Some(&1));
    assert_eq!(emulator.calls().get("billing_projects.create"), None);
    assert_eq!(users(&emulator, "other-lab"), ["someone".to_owned()].into(), "a foreign project is untouched");
    // Analysts without a Hail Batch username are reported, not silently dropped.
    assert!(run.stderr.contains("has no hail_batch username in people.toml (analyses tob-wgs)"), "{run}");
    let skipped: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("skipped: ")).collect();
    let people: BTreeSet<&str> = skipped.iter().filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(people.len(), skipped.len(), "one line per person: {run}");

    // No change: the listing carries every project's users, so one call and no write.
    emulator.reset_calls();
    let again = sync(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    let calls = emulator.calls();
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}\n{again}");
    assert_eq!(calls.get("billing_projects.list"), Some(&1));

    // A user added by hand is removed; one removed by hand comes back.
    let mut drifted = emulator.projects()["tob-wgs"].users.clone();
    drifted.remove("amara");
    drifted.insert("intruder".to_owned());
    let drifted: Vec<&str> = drifted.iter().map(String::as_str).collect();
    emulator.insert_project("tob-wgs", &drifted, "open");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs"), expected);
}

#[test]
fn faults_on_every_request_are_retried_until_the_project_converges() {
    let org = hail_org();
    let root = org.path();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    emulator.fault_each_request_once(true);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs").len(), 5, "{run}");
    assert_eq!(emulator.projects()["tob-wgs"].status, "open");
}

#[test]
fn a_rejected_token_is_configuration() {
    let org = hail_org();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    let base = emulator.base_url();
    let run = cpg_with_env(
        org.path(),
        &["groups", "sync", "--provider", "hail"],
        &[("CPG_INFRA_HAIL_ENDPOINT", &base), ("CPG_INFRA_HAIL_TOKEN", "wrong")],
    );
    run.expect_code(common::INVALID_INPUT);
    assert!(emulator.projects().is_empty());
}

/// `--provider all` runs every enabled provider (here only Hail Batch) and refreshes the
/// members cache once, after the last; with none enabled it is a configuration error.
#[test]
fn all_providers_run_each_enabled_one_then_the_cache() {
    let org = hail_org();
    let root = org.path();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    let base = emulator.base_url();
    let env = [("CPG_INFRA_HAIL_ENDPOINT", base.as_str()), ("CPG_INFRA_HAIL_TOKEN", TOKEN)];
    let run = cpg_with_env(root, &["groups", "sync", "--provider", "all", "--confirm"], &env);
    run.expect_code(SUCCESS);
    assert!(run.stderr.contains("== Hail"), "{run}");
    assert!(!run.stderr.contains("== Google"), "google is not enabled: {run}");
    assert_eq!(emulator.projects()["tob-wgs"].users.len(), 5, "{run}");
    assert!(root.join(".cpg-infra/members-cache/tob-wgs-analysis-members.txt").is_file(), "{run}");

    let none = common::example_org();
    let run = cpg_with_env(none.path(), &["groups", "sync", "--provider", "all"], &[]);
    run.expect_code(common::INVALID_INPUT);
    assert!(run.stderr.contains("no provider is enabled"), "{run}");
}

/// Users added by hand to more than the allowed share of a project are not removed in one go:
/// the plan is refused (exit 2) and the project keeps them until `--allow-mass-removal`.
#[test]
fn mass_removal_from_a_billing_project_is_refused() {
    let org = hail_org();
    let root = org.path();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let mut users: Vec<String> = emulator.projects()["tob-wgs"].users.iter().cloned().collect();
    users.extend((0..20).map(|i| format!("intruder{i}")));
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    emulator.insert_project("tob-wgs", &users, "open");

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(common::REFUSED);
    assert_eq!(emulator.projects()["tob-wgs"].users.len(), 25, "{run}");
    assert_eq!(emulator.calls().get("users.remove"), None);

    sync(root, &emulator, &["--confirm", "--allow-mass-removal"]).expect_code(SUCCESS);
    assert_eq!(emulator.projects()["tob-wgs"].users.len(), 5);
}

/// A project created a moment ago may be missing from the next listings: the next sync creates
/// it again and adds its users again, which Hail Batch answers as already done, and converges.
#[test]
fn a_new_project_missing_from_the_listing_converges() {
    let org = hail_org();
    let root = org.path();
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    emulator.hide_new_projects_for(3);
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let first = users(&emulator, "tob-wgs");
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs"), first, "{run}");
    assert_eq!(first.len(), 5);
    assert_eq!(emulator.projects().len(), 1);
}
