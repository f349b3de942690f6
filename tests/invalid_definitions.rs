//! Data-driven tests for bad definitions.
//!
//! Every directory under `tests/data/invalid/` is one case: a small, complete definitions tree
//! (`groups/`, `datasets/`) with exactly one kind of mistake (or, for `several-errors`, a few in
//! different files), and `expected.txt`, the exact stderr of `cpg-infra validate` on it: one
//! `path:line:col: message` line per problem, then the `error: N problem(s) …` summary line.
//!
//! Each case runs on a scratch copy of its tree, next to an existing local directory. The test
//! checks that
//! - `validate` exits with status 3, prints nothing on stdout, and prints `expected.txt` on
//!   stderr;
//! - `groups sync --confirm`, `infra plan` and `groups expand` exit with status 3 and print the
//!   same stderr: every command accepts exactly what `validate` accepts;
//! - the existing local directory is byte-identical afterwards and nothing else was written.
//!
//! Inputs Git cannot hold portably (names that are not UTF-8, symbolic links) are built after
//! the copy; such a case names its construction in `construct.txt`.
//!
//! All cases run; the test then fails once, listing every case that differed.
//!
//! To add a case, create its tree and run `UPDATE_EXPECT=1 cargo test --test
//! invalid_definitions` to write its `expected.txt`; then read that file and check by hand that
//! each line names the right file, line, column and problem before committing it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Expiry is judged against a fixed date so the cases never change with the clock.
const TODAY: &str = "2026-11-26";
/// `cpg-infra`'s exit status for bad definitions.
const INVALID_INPUT: i32 = 3;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/invalid")
}

/// The case directories, sorted by name.
fn cases() -> Vec<PathBuf> {
    let dir = cases_dir();
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    cases
}

fn run(case: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cpg-infra"))
        .arg("--root")
        .arg(case)
        .args(["--today", TODAY])
        .args(args)
        // The binary reads no other environment that matters here, but make sure a developer's
        // own setting of the date cannot leak in.
        .env_remove("CPG_INFRA_TODAY")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cpg-infra on {}: {e}", case.display()))
}

/// Exit status, stdout and stderr of one run, as readable text.
fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}stderr:\n{}",
        output.status.code(),
        indent(&String::from_utf8_lossy(&output.stdout)),
        indent(&String::from_utf8_lossy(&output.stderr)),
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}\n")).collect()
}

/// A line-by-line comparison: lines only in `expected` start with `-`, only in `actual` with `+`.
fn line_diff(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for line in &expected {
        if !actual.contains(line) {
            out.push_str(&format!("    - {line}\n"));
        }
    }
    for line in &actual {
        if !expected.contains(line) {
            out.push_str(&format!("    + {line}\n"));
        }
    }
    if out.is_empty() {
        // Same lines, different order or repeats.
        out.push_str("    (same lines in a different order or count)\n");
    }
    out
}

/// The local directory a case runs against: it exists before the run and must come out
/// byte-identical, whatever the case.
const EXISTING_DIRECTORY: &str = r#"{"groups":{"keep@groups.example.org":{"name":"keep","description":"made by hand","managed_by":"cpg-infra","members":["someone@example.org"]}}}"#;

/// Inputs Git cannot hold portably (names that are not UTF-8, symbolic links) are made after
/// the copy: a case names its construction in `construct.txt`.
fn construct(root: &Path, name: &str) {
    match name {
        "dataset-dir-name-not-utf8" => {
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
            fs::create_dir(root.join("datasets").join(name)).expect("create the dataset directory");
        }
        "dataset-symlink-outside-root" => {
            std::os::unix::fs::symlink("/tmp", root.join("datasets/outside")).expect("symlink");
        }
        "groups-file-symlink" => {
            std::os::unix::fs::symlink("../datasets/alpha/members.toml", root.join("groups/linked.toml"))
                .expect("symlink");
        }
        other => panic!("unknown construction `{other}`"),
    }
}

/// Copies a case's input tree to a scratch root, applies its construction, and puts the
/// existing local directory in place.
fn prepare(case: &Path) -> tempfile::TempDir {
    let scratch = tempfile::tempdir().expect("temporary directory");
    for dir in ["groups", "datasets"] {
        if case.join(dir).is_dir() {
            copy_tree(&case.join(dir), &scratch.path().join(dir));
        }
    }
    if let Ok(name) = fs::read_to_string(case.join("construct.txt")) {
        construct(scratch.path(), name.trim());
    }
    fs::create_dir_all(scratch.path().join(".cpg-infra")).expect("state directory");
    fs::write(scratch.path().join(".cpg-infra/directory.json"), EXISTING_DIRECTORY).expect("existing directory");
    scratch
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create directory");
    for entry in fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Checks one case; returns a description of every way it went wrong.
fn check_case(case: &Path, update: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let expected_path = case.join("expected.txt");
    let scratch = prepare(case);
    let root = scratch.path();

    let validate = run(root, &["validate"]);
    let stderr = String::from_utf8_lossy(&validate.stderr).into_owned();
    if validate.status.code() != Some(INVALID_INPUT) {
        problems.push(format!("`validate` should exit with {INVALID_INPUT}\n{}", describe(&validate)));
    }
    if !validate.stdout.is_empty() {
        problems.push(format!("`validate` should print nothing on stdout\n{}", describe(&validate)));
    }
    if update {
        fs::write(&expected_path, &stderr).unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
    } else {
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => problems.push(format!(
                "`validate` stderr differs from expected.txt\n  expected:\n{}  actual:\n{}  diff (- expected, + actual):\n{}",
                indent(&expected),
                indent(&stderr),
                line_diff(&expected, &stderr)
            )),
            Err(e) => problems.push(format!(
                "cannot read {}: {e} (run with UPDATE_EXPECT=1 to create it)\n  actual stderr:\n{}",
                expected_path.display(),
                indent(&stderr)
            )),
        }
    }

    // Every command that reads definitions refuses them the same way and changes nothing.
    for command in [&["groups", "sync", "--confirm"][..], &["infra", "plan"], &["groups", "expand"]] {
        let other = run(root, command);
        let shown = command.join(" ");
        if other.status.code() != Some(INVALID_INPUT) {
            problems.push(format!("`{shown}` should exit with {INVALID_INPUT}\n{}", describe(&other)));
        }
        if !other.stdout.is_empty() || other.stderr != validate.stderr {
            problems.push(format!(
                "`{shown}` should print nothing on stdout and the same errors as `validate`\n{}",
                describe(&other)
            ));
        }
    }
    let state = fs::read_to_string(root.join(".cpg-infra/directory.json")).unwrap_or_default();
    if state != EXISTING_DIRECTORY {
        problems.push(format!(
            "`groups sync --confirm` changed the local directory although the definitions are invalid:\n{state}"
        ));
    }
    let entries: Vec<_> = fs::read_dir(root.join(".cpg-infra")).expect("state directory").collect();
    if entries.len() != 1 {
        problems.push(format!("`groups sync --confirm` left {} entries in .cpg-infra, not 1", entries.len()));
    }
    problems
}

#[test]
fn invalid_definitions_report_every_error() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(!cases.is_empty(), "no cases found in {}", cases_dir().display());

    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy();
        let problems = check_case(case, update);
        if !problems.is_empty() {
            failures.push(format!("=== {name}\n{}", problems.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{} of {} case(s) failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
    if update {
        eprintln!("wrote expected.txt for {} case(s)", cases.len());
    }
}
