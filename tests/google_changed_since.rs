//! `groups sync --provider google --changed-since` on a Git repository of the test
//! organisation against the Cloud Identity emulator: a complete sync records its revision, and
//! the next reads only the groups whose definitions changed since.

mod common;

use std::collections::BTreeSet;

use cpg_infra::emulator::google::GoogleEmulator;
use cpg_infra::emulator::FaultPlan;

use common::git::{GitOrg, COMMIT_TIME};
use common::google::{emulator, TOKEN};
use common::{cpg_with_env, Run, FAILURE, REFUSED, SUCCESS};

const SYNCED: &str = ".cpg-infra/google-synced.json";
const HGDP_DATA_MANAGER: &str = "hgdp-data-manager@groups.example.org";
const AMARA: &str = "amara.okafor@example.org";

/// The test organisation in Git with the Google provider enabled, committed.
fn google_repo() -> GitOrg {
    let org = GitOrg::new();
    let path = org.path("groups/org.toml");
    let text = org.read("groups/org.toml");
    let section = text.find("[providers.google]").expect("a [providers.google] section");
    let flag = section + text[section..].find("enabled = false").expect("google disabled in the fixture");
    let rest = &text[flag + "enabled = false".len()..];
    std::fs::write(&path, format!("{}enabled = true\n{}{rest}", &text[..flag], common::UNPACED)).unwrap();
    org.commit_as("Org Admin", "enable google", COMMIT_TIME + 60);
    org
}

fn sync(emulator: &GoogleEmulator, org: &GitOrg, extra: &[&str]) -> Run {
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let args = [&["groups", "sync", "--provider", "google", "--no-cache"][..], extra].concat();
    cpg_with_env(org.root(), &args, &env)
}

fn recorded_commit(org: &GitOrg) -> Option<String> {
    let text = std::fs::read_to_string(org.path(SYNCED)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).expect("the synced revision is JSON");
    value["commit"].as_str().map(str::to_owned)
}

fn head(org: &GitOrg) -> String {
    org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string()
}

/// Commits Amara joining hgdp's data managers: one person, one group.
fn add_amara_to_hgdp(org: &GitOrg) -> String {
    let path = org.path("datasets/hgdp/members.toml");
    let text = org.read("datasets/hgdp/members.toml");
    assert!(text.contains("data-manager = [\"mateus\"]"), "{text}");
    std::fs::write(&path, text.replace("data-manager = [\"mateus\"]", "data-manager = [\"mateus\", \"amara\"]"))
        .unwrap();
    org.commit_as("Amara Okafor", "amara manages hgdp data", COMMIT_TIME + 120)
}

fn members_of(emulator: &GoogleEmulator, group: &str) -> BTreeSet<String> {
    emulator.groups()[group].members.keys().cloned().collect()
}

#[test]
fn a_one_person_change_reads_only_its_group_and_a_no_op_reads_nothing() {
    let emulator = emulator(500);
    let org = google_repo();
    let full = sync(&emulator, &org, &["--confirm"]);
    full.expect_code(SUCCESS);
    assert_eq!(recorded_commit(&org), Some(head(&org)), "{full}");
    let groups = emulator.groups().len();

    let change = add_amara_to_hgdp(&org);
    emulator.reset_calls();
    let changed = sync(&emulator, &org, &["--confirm", "--changed-since"]);
    changed.expect_code(SUCCESS);
    assert!(changed.stdout.contains("changed since "), "{changed}");
    assert!(changed.stdout.contains(": 1 group(s) read"), "{changed}");
    assert!(changed.stdout.contains(&format!("+ add    {AMARA} to {HGDP_DATA_MANAGER}")), "{changed}");
    assert!(members_of(&emulator, HGDP_DATA_MANAGER).contains(AMARA));
    let calls = emulator.calls();
    assert!(emulator.total_calls() <= 10, "{calls:?}");
    assert_eq!(calls.get("groups.list"), None, "{calls:?}");
    assert_eq!(calls.get("groups.memberships.list"), Some(&1), "{calls:?}");
    assert_eq!(recorded_commit(&org), Some(change));
    assert_eq!(emulator.groups().len(), groups, "nothing outside the change was created or deleted");

    emulator.reset_calls();
    let again = sync(&emulator, &org, &["--confirm", "--changed-since"]);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains(": 0 group(s) read"), "{again}");
    assert!(again.stdout.contains("plan: 0 group(s) to create, 0 member(s) to add, 0 to remove"), "{again}");
    assert_eq!(emulator.calls().get("groups.memberships.list"), None, "{:?}", emulator.calls());
    assert_eq!(emulator.total_calls(), 0, "{:?}", emulator.calls());
}

