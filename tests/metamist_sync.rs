//! Metamist projects synced as a write-only directory, through the real HTTP client against
//! the Metamist emulator (which, like Metamist, cannot read a project's members back): each
//! dataset with the metamist component gets its project and `-test` project, each written
//! once with its whole member list; the lists written are kept in a state file, so a no-op is
//! one listing and no write, and a change writes only the project it touches.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;

use common::{cpg_with_env, example_org, Run, FAILURE, INVALID_INPUT, REFUSED, SUCCESS, UNPACED};
use cpg_infra::apps::metamist::{member_list, projects, MemberList};
use cpg_infra::definitions::DirSource;
use cpg_infra::directory::{ListDirectory, MetamistDirectory};
use cpg_infra::emulator::metamist::{MetamistEmulator, EMULATOR_CALLER};
use cpg_infra::http_api::ApiClient;

const TOKEN: &str = "metamist-test-token";

/// The test organisation's projects: three datasets with the metamist component.
const PROJECTS: usize = 6;

/// The test organisation with Metamist enabled (default role mapping, the emulator's caller
/// as the sync's account) and `extra` lines in `[providers.metamist]`.
fn metamist_org_with(extra: &str) -> tempfile::TempDir {
    let org = example_org();
    let path = org.path().join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    let table =
        format!("\n[providers.metamist]\nenabled = true\n{UNPACED}\naccount = \"{EMULATOR_CALLER}\"\n{extra}\n");
    fs::write(&path, format!("{text}{table}")).unwrap();
    org
}

fn metamist_org() -> tempfile::TempDir {
    metamist_org_with("")
}

fn sync(root: &Path, emulator: &MetamistEmulator, args: &[&str]) -> Run {
    let mut all = vec!["groups", "sync", "--provider", "metamist", "--no-cache"];
    all.extend_from_slice(args);
    let base = emulator.base_url();
    cpg_with_env(root, &all, &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("CPG_INFRA_METAMIST_TOKEN", TOKEN)])
}

/// Every project's whole list, from the library's own reading of the definitions.
fn desired(root: &Path) -> BTreeMap<String, MemberList> {
    let today = common::TODAY.parse().unwrap();
    let expanded = cpg_infra::load::load_expanded(&DirSource::new(root), today).expect("loads");
    let settings = expanded.definitions.organisation.metamist.clone().expect("metamist settings");
    let aliases: HashMap<String, String> = expanded.definitions.google_accounts();
    projects(&expanded.definitions)
        .iter()
        .map(|p| (p.name.clone(), member_list(&expanded.definitions, &expanded.hierarchy, &settings, &aliases, p)))
        .collect()
}

/// What the emulator holds for the organisation's projects.
fn live(emulator: &MetamistEmulator, root: &Path) -> BTreeMap<String, MemberList> {
    let all = emulator.projects();
    desired(root)
        .keys()
        .map(|name| (name.clone(), all.get(name).map(|p| p.members.clone()).unwrap_or_default()))
        .collect()
}

fn count(emulator: &MetamistEmulator, call: &str) -> u64 {
    emulator.calls().get(call).copied().unwrap_or(0)
}

fn roles(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|r| (*r).to_owned()).collect()
}

