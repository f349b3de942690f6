//! The README's tour, run as a test: every `console` block, in order, in the scratch
//! repository `scripts/tour` makes (the same script the README tells a reader to run), with
//! each command's output and exit status compared (trycmd; `...` and `[..]` elide).

use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_tour_runs_as_written() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().expect("temporary directory");
    // trycmd runs README.md with README.in/ as the working directory.
    let tour = scratch.path().join("README.in");
    let made = Command::new(manifest.join("scripts/tour")).arg(&tour).output().expect("run scripts/tour");
    assert!(made.status.success(), "scripts/tour failed: {}", String::from_utf8_lossy(&made.stderr));
    std::fs::copy(manifest.join("README.md"), scratch.path().join("README.md")).expect("copy README.md");

    trycmd::TestCases::new()
        .register_bin("cpg-infra", Path::new(env!("CARGO_BIN_EXE_cpg-infra")))
        .env("CPG_INFRA_TODAY", "2026-12-04")
        .env("HOME", tour.to_string_lossy())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .case(scratch.path().join("README.md"));
}
