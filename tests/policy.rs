//! Data-driven tests of `policy check`.
//!
//! Every directory under `tests/data/policy/` is one case: the files (`groups/…`,
//! `datasets/…`, `.github/CODEOWNERS`) that differ from the frozen organisation in `tests/fixtures/org`, whose own
//! `groups/policy.toml` turns every rule on, and `expected.txt`, the exit status, stdout and
//! stderr of `cpg-infra policy check` on the organisation with those files in place. `passes`
//! changes nothing: the frozen organisation keeps every rule; `passes-…` cases keep them with a
//! rule turned on. Each other case breaks one rule (or the policy file itself).
//!
//! All cases run; the test then fails once, listing every case that differed.
//! `UPDATE_EXPECT=1 cargo test --test policy` rewrites the expected files; read each before
//! committing it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, cpg, example_org, INVALID_INPUT, SUCCESS};

fn cases() -> Vec<PathBuf> {
    let dir = common::manifest_dir().join("tests/data/policy");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The organisation with the case's files in place, checked.
fn run_case(case: &Path) -> String {
    let org = example_org();
    for part in ["groups", "datasets", ".github"] {
        if case.join(part).is_dir() {
            copy_dir(&case.join(part), &org.path().join(part));
        }
    }
    let run = cpg(org.path(), &["policy", "check"]);
    let root = org.path().display().to_string();
    format!("exit status: {}\n--- stdout ---\n{}--- stderr ---\n{}", run.code, run.stdout, run.stderr)
        .replace(&root, "ROOT")
}

#[test]
fn policy_cases() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 8, "policy cases are missing");
    for case in &cases {
        let actual = run_case(case);
        let expected_path = case.join("expected.txt");
        if update {
            fs::write(&expected_path, &actual).expect("write expected.txt");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!("{}:\n--- expected ---\n{expected}--- actual ---\n{actual}", case.display()));
        }
        // Cases named `passes…` pass; every other case shows at least one located violation.
        let passes = case.file_name().is_some_and(|name| name.to_string_lossy().starts_with("passes"));
        let status = if passes { SUCCESS } else { INVALID_INPUT };
        assert!(actual.starts_with(&format!("exit status: {status}\n")), "{}\n{actual}", case.display());
    }
    assert!(failures.is_empty(), "{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
}