#[test]
fn an_empty_metamist_is_filled_then_a_no_op_is_one_listing_and_one_change_one_write() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.insert_project("other-lab", &[("someone@example.org", &["writer"])]);

    let dry = sync(root, &emulator, &[]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains("Metamist cannot be read back"), "the plan says drift is not seen: {dry}");
    assert!(dry.stdout.contains(&format!("{PROJECTS} project(s) to write, 0 unchanged")), "{dry}");
    assert_eq!(emulator.projects().len(), 1, "a dry run creates nothing");
    assert_eq!(count(&emulator, "members.update"), 0, "a dry run writes nothing");
    assert!(!root.join(".cpg-infra/metamist-lists.jsonl").exists(), "nor the state");

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), desired(root), "{run}");
    let calls = emulator.calls();
    assert_eq!(calls.get("project.all"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("project.create"), Some(&(PROJECTS as u64)), "{calls:?}");
    assert_eq!(calls.get("members.update"), Some(&(PROJECTS as u64)), "one write per project: {calls:?}");
    assert_eq!(calls.get("members.other_method"), None, "nothing tries to read members: {calls:?}");
    assert_eq!(emulator.holders("other-lab", "writer"), roles(&["someone@example.org"]), "foreign project untouched");
    // The role mapping, checked by hand: tob-wgs's data manager writes the project, reads it
    // and writes the test project; the sync's account keeps project_member_admin everywhere.
    assert!(emulator.holders("tob-wgs", "writer").contains("amara.okafor@example.org"));
    assert!(emulator.holders("tob-wgs", "reader").contains("amara.okafor@example.org"));
    assert!(emulator.holders("tob-wgs-test", "writer").contains("amara.okafor@example.org"));
    for project in desired(root).keys() {
        assert!(emulator.holders(project, "project_member_admin").contains(EMULATOR_CALLER), "{project}");
    }

    // No change: the listing only.
    emulator.reset_calls();
    let again = sync(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    let calls = emulator.calls();
    assert_eq!(calls.get("project.all"), Some(&1), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 1, "{calls:?}\n{again}");
    assert!(again.stdout.contains(&format!("0 project(s) to write, {PROJECTS} unchanged")), "{again}");

    // One person gains tob-wgs's metadata-write role, which only the main project maps.
    let before = desired(root);
    let members = root.join("datasets/tob-wgs/members.toml");
    let text = fs::read_to_string(&members).unwrap();
    fs::write(&members, format!("{text}\nmetadata-write = [\"zainab\"]\n")).unwrap();
    let after = desired(root);
    let changed: Vec<&String> =
        after.iter().filter(|(name, list)| before.get(*name) != Some(list)).map(|(n, _)| n).collect();
    assert_eq!(changed, ["tob-wgs"], "the edit changes one project's list");
    emulator.reset_calls();
    let one = sync(root, &emulator, &["--confirm"]);
    one.expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), after, "{one}");
    let calls = emulator.calls();
    assert_eq!(calls.get("members.update"), Some(&1), "only the changed project: {calls:?}");
    assert_eq!(calls.get("project.all"), Some(&1), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 2, "{calls:?}");
}

/// Hand-made changes in Metamist cannot be seen: a normal sync leaves them, `--full-write`
/// writes every project again and repairs them.
#[test]
fn drift_is_not_read_and_full_write_repairs_it() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    emulator.insert_project("acute-care", &[("intruder@example.org", &["writer"])]);

    emulator.reset_calls();
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(count(&emulator, "members.update"), 0);
    assert!(emulator.holders("acute-care", "writer").contains("intruder@example.org"));

    emulator.reset_calls();
    let full = sync(root, &emulator, &["--confirm", "--full-write"]);
    full.expect_code(SUCCESS);
    assert_eq!(count(&emulator, "members.update"), PROJECTS as u64, "{full}");
    assert_eq!(live(&emulator, root), desired(root), "{full}");
}

#[test]
fn faults_on_every_request_are_retried_until_the_projects_converge() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.fault_each_request_once(true);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), desired(root), "{run}");
    assert!(!run.stdout.contains("; 0 retried"), "{run}");
}

/// A project created a moment ago may be missing from the next listings: creating it again is
/// Metamist's 500 for a taken name, after which the listing (once it shows the project) says
/// the project is there; nothing is created twice and the run converges.
#[test]
fn a_taken_name_answered_500_is_found_in_the_listing() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.hide_new_projects_for(2);
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    fs::remove_file(root.join(".cpg-infra/metamist-lists.jsonl")).unwrap();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), desired(root), "{run}");
    assert_eq!(emulator.projects().len(), PROJECTS, "{run}");
}

#[test]
fn mass_removal_is_refused_and_nothing_is_written() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let members = root.join("datasets/perth-neuro/members.toml");
    // Every person leaves perth-neuro; only its machine accounts stay.
    let machines: String =
        fs::read_to_string(&members).unwrap().lines().filter(|l| l.contains("svc-")).collect::<Vec<_>>().join("\n");
    fs::write(&members, machines + "\n").unwrap();
    let before = emulator.projects();

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(REFUSED);
    assert_eq!(emulator.projects(), before, "{run}");
    assert_eq!(count(&emulator, "members.update"), 0);
}

