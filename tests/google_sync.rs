//! The Google provider and the sync engine against the Cloud Identity emulator, over real HTTP
//! with the real client crate: convergence, call counts, paging, drift, ownership, safety
//! limits, injected faults and credentials.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cpg_infra::definitions::RequestRate;
use cpg_infra::directory::{Directory, DirectoryError};
use cpg_infra::emulator::google::SeedGroup;
use cpg_infra::emulator::FaultPlan;
use cpg_infra::pacing::{Clock, Pacer, VirtualClock};
use cpg_infra::sync::{self, ApplyOutcome};

use common::google::{
    applied, apply, connect, connect_with, emulator, emulator_state, example_hierarchy, expected_state, google_org,
    hierarchy, people, plan, sync_to, FAST_RETRY, TOKEN,
};
use common::{copy_example_org, cpg_with_env, FAILURE, INVALID_INPUT, SUCCESS};

#[test]
fn first_sync_creates_everything_and_the_second_is_a_no_op_with_one_list_per_group() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let desired = example_hierarchy();

    let first = plan(&directory, &desired);
    let counts = first.counts();
    assert_eq!(counts.created, desired.groups.len());
    assert_eq!(counts.added, desired.membership_count());
    assert_eq!((counts.updated, counts.removed), (0, 0));
    let report = applied(apply(&directory, &first));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.created, desired.groups.len());
    assert_eq!(emulator_state(&emulator), expected_state(&desired));

    // Owned groups carry the marker; Google Groups carry the discussion-forum label, and
    // security groups only when configured.
    for group in emulator.groups().values() {
        assert!(group.description.contains("managed-by: cpg-infra"), "{group:?}");
        assert!(group.labels.contains_key("cloudidentity.googleapis.com/groups.discussion_forum"), "{group:?}");
        assert!(!group.labels.contains_key("cloudidentity.googleapis.com/groups.security"), "{group:?}");
    }
    let secure = self::emulator(500);
    sync_to(&connect_with(&secure, TOKEN, true), &hierarchy(&[("g1", people("a", 1), &[])]));
    let labels = &secure.groups()["g1@groups.example.org"].labels;
    assert!(labels.contains_key("cloudidentity.googleapis.com/groups.security"), "{labels:?}");

    // A fresh provider (no cached names) plans nothing, with one groups.list and one
    // memberships.list per group: never a call per membership.
    let fresh = connect(&emulator, TOKEN);
    emulator.reset_calls();
    let second = plan(&fresh, &desired);
    assert!(second.is_empty(), "{second}");
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.list"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("groups.memberships.list"), Some(&(desired.groups.len() as u64)), "{calls:?}");
    assert_eq!(emulator.total_calls(), 1 + desired.groups.len() as u64, "{calls:?}");
    assert_eq!(fresh.api_calls(), Some(emulator.total_calls()));
}

#[test]
fn listings_follow_pages() {
    // 7 groups and a 70-member group with pages of 3: 3 pages of groups, 24 of members.
    let emulator = emulator(3);
    let directory = connect(&emulator, TOKEN);
    let mut groups: Vec<(&str, Vec<String>, &[&str])> = vec![("big", people("p", 70), &[])];
    let names = ["g1", "g2", "g3", "g4", "g5", "g6"];
    for name in names {
        groups.push((name, people(name, 2), &["big"]));
    }
    let desired = hierarchy(&groups);
    sync_to(&directory, &desired);
    assert_eq!(emulator_state(&emulator), expected_state(&desired));

    let fresh = connect(&emulator, TOKEN);
    emulator.reset_calls();
    assert!(plan(&fresh, &desired).is_empty());
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.list"), Some(&3), "{calls:?}");
    // big: 70 members → 24 pages; each small group: 3 members (2 people + big) → 1 page.
    assert_eq!(calls.get("groups.memberships.list"), Some(&(24 + 6)), "{calls:?}");
}

#[test]
fn drift_is_reverted() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let desired = example_hierarchy();
    sync_to(&directory, &desired);

    let analysis = "tob-wgs-analysis@groups.example.org";
    let web = "tob-wgs-web-access@groups.example.org";
    let removed_by_hand = desired.groups["tob-wgs-web-access"].members.iter().next().expect("a member").clone();
    emulator.add_member_directly(analysis, "stranger@elsewhere.example.com");
    emulator.remove_member_directly(web, &removed_by_hand);

    let fresh = connect(&emulator, TOKEN);
    let drift = plan(&fresh, &desired);
    let lines: Vec<String> = drift.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("+ add    {removed_by_hand} to {web}"),
            format!("- remove stranger@elsewhere.example.com from {analysis}")
        ]
    );
    let report = applied(apply(&fresh, &drift));
    assert_eq!((report.added, report.removed, report.failed.len()), (1, 1, 0));
    assert_eq!(emulator_state(&emulator), expected_state(&desired));
    assert!(plan(&connect(&emulator, TOKEN), &desired).is_empty());
}

