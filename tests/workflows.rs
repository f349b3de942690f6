//! The GitHub workflows in `.github/workflows/`, read as GitHub reads them (YAML): their
//! triggers and per-job permissions, which jobs run a pull request's code and what those hold,
//! where deploys and writing syncs may run, pinned actions, event values kept out of scripts,
//! and that every `cpg-infra …` command they run exists with the options they pass.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

/// Where the workflows' scripts find the binary: built from the checkout, or from the trusted
/// `tool/` checkout (`"$tool"` in scripts names the latter).
const BINARIES: [&str; 3] = ["target/release/cpg-infra ", "tool/target/release/cpg-infra ", "\"$tool\" "];

/// Global options that come before the subcommand, each with a value.
const GLOBAL_OPTIONS: [&str; 3] = ["--root", "--rev", "--today"];

/// Where the workflows' shared scripts live.
const SCRIPTS: &str = ".github/scripts/";

/// The folder where trusted jobs check out a pull request's revisions as data.
const PR_DATA: &str = "pr-data";

struct Workflow {
    name: String,
    text: String,
    yaml: Yaml,
}

struct Job<'w> {
    workflow: &'w Workflow,
    name: String,
    yaml: &'w Yaml,
}

fn key<'y>(yaml: &'y Yaml, name: &str) -> &'y Yaml {
    &yaml[name]
}

fn text(yaml: &Yaml) -> String {
    match yaml {
        Yaml::String(s) => s.clone(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Integer(i) => i.to_string(),
        _ => String::new(),
    }
}

impl Workflow {
    fn load(name: &str) -> Workflow {
        let path = common::manifest_dir().join(".github/workflows").join(name);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(docs.len(), 1, "{name}: one document");
        Workflow { name: name.to_owned(), text, yaml: docs.remove(0) }
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

    /// The events it runs on.
    fn triggers(&self) -> BTreeSet<String> {
        match key(&self.yaml, "on") {
            Yaml::Hash(hash) => hash.keys().map(text).collect(),
            Yaml::String(s) => [s.clone()].into(),
            Yaml::Array(list) => list.iter().map(text).collect(),
            _ => panic!("{}: no `on:`", self.name),
        }
    }

    /// Whether a run can be of a pull request's own workflow file and code.
    fn runs_on_pull_requests(&self) -> bool {
        self.triggers().iter().any(|t| t == "pull_request" || t == "pull_request_review")
    }

    fn jobs(&self) -> Vec<Job<'_>> {
        let Yaml::Hash(jobs) = key(&self.yaml, "jobs") else { panic!("{}: no jobs", self.name) };
        jobs.iter().map(|(name, yaml)| Job { workflow: self, name: text(name), yaml }).collect()
    }

    fn job(&self, name: &str) -> Job<'_> {
        self.jobs().into_iter().find(|j| j.name == name).unwrap_or_else(|| panic!("{}: no job {name}", self.name))
    }
}

