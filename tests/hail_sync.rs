//! Hail Batch billing projects synced like a directory, through the real HTTP client against
//! the Hail Batch emulator (batch and auth routes): the dataset's project is (re)opened and
//! holds the hail users of each level (created in the auth service when missing), the
//! analysts with a Hail Batch username and the aggregator; projects that are not the
//! organisation's are never touched; a no-op reads one listing. What Hail Batch refuses (a
//! user that does not exist, a deleted project, a token without the developer role, closing a
//! project with running batches) is reported once, with what to do.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::{cpg_with_env, example_org, Run, FAILURE, INVALID_INPUT, SUCCESS, UNPACED};
use cpg_infra::directory::{Directory, HailConfig, HailDirectory};
use cpg_infra::emulator::hail::HailEmulator;
use cpg_infra::http_api::ApiClient;

const TOKEN: &str = "hail-test-token";

/// The users tob-wgs's project should hold.
const TOB_WGS: [&str; 5] = ["amara", "billing-aggregator", "tob-wgs-full", "tob-wgs-standard", "tob-wgs-test"];

/// The test organisation with Hail Batch enabled and amara given a Hail Batch username.
fn hail_org() -> tempfile::TempDir {
    let org = example_org();
    let root = org.path();
    let path = root.join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        format!("{text}\n[providers.hail]\nenabled = true\n{UNPACED}\naggregator = \"billing-aggregator\"\n"),
    )
    .unwrap();
    let people = root.join("groups/people.toml");
    let text = fs::read_to_string(&people).unwrap();
    let text = text.replacen("[people.amara]\n", "[people.amara]\nhail_batch = \"amara\"\n", 1);
    fs::write(&people, text).unwrap();
    org
}

/// An emulator whose auth service knows the people (not the datasets' users).
fn emulator() -> HailEmulator {
    let emulator = HailEmulator::start(0, TOKEN).expect("emulator");
    emulator.insert_users(&["amara", "billing-aggregator"]);
    emulator
}

fn sync(root: &Path, emulator: &HailEmulator, args: &[&str]) -> Run {
    let mut all = vec!["groups", "sync", "--provider", "hail", "--no-cache"];
    all.extend_from_slice(args);
    let base = emulator.base_url();
    cpg_with_env(root, &all, &[("CPG_INFRA_HAIL_ENDPOINT", &base), ("CPG_INFRA_HAIL_TOKEN", TOKEN)])
}

fn users(emulator: &HailEmulator, project: &str) -> BTreeSet<String> {
    emulator.projects()[project].users.clone()
}

fn set(users: &[&str]) -> BTreeSet<String> {
    users.iter().map(|u| (*u).to_owned()).collect()
}

fn count(emulator: &HailEmulator, call: &str) -> u64 {
    emulator.calls().get(call).copied().unwrap_or(0)
}

#[test]
fn the_billing_project_follows_the_groups_and_foreign_projects_are_left_alone() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    // tob-wgs's project was closed by hand; another lab's project shares the service.
    emulator.insert_project("tob-wgs", &["left.over"], "closed");
    emulator.insert_project("other-lab", &["someone"], "open");

    let dry = sync(root, &emulator, &[]);
    dry.expect_code(SUCCESS);
    assert_eq!(emulator.projects()["tob-wgs"].status, "closed", "a dry run changes nothing");
    assert_eq!(count(&emulator, "auth.users.create"), 0, "nor creates users");

    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(emulator.projects()["tob-wgs"].status, "open", "{run}");
    assert_eq!(users(&emulator, "tob-wgs"), set(&TOB_WGS), "{run}");
    assert_eq!(count(&emulator, "billing_projects.reopen"), 1);
    assert_eq!(count(&emulator, "billing_projects.create"), 0);
    // The datasets' users were created in the auth service, as service accounts, once each.
    assert_eq!(count(&emulator, "auth.users.create"), 3, "{run}");
    assert_eq!(count(&emulator, "auth.users.list"), 1, "{run}");
    assert!(emulator.users()["tob-wgs-full"].is_service_account);
    assert_eq!(users(&emulator, "other-lab"), set(&["someone"]), "a foreign project is untouched");
    // Analysts without a Hail Batch username are reported, not silently dropped.
    assert!(run.stderr.contains("has no hail_batch username in people.toml (analyses tob-wgs)"), "{run}");

    // No change: the listing carries every project's users, so one call and no write.
    emulator.reset_calls();
    let again = sync(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    let calls = emulator.calls();
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}\n{again}");
    assert_eq!(calls.get("billing_projects.list"), Some(&1));

    // A user added by hand is removed; one removed by hand comes back.
    let mut drifted = users(&emulator, "tob-wgs");
    drifted.remove("amara");
    drifted.insert("intruder".to_owned());
    let drifted: Vec<&str> = drifted.iter().map(String::as_str).collect();
    emulator.insert_project("tob-wgs", &drifted, "open");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs"), set(&TOB_WGS));
}

