//! Metamist projects synced like a directory, through the real HTTP client against the
//! Metamist emulator: each dataset with the metamist component gets its project and `-test`
//! project, members hold reader / contributor / writer from the mapped dataset roles, a sync
//! writes each changed project's list once, a no-op reads one listing and one list per
//! project, roles the sync does not manage and foreign projects are never touched.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use common::{cpg_with_env, example_org, Run, FAILURE, INVALID_INPUT, REFUSED, SUCCESS};
use cpg_infra::definitions::{DirSource, METAMIST_ROLES};
use cpg_infra::emulator::metamist::MetamistEmulator;

const TOKEN: &str = "metamist-test-token";

/// The datasets of the test organisation with the metamist component.
const DATASETS: [&str; 3] = ["acute-care", "perth-neuro", "tob-wgs"];

/// The test organisation with Metamist enabled (default role mapping).
fn metamist_org() -> tempfile::TempDir {
    let org = example_org();
    let path = org.path().join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}\n[providers.metamist]\nenabled = true\n")).unwrap();
    org
}

fn sync(root: &Path, emulator: &MetamistEmulator, args: &[&str]) -> Run {
    let mut all = vec!["groups", "sync", "--provider", "metamist", "--no-cache"];
    all.extend_from_slice(args);
    let base = emulator.base_url();
    cpg_with_env(root, &all, &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("CPG_INFRA_METAMIST_TOKEN", TOKEN)])
}

/// What every project role should hold, from the library's own reading of the definitions.
fn desired(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let today = common::TODAY.parse().unwrap();
    let expanded = cpg_infra::load::load_expanded(&DirSource::new(root), today).expect("loads");
    let settings = expanded.definitions.organisation.metamist.clone().expect("metamist settings");
    let desired = cpg_infra::apps::metamist::desired(&expanded.definitions, &expanded.hierarchy, &settings);
    desired.groups.into_iter().map(|(name, group)| (name, group.members)).collect()
}

/// What the emulator holds, in the same shape, for our projects.
fn live(emulator: &MetamistEmulator) -> BTreeMap<String, BTreeSet<String>> {
    let mut live = BTreeMap::new();
    for dataset in DATASETS {
        for project in [dataset.to_owned(), format!("{dataset}-test")] {
            for role in METAMIST_ROLES {
                live.insert(format!("{project}/{role}"), emulator.holders(&project, role));
            }
        }
    }
    live
}

fn writes(emulator: &MetamistEmulator) -> u64 {
    emulator.calls().get("members.update").copied().unwrap_or(0)
}

#[test]
fn projects_follow_the_groups_with_one_write_per_changed_project() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    // tob-wgs exists already with a project admin the sync does not manage; another lab's
    // project shares the service.
    let reader: &[&str] = &["reader"];
    emulator.insert_project(
        "tob-wgs",
        &[
            ("admin@example.org", &["project_admin"]),
            ("amara.okafor@example.org", reader),
            ("gone@example.org", reader),
            ("priya.raman@example.org", reader),
        ],
    );
    emulator.insert_project("other-lab", &[("someone@example.org", &["writer"])]);

    sync(root, &emulator, &[]).expect_code(SUCCESS);
    assert_eq!(emulator.projects().len(), 2, "a dry run creates nothing");
    assert_eq!(writes(&emulator), 0, "a dry run writes nothing");

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator), desired(root), "{run}");
    let calls = emulator.calls();
    assert_eq!(calls.get("project.create"), Some(&5), "every project but tob-wgs is created: {calls:?}");
    assert_eq!(writes(&emulator), 6, "one write per changed project: {calls:?}");
    assert_eq!(
        calls.get("members.get"),
        Some(&2),
        "only the existing project is read, and again before its write: {calls:?}"
    );
    let tob = &emulator.projects()["tob-wgs"];
    assert_eq!(tob.members["admin@example.org"], BTreeSet::from(["project_admin".to_owned()]), "unmanaged roles stay");
    assert!(!tob.members.contains_key("gone@example.org"), "a reader without a grant is removed");
    assert_eq!(emulator.holders("other-lab", "writer"), BTreeSet::from(["someone@example.org".to_owned()]));

    // The role mapping, checked by hand against the organisation: tob-wgs's data manager
    // writes the project; its analysts read it and write the test project.
    assert!(emulator.holders("tob-wgs", "writer").contains("amara.okafor@example.org"));
    assert!(emulator.holders("tob-wgs", "reader").contains("amara.okafor@example.org"));
    assert!(emulator.holders("tob-wgs-test", "writer").contains("amara.okafor@example.org"));

    // No change: one listing and one read per project, no write.
    emulator.reset_calls();
    let again = sync(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    let calls = emulator.calls();
    assert_eq!(calls.get("project.all"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("members.get"), Some(&6), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 7, "{calls:?}\n{again}");
}

#[test]
fn drift_is_repaired_in_the_drifted_project_only() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);

    // By hand: a writer of acute-care loses the role and an intruder gains it.
    let mut project = emulator.projects()["acute-care"].clone();
    let writer = emulator.holders("acute-care", "writer").into_iter().next().expect("a writer");
    project.members.get_mut(&writer).unwrap().remove("writer");
    project.members.insert("intruder@example.org".to_owned(), BTreeSet::from(["writer".to_owned()]));
    let members: Vec<(String, Vec<String>)> =
        project.members.iter().map(|(m, roles)| (m.clone(), roles.iter().cloned().collect())).collect();
    let borrowed: Vec<Vec<&str>> =
        members.iter().map(|(_, roles)| roles.iter().map(String::as_str).collect()).collect();
    let seeded: Vec<(&str, &[&str])> =
        members.iter().zip(&borrowed).map(|((m, _), roles)| (m.as_str(), roles.as_slice())).collect();
    emulator.insert_project("acute-care", &seeded);

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator), desired(root), "{run}");
    assert_eq!(writes(&emulator), 1, "only acute-care is written: {:?}", emulator.calls());
}

