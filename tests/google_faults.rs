//! The Google provider and the sync engine when the directory misbehaves, through the Cloud
//! Identity emulator over real HTTP: transient faults, a group that cannot be created, members
//! recorded as the wrong kind, replication lag, and expiry changes.
//!
//! Every fault here is bounded per request or counted in requests, so each test converges (or
//! fails) the same way whatever the timing of threads.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cpg_infra::definitions::Date;
use cpg_infra::directory::{DirectoryError, GoogleAuth, GoogleConfig, GoogleDirectory};
use cpg_infra::emulator::google::GoogleEmulator;
use cpg_infra::emulator::FaultPlan;
use cpg_infra::hierarchy::Hierarchy;
use cpg_infra::sync::{self, Change, ReadError};

use common::google::{
    applied, apply, connect, emulator, emulator_state, example_hierarchy, expected_state, google_org, hierarchy,
    people, plan, plan_options, sync_to, CUSTOMER, DOMAIN, FAST_RETRY, TOKEN,
};
use common::{cpg_with_env, FAILURE, SUCCESS};

/// Every fault kind, on every request, exactly once per request.
fn every_request_faults_once() -> FaultPlan {
    FaultPlan {
        seed: 7,
        rate_429: 0.25,
        retry_after: Duration::from_secs(0),
        rate_503: 0.25,
        rate_500: 0.25,
        rate_drop: 0.25,
        max_faults_per_request: Some(1),
        ..FaultPlan::default()
    }
}

fn lines(plan: &sync::Plan) -> Vec<String> {
    plan.changes.iter().map(ToString::to_string).collect()
}

fn date(text: &str) -> Date {
    text.parse().expect("a date")
}

fn set_expiry(desired: &mut Hierarchy, group: &str, member: &str, expires: Option<&str>) {
    let group = desired.groups.get_mut(group).expect("group");
    match expires {
        Some(day) => group.expires.insert(member.to_owned(), date(day)),
        None => group.expires.remove(member),
    };
}

#[test]
fn sync_converges_when_every_request_faults_once_and_counts_each_retry() {
    let emulator = emulator(500);
    emulator.set_faults(every_request_faults_once());
    let directory = connect(&emulator, TOKEN);
    let desired = example_hierarchy();

    let read = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
    assert_eq!(read.retries, 1, "the one groups.list was faulted once");
    let first = sync::plan(&desired, &read.state, &plan_options());
    let report = applied(apply(&directory, &first));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // One request per change, each faulted exactly once.
    assert_eq!(report.retries, first.changes.len());
    assert_eq!(emulator_state(&emulator), expected_state(&desired));

    // A fresh read retries each member listing once (the group listing spent its fault).
    let fresh = connect(&emulator, TOKEN);
    let again = sync::read_live_state(&fresh, 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
    assert_eq!(again.retries, desired.groups.len());
    assert!(sync::plan(&desired, &again.state, &plan_options()).is_empty());
}

#[test]
fn a_listing_that_keeps_failing_names_the_call_and_the_group() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    sync_to(&directory, &hierarchy(&[("g1", people("a", 2), &[])]));
    emulator.set_faults(FaultPlan {
        rate_503: 1.0,
        methods: Some(BTreeSet::from(["groups.memberships.list".to_owned()])),
        ..FaultPlan::default()
    });
    let error = sync::read_live_state(&connect(&emulator, TOKEN), 8, &FAST_RETRY, &BTreeSet::new())
        .expect_err("every member listing fails");
    assert!(matches!(&error, ReadError::Members { group, .. } if group == "g1@groups.example.org"), "{error:?}");
    assert!(matches!(error.directory_error(), DirectoryError::Unavailable(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "listing the members of g1@groups.example.org failed: directory unavailable: \
         memberships.list g1@groups.example.org: 503: The service is currently unavailable."
    );
    assert_eq!(emulator.calls()["groups.memberships.list"], u64::from(FAST_RETRY.max_attempts));
}

#[test]
fn members_that_are_slow_to_appear_are_added_once() {
    let emulator = emulator(500);
    emulator.set_faults(FaultPlan { membership_listing_lag: 1, ..FaultPlan::default() });
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("g1", people("a", 3), &[])]);
    sync_to(&directory, &desired);
    // Reads have not caught up: the plan adds again, and the directory answers "already a member".
    let stale = plan(&connect(&emulator, TOKEN), &desired);
    assert_eq!(stale.counts().added, 3, "{stale}");
    let report = applied(apply(&directory, &stale));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(plan(&connect(&emulator, TOKEN), &desired).is_empty());
    assert_eq!(emulator_state(&emulator), expected_state(&desired));
}