#[test]
fn credentials_configuration_and_the_state_file_are_checked_before_anything_changes() {
    let org = metamist_org();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    let base = emulator.base_url();
    let args = ["groups", "sync", "--provider", "metamist", "--confirm"];
    let run = cpg_with_env(
        org.path(),
        &args,
        &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("CPG_INFRA_METAMIST_TOKEN", "wrong")],
    );
    run.expect_code(INVALID_INPUT);
    assert!(emulator.projects().is_empty());

    // Plain HTTP anywhere but loopback would send the token in the clear: refused up front.
    let run = cpg_with_env(
        org.path(),
        &args,
        &[("CPG_INFRA_METAMIST_ENDPOINT", "http://metamist.example.org/"), ("CPG_INFRA_METAMIST_TOKEN", TOKEN)],
    );
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("only on loopback"), "{run}");

    // No token and no metadata server (a closed loopback port): a configuration error.
    let run = cpg_with_env(
        org.path(),
        &args,
        &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("GCE_METADATA_HOST", "127.0.0.1:9")],
    );
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("CPG_INFRA_METAMIST_TOKEN"), "{run}");

    // A state file that is a symbolic link is never read or written through.
    #[cfg(unix)]
    {
        let target = org.path().join("elsewhere.jsonl");
        fs::write(&target, "").unwrap();
        fs::create_dir_all(org.path().join(".cpg-infra")).unwrap();
        std::os::unix::fs::symlink(&target, org.path().join(".cpg-infra/metamist-lists.jsonl")).unwrap();
        let run = sync(org.path(), &emulator, &["--confirm"]);
        run.expect_code(INVALID_INPUT);
        assert!(run.stderr.contains("symbolic link"), "{run}");
        assert_eq!(count(&emulator, "members.update"), 0);
        assert_eq!(fs::read_to_string(&target).unwrap(), "");
    }

    // Without `account` the first write would take the sync's own right to write away.
    let path = org.path().join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap().replace(&format!("account = \"{EMULATOR_CALLER}\"\n"), "");
    fs::write(&path, text).unwrap();
    let run = sync(org.path(), &emulator, &[]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("groups/org.toml:") && run.stderr.contains("needs `account`"), "{run}");
}

/// The admin roles come from the definitions: `project_admin` from an organisation group, and
/// the sync's account keeps `project_member_admin`, which is all it has when it is not in
/// Metamist's members-admin group: a second write to the same project still goes through.
#[test]
fn admin_roles_come_from_the_definitions_and_the_sync_keeps_its_own() {
    let org = metamist_org_with("[providers.metamist.main]\nproject_admin = [\"group:platform-admins\"]\n");
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.set_caller_groups(true, false);
    for project in desired(root).keys() {
        emulator.insert_project(project, &[(EMULATOR_CALLER, &["project_member_admin"])]);
    }
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), desired(root));
    let admins = emulator.holders("tob-wgs", "project_admin");
    assert!(admins.contains("wei.chen@example.org"), "platform-admins hold project_admin: {admins:?}");
    assert!(emulator.holders("tob-wgs-test", "project_admin").is_empty(), "only the main project's mapping says so");

    fs::remove_file(root.join(".cpg-infra/metamist-lists.jsonl")).unwrap();
    emulator.reset_calls();
    let again = sync(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    assert_eq!(count(&emulator, "members.update"), PROJECTS as u64, "every write still allowed: {again}");
}

