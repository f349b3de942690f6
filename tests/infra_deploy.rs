//! `infra preview` and `infra up`: render, then run the `pulumi` CLI in each project.
//!
//! No real Pulumi runs here: each test writes a stand-in `pulumi` (a shell script) into a
//! temporary directory put first on PATH. It records its arguments, its working directory and
//! whether a `Pulumi.yaml` was there, prints a line (to show that output streams through), and
//! exits with the status the test chose.

#![cfg(unix)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{cpg_with_env, example_org, Run, INVALID_INPUT, SUCCESS};

/// A directory holding a stand-in `pulumi` that appends `<args> | <cwd> | <Pulumi.yaml?>` to
/// `calls.log` beside it and exits with `exit_code`.
struct FakePulumi {
    dir: tempfile::TempDir,
}

impl FakePulumi {
    fn new(exit_code: i32) -> FakePulumi {
        FakePulumi::with_tail(&format!("exit {exit_code}\n"))
    }

    /// A stand-in that succeeds except in the project whose directory ends with `project`,
    /// where it writes `lines` numbered lines to stderr and exits with `exit_code`.
    fn failing_in(project: &str, lines: usize, exit_code: i32) -> FakePulumi {
        FakePulumi::with_tail(&format!(
            "case \"$PWD\" in\n\
             */{project}) i=1; while [ $i -le {lines} ]; do echo \"stand-in error $i of {lines}\" >&2; i=$((i+1)); done; exit {exit_code} ;;\n\
             esac\n\
             exit 0\n"
        ))
    }

    /// A stand-in that logs its call, prints a line, then runs `tail`.
    fn with_tail(tail: &str) -> FakePulumi {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("calls.log");
        let script = format!(
            "#!/bin/sh\n\
             if [ -f Pulumi.yaml ]; then program=program; else program=none; fi\n\
             echo \"$* | $PWD | $program\" >> '{}'\n\
             echo \"stand-in pulumi: $*\"\n\
             {tail}",
            log.display()
        );
        let path = dir.path().join("pulumi");
        fs::write(&path, script).expect("write the stand-in");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("make it executable");
        FakePulumi { dir }
    }

    /// Each call: its arguments, working directory and whether it found a program.
    fn calls(&self) -> Vec<(String, PathBuf, String)> {
        let log = fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let parts: Vec<&str> = line.split(" | ").collect();
                (parts[0].to_owned(), PathBuf::from(parts[1]), parts[2].to_owned())
            })
            .collect()
    }

    /// PATH with the stand-in first, then the system's (for `sh`).
    fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.dir.path().display())
    }
}