#[test]
fn a_group_that_cannot_be_created_is_never_added_elsewhere() {
    let emulator = emulator(500);
    emulator.set_faults(FaultPlan {
        reject_groups: BTreeSet::from(["inner@groups.example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("outer", people("o", 2), &["inner"]), ("inner", people("i", 2), &[])]);
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!((report.created, report.added), (1, 2), "{report:?}");
    let failed: Vec<(String, String)> = report.failed.iter().map(|(c, e)| (c.to_string(), e.clone())).collect();
    let blocked = "not sent: creating inner@groups.example.org failed".to_owned();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    assert_eq!(failed[0].0, "+ create group inner@groups.example.org");
    assert!(failed[0].1.contains("groups.create inner@groups.example.org: 400"), "{failed:#?}");
    assert_eq!(
        failed[1..],
        [
            ("+ add    i000@example.org to inner@groups.example.org".to_owned(), blocked.clone()),
            ("+ add    i001@example.org to inner@groups.example.org".to_owned(), blocked.clone()),
            ("+ add    inner@groups.example.org to outer@groups.example.org".to_owned(), blocked),
        ]
    );
    assert!(!emulator.groups()["outer@groups.example.org"].members.contains_key("inner@groups.example.org"));
    assert_eq!(emulator.calls().get("groups.memberships.create"), Some(&2), "only outer's people were sent");

    // Once the group can be created, the next run nests it as a group.
    emulator.set_faults(FaultPlan::default());
    sync_to(&directory, &desired);
    assert_eq!(emulator_state(&emulator), expected_state(&desired));
    assert_eq!(emulator.groups()["outer@groups.example.org"].members["inner@groups.example.org"].kind, "GROUP");
    assert!(plan(&connect(&emulator, TOKEN), &desired).is_empty());
}

#[test]
fn members_recorded_as_the_wrong_kind_are_re_added() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("outer", people("o", 1), &["inner"]), ("inner", people("i", 1), &[])]);
    sync_to(&directory, &hierarchy(&[("outer", people("o", 1), &[])]));
    // By hand: inner's email added as a user before inner exists, and a person recorded as a group.
    emulator.add_member_directly_as("outer@groups.example.org", "inner@groups.example.org", "USER");
    emulator.add_member_directly_as("outer@groups.example.org", "o000@example.org", "GROUP");

    let drift = plan(&connect(&emulator, TOKEN), &desired);
    assert_eq!(
        lines(&drift),
        [
            "+ create group inner@groups.example.org",
            "+ add    i000@example.org to inner@groups.example.org",
            "~ re-add inner@groups.example.org to outer@groups.example.org as a group",
            "~ re-add o000@example.org to outer@groups.example.org as an account",
        ]
    );
    assert!(drift.refusals.is_empty(), "a re-add is not a removal: {drift}");
    let report = applied(apply(&directory, &drift));
    assert_eq!((report.created, report.added, report.updated), (1, 1, 2), "{report:?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let outer = &emulator.groups()["outer@groups.example.org"];
    assert_eq!(outer.members["inner@groups.example.org"].kind, "GROUP");
    assert_eq!(outer.members["o000@example.org"].kind, "USER");
    assert!(plan(&connect(&emulator, TOKEN), &desired).is_empty());
}

#[test]
fn a_group_created_by_the_last_run_and_not_yet_visible_is_not_created_twice() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("outer", people("o", 2), &["inner"]), ("inner", people("i", 2), &[])]);
    // Missing from two group listings and two direct reads after creation.
    emulator.set_faults(FaultPlan { group_listing_lag: 2, group_read_lag: 2, ..FaultPlan::default() });
    sync_to(&directory, &desired);

    // The next run does not see the groups: it creates them again, is told they exist, cannot
    // look them up yet, and retries until it can.
    let fresh = connect(&emulator, TOKEN);
    let stale = plan(&fresh, &desired);
    assert_eq!(stale.counts().created, 2, "{stale}");
    let report = applied(apply(&fresh, &stale));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.retries, 2 * 2, "each creation waited out two lookups");
    assert_eq!(emulator.groups().len(), 2);
    assert_eq!(emulator_state(&emulator), expected_state(&desired));
}