impl Job<'_> {
    fn id(&self) -> String {
        format!("{}: job {}", self.workflow.name, self.name)
    }

    fn steps(&self) -> Vec<&Yaml> {
        key(self.yaml, "steps").as_vec().map(|v| v.iter().collect()).unwrap_or_default()
    }

    /// Each permission the job's token gets, as (scope, level).
    fn permissions(&self) -> Vec<(String, String)> {
        match key(self.yaml, "permissions") {
            Yaml::Hash(hash) => hash.iter().map(|(k, v)| (text(k), text(v))).collect(),
            other => panic!("{}: permissions must be named per job, not {other:?}", self.id()),
        }
    }

    fn can_write(&self) -> bool {
        self.permissions().iter().any(|(_, level)| level == "write")
    }

    fn mints_tokens(&self) -> bool {
        self.permissions().iter().any(|(scope, level)| scope == "id-token" && level == "write")
    }

    /// Every `${{ secrets.… }}` the job uses, `github.token` aside.
    fn secrets(&self) -> bool {
        let mut out = String::new();
        let mut emitter = yaml_rust2::YamlEmitter::new(&mut out);
        emitter.dump(self.yaml).expect("dump");
        out.contains("secrets.")
    }

    fn checkouts(&self) -> Vec<&Yaml> {
        self.steps().into_iter().filter(|s| text(&s["uses"]).starts_with("actions/checkout@")).collect()
    }

    /// A checkout of the pull request's code: in a workflow that runs on pull requests, one
    /// without a `ref` (the merge commit) or with the head's; anywhere, one of `refs/pull/`.
    fn checks_out_pull_request_code(&self) -> bool {
        self.checkouts().iter().any(|step| {
            let reference = text(&step["with"]["ref"]);
            let of_head = reference.contains("pull_request.head") || reference.contains("refs/pull/");
            let push_only = text(key(self.yaml, "if")).contains("github.event_name == 'push'");
            let implicit = reference.is_empty() && self.workflow.runs_on_pull_requests() && !push_only;
            let as_data = text(&step["with"]["path"]) == PR_DATA;
            (of_head || implicit) && !as_data
        })
    }

    fn scripts(&self) -> Vec<String> {
        self.steps().into_iter().map(|s| text(&s["run"])).filter(|s| !s.is_empty()).collect()
    }

    /// The job's scripts, and the repository scripts they call (`.github/scripts/…`) once each.
    fn script_text(&self) -> String {
        let mut text = self.scripts().join("\n");
        let called: BTreeSet<String> = text
            .match_indices(SCRIPTS)
            .map(|(at, _)| text[at..].split_whitespace().next().unwrap_or_default().to_owned())
            .collect();
        for path in called {
            let file = common::manifest_dir().join(&path);
            text.push('\n');
            text.push_str(&fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {path}: {e}", self.id())));
        }
        text
    }

    /// The step whose `id` is `id`.
    fn step(&self, id: &str) -> &Yaml {
        let found = self.steps().into_iter().find(|s| text(&s["id"]) == id);
        found.unwrap_or_else(|| panic!("{}: no step with id {id}", self.id()))
    }

    /// Where the step of `id` stands among the job's steps.
    /// The positions of the `actions/cache/restore` and `actions/cache/save` steps that keep
    /// `path` between runs, checked to stand before and after the step `user`, with one key.
    fn state_kept_around(&self, user: &str, path: &str) -> (usize, usize) {
        let steps = self.steps();
        let cache = |kind: &str| {
            let prefix = format!("actions/cache/{kind}@");
            let found =
                steps.iter().position(|s| text(&s["uses"]).starts_with(&prefix) && text(&s["with"]["path"]) == path);
            found.unwrap_or_else(|| panic!("no actions/cache/{kind} step for {path}"))
        };
        let (restore, save, used) = (cache("restore"), cache("save"), self.position(user));
        assert!(restore < used && used < save, "{path}: restored before `{user}`, saved after it");
        assert_eq!(text(&steps[restore]["with"]["key"]), text(&steps[save]["with"]["key"]), "{path}");
        (restore, save)
    }

    fn position(&self, id: &str) -> usize {
        let found = self.steps().iter().position(|s| text(&s["id"]) == id || text(&s["name"]) == id);
        found.unwrap_or_else(|| panic!("{}: no step {id}", self.id()))
    }
}

/// Every `cpg-infra` command line in `script`: subcommands, then the options given (global
/// options and their values skipped).
fn commands(script: &str) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let script = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for binary in BINARIES {
        for (start, _) in script.match_indices(binary) {
            let rest = &script[start + binary.len()..];
            let end = rest.find(['\n', '|', ';', '>', '<', '&']).unwrap_or(rest.len());
            let mut tokens = rest[..end].split_whitespace().peekable();
            let mut words = Vec::new();
            let mut options = BTreeSet::new();
            while let Some(token) = tokens.next() {
                if GLOBAL_OPTIONS.contains(&token) {
                    tokens.next();
                } else if let Some(at) = token.find("--") {
                    // `${UNTIL:+--expires` passes an option only when a value is set.
                    let option = &token[at + 2..];
                    options.insert(option.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect());
                } else if options.is_empty() && token.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                    words.push(token.to_owned());
                }
            }
            found.push((words, options));
        }
    }
    found
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