#[test]
fn an_unknown_or_unrelated_revision_reads_everything() {
    let emulator = emulator(500);
    let org = google_repo();
    sync(&emulator, &org, &["--confirm"]).expect_code(SUCCESS);
    let groups = emulator.groups().len() as u64;

    // A recorded revision the repository does not have.
    std::fs::write(org.path(SYNCED), r#"{"commit": "0123456789abcdef0123456789abcdef01234567", "date": "2026-11-26"}"#)
        .unwrap();
    emulator.reset_calls();
    let unknown = sync(&emulator, &org, &["--changed-since"]);
    unknown.expect_code(SUCCESS);
    assert!(unknown.stderr.contains("is unknown to the repository; reading everything"), "{unknown}");
    assert!(unknown.stdout.contains(&format!("full read: {groups} groups read")), "{unknown}");
    assert_eq!(emulator.calls().get("groups.memberships.list"), Some(&groups));

    // A revision on another branch: not an ancestor of the one synced.
    let main = head(&org);
    org.switch_to_new_branch("side");
    let side = add_amara_to_hgdp(&org);
    emulator.reset_calls();
    let unrelated = sync(&emulator, &org, &["--rev", &main, "--changed-since", &side]);
    unrelated.expect_code(SUCCESS);
    assert!(unrelated.stderr.contains("is not an ancestor"), "{unrelated}");
    assert!(unrelated.stdout.contains("full read: "), "{unrelated}");
    assert_eq!(emulator.calls().get("groups.memberships.list"), Some(&groups));

    // No recorded revision at all.
    std::fs::remove_file(org.path(SYNCED)).unwrap();
    let missing = sync(&emulator, &org, &["--changed-since"]);
    missing.expect_code(SUCCESS);
    assert!(missing.stderr.contains("no synced revision is recorded"), "{missing}");
}

#[test]
fn a_group_removed_from_the_definitions_is_reported_as_no_longer_defined() {
    let emulator = emulator(500);
    let org = google_repo();
    let before = org.read("groups/org-groups.toml");
    std::fs::write(
        org.path("groups/org-groups.toml"),
        format!("{before}\n[groups.reading-club]\ndescription = \"Reads papers.\"\nmembers = [\"amara\"]\n"),
    )
    .unwrap();
    org.commit_as("Org Admin", "a reading club", COMMIT_TIME + 120);
    sync(&emulator, &org, &["--confirm"]).expect_code(SUCCESS);
    assert!(emulator.groups().contains_key("reading-club@groups.example.org"));

    std::fs::write(org.path("groups/org-groups.toml"), before).unwrap();
    org.commit_as("Org Admin", "no more reading club", COMMIT_TIME + 180);
    let changed = sync(&emulator, &org, &["--changed-since"]);
    changed.expect_code(SUCCESS);
    assert!(changed.stdout.contains(": 1 group(s) read"), "{changed}");
    assert!(changed.stdout.contains("no longer defined: reading-club@groups.example.org"), "{changed}");

    // --delete-groups plans its deletion, which needs the usual consent for its member.
    let deleting = sync(&emulator, &org, &["--changed-since", "--delete-groups"]);
    deleting.expect_code(REFUSED);
    assert!(deleting.stdout.contains("- delete group reading-club@groups.example.org"), "{deleting}");
}

#[test]
fn a_failed_apply_leaves_the_recorded_revision() {
    let emulator = emulator(500);
    let org = google_repo();
    sync(&emulator, &org, &["--confirm"]).expect_code(SUCCESS);
    let synced = head(&org);

    let change = add_amara_to_hgdp(&org);
    emulator.set_faults(FaultPlan { reject_members: BTreeSet::from([AMARA.to_owned()]), ..FaultPlan::default() });
    let failed = sync(&emulator, &org, &["--confirm", "--changed-since"]);
    failed.expect_code(FAILURE);
    assert_eq!(recorded_commit(&org), Some(synced), "{failed}");

    // The next run starts from the same revision, and lands the change.
    emulator.set_faults(FaultPlan::default());
    let retried = sync(&emulator, &org, &["--confirm", "--changed-since"]);
    retried.expect_code(SUCCESS);
    assert!(members_of(&emulator, HGDP_DATA_MANAGER).contains(AMARA), "{retried}");
    assert_eq!(recorded_commit(&org), Some(change));
}

#[test]
fn files_beside_the_definitions_do_not_stop_recording_but_an_uncommitted_definition_does() {
    let emulator = emulator(500);
    let org = google_repo();
    // What a workflow leaves in the checkout: a login's credentials file and a drift report.
    std::fs::write(org.path("gha-creds-0123.json"), "{}").unwrap();
    std::fs::write(org.path("drift-google.json"), "[]").unwrap();
    let clean = sync(&emulator, &org, &["--confirm"]);
    clean.expect_code(SUCCESS);
    assert_eq!(recorded_commit(&org), Some(head(&org)), "{clean}");

    let recorded = head(&org);
    let path = org.path("datasets/hgdp/members.toml");
    let text = org.read("datasets/hgdp/members.toml");
    std::fs::write(&path, text.replace("data-manager = [\"mateus\"]", "data-manager = [\"mateus\", \"amara\"]"))
        .unwrap();
    let dirty = sync(&emulator, &org, &["--confirm"]);
    dirty.expect_code(SUCCESS);
    assert!(dirty.stderr.contains("the definitions under --root have uncommitted changes"), "{dirty}");
    assert_eq!(recorded_commit(&org), Some(recorded), "an uncommitted edit must not be recorded as a revision");
}
