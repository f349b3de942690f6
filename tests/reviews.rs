//! Recertification (`review open`, `review overdue`, the `review_grace` rule) and reminders
//! (`groups remind`), end to end in a temporary Git repository, with the GitHub emulator for
//! the issues the nightly job keeps.

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::{cpg_with_env, INVALID_INPUT, SUCCESS};
use cpg_infra::emulator::github::GitHubEmulator;

const REPO: &str = "example-org/access";
const TOKEN: &str = "ghs_test";

fn append(org: &GitOrg, path: &str, text: &str) {
    let mut old = org.read(path);
    old.push_str(text);
    std::fs::write(org.path(path), old).unwrap();
}

/// The example with `review_every` (and a grace) in its policy, committed.
fn org_on_schedule() -> GitOrg {
    let org = GitOrg::new();
    append(&org, "groups/policy.toml", "\nreview_every = \"180d\"\nreview_grace = \"30d\"\n");
    org.commit_as("Org Admin", "review every 180 days", COMMIT_TIME + 3_600);
    org
}

fn with_github(org: &GitOrg, github: &GitHubEmulator, args: &[&str]) -> common::Run {
    let url = github.base_url();
    cpg_with_env(org.root(), args, &[("GITHUB_API_URL", url.as_str()), ("GH_TOKEN", TOKEN)])
}

fn file_at(org: &GitOrg, reference: &str, path: &str) -> Option<String> {
    let tree = org.repo.revparse_single(reference).ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(std::path::Path::new(path)).ok()?;
    let blob = org.repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).into_owned())
}

