//! The GitHub workflows in `.github/workflows/`, read the way GitHub would run them: their
//! triggers and permissions, that event values reach scripts only through `env:`, and that
//! every `cpg-infra …` command they run exists, with the options they pass, in the CLI's own
//! `--help`.
//!
//! The files are read with line checks on their (simple, two-space) layout instead of a YAML
//! crate: a block is the lines under a key, indented deeper than it.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

/// The invocation the workflows use, after `cargo build --release`.
const BINARY: &str = "target/release/cpg-infra ";

struct Workflow {
    name: String,
    text: String,
}

impl Workflow {
    fn load(name: &str) -> Workflow {
        let path = common::manifest_dir().join(".github/workflows").join(name);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Workflow { name: name.to_owned(), text }
    }

    fn all() -> Vec<Workflow> {
        let dir = common::manifest_dir().join(".github/workflows");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .expect("workflows folder")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yml"))
            .collect();
        names.sort();
        names.iter().map(|n| Workflow::load(n)).collect()
    }

    /// The lines of the top-level `key:` (its same-line value first), without comments.
    fn section(&self, key: &str) -> Vec<String> {
        block(&self.text, 0, key).unwrap_or_else(|| panic!("{}: no top-level `{key}:`", self.name))
    }

    /// Every `run:` script, continuation lines joined.
    fn scripts(&self) -> Vec<String> {
        let lines: Vec<&str> = self.text.lines().collect();
        let mut scripts = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start().trim_start_matches("- ");
            let Some(value) = trimmed.strip_prefix("run:") else { continue };
            let indent = indentation(line);
            let value = value.trim();
            if value == "|" || value == ">" {
                let body: Vec<&str> = lines[i + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || indentation(l) > indent)
                    .copied()
                    .collect();
                scripts.push(body.join("\n").replace("\\\n", " "));
            } else {
                scripts.push(value.to_owned());
            }
        }
        scripts
    }

    /// Every `cpg-infra` command line the scripts run: subcommands, then the options given.
    fn commands(&self) -> Vec<(Vec<String>, BTreeSet<String>)> {
        let mut found = Vec::new();
        for script in self.scripts() {
            for (start, _) in script.match_indices(BINARY) {
                let rest = &script[start + BINARY.len()..];
                let end = rest.find(['\n', '|', ';', '>', '<', '&']).unwrap_or(rest.len());
                let segment = &rest[..end];
                let words: Vec<String> = segment
                    .split_whitespace()
                    .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
                    .map(str::to_owned)
                    .collect();
                let options = segment
                    .match_indices("--")
                    .map(|(i, _)| {
                        segment[i + 2..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect::<String>()
                    })
                    .filter(|o| !o.is_empty())
                    .collect();
                found.push((words, options));
            }
        }
        found
    }
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines under `key:` at `indent` (its same-line value first), comments and blanks left out.
fn block(text: &str, indent: usize, key: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("{}{key}:", " ".repeat(indent));
    let start = lines.iter().position(|l| l.starts_with(&prefix))?;
    let mut out = vec![lines[start][prefix.len()..].trim().to_owned()];
    for line in &lines[start + 1..] {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if indentation(line) <= indent {
            break;
        }
        out.push((*line).to_owned());
    }
    Some(out)
}

/// `cpg-infra WORDS --help`, which must succeed.
fn help(words: &[String]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_cpg-infra")).args(words).arg("--help").output().expect("run cpg-infra --help");
    assert!(output.status.success(), "`cpg-infra {} --help` failed", words.join(" "));
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists under `Commands:`.
fn subcommands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|l| l.trim() == wanted || l.trim().starts_with(&format!("{wanted} ")))
}

