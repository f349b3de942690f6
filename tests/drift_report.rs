//! `groups drift-report`: who made the changes a sync found made by hand, read from the
//! directory's own audit log (Google's Reports API here, against the emulator's audit log with
//! its paging, lag and scope), and what the sync did about them.

mod common;

use std::path::{Path, PathBuf};

use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator};

use common::google::{cli_sync, google_org, CUSTOMER, TOKEN};
use common::{cpg_with_env, Run, FAILURE, INVALID_INPUT, SUCCESS};

const RELEASE: &str = "tob-wgs-release-access@groups.example.org";
const ANALYSIS: &str = "tob-wgs-analysis@groups.example.org";
const STRANGER: &str = "stranger@elsewhere.example.com";
const ALICE: &str = "admin.alice@example.org";
const BOB: &str = "admin.bob@example.org";

fn google(options: EmulatorOptions) -> GoogleEmulator {
    let options =
        EmulatorOptions { customer: CUSTOMER.to_owned(), token: Some(TOKEN.to_owned()), premium: true, ..options };
    GoogleEmulator::start(options).expect("start the emulator")
}

fn env(emulator: &GoogleEmulator) -> Vec<(&'static str, String)> {
    vec![("CPG_INFRA_GOOGLE_ENDPOINT", emulator.base_url()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN.to_owned())]
}

fn run(emulator: &GoogleEmulator, root: &Path, args: &[&str]) -> Run {
    let env = env(emulator);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cpg_with_env(root, args, &env)
}

/// The synced example organisation, then Alice adding a stranger to the release group and Bob
/// removing a member of the analysis group, by hand; returns the plan that reverts both.
fn drifted(emulator: &GoogleEmulator, root: &Path) -> (PathBuf, String) {
    cli_sync(emulator, root, true).expect_code(SUCCESS);
    let removed = emulator.groups()[ANALYSIS].members.keys().next().expect("analysis has members").clone();
    emulator.add_member_by_hand(RELEASE, STRANGER, ALICE);
    emulator.remove_member_by_hand(ANALYSIS, &removed, BOB);
    let plan = run(emulator, root, &["groups", "sync", "--provider", "google", "--format", "json", "--no-cache"]);
    plan.expect_code(SUCCESS);
    let path = root.join("drift-google.json");
    std::fs::write(&path, &plan.stdout).unwrap();
    (path, removed)
}

fn report(emulator: &GoogleEmulator, root: &Path, plan: &Path, extra: &[&str]) -> Run {
    let args =
        [&["groups", "drift-report", "--provider", "google", "--plan", plan.to_str().unwrap()][..], extra].concat();
    run(emulator, root, &args)
}

#[test]
fn each_change_by_hand_is_named_with_who_made_it_and_what_the_sync_does() {
    let emulator = google(EmulatorOptions { max_page_size: 500, ..EmulatorOptions::default() });
    let org = google_org();
    let (plan, removed) = drifted(&emulator, org.path());
    let before = emulator.groups();
    emulator.reset_calls();

    let text = report(&emulator, org.path(), &plan, &[]);
    text.expect_code(SUCCESS);
    assert!(
        text.stdout.starts_with("2 change(s) made by hand in google (audit log since 2026-11-19T00:00:00Z):"),
        "{text}"
    );
    let added = format!("  {STRANGER} added to {RELEASE} by {ALICE} at ");
    let line = text.stdout.lines().find(|l| l.starts_with(&added)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("; the sync removes it"), "{line}");
    let taken = format!("  {removed} removed from {ANALYSIS} by {BOB} at ");
    let line = text.stdout.lines().find(|l| l.starts_with(&taken)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("; the sync adds it back"), "{line}");
    // One audit listing per group that drifted, and nothing written.
    assert_eq!(emulator.calls().get("reports.activities.list"), Some(&2), "{:?}", emulator.calls());
    assert_eq!(emulator.total_calls(), 2, "{:?}", emulator.calls());
    assert_eq!(emulator.groups(), before);

    let markdown = report(&emulator, org.path(), &plan, &["--applied", "--format", "markdown"]);
    markdown.expect_code(SUCCESS);
    assert!(markdown.stdout.contains("| member | change | group | by | when | the sync |"), "{markdown}");
    let row = format!("| `{STRANGER}` | added to | `{RELEASE}` | `{ALICE}` | 20");
    assert!(markdown.stdout.contains(&row), "{markdown}");
    assert!(markdown.stdout.contains("| the sync removed it |"), "{markdown}");

    let json = report(&emulator, org.path(), &plan, &["--format", "json"]);
    json.expect_code(SUCCESS);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let changes = value["changes"].as_array().unwrap();
    let stranger = changes.iter().find(|c| c["member"] == STRANGER).expect("the stranger");
    assert_eq!(stranger["by_hand"], "added");
    assert_eq!(stranger["event"]["actor"], ALICE);
}