fn all_commands() -> Vec<(String, Vec<String>, BTreeSet<String>)> {
    let mut out = Vec::new();
    for workflow in Workflow::all() {
        for job in workflow.jobs() {
            for (words, options) in commands(&job.script_text()) {
                out.push((workflow.name.clone(), words, options));
            }
        }
    }
    out
}

#[test]
fn every_command_a_workflow_runs_exists() {
    let mut checked = 0;
    for (workflow, words, options) in all_commands() {
        assert!(!words.is_empty(), "{workflow}: `cpg-infra` without a command");
        for depth in 1..=words.len() {
            let parent = help(&words[..depth - 1]);
            assert!(
                subcommands(&parent).contains(&words[depth - 1]),
                "{workflow}: `cpg-infra {}` is not a command",
                words[..depth].join(" ")
            );
        }
        let text = help(&words);
        for option in &options {
            assert!(
                text.contains(&format!("--{option}")),
                "{workflow}: `cpg-infra {}` has no option --{option}",
                words.join(" ")
            );
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} cpg-infra commands found in the workflows");
}

#[test]
fn no_job_that_runs_pull_request_code_holds_a_credential_or_a_write_token() {
    let mut untrusted = 0;
    for workflow in Workflow::all() {
        for job in workflow.jobs() {
            if !job.checks_out_pull_request_code() {
                continue;
            }
            untrusted += 1;
            assert!(!job.mints_tokens(), "{}: runs pull-request code with id-token: write", job.id());
            assert!(
                !job.can_write(),
                "{}: runs pull-request code with a write token: {:?}",
                job.id(),
                job.permissions()
            );
            assert!(!job.secrets(), "{}: runs pull-request code with a secret", job.id());
            assert!(key(job.yaml, "environment").is_badvalue(), "{}: pull-request code in an environment", job.id());
        }
    }
    assert!(untrusted >= 2, "ci and access-request run pull-request code: {untrusted}");
}

#[test]
fn pull_request_revisions_in_trusted_jobs_are_only_read_as_data() {
    let mut seen = 0;
    for workflow in Workflow::all() {
        for job in workflow.jobs() {
            let data = job.checkouts().iter().any(|s| text(&s["with"]["path"]) == PR_DATA);
            if !data {
                continue;
            }
            seen += 1;
            for step in job.steps() {
                assert_ne!(text(&step["working-directory"]), PR_DATA, "{}: a step runs inside {PR_DATA}", job.id());
            }
            let scripts = job.script_text();
            for (at, _) in scripts.match_indices(PR_DATA) {
                let before = &scripts[..at];
                assert!(before.ends_with("--root "), "{}: {PR_DATA} used other than as --root:\n{scripts}", job.id());
            }
            // The tool comes from its own checkout, of a trusted revision.
            assert!(scripts.contains("--manifest-path tool/Cargo.toml"), "{}: builds what?\n{scripts}", job.id());
            let tool =
                job.checkouts().into_iter().find(|s| text(&s["with"]["path"]) == "tool").expect("a tool checkout");
            let reference = text(&tool["with"]["ref"]);
            assert!(
                reference.contains("default_branch") || reference.contains("tool_ref"),
                "{}: the tool is checked out at `{reference}`",
                job.id()
            );
        }
    }
    assert!(seen >= 2, "access-review and the infra preview read pull requests as data");
}

#[test]
fn deploys_and_writing_syncs_run_only_from_main_in_a_protected_environment() {
    let mut writers = 0;
    for workflow in Workflow::all() {
        for job in workflow.jobs() {
            let scripts = job.script_text();
            let syncs = commands(&scripts).iter().any(|(w, o)| w == &["groups", "sync"] && o.contains("confirm"));
            let deploys = job
                .steps()
                .iter()
                .any(|s| text(&s["uses"]).starts_with("pulumi/actions@") && text(&s["with"]["command"]) != "preview");
            if !(syncs || deploys) {
                continue;
            }
            writers += 1;
            assert!(!text(key(job.yaml, "environment")).is_empty(), "{}: writes outside an environment", job.id());
            let condition = text(key(job.yaml, "if"));
            assert!(condition.contains("refs/heads/main"), "{}: may write from any branch (if: {condition})", job.id());
            assert!(!job.checks_out_pull_request_code(), "{}", job.id());
            // A build cache is the one thing other branches' runs could have written.
            assert!(!job.steps().iter().any(|s| text(&s["uses"]).starts_with("Swatinem/rust-cache@")), "{}", job.id());
        }
    }
    assert_eq!(writers, 2, "pulumi up and the directory sync");
    let infra = Workflow::load("infra.yml");
    let preview = infra.job("preview");
    let pulumi = preview.steps().into_iter().find(|s| text(&s["uses"]).starts_with("pulumi/actions@")).expect("pulumi");
    assert_eq!(text(&pulumi["with"]["command"]), "preview");
    let preview_text = format!("{:?}", preview.yaml);
    // The preview's Pulumi token is a Stack Read team token, never the deploying one.
    assert!(
        preview_text.contains("secrets.PULUMI_PREVIEW_TOKEN") && !preview_text.contains("secrets.PULUMI_ACCESS_TOKEN")
    );
    assert!(preview_text.contains("GCP_PREVIEW_") && preview_text.contains("AZURE_PREVIEW_CLIENT_ID"));
}

#[test]
fn permissions_are_per_job_and_actions_are_pinned_to_commits() {
    for workflow in Workflow::all() {
        match key(&workflow.yaml, "permissions") {
            Yaml::Hash(hash) => assert!(hash.is_empty(), "{}: workflow-wide permissions {hash:?}", workflow.name),
            other => panic!("{}: top-level `permissions: {{}}` expected, not {other:?}", workflow.name),
        }
        for job in workflow.jobs() {
            for (scope, level) in job.permissions() {
                assert!(["read", "write", "none"].contains(&level.as_str()), "{}: {scope}: {level}", job.id());
            }
            for step in job.checkouts() {
                assert_eq!(
                    text(&step["with"]["persist-credentials"]),
                    "false",
                    "{}: checkout keeps its token",
                    job.id()
                );
            }
        }
        for line in workflow.text.lines().filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses:")) {
            let reference = line.split("uses:").nth(1).unwrap().trim();
            let (action, rest) = reference.split_once('@').unwrap_or_else(|| panic!("{}: {line}", workflow.name));
            let (sha, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) && !comment.trim().is_empty(),
                "{}: `{action}` is not pinned to a commit with its version in a comment: {line}",
                workflow.name
            );
        }
    }
}