/// The emulator answers as Metamist does where a client could go wrong.
#[test]
fn the_emulator_serves_only_metamists_routes_and_statuses() {
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.insert_project("tob-wgs", &[("amara@example.org", &["reader"])]);
    let api = ApiClient::connect(&emulator.base_url(), &cpg_infra::directory::GoogleAuth::AccessToken(TOKEN.into()))
        .expect("client");
    let status = |method: hyper::Method, path: &str, body: &str| {
        let codes = [405, 500, 403, 400, 422].map(|c| hyper::StatusCode::from_u16(c).unwrap());
        let json = [("content-type", "application/json")];
        match api.send_answering(method, path, body.as_bytes().to_vec(), "test", &json, &codes) {
            Ok((status, _)) => status.as_u16(),
            Err(error) => panic!("{error}"),
        }
    };
    // No route reads a project's members.
    assert_eq!(status(hyper::Method::GET, "api/v1/project/tob-wgs/members", ""), 405);
    // A taken name is an integrity error: 500.
    assert_eq!(status(hyper::Method::PUT, "api/v1/project/?name=tob-wgs&dataset=tob-wgs", ""), 500);
    // An unknown project is Forbidden, not 404.
    assert_eq!(status(hyper::Method::PATCH, "api/v1/project/nope/members", "[]"), 403);
    assert_eq!(
        status(hyper::Method::PATCH, "api/v1/project/tob-wgs/members", r#"[{"member":"a","roles":["auditor"]}]"#),
        400
    );
    assert_eq!(status(hyper::Method::PATCH, "api/v1/project/tob-wgs/members", r#"{"member":"a"}"#), 422);
    assert_eq!(emulator.holders("tob-wgs", "reader"), roles(&["amara@example.org"]), "refused writes change nothing");

    // Through the provider: an unknown project and an unknown role are refusals that name it.
    let directory = MetamistDirectory::connect(&emulator.base_url(), TOKEN, common::unpaced()).expect("connect");
    let error = directory.write_members("nope", &MemberList::new()).unwrap_err();
    assert!(!error.is_retryable() && error.to_string().contains("403"), "{error}");
    let bad: MemberList = [("a@example.org".to_owned(), roles(&["auditor"]))].into();
    let error = directory.write_members("tob-wgs", &bad).unwrap_err();
    assert!(error.to_string().contains("400") && error.to_string().contains("auditor"), "{error}");
    // Creating a project that exists is done, not an error.
    directory.create_project("tob-wgs", "tob-wgs").expect("already there");
    assert_eq!(emulator.projects().len(), 1);
    // Without Metamist's project-creators group, creating is refused for good.
    emulator.set_caller_groups(false, true);
    let error = directory.create_project("new-one", "new-one").unwrap_err();
    assert!(!error.is_retryable() && error.to_string().contains("project-creators"), "{error}");
}

/// A write Metamist refuses for good fails that project with exit 1 and names it, while the
/// other projects are written; the next run writes it again.
#[test]
fn a_refused_write_is_reported_and_retried_on_the_next_run() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    // The caller lost every right in tob-wgs (not in members-admin, no row there).
    emulator.set_caller_groups(true, false);
    for project in desired(root).keys().filter(|p| *p != "tob-wgs") {
        emulator.insert_project(project, &[(EMULATOR_CALLER, &["project_member_admin"])]);
    }
    emulator.insert_project("tob-wgs", &[]);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains("failed: tob-wgs: ") && run.stderr.contains("project_member_admin"), "{run}");
    assert_eq!(emulator.projects()["acute-care"].members, desired(root)["acute-care"]);

    emulator.set_caller_groups(true, true);
    emulator.reset_calls();
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(count(&emulator, "members.update"), 1, "only tob-wgs again: {:?}", emulator.calls());
    assert_eq!(live(&emulator, root), desired(root));
}

/// `--provider all` with both applications enabled syncs Hail Batch, then Metamist.
#[test]
fn all_providers_sync_both_applications() {
    let org = metamist_org();
    let root = org.path();
    let path = root.join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}\n[providers.hail]\nenabled = true\n{UNPACED}\n")).unwrap();
    let hail = cpg_infra::emulator::hail::HailEmulator::start(0, "hail-token").expect("hail emulator");
    let metamist = MetamistEmulator::start(0, TOKEN).expect("metamist emulator");
    let (hail_url, metamist_url) = (hail.base_url(), metamist.base_url());
    let env = [
        ("CPG_INFRA_HAIL_ENDPOINT", hail_url.as_str()),
        ("CPG_INFRA_HAIL_TOKEN", "hail-token"),
        ("CPG_INFRA_METAMIST_ENDPOINT", metamist_url.as_str()),
        ("CPG_INFRA_METAMIST_TOKEN", TOKEN),
    ];
    let run = cpg_with_env(root, &["groups", "sync", "--provider", "all", "--confirm", "--no-cache"], &env);
    run.expect_code(SUCCESS);
    let (hail_at, metamist_at) = (run.stderr.find("== Hail"), run.stderr.find("== Metamist"));
    assert!(hail_at.is_some() && hail_at < metamist_at, "hail, then metamist: {run}");
    assert!(hail.projects().contains_key("tob-wgs"), "{run}");
    assert_eq!(live(&metamist, root), desired(root), "{run}");
}

/// Without CPG_INFRA_METAMIST_TOKEN the sync asks the metadata server (as on Cloud Run) for a
/// Google identity token whose audience is `[providers.metamist] audience`, and sends it.
#[test]
fn an_identity_token_from_the_metadata_server_is_sent_when_no_token_is_given() {
    use cpg_infra::emulator::google::{identity_token_for, EmulatorOptions, GoogleEmulator};
    let org = metamist_org_with("audience = \"https://metamist.example.org\"");
    let root = org.path();
    let metadata = GoogleEmulator::start(EmulatorOptions::default()).expect("metadata server");
    let host = metadata.base_url().trim_start_matches("http://").trim_end_matches('/').to_owned();
    let emulator = MetamistEmulator::start(0, &identity_token_for("https://metamist.example.org")).expect("emulator");
    let base = emulator.base_url();
    let run = cpg_with_env(
        root,
        &["groups", "sync", "--provider", "metamist", "--no-cache", "--confirm"],
        &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("GCE_METADATA_HOST", &host)],
    );
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator, root), desired(root), "{run}");
}