#[test]
fn the_newest_matching_event_is_found_across_pages() {
    let emulator = google(EmulatorOptions { max_page_size: 2, ..EmulatorOptions::default() });
    let org = google_org();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    emulator.add_member_by_hand(RELEASE, STRANGER, ALICE);
    // Later events on the same group push Alice's to the third page.
    for n in 0..4 {
        let other = format!("visitor{n}@elsewhere.example.com");
        emulator.add_member_by_hand(RELEASE, &other, BOB);
        emulator.remove_member_by_hand(RELEASE, &other, BOB);
    }
    let plan =
        run(&emulator, org.path(), &["groups", "sync", "--provider", "google", "--format", "json", "--no-cache"]);
    let path = org.path().join("plan.json");
    std::fs::write(&path, &plan.stdout).unwrap();
    emulator.reset_calls();
    let text = report(&emulator, org.path(), &path, &[]);
    text.expect_code(SUCCESS);
    assert!(text.stdout.contains(&format!("{STRANGER} added to {RELEASE} by {ALICE} at ")), "{text}");
    assert!(emulator.calls()["reports.activities.list"] >= 5, "pages followed: {:?}", emulator.calls());
}

#[test]
fn an_event_not_in_the_log_yet_is_said_and_is_no_failure() {
    let emulator = google(EmulatorOptions { audit_lag: 100, ..EmulatorOptions::default() });
    let org = google_org();
    let (plan, _) = drifted(&emulator, org.path());
    let text = report(&emulator, org.path(), &plan, &[]);
    text.expect_code(SUCCESS);
    let expected = format!(
        "  {STRANGER} added to {RELEASE} no event in the audit log since 2026-11-19T00:00:00Z (not there yet, or older); the sync removes it"
    );
    assert!(text.stdout.contains(&expected), "{text}");
}

#[test]
fn a_token_without_the_reports_scope_names_it_and_exits_1() {
    let emulator = google(EmulatorOptions { reports_scope: false, ..EmulatorOptions::default() });
    let org = google_org();
    let (plan, _) = drifted(&emulator, org.path());
    let before = emulator.groups();
    let text = report(&emulator, org.path(), &plan, &[]);
    text.expect_code(FAILURE);
    assert!(
        text.stdout.contains("audit log unreadable: reports.activities.list: the credentials lack the scope https://www.googleapis.com/auth/admin.reports.audit.readonly"),
        "{text}"
    );
    assert_eq!(emulator.groups(), before, "a report changes nothing");
}