#[test]
fn event_values_reach_scripts_only_through_env_and_triggers_are_known() {
    for workflow in Workflow::all() {
        let triggers = workflow.triggers();
        assert!(!triggers.contains("pull_request_target"), "{}: pull_request_target", workflow.name);
        if triggers.contains("workflow_run") {
            // Trusted by construction: it must not check out or build anything of the pull request.
            assert_eq!(workflow.name, "access-review.yml");
            for job in workflow.jobs() {
                assert!(!job.checks_out_pull_request_code(), "{}", job.id());
            }
        }
        for job in workflow.jobs() {
            for script in job.scripts() {
                // `${{ … }}` in a script is pasted in before the shell runs: an issue title or
                // a branch name could inject commands. Values go through `env:` instead.
                assert!(!script.contains("${{"), "{}: an expression inside a script:\n{script}", job.id());
                if script.contains("| tee") {
                    assert!(script.contains("pipefail"), "{}: `| tee` without pipefail:\n{script}", job.id());
                }
            }
        }
    }
}

#[test]
fn the_access_review_is_computed_by_the_base_tool_and_reported_by_a_job_that_runs_nothing() {
    let untrusted = Workflow::load("access-request.yml");
    let triggers = untrusted.triggers();
    assert!(triggers.contains("pull_request") && triggers.contains("pull_request_review"), "{triggers:?}");
    let head = untrusted.job("head");
    assert_eq!(head.permissions(), [("contents".to_owned(), "read".to_owned())]);
    assert!(commands(&head.script_text()).iter().any(|(w, o)| w == &["groups", "diff"] && o.contains("format")));

    let trusted = Workflow::load("access-review.yml");
    assert!(trusted.text.contains("workflows: [access-request]"));
    let review = trusted.job("review");
    assert!(!review.can_write(), "{:?}", review.permissions());
    let scripts = review.script_text();
    let used: Vec<String> = commands(&scripts).into_iter().map(|(w, _)| w.join(" ")).collect();
    assert_eq!(used, ["validate", "policy check", "groups diff", "policy approvals"], "{scripts}");
    assert!(scripts.contains("policy check --policy-rev \"$BASE_SHA\""), "the base's policy\n{scripts}");
    assert!(scripts.contains("--compare-with untrusted/head-diff.json"), "{scripts}");
    assert!(scripts.contains("--reviews \"$PR\""), "{scripts}");
    assert!(scripts.contains("type(n) is not int"), "the artifact's number is checked\n{scripts}");
    assert!(scripts.contains("[ \"$head_sha\" != \"$RUN_HEAD_SHA\" ]"), "{scripts}");

    let report = trusted.job("report");
    assert!(report.checkouts().is_empty(), "the reporting job checks nothing out");
    let scripts = report.script_text();
    assert!(!scripts.contains("cargo") && commands(&scripts).is_empty(), "{scripts}");
    // One sticky comment: its marker and this workflow's bot, edited in place, else created.
    assert!(scripts.contains(".user.login == \"github-actions[bot]\""), "{scripts}");
    assert!(scripts.contains("startswith(\"<!-- cpg-infra:access-diff -->\")"), "{scripts}");
    assert!(scripts.contains("--method PATCH"), "{scripts}");
    assert!(scripts.contains("context=cpg-infra/approvals"), "{scripts}");
    let mut scopes: Vec<String> =
        report.permissions().into_iter().filter(|(_, l)| l == "write").map(|(s, _)| s).collect();
    scopes.sort();
    assert_eq!(scopes, ["pull-requests", "statuses"]);
}