#[test]
fn a_listed_group_whose_members_cannot_be_read_yet_is_read_again() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("g1", people("a", 2), &[]), ("g2", people("b", 2), &[])]);
    emulator.set_faults(FaultPlan { group_read_lag: 2, ..FaultPlan::default() });
    sync_to(&directory, &desired);
    let read = sync::read_live_state(&connect(&emulator, TOKEN), 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
    assert_eq!(read.retries, 2 * 2, "each member listing waited out two reads");
    assert!(sync::plan(&desired, &read.state, &plan_options()).is_empty());
}

fn expire_time(emulator: &GoogleEmulator, group: &str, member: &str) -> Option<String> {
    emulator.groups()[group].members[member].expire_time.clone()
}

#[test]
fn expiry_changes_update_the_existing_membership() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let mut desired = hierarchy(&[("g1", people("a", 3), &[])]);
    set_expiry(&mut desired, "g1", "a000@example.org", Some("2027-01-31"));
    set_expiry(&mut desired, "g1", "a001@example.org", Some("2027-02-28"));
    sync_to(&directory, &desired);
    let g1 = "g1@groups.example.org";
    assert_eq!(expire_time(&emulator, g1, "a000@example.org").as_deref(), Some("2027-02-01T00:00:00Z"));

    // Moved, removed and added expiry dates.
    set_expiry(&mut desired, "g1", "a000@example.org", Some("2027-03-31"));
    set_expiry(&mut desired, "g1", "a001@example.org", None);
    set_expiry(&mut desired, "g1", "a002@example.org", Some("2027-06-30"));
    let fresh = connect(&emulator, TOKEN);
    let changes = plan(&fresh, &desired);
    assert_eq!(
        lines(&changes),
        [
            "~ expiry a000@example.org in g1@groups.example.org: 2027-01-31 → 2027-03-31",
            "~ expiry a001@example.org in g1@groups.example.org: 2027-02-28 → no end date",
            "~ expiry a002@example.org in g1@groups.example.org: no end date → 2027-06-30",
        ]
    );
    assert!(matches!(changes.changes[1], Change::SetExpiry { expires: None, .. }));
    emulator.reset_calls();
    let report = applied(apply(&fresh, &changes));
    assert_eq!((report.updated, report.added, report.removed), (3, 0, 0), "{report:?}");
    assert_eq!(
        emulator.calls().into_iter().collect::<Vec<_>>(),
        [("groups.memberships.modifyMembershipRoles".to_owned(), 3)],
        "the memberships stay: no removal, no addition"
    );
    assert_eq!(expire_time(&emulator, g1, "a000@example.org").as_deref(), Some("2027-04-01T00:00:00Z"));
    assert_eq!(expire_time(&emulator, g1, "a001@example.org"), None);
    assert_eq!(expire_time(&emulator, g1, "a002@example.org").as_deref(), Some("2027-07-01T00:00:00Z"));
    assert!(plan(&connect(&emulator, TOKEN), &desired).is_empty());
}

/// Runs `groups sync --provider google` (with `--confirm` when asked) on `org` against the emulator.
fn cli_sync(emulator: &GoogleEmulator, org: &std::path::Path, confirm: bool) -> common::Run {
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let mut args = vec!["groups", "sync", "--provider", "google"];
    if confirm {
        args.push("--confirm");
    }
    cpg_with_env(org, &args, &env)
}