#[test]
fn faults_on_every_request_are_retried_until_the_projects_converge() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.fault_each_request_once(true);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator), desired(root), "{run}");
    assert!(run.stderr.contains("retried") || run.stdout.contains("retried"), "{run}");
}

/// A project created a moment ago may be missing from the next listings: the next sync tries
/// to create it again, finds it (409), reads its list and writes nothing that is already there.
#[test]
fn a_new_project_missing_from_the_listing_is_not_clobbered() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.hide_new_projects_for(3);
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(live(&emulator), desired(root), "{run}");
    assert_eq!(writes(&emulator), 0, "the lists were already right: {:?}", emulator.calls());
}

#[test]
fn mass_removal_is_refused_and_nothing_is_written() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    sync(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    let intruders: Vec<String> = (0..40).map(|i| format!("intruder{i}@example.org")).collect();
    let seeded: Vec<(&str, &[&str])> = intruders.iter().map(|m| (m.as_str(), &["reader"][..])).collect();
    emulator.insert_project("perth-neuro-test", &seeded);
    let before = emulator.projects();

    emulator.reset_calls();
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(REFUSED);
    assert_eq!(emulator.projects(), before, "{run}");
    assert_eq!(writes(&emulator), 0);
}

#[test]
fn a_rejected_token_is_configuration_and_a_missing_one_says_how_to_give_it() {
    let org = metamist_org();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    let base = emulator.base_url();
    let args = ["groups", "sync", "--provider", "metamist"];
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
    assert!(emulator.projects().is_empty());

    // No token and no metadata server (a closed loopback port): a configuration error.
    let run = cpg_with_env(
        org.path(),
        &args,
        &[("CPG_INFRA_METAMIST_ENDPOINT", &base), ("GCE_METADATA_HOST", "127.0.0.1:9")],
    );
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("CPG_INFRA_METAMIST_TOKEN"), "{run}");
}

/// A write Metamist refuses for good fails the run with exit 1 and names the project, while
/// the other projects are written all the same. (Here the list as read holds a role the
/// emulator's Metamist does not accept, which the merged list keeps and the write sends back.)
#[test]
fn a_refused_write_is_reported_and_fails_the_run() {
    let org = metamist_org();
    let root = org.path();
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.insert_project("tob-wgs", &[("odd@example.org", &["auditor"])]);
    let run = sync(root, &emulator, &["--confirm"]);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains("project.members.update tob-wgs"), "{run}");
    assert_eq!(emulator.holders("acute-care", "writer"), desired(root)["acute-care/writer"]);
}

/// `--provider all` with both applications enabled syncs Hail Batch, then Metamist, each
/// reporting on its own.
#[test]
fn all_providers_sync_both_applications() {
    let org = metamist_org();
    let root = org.path();
    let path = root.join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, format!("{text}\n[providers.hail]\nenabled = true\n")).unwrap();
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
    assert_eq!(live(&metamist), desired(root), "{run}");
}

/// Without CPG_INFRA_METAMIST_TOKEN the sync asks the metadata server (as on Cloud Run) for a
/// Google identity token whose audience is `[providers.metamist] audience`, and sends it.
#[test]
fn an_identity_token_from_the_metadata_server_is_sent_when_no_token_is_given() {
    use cpg_infra::emulator::google::{identity_token_for, EmulatorOptions, GoogleEmulator};
    let org = metamist_org();
    let root = org.path();
    let path = root.join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace(
            "[providers.metamist]\nenabled = true\n",
            "[providers.metamist]\nenabled = true\naudience = \"https://metamist.example.org\"\n",
        ),
    )
    .unwrap();
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
    assert_eq!(live(&emulator), desired(root), "{run}");
}

/// The write replaces a project's whole list, so it goes onto the list as it is when written:
/// a project admin added by hand after the sync read the project is kept.
#[test]
fn a_change_made_during_the_sync_survives_the_write() {
    use cpg_infra::directory::{Directory, MetamistDirectory};
    let emulator = MetamistEmulator::start(0, TOKEN).expect("emulator");
    emulator.insert_project("tob-wgs", &[("amara.okafor@example.org", &["reader"])]);
    let ours = BTreeMap::from([("tob-wgs".to_owned(), "tob-wgs".to_owned())]);
    let directory = MetamistDirectory::connect(&emulator.base_url(), TOKEN, ours).expect("connect");
    let readers: Vec<String> = directory.list_members("tob-wgs/reader").unwrap().into_iter().map(|m| m.email).collect();
    assert_eq!(readers, ["amara.okafor@example.org"]);

    // By hand, between the read and the write.
    emulator.insert_project(
        "tob-wgs",
        &[("amara.okafor@example.org", &["reader"]), ("admin@example.org", &["project_admin"])],
    );
    directory.add_member("tob-wgs/writer", "wei.chen@example.org", None).unwrap();
    directory.flush().unwrap();

    let project = &emulator.projects()["tob-wgs"];
    assert_eq!(project.members["admin@example.org"], BTreeSet::from(["project_admin".to_owned()]));
    assert_eq!(project.members["wei.chen@example.org"], BTreeSet::from(["writer".to_owned()]));
    assert_eq!(writes(&emulator), 1);
}