#[test]
fn nightly_sync_runs_on_schedule_alone_and_reports_in_one_issue() {
    let workflow = Workflow::load("nightly-sync.yml");
    let triggers = workflow.triggers();
    for trigger in ["schedule", "workflow_dispatch", "push"] {
        assert!(triggers.contains(trigger), "{trigger} missing from {triggers:?}");
    }
    assert_eq!(text(&workflow.yaml["concurrency"]["cancel-in-progress"]), "false", "a sync is never cut off");
    let sync = workflow.job("sync");
    assert!(sync.mints_tokens() && text(key(sync.yaml, "environment")) == "groups-sync");
    assert!(!sync.permissions().iter().any(|(s, l)| s == "issues" && l == "write"), "the issue is another job's");
    let used = commands(&sync.script_text());
    assert!(used.iter().any(|(w, o)| w == &["groups", "sync"] && o.contains("format")), "a JSON report");
    assert!(used.iter().any(|(w, o)| w == &["groups", "sync"] && o.contains("confirm")), "an apply");
    let report = workflow.job("report");
    assert_eq!(report.permissions(), [("issues".to_owned(), "write".to_owned())]);
    let scripts = report.script_text();
    assert!(scripts.contains("gh issue list --repo \"$REPO\" --label nightly-sync --state open"), "{scripts}");
    assert!(scripts.contains("gh issue close"), "{scripts}");
    for provider in ["google", "azure", "hail", "metamist"] {
        assert!(
            scripts.contains(&format!("{}_STATUS", provider.to_uppercase())),
            "the issue names {provider}'s status"
        );
    }
}