#[test]
fn groups_without_the_marker_are_conflicts_and_untouched() {
    let emulator = emulator(500);
    let members = vec!["someone@example.org".to_owned()];
    emulator.insert_group(SeedGroup {
        email: "g1@groups.example.org".to_owned(),
        display_name: "g1".to_owned(),
        description: "made by hand".to_owned(),
        labels: BTreeMap::new(),
        members: members.clone(),
    });
    let directory = connect(&emulator, TOKEN);
    let desired = hierarchy(&[("g1", people("a", 2), &[]), ("g2", people("b", 2), &[])]);
    let plan = plan(&directory, &desired);
    assert_eq!(plan.conflicts.len(), 1, "{plan}");
    assert_eq!(plan.conflicts[0].group, "g1@groups.example.org");
    assert!(plan.changes.iter().all(|c| !c.to_string().contains("g1@")), "{plan}");
    applied(apply(&directory, &plan));
    let state = emulator_state(&emulator);
    assert_eq!(state["g1@groups.example.org"], members.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(state["g2@groups.example.org"].len(), 2);
    // The provider also refuses on its own if asked to touch it.
    assert!(directory.add_member("g1@groups.example.org", "x@example.org", None).is_err());
    let not_owned = Err(DirectoryError::NotOwned("g1@groups.example.org".to_owned()));
    assert_eq!(directory.set_expiry("g1@groups.example.org", "someone@example.org", None), not_owned);
    assert_eq!(directory.remove_member("g1@groups.example.org", "someone@example.org"), not_owned);
    assert!(!emulator.calls().contains_key("groups.memberships.modifyMembershipRoles"));
}

#[test]
fn a_plan_over_the_removal_limit_applies_nothing() {
    let emulator = emulator(500);
    let directory = connect(&emulator, TOKEN);
    let before = hierarchy(&[("g1", people("a", 10), &[]), ("g2", people("b", 4), &[])]);
    sync_to(&directory, &before);
    let snapshot = emulator_state(&emulator);

    // g1 loses 8 of 10 members (over 50%), g2 is emptied, and one member is added.
    let mut after_g1 = people("a", 2);
    after_g1.push("new@example.org".to_owned());
    let after = hierarchy(&[("g1", after_g1, &[]), ("g2", vec![], &[])]);
    let plan = plan(&directory, &after);
    assert_eq!(plan.refusals.len(), 2, "{plan}");
    emulator.reset_calls();
    assert!(matches!(apply(&directory, &plan), ApplyOutcome::Refused(_)));
    assert_eq!(emulator.total_calls(), 0, "a refused plan sent requests");
    assert_eq!(emulator_state(&emulator), snapshot);
}

#[test]
fn one_rejected_member_does_not_block_the_rest() {
    let emulator = emulator(500);
    emulator.set_faults(FaultPlan {
        reject_members: BTreeSet::from(["bad@example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let directory = connect(&emulator, TOKEN);
    let mut members = people("a", 5);
    members.push("bad@example.org".to_owned());
    let desired = hierarchy(&[("g1", members, &[]), ("g2", people("b", 3), &[])]);
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(report.failed[0].0.to_string().contains("bad@example.org"));
    assert_eq!(report.added, 8);
    assert_eq!(report.retries, 0, "a rejection is permanent and must not be retried");
    let state = emulator_state(&emulator);
    assert_eq!(state["g1@groups.example.org"].len(), 5);
    assert_eq!(state["g2@groups.example.org"].len(), 3);
}

/// Every request goes through the provider's one bucket. On a virtual clock, a sync at 5
/// requests a second with bursts of 2 ends exactly when its requests' slots at that rate say,
/// whatever its 8 workers do at once; and a 429's Retry-After pauses the bucket, so the next
/// request, from whichever worker, waits it out.
#[test]
fn every_request_is_paced_by_one_bucket_and_retry_after_pauses_it() {
    let emulator = emulator(500);
    let clock = Arc::new(VirtualClock::new());
    let rate = RequestRate::new(5.0, 2).expect("a valid rate");
    let pacer = Arc::new(Pacer::with_clock(rate, clock.clone()));
    let directory = connect(&emulator, TOKEN).with_pacer(pacer.clone());
    let desired = hierarchy(&[("g1", people("a", 6), &[]), ("g2", people("b", 4), &["g1"]), ("g3", vec![], &[])]);
    let report = sync_to(&directory, &desired);
    let calls = emulator.total_calls();
    assert_eq!(calls, 15, "one listing, three creations, eleven additions");
    assert_eq!((pacer.requests(), report.api_calls), (calls, Some(calls)), "the emulator saw only paced requests");
    // Two go at once, then one every 200 ms.
    let interval = Duration::from_millis(200);
    assert_eq!(clock.now(), interval * (calls as u32 - 2));

    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(3),
        max_faults: Some(1),
        ..FaultPlan::default()
    });
    let throttled = directory.list_groups().expect_err("a 429");
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)), "{throttled}");
    let after_429 = clock.now();
    directory.list_groups().expect("one fault only");
    assert_eq!(clock.now() - after_429, Duration::from_secs(3) + interval, "the pause, then the steady rate");
}