/// A person whose Hail Batch user does not exist fails once, naming every project they were
/// not added to; everyone else is added.
#[test]
fn a_person_without_a_hail_batch_user_is_reported_once() {
    let org = hail_org();
    let root = org.path();
    let people = root.join("groups/people.toml");
    let text = fs::read_to_string(&people).unwrap();
    fs::write(&people, text.replacen("[people.hannah]\n", "[people.hannah]\nhail_batch = \"hannah\"\n", 1)).unwrap();
    let dataset = root.join("datasets/perth-neuro/dataset.toml");
    let text = fs::read_to_string(&dataset).unwrap();
    fs::write(&dataset, text.replacen("components = [\n", "components = [\n    \"hail\",\n", 1)).unwrap();
    let emulator = emulator();

    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(FAILURE);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("hannah:")).collect();
    assert_eq!(lines.len(), 1, "one line for the person: {run}");
    assert!(lines[0].contains("perth-neuro") && lines[0].contains("tob-wgs"), "{run}");
    assert_eq!(count(&emulator, "users.add"), 5 + 4, "hannah's additions are never sent: {:?}", emulator.calls());
    assert!(!users(&emulator, "perth-neuro").contains("hannah"));
    assert_eq!(users(&emulator, "tob-wgs"), set(&TOB_WGS));

    // Once the user exists, the next run adds them.
    emulator.insert_users(&["hannah"]);
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert!(users(&emulator, "perth-neuro").contains("hannah"));
}

/// A deleted project cannot be created again (create says 200, the project stays deleted):
/// the run reports it with what to do, sends none of its additions, and stays bounded.
#[test]
fn a_deleted_billing_project_is_reported_with_what_to_do() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    emulator.insert_project("tob-wgs", &[], "deleted");
    for _ in 0..2 {
        emulator.reset_calls();
        let run = sync(root, &emulator, &["--confirm"]);
        run.expect_code(FAILURE);
        assert!(run.stderr.contains("was deleted in Hail Batch"), "{run}");
        assert!(run.stderr.contains("ask a Hail Batch administrator"), "{run}");
        let calls = emulator.calls();
        assert_eq!(calls.get("users.add"), None, "{calls:?}");
        assert_eq!(calls.get("billing_projects.create"), Some(&1), "not retried: {calls:?}");
        assert_eq!(emulator.projects()["tob-wgs"].status, "deleted");
    }
}

/// A token without the developer role sees only its own projects, with no error: the project
/// just created stays invisible, and the run stops with one error and sends nothing more.
#[test]
fn a_token_without_the_developer_role_stops_the_run() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    emulator.limit_visibility_to(Some("cpg-infra"));
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(INVALID_INPUT);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("developer role")).collect();
    assert_eq!(errors.len(), 1, "{run}");
    assert!(errors[0].contains("tob-wgs") && errors[0].contains("not sent"), "{run}");
    assert_eq!(count(&emulator, "users.add"), 0, "{:?}", emulator.calls());
}

/// Closing a billing project with running batches is refused (403): reported, the project stays
/// open, and the same call closes it once the batches have finished.
#[test]
fn closing_a_project_with_running_batches_is_reported_then_done_later() {
    let emulator = emulator();
    emulator.insert_project("tob-wgs", &["amara"], "open");
    emulator.set_running_batches("tob-wgs", true);
    let config = HailConfig {
        endpoint: emulator.base_url(),
        auth_endpoint: emulator.base_url(),
        token: TOKEN.to_owned(),
        ours: set(&["tob-wgs"]),
        machine_users: BTreeSet::new(),
        requests: common::unpaced(),
    };
    let directory = HailDirectory::connect(&config).expect("connect");
    let error = directory.delete_group("tob-wgs").unwrap_err();
    assert!(!error.is_retryable() && error.to_string().contains("running batches"), "{error}");
    assert!(error.to_string().contains("later run"), "{error}");
    assert_eq!(emulator.projects()["tob-wgs"].status, "open");
    emulator.set_running_batches("tob-wgs", false);
    directory.delete_group("tob-wgs").expect("closed once the batches finished");
    assert_eq!(emulator.projects()["tob-wgs"].status, "closed");
}