#[test]
fn the_nightly_sync_covers_every_provider_the_directories_first() {
    let workflow = Workflow::load("nightly-sync.yml");
    let sync = workflow.job("sync");
    let providers = help(&["groups".to_owned(), "sync".to_owned()]);
    let mut order = Vec::new();
    for provider in ["google", "azure", "hail", "metamist"] {
        assert!(providers.contains(provider), "`groups sync --provider` has no {provider}");
        let step = sync.step(provider);
        let run = text(&step["run"]);
        assert!(run.contains(&format!("{SCRIPTS}sync-provider {provider} ")), "step {provider}: {run}");
        assert_eq!(
            text(&step["if"]),
            format!("steps.providers.outputs.{provider} == 'true'"),
            "skipped unless enabled"
        );
        assert_eq!(text(&key(sync.yaml, "outputs")[provider]), format!("${{{{ steps.{provider}.outputs.status }}}}"));
        order.push(sync.position(provider));
    }
    assert!(order.windows(2).all(|w| w[0] < w[1]), "Google, Azure, then the applications: {order:?}");
}

#[test]
fn the_applications_get_their_tokens_from_short_lived_identities() {
    let workflow = Workflow::load("nightly-sync.yml");
    let sync = workflow.job("sync");
    for (provider, variable, format, output) in [
        ("hail", "CPG_INFRA_HAIL_TOKEN", "access_token", "access_token"),
        ("metamist", "CPG_INFRA_METAMIST_TOKEN", "id_token", "id_token"),
    ] {
        let step = sync.step(provider);
        assert_eq!(text(&step["env"][variable]), format!("${{{{ steps.{provider}-auth.outputs.{output} }}}}"));
        let auth = sync.step(&format!("{provider}-auth"));
        assert!(text(&auth["uses"]).starts_with("google-github-actions/auth@"));
        assert_eq!(text(&auth["with"]["token_format"]), format);
        // The token goes to one step: no credentials file or variables for the steps after.
        assert_eq!(text(&auth["with"]["create_credentials_file"]), "false");
        assert_eq!(text(&auth["with"]["export_environment_variables"]), "false");
        assert!(sync.position(&format!("{provider}-auth")) < sync.position(provider));
    }
    assert!(!text(&sync.step("metamist-auth")["with"]["id_token_audience"]).is_empty(), "Metamist's audience");
}

#[test]
fn metamist_lists_survive_between_runs_and_are_all_written_weekly() {
    let workflow = Workflow::load("nightly-sync.yml");
    let sync = workflow.job("sync");
    let state = ".cpg-infra/metamist-lists.jsonl";
    let org = fs::read_to_string(common::manifest_dir().join("groups/org.toml")).expect("org.toml");
    assert!(!org.contains("state ="), "the workflow caches the default state file, which org.toml must not move");
    let steps = sync.steps();
    let (restore, save) = sync.state_kept_around("metamist", state);
    // A failed run still saves: its written lists are recorded, its failed projects forgotten.
    let saved_when = text(&steps[save]["if"]);
    assert!(saved_when.starts_with("always()") && saved_when.contains("steps.metamist.outcome"), "{saved_when}");
    let metamist = sync.position("metamist");
    let run = text(&steps[metamist]["run"]);
    assert!(restore < metamist);
    let full = run.lines().position(|l| l.contains("--full-write")).expect("a --full-write sync");
    let condition = run.lines().take(full).collect::<Vec<_>>().join("\n");
    assert!(condition.contains("date -u +%u") && condition.contains("\"$FULL_WRITE\" = true"), "{run}");
    assert_eq!(text(&steps[metamist]["env"]["FULL_WRITE"]), "${{ inputs.full_write }}");
    let inputs = &workflow.yaml["on"]["workflow_dispatch"]["inputs"]["full_write"];
    assert_eq!(text(&inputs["type"]), "boolean");
}