#[test]
fn bad_credentials_give_a_clear_error() {
    let emulator = emulator(500);
    let directory = connect(&emulator, "wrong-token");
    let error = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::new()).expect_err("401");
    assert!(error.to_string().contains("authentication failed"), "{error}");
}

#[test]
fn the_cli_syncs_to_google_and_exit_codes_say_what_happened() {
    let emulator = emulator(500);
    let org = google_org();
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let args = ["groups", "sync", "--provider", "google"];

    let dry = cpg_with_env(org.path(), &args, &env);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains("+ create group tob-wgs-analysis@groups.example.org"), "{dry}");
    assert!(emulator.groups().is_empty(), "a dry run changed the directory");

    let confirm = [&args[..], &["--confirm"]].concat();
    let run = cpg_with_env(org.path(), &confirm, &env);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("API call(s)"), "{run}");
    let again = cpg_with_env(org.path(), &confirm, &env);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains("plan: 0 group(s) to create, 0 member(s) to add, 0 to remove"), "{again}");

    // Ravi uses a separate Google account, and his grant expires on 2027-03-31: access lasts
    // through that day.
    let release = &emulator.groups()["tob-wgs-release-access@groups.example.org"];
    assert!(!release.members.contains_key("ravi.iyer@example.org"), "{release:?}");
    let ravi = &release.members["ravi.iyer.lab@gmail.com"];
    assert_eq!(ravi.expire_time.as_deref(), Some("2027-04-01T00:00:00Z"), "{ravi:?}");
    assert_eq!(ravi.roles, ["MEMBER"]);
    assert!(
        dry.stdout.contains(
            "+ add    ravi.iyer.lab@gmail.com to tob-wgs-release-access@groups.example.org (until 2027-03-31)"
        ),
        "{dry}"
    );

    // A rejected member makes the exit code 1.
    emulator.remove_member_directly("tob-wgs-analysis@groups.example.org", "tob-wgs-data-manager@groups.example.org");
    emulator.set_faults(FaultPlan {
        reject_members: BTreeSet::from(["tob-wgs-data-manager@groups.example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let failed = cpg_with_env(org.path(), &confirm, &env);
    failed.expect_code(FAILURE);
    assert!(failed.stderr.contains("failed: + add    tob-wgs-data-manager@groups.example.org"), "{failed}");

    // Wrong credentials are a configuration error.
    let bad = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", "wrong")];
    let run = cpg_with_env(org.path(), &args, &bad);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("authentication failed"), "{run}");

    // Plain HTTP to anything but loopback is refused before any request.
    let remote = [("CPG_INFRA_GOOGLE_ENDPOINT", "http://203.0.113.9/"), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let run = cpg_with_env(org.path(), &args, &remote);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("only on loopback"), "{run}");

    // A credentials file that is not one is named in the error.
    let bad_file = org.path().join("credentials.json");
    std::fs::write(&bad_file, "not json").unwrap();
    let bad_file = bad_file.to_str().unwrap();
    let run = cpg_with_env(
        org.path(),
        &args,
        &[("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("GOOGLE_APPLICATION_CREDENTIALS", bad_file)],
    );
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("credentials.json: not JSON"), "{run}");
    let unsupported = org.path().join("unsupported.json");
    std::fs::write(&unsupported, r#"{"type": "api_key"}"#).unwrap();
    let run = cpg_with_env(
        org.path(),
        &args,
        &[
            ("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()),
            ("GOOGLE_APPLICATION_CREDENTIALS", unsupported.to_str().unwrap()),
        ],
    );
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("unsupported credentials type"), "{run}");

    // Missing credentials are a configuration error too.
    let none = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str())];
    let run = cpg_with_env(org.path(), &args, &none);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("no Google credentials"), "{run}");
}

#[test]
fn the_provider_must_be_enabled() {
    let org = tempfile::tempdir().unwrap();
    copy_example_org(org.path());
    let run = cpg_with_env(org.path(), &["groups", "sync", "--provider", "google"], &[]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("not enabled"), "{run}");
}
