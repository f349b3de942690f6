//! `cpg-infra codeowners` and the `codeowners` policy rule, end to end in a temporary Git
//! repository: the generated file, `--check`, and `policy check` failing once an access change
//! makes the committed file stale.

mod common;

use std::fs;

use common::git::{GitOrg, COMMIT_TIME};
use common::{copy_example_org, cpg, manifest_dir, FAILURE, INVALID_INPUT, SUCCESS};

const CODEOWNERS: &str = ".github/CODEOWNERS";

/// The frozen organisation's policy with the codeowners rule turned on.
fn require_codeowners(org: &GitOrg) {
    let path = org.path("groups/policy.toml");
    let policy = fs::read_to_string(&path).expect("policy");
    assert!(policy.contains("\n# codeowners = true\n"));
    fs::write(&path, policy.replace("\n# codeowners = true\n", "\ncodeowners = true\n")).expect("write policy");
}

#[test]
fn generated_file_matches_the_snapshot() {
    let org = GitOrg::new();
    let run = org.run(&["codeowners"]);
    run.expect_code(SUCCESS);
    let generated = org.read(CODEOWNERS);
    let snapshot = manifest_dir().join("tests/data/codeowners/CODEOWNERS");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        fs::write(&snapshot, &generated).expect("write snapshot");
    }
    assert_eq!(generated, fs::read_to_string(&snapshot).expect("snapshot"), "UPDATE_EXPECT=1 rewrites it");
    // Data managers own their dataset; the administrators (platform-admins, the pinned group)
    // own groups/ and any dataset whose data managers have no GitHub user name.
    assert!(generated.contains("\n/groups/ @kwatanabe @wei-chen\n"), "{generated}");
    // Everything that can change access without a definitions line is the administrators':
    // a catch-all first (the last matching line wins), the tool and CI, and new datasets.
    let catch_all = generated.find("\n* @kwatanabe @wei-chen\n").expect("a catch-all");
    assert!(catch_all < generated.find("\n/datasets/tob-wgs/").unwrap(), "{generated}");
    for path in ["/src/", "/Cargo.lock", "/.ci/", "/scripts/", "/.cargo/", "/build.rs", "/migration.toml", "/datasets/"]
    {
        assert!(generated.contains(&format!("\n{path} @kwatanabe @wei-chen\n")), "{path}: {generated}");
    }
    assert!(generated.contains("\n/datasets/tob-wgs/ @amara-okafor\n"), "{generated}");
    assert!(generated.contains("\n/datasets/hgdp/ @kwatanabe @wei-chen\n"), "{generated}");
    org.run(&["codeowners", "--check"]).expect_code(SUCCESS);
}

#[test]
fn policy_check_fails_when_the_committed_file_is_stale() {
    let org = GitOrg::new();
    require_codeowners(&org);
    let run = org.run(&["policy", "check"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains(".github/CODEOWNERS:1:1: is missing; run `cpg-infra codeowners`"), "{run}");

    org.run(&["codeowners"]).expect_code(SUCCESS);
    org.commit_as("Org Admin", "codeowners", COMMIT_TIME + 60);
    org.run(&["policy", "check"]).expect_code(SUCCESS);

    // priya becomes hgdp's data manager: the file must name her now.
    org.run(&["groups", "add", "priya", "--dataset", "hgdp", "--role", "data-manager"]).expect_code(SUCCESS);
    let run = org.run(&["policy", "check"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains(".github/CODEOWNERS:1:1: is out of date with the definitions"), "{run}");
    org.run(&["codeowners", "--check"]).expect_code(FAILURE);
    let head = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    // The committed revision still agrees with itself.
    org.run(&["--rev", &head, "policy", "check"]).expect_code(SUCCESS);

    org.run(&["codeowners"]).expect_code(SUCCESS);
    assert!(org.read(CODEOWNERS).contains("\n/datasets/hgdp/ @priya-raman\n"));
    org.run(&["policy", "check"]).expect_code(SUCCESS);
}

#[test]
fn definitions_in_a_subdirectory_prefix_the_patterns() {
    let dir = tempfile::tempdir().expect("temporary directory");
    git2::Repository::init(dir.path()).expect("git init");
    let root = dir.path().join("access");
    copy_example_org(&root);
    cpg(&root, &["codeowners"]).expect_code(SUCCESS);
    let generated = fs::read_to_string(dir.path().join(CODEOWNERS)).expect("at the repository's top");
    assert!(generated.contains("\n/access/groups/ @kwatanabe @wei-chen\n"), "{generated}");
    assert!(generated.contains("\n/access/datasets/tob-wgs/ @amara-okafor\n"), "{generated}");
}