/// The emulator answers as Hail Batch does, in plain text.
#[test]
fn the_emulator_answers_as_hail_batch_does() {
    let emulator = emulator();
    emulator.insert_project("gone", &[], "deleted");
    let api = ApiClient::connect(&emulator.base_url(), &cpg_infra::directory::GoogleAuth::AccessToken(TOKEN.into()))
        .expect("client");
    let codes = [400, 403].map(|c| hyper::StatusCode::from_u16(c).unwrap());
    let post = |path: &str, body: &str| {
        let (status, body) = api
            .send_answering(hyper::Method::POST, path, body.as_bytes().to_vec(), "test", &[], &codes)
            .expect("answered");
        (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
    };
    let bp = "api/v1alpha/billing_projects";
    post(&format!("{bp}/tob-wgs/create"), "");
    assert_eq!(post(&format!("{bp}/tob-wgs/users/nobody/add"), ""), (403, "403: User nobody does not exist.".into()));
    assert_eq!(post(&format!("{bp}/gone/create"), "").0, 200);
    assert_eq!(emulator.projects()["gone"].status, "deleted", "create leaves a deleted project deleted");
    assert_eq!(post(&format!("{bp}/gone/users/amara/add"), "").0, 404);
    assert_eq!(post(&format!("{bp}/gone/reopen"), "").0, 403);
    let listed = api.send(hyper::Method::GET, bp, Vec::new(), "test").expect("listing").1;
    assert!(!String::from_utf8_lossy(&listed).contains("gone"), "a deleted project is not listed");
    // Users: created once, again is done; a developer flag is refused.
    let service = r#"{"login_id": null, "is_service_account": true}"#;
    assert_eq!(post("api/v1alpha/users/tob-wgs-test/create", service).0, 200);
    assert_eq!(post("api/v1alpha/users/tob-wgs-test/create", service).0, 200);
    let developer = r#"{"login_id": null, "is_service_account": true, "is_developer": false}"#;
    assert_eq!(post("api/v1alpha/users/other/create", developer).0, 400);
    assert_eq!(post("api/v1alpha/users/Bad_Name/create", service).0, 400);
    assert_eq!(emulator.users().len(), 3);
}

#[test]
fn faults_on_every_request_are_retried_until_the_project_converges() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    emulator.fault_each_request_once(true);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs"), set(&TOB_WGS), "{run}");
    assert_eq!(emulator.projects()["tob-wgs"].status, "open");
}

#[test]
fn a_rejected_token_is_configuration() {
    let org = hail_org();
    let emulator = emulator();
    let base = emulator.base_url();
    let run = cpg_with_env(
        org.path(),
        &["groups", "sync", "--provider", "hail"],
        &[("CPG_INFRA_HAIL_ENDPOINT", &base), ("CPG_INFRA_HAIL_TOKEN", "wrong")],
    );
    run.expect_code(INVALID_INPUT);
    assert!(emulator.projects().is_empty());
}

/// `--provider all` runs every enabled provider (here only Hail Batch) and refreshes the
/// members cache once, after the last; with none enabled it is a configuration error.
#[test]
fn all_providers_run_each_enabled_one_then_the_cache() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    let base = emulator.base_url();
    let env = [("CPG_INFRA_HAIL_ENDPOINT", base.as_str()), ("CPG_INFRA_HAIL_TOKEN", TOKEN)];
    let run = cpg_with_env(root, &["groups", "sync", "--provider", "all", "--confirm"], &env);
    run.expect_code(SUCCESS);
    assert!(run.stderr.contains("== Hail"), "{run}");
    assert!(!run.stderr.contains("== Google"), "google is not enabled: {run}");
    assert_eq!(users(&emulator, "tob-wgs").len(), 5, "{run}");
    assert!(root.join(".cpg-infra/members-cache/tob-wgs-analysis-members.txt").is_file(), "{run}");

    let none = common::example_org();
    let run = cpg_with_env(none.path(), &["groups", "sync", "--provider", "all"], &[]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("no provider is enabled"), "{run}");
}

/// Users added by hand to more than the allowed share of a project are not removed in one go:
/// the plan is refused (exit 2) and the project keeps them until `--allow-mass-removal`.
#[test]
fn mass_removal_from_a_billing_project_is_refused() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let mut users: Vec<String> = emulator.projects()["tob-wgs"].users.iter().cloned().collect();
    users.extend((0..20).map(|i| format!("intruder{i}")));
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    emulator.insert_project("tob-wgs", &users, "open");

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(common::REFUSED);
    assert_eq!(emulator.projects()["tob-wgs"].users.len(), 25, "{run}");
    assert_eq!(emulator.calls().get("users.remove"), None);

    sync(root, &emulator, &["--confirm", "--allow-mass-removal"]).expect_code(SUCCESS);
    assert_eq!(emulator.projects()["tob-wgs"].users.len(), 5);
}

/// A project created a moment ago may be missing from the next reads: the read-back after
/// creating it is retried until it shows, and the next sync converges.
#[test]
fn a_new_project_missing_from_the_listing_converges() {
    let org = hail_org();
    let root = org.path();
    let emulator = emulator();
    emulator.hide_new_projects_for(3);
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let first = users(&emulator, "tob-wgs");
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(users(&emulator, "tob-wgs"), first, "{run}");
    assert_eq!(first, set(&TOB_WGS));
    assert_eq!(emulator.projects().len(), 1);
}