#[test]
fn a_sync_after_a_merge_reads_only_what_changed_and_the_nightly_reads_everything() {
    let workflow = Workflow::load("nightly-sync.yml");
    assert!(workflow.triggers().contains("push"), "the sync runs after a merge");
    let sync = workflow.job("sync");
    let (_, save) = sync.state_kept_around("google", ".cpg-infra/google-synced.json");
    let saved_when = text(&sync.steps()[save]["if"]);
    assert!(saved_when.starts_with("always()") && saved_when.contains("steps.google.outcome"), "{saved_when}");
    // The recorded revision must be an ancestor the checkout knows: the whole history.
    let checkout = sync.checkouts()[0];
    assert_eq!(text(&checkout["with"]["fetch-depth"]), "0", "a shallow checkout cannot find the synced revision");
    let google = sync.step("google");
    assert_eq!(text(&google["env"]["EVENT"]), "${{ github.event_name }}");
    let run = text(&google["run"]);
    let lines: Vec<&str> = run.lines().map(str::trim).collect();
    let changed = lines.iter().position(|l| l.contains("--changed-since")).expect("a --changed-since sync");
    assert!(lines[..changed].iter().any(|l| l.contains("\"$EVENT\" = push")), "only after a push: {run}");
    let full =
        lines.iter().position(|l| l.starts_with(".github/scripts/sync-provider google") && !l.contains("--changed"));
    assert!(full.is_some_and(|full| lines[changed..full].contains(&"else")), "otherwise a full read: {run}");
}

#[test]
fn drift_on_full_reads_is_attributed_from_the_audit_logs_in_one_issue() {
    let workflow = Workflow::load("nightly-sync.yml");
    let sync = workflow.job("sync");
    let script = sync.script_text();
    let report = script.lines().position(|l| l.contains("groups drift-report")).expect("a drift report");
    let command: String = script.lines().skip(report).take(2).collect();
    assert!(command.contains("--plan \"drift-$provider.json\"") && command.contains("--format markdown"), "{command}");
    // Only the directories with audit logs, and never for a push (its plan is the merge).
    let case: String = script.lines().take(report).collect::<Vec<_>>().join("\n");
    assert!(case.contains("google:push | azure:push | hail:* | metamist:*) ;;"), "{case}");
    let uploaded = sync.steps().into_iter().find(|s| text(&s["uses"]).starts_with("actions/upload-artifact@")).unwrap();
    assert!(text(&uploaded["with"]["path"]).contains("attribution-*.md"));

    let reporter = workflow.job("report");
    assert_eq!(reporter.permissions(), [("issues".to_owned(), "write".to_owned())], "the reporter only writes issues");
    assert!(reporter.checkouts().is_empty(), "the reporter runs no code of the repository");
    let drift = reporter.step("drift");
    assert_eq!(text(&drift["if"]), "github.event_name != 'push'");
    let run = text(&drift["run"]);
    assert!(run.contains("--label directory-drift") && run.contains("--body-file \"$body\""), "{run}");
    assert!(run.contains("[ -d sync-report ] || exit 0"), "no artifact must not close the issue: {run}");
}