fn run(root: &Path, pulumi: &FakePulumi, args: &[&str]) -> Run {
    cpg_with_env(root, args, &[("PATH", &pulumi.path())])
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn preview_renders_into_the_default_folder_and_runs_pulumi_preview_there() {
    let org = example_org();
    let pulumi = FakePulumi::new(0);
    let run = run(org.path(), &pulumi, &["infra", "preview"]);
    run.expect_code(SUCCESS);
    let project = canonical(&org.path().join(".cpg-infra/pulumi"));
    assert_eq!(pulumi.calls(), [("preview".to_owned(), project, "program".to_owned())]);
    assert!(run.stdout.contains("stand-in pulumi: preview\n"), "pulumi's output streams through: {run}");
}

#[test]
fn up_without_confirm_only_previews_and_says_so() {
    let org = example_org();
    let pulumi = FakePulumi::new(0);
    let run = run(org.path(), &pulumi, &["infra", "up", "--stack", "prod"]);
    run.expect_code(SUCCESS);
    let calls: Vec<String> = pulumi.calls().into_iter().map(|(args, _, _)| args).collect();
    assert_eq!(calls, ["preview --stack prod"]);
    assert!(run.stdout.contains("previewed only (no --confirm): nothing was changed"), "{run}");
    // The command it suggests applies what was previewed: the same options.
    // (The tests give every run --root and --today.)
    let root = org.path().display();
    let expected = format!("`cpg-infra --root {root} --today 2026-11-26 infra up --confirm --stack prod` applies it");
    assert!(run.stdout.contains(&expected), "{expected}\n{run}");

    let out = tempfile::tempdir().expect("temporary directory");
    let out_arg = out.path().join("my projects").to_string_lossy().into_owned();
    let args = ["infra", "up", "--per-dataset", "--stack", "org/prod", "--out", &out_arg];
    let run = self::run(org.path(), &pulumi, &args);
    run.expect_code(SUCCESS);
    let expected = format!(
        "`cpg-infra --root {root} --today 2026-11-26 infra up --confirm --per-dataset --stack org/prod --out '{out_arg}'` applies it"
    );
    assert!(run.stdout.contains(&expected), "{expected}\n{run}");
}

#[test]
fn up_confirmed_per_dataset_runs_every_project_organisation_first() {
    let org = example_org();
    let out = tempfile::tempdir().expect("temporary directory");
    let out_arg = out.path().to_string_lossy().into_owned();
    let pulumi = FakePulumi::new(0);
    let args = ["infra", "up", "--per-dataset", "--stack", "prod", "--confirm", "--out", &out_arg];
    let run = run(org.path(), &pulumi, &args);
    run.expect_code(SUCCESS);
    let out = canonical(out.path());
    let expected: Vec<(String, PathBuf, String)> = [
        "organisation",
        "datasets/acute-care",
        "datasets/common",
        "datasets/hgdp",
        "datasets/perth-neuro",
        "datasets/tob-wgs",
    ]
    .iter()
    .map(|dir| ("up --yes --stack prod".to_owned(), out.join(dir), "program".to_owned()))
    .collect();
    assert_eq!(pulumi.calls(), expected);
    assert!(!run.stdout.contains("previewed only"), "{run}");
}

#[test]
fn a_failing_pulumi_stops_the_run_and_gives_its_exit_status() {
    let org = example_org();
    let pulumi = FakePulumi::new(7);
    let run = run(org.path(), &pulumi, &["infra", "up", "--per-dataset", "--confirm"]);
    run.expect_code(7);
    let calls = pulumi.calls();
    assert_eq!(calls.len(), 1, "later projects read the earlier ones' outputs: {calls:?}");
    assert!(calls[0].1.ends_with(".cpg-infra/pulumi-per-dataset/organisation"), "{calls:?}");
}

#[test]
fn a_failing_project_is_named_with_its_status_and_last_stderr_lines() {
    let org = example_org();
    let pulumi = FakePulumi::failing_in("datasets/common", 8, 7);
    let run = run(org.path(), &pulumi, &["infra", "up", "--per-dataset", "--confirm"]);
    run.expect_code(7);
    let projects: Vec<PathBuf> = pulumi.calls().into_iter().map(|(_, dir, _)| dir).collect();
    assert_eq!(projects.len(), 3, "organisation, acute-care, then common fails: {projects:?}");
    let failed = org.path().join(".cpg-infra/pulumi-per-dataset/datasets/common");
    // Pulumi's stderr streams through as it comes...
    assert!(run.stderr.contains("stand-in error 1 of 8\n"), "{run}");
    // ...and after it, which project failed, how, what was left out, and its last lines.
    let summary = run.stderr.split("error: ").last().expect("an error line");
    let expected = format!(
        "`pulumi up --yes` failed in {} (exit status: 7); 3 later project(s) not run\n\
         its last lines on stderr:\n\
         \x20 stand-in error 4 of 8\n\
         \x20 stand-in error 5 of 8\n\
         \x20 stand-in error 6 of 8\n\
         \x20 stand-in error 7 of 8\n\
         \x20 stand-in error 8 of 8\n",
        failed.display()
    );
    assert_eq!(summary, expected, "{run}");
}

#[test]
fn without_pulumi_on_path_it_says_how_to_install_it_and_writes_nothing() {
    let org = example_org();
    let empty = tempfile::tempdir().expect("temporary directory");
    let path = format!("{}:/nonexistent", empty.path().display());
    for args in [&["infra", "preview"][..], &["infra", "up", "--confirm"]] {
        let run = cpg_with_env(org.path(), args, &[("PATH", &path)]);
        run.expect_code(INVALID_INPUT);
        assert!(run.stderr.contains("`pulumi` CLI is not on PATH"), "{run}");
        assert!(run.stderr.contains("https://www.pulumi.com/docs/install/"), "{run}");
        assert!(!org.path().join(".cpg-infra/pulumi").exists(), "nothing rendered: {run}");
    }
}

#[test]
fn invalid_definitions_never_reach_pulumi() {
    let org = example_org();
    let org_toml = org.path().join("groups/org.toml");
    let text = fs::read_to_string(&org_toml).expect("org.toml");
    fs::write(&org_toml, text.replace("name_prefix = \"egi\"", "name_prefix = \"goog\"")).expect("write org.toml");
    let pulumi = FakePulumi::new(0);
    let run = run(org.path(), &pulumi, &["infra", "up", "--confirm"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("name prefix `goog` makes"), "{run}");
    assert!(pulumi.calls().is_empty());
}
