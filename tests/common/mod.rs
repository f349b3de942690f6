//! Helpers shared by the CLI integration tests: copying the frozen test organisation into a
//! temporary directory and running the `cpg-infra` binary on it.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cpg_infra::definitions::RequestRate;

pub mod azure;
pub mod git;
pub mod google;

/// The rate the tests give each provider they enable, in `groups/org.toml` (`UNPACED`) or in
/// a provider's config (`unpaced()`): far above anything a test sends. The emulators have no
/// quota, and the tests check the sync, not its pacing, which has tests of its own
/// (`crates/directory/src/pacing.rs`, `google_sync`'s `requests_are_paced_...`).
pub const UNPACED: &str = "requests_per_second = 1000000";

pub fn unpaced() -> RequestRate {
    RequestRate::per_second(1_000_000.0).expect("a valid rate")
}

/// Expiry is judged against a fixed date so the tests never change with the clock.
pub const TODAY: &str = "2026-11-26";

/// Exit statuses (src/cli/mod.rs).
pub const SUCCESS: i32 = 0;
pub const FAILURE: i32 = 1;
pub const REFUSED: i32 = 2;
pub const INVALID_INPUT: i32 = 3;

/// The repository root, where the example organisation lives.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory tree `from` into `to` (created if missing), files and directories only.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let kind = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", entry.path().display(), target.display()));
        }
    }
}

/// The frozen organisation the tests run on: a copy of the example taken when the tests were
/// written. Tests never read the live `groups/` and `datasets/`, which change with every access
/// request.
pub fn fixture_org_dir() -> PathBuf {
    manifest_dir().join("tests/fixtures/org")
}

/// Copies the frozen test organisation (`groups/`, `datasets/`) under `root`.
pub fn copy_example_org(root: &Path) {
    let source = fixture_org_dir();
    copy_dir(&source.join("groups"), &root.join("groups"));
    copy_dir(&source.join("datasets"), &root.join("datasets"));
}

/// A copy of the frozen test organisation with `[providers.<provider>]` enabled.
pub fn org_with_provider(provider: &str) -> tempfile::TempDir {
    let dir = example_org();
    let org = dir.path().join("groups/org.toml");
    let text = fs::read_to_string(&org).unwrap();
    let header = format!("[providers.{provider}]");
    let section = text.find(&header).unwrap_or_else(|| panic!("a {header} section"));
    let flag = section + text[section..].find("enabled = false").expect("the provider disabled in the fixture");
    let rest = &text[flag + "enabled = false".len()..];
    fs::write(&org, format!("{}enabled = true\n{UNPACED}{rest}", &text[..flag])).unwrap();
    dir
}

/// A temporary directory holding a copy of the frozen test organisation.
pub fn example_org() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    copy_example_org(dir.path());
    dir
}

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().expect("cpg-infra was killed by a signal"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Panics (showing everything) unless the exit status is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit status\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "exit status: {}\n--- stdout ---\n{}--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `cpg-infra --root ROOT --today TODAY ARGS…` with `today` as the date.
pub fn cpg_on(root: &Path, today: &str, args: &[&str]) -> Run {
    run_binary(root, today, args, &[])
}

/// Runs `cpg-infra --root ROOT --today 2026-11-26 ARGS…` with exactly the given provider
/// environment: no credentials or endpoints leak in from the machine running the tests.
pub fn cpg_with_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_binary(root, TODAY, args, env)
}

/// `cpg_with_env` on another day.
pub fn cpg_with_env_on(root: &Path, today: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_binary(root, today, args, env)
}

fn run_binary(root: &Path, today: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cpg-infra"));
    for name in [
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CPG_INFRA_GOOGLE_ACCESS_TOKEN",
        "CPG_INFRA_GOOGLE_ENDPOINT",
        "CPG_INFRA_GOOGLE_CUSTOMER_ID",
        "CPG_INFRA_GCS_ENDPOINT",
        "CPG_INFRA_HAIL_ENDPOINT",
        "CPG_INFRA_HAIL_TOKEN",
        "CPG_INFRA_AZURE_ACCESS_TOKEN",
        "CPG_INFRA_AZURE_ENDPOINT",
        "CPG_INFRA_AZURE_TENANT_ID",
        "CPG_INFRA_AZURE_AUTHORITY",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_FEDERATED_TOKEN",
        "AZURE_FEDERATED_TOKEN_FILE",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "CPG_INFRA_AZURE_STORAGE_TOKEN",
        "CPG_INFRA_AZURE_BLOB_ENDPOINT",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    ] {
        command.env_remove(name);
    }
    // gcloud's default credentials live under HOME.
    command.env("HOME", root);
    command.envs(env.iter().copied());
    let output = command
        .arg("--root")
        .arg(root)
        .args(["--today", today])
        .args(args)
        .env_remove("CPG_INFRA_TODAY")
        // Keep Git from looking at anything but the repositories the tests build.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cpg-infra: {e}"));
    Run::from_output(output)
}

/// Runs `cpg-infra --root ROOT --today 2026-11-26 ARGS…`.
pub fn cpg(root: &Path, args: &[&str]) -> Run {
    cpg_on(root, TODAY, args)
}