#[test]
fn governance_runs_on_schedule_with_issue_and_branch_tokens_only() {
    let workflow = Workflow::load("access-governance.yml");
    assert_eq!(workflow.triggers(), BTreeSet::from(["schedule".to_owned(), "workflow_dispatch".to_owned()]));
    for job in workflow.jobs() {
        assert!(!job.mints_tokens() && !job.checks_out_pull_request_code(), "{}: no cloud identity", job.id());
        assert!(text(key(job.yaml, "if")).contains("refs/heads/main"), "{}: runs on main only", job.id());
        for checkout in job.checkouts() {
            assert_eq!(text(&checkout["with"]["persist-credentials"]), "false", "{}", job.id());
            // Reminders and reviews name the commits that granted access.
            assert_eq!(text(&checkout["with"]["fetch-depth"]), "0", "{}: the whole history", job.id());
        }
    }
    let reminders = workflow.job("reminders");
    let mut granted = reminders.permissions();
    granted.sort();
    assert_eq!(granted, [("contents".to_owned(), "read".to_owned()), ("issues".to_owned(), "write".to_owned())]);
    let used = commands(&reminders.script_text());
    assert!(used.iter().any(|(w, o)| w == &["groups", "remind"] && o.contains("repo")), "{used:?}");
    assert!(used.iter().any(|(w, o)| w == &["review", "overdue"] && o.contains("repo")), "{used:?}");

    let reviews = workflow.job("reviews");
    let mut granted = reviews.permissions();
    granted.sort();
    assert_eq!(
        granted,
        [("contents".to_owned(), "write".to_owned()), ("pull-requests".to_owned(), "write".to_owned())]
    );
    let script = reviews.script_text();
    let used = commands(&script);
    assert!(used.iter().any(|(w, o)| w == &["review", "open"] && o.contains("due") && o.contains("out")), "{used:?}");
    // An open review keeps its branch: the data managers' removals may be on it.
    let looked_up = script.find("ls-remote --exit-code --heads origin \"$branch\"").expect("looks the branch up");
    let pushed = script.find("push origin").expect("pushes the branch");
    assert!(looked_up < pushed && !script.contains("--force"), "{script}");
    assert!(script.contains("gh pr create") && script.contains("--body-file \"../reviews/$dataset.md\""), "{script}");
    // Pull requests opened with the workflow's own token start no workflow (no access review).
    let step = reviews.steps().into_iter().find(|s| text(&s["run"]).contains("gh pr create")).expect("the step");
    assert!(text(&step["env"]["GH_TOKEN"]).contains("secrets.ACCESS_REQUEST_TOKEN"));
}

#[test]
fn a_job_that_holds_a_credential_builds_without_a_shared_cache() {
    for workflow in Workflow::all() {
        for job in workflow.jobs() {
            let builds = job.script_text().contains("cargo build");
            if (job.can_write() || job.mints_tokens() || job.secrets()) && builds {
                // A build cache is what a pull request's own CI run can write and this job
                // would restore: its binary would then run with the credential.
                let cached = job.steps().iter().any(|s| text(&s["uses"]).starts_with("Swatinem/rust-cache@"));
                assert!(!cached, "{}: builds from a shared cache while holding a credential", job.id());
            }
        }
    }
}

#[test]
fn the_access_request_form_becomes_a_pull_request_with_one_value_per_field() {
    let form_path = common::manifest_dir().join(".github/ISSUE_TEMPLATE/access-request.yml");
    let form = fs::read_to_string(form_path).expect("issue form");
    for id in ["person", "dataset", "role", "until", "reason"] {
        assert!(form.contains(&format!("    id: {id}\n")), "the form has no `{id}` field");
    }
    let workflow = Workflow::load("access-request-form.yml");
    assert!(workflow.triggers().contains("issues"));
    let prepare = workflow.job("prepare");
    assert!(!prepare.can_write(), "{:?}", prepare.permissions());
    let used = commands(&prepare.script_text());
    let add = used.iter().find(|(w, _)| w == &["groups", "add"]).expect("groups add");
    let options: Vec<&str> = add.1.iter().map(String::as_str).collect();
    assert_eq!(options, ["dataset", "email", "expires", "reason", "role"]);
    assert!(prepare.script_text().contains("re.fullmatch(shape, value)"), "each field one value");
    let pull = workflow.job("pull-request");
    assert!(pull.scripts().iter().all(|s| !s.contains("cargo")), "the writing job builds nothing");
    let scripts = pull.script_text();
    assert!(scripts.contains("gh pr create") && scripts.contains("--title \"$title\""), "the title follows edits");
    assert!(scripts.contains("extraheader"), "the token is given to the push alone\n{scripts}");
}