#[test]
fn bad_input_is_a_clear_error_and_reads_nothing() {
    let emulator = google(EmulatorOptions { max_page_size: 500, ..EmulatorOptions::default() });
    let org = google_org();
    let root = org.path();
    let not_a_plan = root.join("not-a-plan.json");
    std::fs::write(&not_a_plan, "{\"groups\": []}").unwrap();
    let run_it = |args: &[&str]| run(&emulator, root, &[&["groups", "drift-report"][..], args].concat());

    let refused = run_it(&["--provider", "google", "--plan", not_a_plan.to_str().unwrap()]);
    refused.expect_code(INVALID_INPUT);
    assert!(
        refused.stderr.contains("not-a-plan.json: not a plan from `groups sync --format json` (no `changes` list)"),
        "{refused}"
    );

    let hail = run_it(&["--provider", "hail", "--plan", not_a_plan.to_str().unwrap()]);
    hail.expect_code(INVALID_INPUT);
    assert!(hail.stderr.contains("only google and azure keep an audit log"), "{hail}");

    let window = run_it(&["--provider", "google", "--plan", not_a_plan.to_str().unwrap(), "--within", "soon"]);
    window.expect_code(INVALID_INPUT);
    assert!(window.stderr.contains("--within `soon`: use days or weeks"), "{window}");

    let missing = run_it(&["--provider", "google", "--plan", "absent.json"]);
    missing.expect_code(INVALID_INPUT);
    assert!(missing.stderr.contains("--plan absent.json"), "{missing}");
    assert_eq!(emulator.total_calls(), 0, "{:?}", emulator.calls());
}

#[test]
fn throttled_and_failing_audit_reads_are_retried() {
    let emulator = google(EmulatorOptions { max_page_size: 500, ..EmulatorOptions::default() });
    let org = google_org();
    let (plan, _) = drifted(&emulator, org.path());
    emulator.set_faults(cpg_infra::emulator::FaultPlan {
        seed: 7,
        rate_429: 0.5,
        rate_503: 0.3,
        retry_after: std::time::Duration::from_millis(10),
        methods: Some(["reports.activities.list".to_owned()].into()),
        max_faults_per_request: Some(2),
        ..cpg_infra::emulator::FaultPlan::default()
    });
    let text = report(&emulator, org.path(), &plan, &[]);
    text.expect_code(SUCCESS);
    assert!(text.stdout.contains(&format!("{STRANGER} added to {RELEASE} by {ALICE} at ")), "{text}");
    assert!(emulator.calls()["reports.activities.list"] > 2, "some reads were faulted: {:?}", emulator.calls());
}

// --- Azure: Microsoft Graph's directory audits -------------------------------------------------