#[test]
fn every_command_a_workflow_runs_exists() {
    let mut checked = 0;
    for workflow in Workflow::all() {
        for (words, options) in workflow.commands() {
            assert!(!words.is_empty(), "{}: `cpg-infra` without a command", workflow.name);
            for depth in 1..=words.len() {
                let parent = help(&words[..depth - 1]);
                assert!(
                    subcommands(&parent).contains(&words[depth - 1]),
                    "{}: `cpg-infra {}` is not a command",
                    workflow.name,
                    words[..depth].join(" ")
                );
            }
            let text = help(&words);
            for option in &options {
                assert!(
                    text.contains(&format!("--{option}")),
                    "{}: `cpg-infra {}` has no option --{option}",
                    workflow.name,
                    words.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} cpg-infra commands found in the workflows");
}

#[test]
fn every_workflow_limits_permissions_runs_once_and_keeps_event_values_out_of_scripts() {
    for workflow in Workflow::all() {
        for key in ["name", "on", "permissions", "concurrency", "jobs"] {
            workflow.section(key);
        }
        let on = workflow.section("on");
        // Never run a pull request's code with the base repository's token and secrets.
        assert!(!on.iter().any(|l| l.contains("pull_request_target")), "{}: pull_request_target", workflow.name);
        let permissions = workflow.section("permissions");
        // Each permission named, never `write-all` (or `read-all` on one line).
        assert!(permissions[0].is_empty() && permissions.len() > 1, "{}: {permissions:?}", workflow.name);
        for script in workflow.scripts() {
            // `${{ … }}` in a script is pasted in before the shell runs: an issue title or a
            // branch name could inject commands. Values go through `env:` instead.
            assert!(!script.contains("${{"), "{}: an expression inside a script:\n{script}", workflow.name);
            if script.contains("| tee") {
                assert!(script.contains("pipefail"), "{}: `| tee` without pipefail:\n{script}", workflow.name);
            }
        }
        if workflow.text.contains("cargo build") {
            assert!(workflow.text.contains("Swatinem/rust-cache@"), "{}: no cargo cache", workflow.name);
        }
    }
}

#[test]
fn access_request_shows_the_diff_without_write_access_or_credentials() {
    let workflow = Workflow::load("access-request.yml");
    let on = workflow.section("on");
    assert!(has(&on, "pull_request:"), "{on:?}");
    for path in ["\"groups/**\"", "\"datasets/**\"", "\"src/**\""] {
        assert!(on.iter().any(|l| l.trim() == format!("- {path}")), "{path} missing from {on:?}");
    }
    let permissions = workflow.section("permissions");
    assert!(has(&permissions, "contents: read"), "{permissions:?}");
    assert!(!permissions.iter().any(|l| l.contains("id-token") || l.contains("contents: write")), "{permissions:?}");
    for credential in ["google-github-actions/auth", "azure/login", "secrets."] {
        assert!(!workflow.text.contains(credential), "access-request must hold no credentials: {credential}");
    }
    let commands: Vec<String> = workflow.commands().into_iter().map(|(words, _)| words.join(" ")).collect();
    assert_eq!(commands, ["validate", "policy check", "groups diff"]);
    let scripts = workflow.scripts().join("\n");
    assert!(scripts.contains("groups diff \"$BASE_SHA\" \"$HEAD_SHA\" --format markdown"), "{scripts}");
    // One sticky comment: found by its hidden marker, edited in place, else created.
    assert_eq!(scripts.matches("<!-- cpg-infra:access-diff -->").count(), 2, "{scripts}");
    assert!(scripts.contains("--method PATCH"), "{scripts}");
    assert!(scripts.contains("GITHUB_STEP_SUMMARY"), "{scripts}");
    assert!(scripts.contains("::error file="), "errors become annotations\n{scripts}");
}

#[test]
fn nightly_sync_runs_on_schedule_alone_and_reports_in_one_issue() {
    let workflow = Workflow::load("nightly-sync.yml");
    let on = workflow.section("on");
    for trigger in ["schedule:", "workflow_dispatch:", "push:", "branches: [main]"] {
        assert!(has(&on, trigger), "{trigger} missing from {on:?}");
    }
    let concurrency = workflow.section("concurrency");
    assert!(has(&concurrency, "group: nightly-sync"), "{concurrency:?}");
    assert!(has(&concurrency, "cancel-in-progress: false"), "a sync is never cut off: {concurrency:?}");
    let permissions = workflow.section("permissions");
    assert!(has(&permissions, "id-token: write"), "OIDC: {permissions:?}");
    assert!(has(&permissions, "contents: read"), "{permissions:?}");
    let commands = workflow.commands();
    assert!(commands.iter().any(|(w, o)| w == &["groups", "sync"] && o.contains("format")), "a JSON report");
    assert!(commands.iter().any(|(w, o)| w == &["groups", "sync"] && o.contains("confirm")), "an apply");
    let scripts = workflow.scripts().join("\n");
    assert!(scripts.contains("gh issue list --repo \"$REPO\" --label nightly-sync --state open"), "{scripts}");
    assert!(scripts.contains("gh issue close"), "{scripts}");
    assert!(scripts.contains("::notice::"), "an unconfigured provider is a notice\n{scripts}");
}

#[test]
fn infra_previews_pull_requests_and_updates_main() {
    let workflow = Workflow::load("infra.yml");
    let on = workflow.section("on");
    assert!(has(&on, "pull_request:") && has(&on, "push:") && has(&on, "branches: [main]"), "{on:?}");
    assert!(has(&workflow.section("permissions"), "id-token: write"));
    assert!(workflow.text.contains("uses: pulumi/actions@"));
    assert!(workflow.text.contains("'preview' || 'up'"));
    assert!(workflow.commands().iter().any(|(w, _)| w == &["infra", "render"]));
}

#[test]
fn the_access_request_form_becomes_a_pull_request() {
    let form_path = common::manifest_dir().join(".github/ISSUE_TEMPLATE/access-request.yml");
    let form = fs::read_to_string(form_path).expect("issue form");
    for id in ["person", "dataset", "role", "until", "reason"] {
        assert!(form.contains(&format!("    id: {id}\n")), "the form has no `{id}` field");
    }
    assert!(form.contains("labels: [\"access-request\"]"));
    let workflow = Workflow::load("access-request-form.yml");
    assert!(has(&workflow.section("on"), "issues:"));
    let commands = workflow.commands();
    let add = commands.iter().find(|(w, _)| w == &["groups", "add"]).expect("groups add");
    let options: Vec<&str> = add.1.iter().map(String::as_str).collect();
    assert_eq!(options, ["dataset", "email", "expires", "reason", "role"]);
    assert!(workflow.scripts().join("\n").contains("gh pr create"));
}