#[test]
fn the_cli_finishes_a_sync_started_right_after_one_that_created_every_group() {
    let emulator = emulator(500);
    let org = google_org();
    let groups = example_hierarchy().groups.len();
    emulator.set_faults(FaultPlan { group_listing_lag: 1, group_read_lag: 1, ..FaultPlan::default() });
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    assert_eq!(emulator.groups().len(), groups);

    let second = cli_sync(&emulator, org.path(), true);
    second.expect_code(SUCCESS);
    assert!(second.stdout.contains(&format!("plan: {groups} group(s) to create")), "{second}");
    assert!(second.stdout.contains(&format!("; 0 failed; {groups} retried;")), "{second}");
    assert_eq!(emulator.groups().len(), groups, "a group was created twice");

    let third = cli_sync(&emulator, org.path(), false);
    third.expect_code(SUCCESS);
    assert!(
        third.stdout.contains("plan: 0 group(s) to create, 0 member(s) to add, 0 to remove, 0 to update"),
        "{third}"
    );
}

#[test]
fn the_cli_reports_blocked_additions_and_failed_reads_as_failures() {
    let emulator = emulator(500);
    let org = google_org();
    let analysis = "tob-wgs-analysis@groups.example.org";
    emulator.set_faults(FaultPlan { reject_groups: BTreeSet::from([analysis.to_owned()]), ..FaultPlan::default() });
    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(FAILURE);
    let blocked = format!(
        "failed: + add    {analysis} to tob-wgs-metadata-access@groups.example.org: not sent: creating {analysis} failed"
    );
    assert!(run.stderr.contains(&blocked), "{run}");
    assert!(emulator.groups().values().all(|g| !g.members.contains_key(analysis)), "{run}");

    // A directory that keeps answering 429 to one group's member listing is a failure (exit 1),
    // not an input error, and the message names the call and the group.
    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(0),
        methods: Some(BTreeSet::from(["groups.memberships.list".to_owned()])),
        ..FaultPlan::default()
    });
    let run = cli_sync(&emulator, org.path(), false);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains("error: listing the members of "), "{run}");
    assert!(run.stderr.contains("failed: memberships.list "), "{run}");
    assert!(run.stderr.contains("throttled by the directory"), "{run}");
}

#[test]
fn the_cli_moves_an_expiry_date_in_place() {
    let emulator = emulator(500);
    let org = google_org();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    let release = "tob-wgs-release-access@groups.example.org";
    let ravi = "ravi.iyer.lab@gmail.com";
    assert_eq!(expire_time(&emulator, release, ravi).as_deref(), Some("2027-04-01T00:00:00Z"));

    let members = org.path().join("datasets/tob-wgs/members.toml");
    let text = std::fs::read_to_string(&members).unwrap();
    let moved =
        text.replace(r#"{ member = "ravi", expires = 2027-03-31 }"#, r#"{ member = "ravi", expires = 2027-09-30 }"#);
    assert_ne!(text, moved, "the fixture grants ravi until 2027-03-31");
    std::fs::write(&members, moved).unwrap();

    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("~ expiry {ravi} in {release}: 2027-03-31 → 2027-09-30")), "{run}");
    assert!(run.stdout.contains("1 updated"), "{run}");
    assert_eq!(expire_time(&emulator, release, ravi).as_deref(), Some("2027-10-01T00:00:00Z"));
}

#[test]
fn an_unreachable_token_endpoint_is_an_outage_not_a_configuration_error() {
    let emulator = emulator(500);
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let subject = dir.path().join("subject-token");
    std::fs::write(&subject, "a-subject-token").unwrap();
    let credentials = dir.path().join("credentials.json");
    let file = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("http://127.0.0.1:{port}/v1/token"),
        "credential_source": { "file": subject.to_str().unwrap() },
    });
    std::fs::write(&credentials, file.to_string()).unwrap();
    let directory = GoogleDirectory::connect(&GoogleConfig {
        customer_id: CUSTOMER.to_owned(),
        groups_domain: DOMAIN.to_owned(),
        endpoint: Some(emulator.base_url()),
        auth: GoogleAuth::CredentialsFile(credentials),
        security_groups: false,
        requests: common::unpaced(),
    })
    .expect("connect");
    let error = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::new()).expect_err("no token");
    assert!(matches!(error.directory_error(), DirectoryError::Unavailable(_)), "{error}");
    assert!(error.to_string().contains("token endpoint unreachable"), "{error}");
    assert_eq!(emulator.total_calls(), 0, "no request without a token");
}