mod azure {
    use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedUser};

    use super::common::azure::{example, seed_people};
    use super::common::google::TOKEN;
    use super::common::{cpg_with_env, Run, FAILURE, SUCCESS};
    use super::{ALICE, ANALYSIS, BOB, RELEASE, STRANGER};

    fn start(audit_lag: u32) -> AzureEmulator {
        let options =
            AzureEmulatorOptions { token: Some(TOKEN.to_owned()), audit_lag, ..AzureEmulatorOptions::default() };
        let emulator = AzureEmulator::start(options).expect("start the emulator");
        let (desired, aliases) = example();
        seed_people(&emulator, &desired, &aliases);
        emulator.insert_user(SeedUser {
            user_principal_name: STRANGER.to_owned(),
            mail: None,
            display_name: "A stranger".to_owned(),
        });
        emulator
    }

    fn run(emulator: &AzureEmulator, root: &std::path::Path, args: &[&str]) -> Run {
        let endpoint = emulator.base_url();
        let env = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
        cpg_with_env(root, args, &env)
    }

    /// Synced, then Alice adds the stranger to the release group and Bob removes an analyst
    /// (one with an `azure` principal name of their own, when there is one) by hand.
    fn drifted(emulator: &AzureEmulator, root: &std::path::Path) -> (std::path::PathBuf, String) {
        run(emulator, root, &["groups", "sync", "--provider", "azure", "--no-cache", "--confirm"]).expect_code(SUCCESS);
        let (desired, aliases) = example();
        let analysts = desired.effective_members("tob-wgs-analysis");
        let victim =
            analysts.iter().find(|m| aliases.contains_key(**m)).or(analysts.iter().next()).unwrap().to_string();
        let principal = aliases.get(&victim).unwrap_or(&victim).to_lowercase();
        emulator.add_member_by_hand("tob-wgs-release-access", STRANGER, ALICE);
        emulator.remove_member_by_hand("tob-wgs-analysis", &principal, BOB);
        let plan = run(emulator, root, &["groups", "sync", "--provider", "azure", "--no-cache", "--format", "json"]);
        plan.expect_code(SUCCESS);
        let path = root.join("drift-azure.json");
        std::fs::write(&path, &plan.stdout).unwrap();
        (path, victim)
    }

    fn report(emulator: &AzureEmulator, root: &std::path::Path, plan: &std::path::Path) -> Run {
        run(emulator, root, &["groups", "drift-report", "--provider", "azure", "--plan", plan.to_str().unwrap()])
    }

    #[test]
    fn each_change_by_hand_is_named_with_the_person_who_made_it() {
        let emulator = start(0);
        let org = super::common::org_with_provider("azure");
        let (plan, victim) = drifted(&emulator, org.path());
        emulator.reset_calls();
        let text = report(&emulator, org.path(), &plan);
        text.expect_code(SUCCESS);
        assert!(text.stdout.contains(&format!("  {STRANGER} added to {RELEASE} by {ALICE} at ")), "{text}");
        // The audit log names the person's Entra principal; the report names them as people.toml does.
        assert!(text.stdout.contains(&format!("  {victim} removed from {ANALYSIS} by {BOB} at ")), "{text}");
        assert!(text.stdout.contains("; the sync adds it back"), "{text}");
        let calls = emulator.calls();
        assert_eq!(calls.get("auditLogs.directoryAudits.list"), Some(&2), "one audit listing per group: {calls:?}");
        assert!(!calls.keys().any(|k| k.contains("members.add") || k.contains("members.remove")), "{calls:?}");
    }

    #[test]
    fn a_change_the_log_does_not_show_yet_is_said() {
        let emulator = start(50);
        let org = super::common::org_with_provider("azure");
        let (plan, _) = drifted(&emulator, org.path());
        let text = report(&emulator, org.path(), &plan);
        text.expect_code(SUCCESS);
        assert!(
            text.stdout.contains(&format!("  {STRANGER} added to {RELEASE} no event in the audit log since")),
            "{text}"
        );
    }

    #[test]
    fn a_rejected_token_is_reported_per_group_and_exits_1() {
        let emulator = start(0);
        let org = super::common::org_with_provider("azure");
        let (plan, _) = drifted(&emulator, org.path());
        let endpoint = emulator.base_url();
        let env = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", "wrong")];
        let args = ["groups", "drift-report", "--provider", "azure", "--plan", plan.to_str().unwrap()];
        let text = cpg_with_env(org.path(), &args, &env);
        text.expect_code(FAILURE);
        assert!(text.stdout.contains("audit log unreadable: rejected: "), "{text}");
        assert!(!text.stdout.contains("wrong"), "the token is never printed: {text}");
    }
}

#[test]
fn a_plan_without_member_changes_reads_nothing_and_says_so_in_each_format() {
    let emulator = google(EmulatorOptions { max_page_size: 500, ..EmulatorOptions::default() });
    let org = google_org();
    let plan = org.path().join("plan.json");
    std::fs::write(&plan, r#"{"changes": [{"op": "create_group", "name": "x", "email": "x@groups.example.org", "description": ""}, {"op": "add_member", "group": "x@groups.example.org", "member": "a@example.org"}]}"#).unwrap();
    let text = report(&emulator, org.path(), &plan, &[]);
    text.expect_code(SUCCESS);
    assert_eq!(text.stdout, "no change made by hand in google\n", "members of a new group are no drift");
    let markdown = report(&emulator, org.path(), &plan, &["--format", "markdown"]);
    markdown.expect_code(SUCCESS);
    assert_eq!(markdown.stdout, "", "nothing for the issue");
    let json = report(&emulator, org.path(), &plan, &["--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["changes"], serde_json::json!([]));
    assert_eq!(emulator.total_calls(), 0);
}