#[test]
fn review_open_commits_the_record_on_a_branch_and_lists_every_member() {
    let org = org_on_schedule();
    let head = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let run = org.run(&["review", "open", "--dataset", "tob-wgs"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("## Access review of `tob-wgs`"), "{run}");
    assert!(run.stdout.contains("| data-manager | amara | amara.okafor@example.org | listed |"), "{run}");
    assert!(run.stdout.contains("through group:data-science"), "{run}");
    let record = file_at(&org, "review/tob-wgs", "datasets/tob-wgs/review.toml").expect("record on the branch");
    assert!(record.contains("reviewed_on = 2026-11-26\n"), "{record}");
    assert!(record.contains(&format!("revision = \"{head}\"")), "{record}");
    // The working tree and main are untouched; the branch is one commit on main.
    assert!(!org.path("datasets/tob-wgs/review.toml").exists());
    let branch = org.repo.revparse_single("review/tob-wgs").unwrap().peel_to_commit().unwrap();
    assert_eq!(branch.parent_id(0).unwrap().to_string(), head);
    // The access-request approvals check asks the dataset's data managers.
    let approvals = org.run(&["policy", "approvals", "main", "review/tob-wgs"]);
    approvals.expect_code(SUCCESS);
    assert!(approvals.stdout.contains("the data managers of tob-wgs"), "{approvals}");
    assert!(!approvals.stdout.contains("the administrators"), "{approvals}");
}

#[test]
fn review_open_due_skips_datasets_reviewed_recently_and_writes_files() {
    let org = org_on_schedule();
    let head = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let record = format!("reviewed_on = 2026-10-01\nrevision = \"{head}\"\nprepared_by = \"Org Admin\"\n");
    std::fs::write(org.path("datasets/hgdp/review.toml"), record).unwrap();
    org.commit_as("Org Admin", "hgdp reviewed", COMMIT_TIME + 7_200);
    let out = org.path("out");
    let run = org.run(&["review", "open", "--due", "--out", out.to_str().unwrap()]);
    run.expect_code(SUCCESS);
    let branches = std::fs::read_to_string(out.join("branches.txt")).unwrap();
    assert!(branches.contains("review/tob-wgs tob-wgs\n"), "{branches}");
    assert!(!branches.contains("hgdp"), "{branches}");
    assert!(out.join("tob-wgs.md").exists());
    assert!(!out.join("hgdp.md").exists());
}

#[test]
fn an_unknown_dataset_is_refused_and_no_branch_is_made() {
    let org = org_on_schedule();
    let run = org.run(&["review", "open", "--dataset", "tob-wgz"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("unknown dataset `tob-wgz`"), "{run}");
    assert!(org.repo.find_branch("review/tob-wgz", git2::BranchType::Local).is_err());
}

#[test]
fn a_malformed_review_record_is_a_located_error_and_nothing_is_written() {
    let org = org_on_schedule();
    std::fs::write(
        org.path("datasets/tob-wgs/review.toml"),
        "reviewed_on = 2026-10-01\nrevision = \"abc\"\nprepared_by = \"x\"\n",
    )
    .unwrap();
    org.commit_as("Org Admin", "a bad record", COMMIT_TIME + 7_200);
    let run = org.run(&["review", "open", "--dataset", "tob-wgs"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("datasets/tob-wgs/review.toml:2:12: revision must be a full commit id"), "{run}");
    assert!(org.repo.find_branch("review/tob-wgs", git2::BranchType::Local).is_err());
    std::fs::write(org.path("datasets/tob-wgs/review.toml"), "reviewed = 2026-10-01\n").unwrap();
    let run = org.run(&["validate"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("datasets/tob-wgs/review.toml:1:1"), "{run}");
}

#[test]
fn an_overdue_review_fails_policy_check_at_its_record_and_keeps_one_issue() {
    let org = org_on_schedule();
    let head = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let record = format!("reviewed_on = 2026-01-02\nrevision = \"{head}\"\nprepared_by = \"Org Admin\"\n");
    std::fs::write(org.path("datasets/tob-wgs/review.toml"), &record).unwrap();
    let check = org.run(&["policy", "check"]);
    check.expect_code(INVALID_INPUT);
    assert!(
        check
            .stderr
            .contains("datasets/tob-wgs/review.toml:1:15: the review of dataset `tob-wgs` was due on 2026-07-01"),
        "{check}"
    );
    let github = GitHubEmulator::start(REPO, TOKEN).unwrap();
    let first = with_github(&org, &github, &["review", "overdue", "--repo", REPO]);
    first.expect_code(SUCCESS);
    assert!(first.stderr.contains("opened issue #1"), "{first}");
    let again = with_github(&org, &github, &["review", "overdue", "--repo", REPO]);
    assert!(again.stderr.contains("issue #1 is current"), "{again}");
    let issues = github.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[&1].body.contains("`tob-wgs`: due on 2026-07-01"), "{:?}", issues[&1]);
    assert_eq!(issues[&1].labels, ["access-review-overdue"]);
    // Reviewed: the issue closes.
    std::fs::write(org.path("datasets/tob-wgs/review.toml"), record.replace("2026-01-02", "2026-11-20")).unwrap();
    let closed = with_github(&org, &github, &["review", "overdue", "--repo", REPO]);
    assert!(closed.stderr.contains("closed issue #1"), "{closed}");
    assert_eq!(github.issues()[&1].state, "closed");
}

#[test]
fn a_rule_naming_an_unknown_role_is_located_and_remind_writes_nothing() {
    let org = GitOrg::new();
    append(&org, "groups/policy.toml", "\n[roles.analyst]\nrequire_reason = true\n");
    let github = GitHubEmulator::start(REPO, TOKEN).unwrap();
    let run = with_github(&org, &github, &["groups", "remind", "--within", "14d", "--repo", REPO]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("groups/policy.toml:") && run.stderr.contains("unknown role `analyst`"), "{run}");
    assert!(github.issues().is_empty());
}

#[test]
fn remind_opens_one_issue_per_dataset_and_closes_it_when_nothing_is_due() {
    let org = GitOrg::new();
    let add = ["groups", "add", "kenji", "--dataset", "tob-wgs", "--role", "analysis", "--expires", "2026-12-05"];
    org.run(&add).expect_code(SUCCESS);
    org.commit_as("Org Admin", "kenji: tob-wgs analysis", COMMIT_TIME + 3_600);
    let json = org.run(&["groups", "remind", "--within", "14d", "--format", "json"]);
    json.expect_code(SUCCESS);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let grant = &report["datasets"][0]["grants"][0];
    assert_eq!(report["datasets"][0]["dataset"], "tob-wgs", "{json}");
    assert_eq!(grant["github"], "kwatanabe");
    assert_eq!(
        grant["renew_command"],
        "cpg-infra groups add kenji --dataset tob-wgs --role analysis --expires 2027-03-05"
    );
    assert!(grant["location"].as_str().unwrap().starts_with("datasets/tob-wgs/members.toml:"), "{json}");

    let github = GitHubEmulator::start(REPO, TOKEN).unwrap();
    let first = with_github(&org, &github, &["groups", "remind", "--within", "14d", "--repo", REPO]);
    first.expect_code(SUCCESS);
    assert!(first.stderr.contains("tob-wgs: opened issue #1"), "{first}");
    with_github(&org, &github, &["groups", "remind", "--within", "14d", "--repo", REPO]).expect_code(SUCCESS);
    let issues = github.issues();
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[&1].body.contains("@kwatanabe"), "{:?}", issues[&1]);
    assert!(issues[&1].body.contains("@amara-okafor"), "{:?}", issues[&1]);
    assert!(issues[&1].body.contains("--expires 2027-03-05"), "{:?}", issues[&1]);

    // Renewed past the window: the issue is closed, not duplicated.
    let renew = ["groups", "add", "kenji", "--dataset", "tob-wgs", "--role", "analysis", "--expires", "2027-03-05"];
    org.run(&renew).expect_code(SUCCESS);
    let last = with_github(&org, &github, &["groups", "remind", "--within", "14d", "--repo", REPO]);
    assert!(last.stderr.contains("tob-wgs: closed issue #1"), "{last}");
    assert_eq!(github.issues().len(), 1);
}

#[test]
fn access_held_another_way_without_an_end_needs_no_renewal() {
    let org = GitOrg::new();
    // amara manages tob-wgs without an end, and data-manager is inside analysis.
    let add = ["groups", "add", "amara", "--dataset", "tob-wgs", "--role", "analysis", "--expires", "2026-12-05"];
    org.run(&add).expect_code(SUCCESS);
    let run = org.run(&["groups", "remind", "--within", "14d"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("no renewal needed: they keep this access through"), "{run}");
    assert!(!run.stdout.contains("to renew until"), "{run}");
}
