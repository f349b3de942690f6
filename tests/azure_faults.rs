//! The Azure provider and the sync engine when Graph misbehaves, through the emulator over real
//! HTTP: transient faults on requests and on `$batch` sub-requests, throttling with and without
//! Retry-After, a group that cannot be created, and new groups that read as 404 for a while.
//!
//! Every fault here is bounded per request or counted in requests, so each test converges (or
//! fails) the same way whatever the timing of threads.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cpg_infra::directory::DirectoryError;
use cpg_infra::emulator::FaultPlan;
use cpg_infra::sync::{self, ReadError};

use common::azure::{connect, connect_with_people, emulator, emulator_state, example, plan, seed_people};
use common::google::{applied, apply, expected_state, hierarchy, people, plan_options, sync_to, FAST_RETRY, TOKEN};

/// Every fault kind, on every request and sub-request, exactly once per request.
fn every_request_faults_once(seed: u64) -> FaultPlan {
    FaultPlan {
        seed,
        rate_429: 0.25,
        retry_after: Duration::from_secs(0),
        rate_503: 0.25,
        rate_500: 0.25,
        rate_drop: 0.25,
        max_faults_per_request: Some(1),
        ..FaultPlan::default()
    }
}

#[test]
fn sync_converges_exactly_when_every_request_faults_once() {
    for seed in [7, 8, 9] {
        let emulator = emulator(999);
        let (desired, aliases) = example();
        seed_people(&emulator, &desired, &aliases);
        emulator.set_faults(every_request_faults_once(seed));
        let directory = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);

        let read = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
        assert_eq!(read.retries, 1, "the one group listing was faulted once");
        let first = sync::plan(&desired, &read.state, &plan_options());
        let report = applied(apply(&directory, &first));
        assert!(report.failed.is_empty(), "seed {seed}: {:?}", report.failed);
        assert!(report.retries > 0);
        assert_eq!(emulator_state(&emulator, &aliases), expected_state(&desired), "seed {seed}");

        // A fresh read retries each member listing once and finds nothing to do.
        let fresh = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);
        let again = sync::read_live_state(&fresh, 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
        assert_eq!(again.retries, desired.groups.len());
        assert!(sync::plan(&desired, &again.state, &plan_options()).is_empty());
    }
}

#[test]
fn removals_converge_when_batches_and_their_sub_requests_fault_once() {
    let emulator = emulator(999);
    let before = hierarchy(&[("g1", people("a", 30), &[]), ("g2", people("b", 25), &[])]);
    seed_people(&emulator, &before, &Default::default());
    sync_to(&connect(&emulator, TOKEN), &before);
    let after = hierarchy(&[("g1", people("a", 20), &[]), ("g2", people("b", 15), &[])]);
    emulator.set_faults(every_request_faults_once(11));
    let directory = connect(&emulator, TOKEN);
    let removal = plan(&directory, &after);
    assert_eq!(removal.counts().removed, 20);
    emulator.reset_calls();
    let report = applied(apply(&directory, &removal));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.removed, 20);
    assert_eq!(emulator_state(&emulator, &Default::default()), expected_state(&after));
    let calls = emulator.calls();
    // Per group: the batch faulted once, then each of its 10 sub-requests faulted once (each
    // with its own status), then everything went through.
    assert_eq!(calls.get("$batch"), Some(&6), "{calls:?}");
    assert_eq!(calls.get("$batch/groups.members.remove"), Some(&40), "{calls:?}");
}

#[test]
fn throttling_without_retry_after_falls_back_to_backoff() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("g1", people("a", 25), &[]), ("g2", people("b", 3), &["g1"])]);
    seed_people(&emulator, &desired, &Default::default());
    emulator.set_faults(FaultPlan {
        seed: 3,
        rate_429: 1.0,
        omit_retry_after: true,
        max_faults_per_request: Some(2),
        ..FaultPlan::default()
    });
    let directory = connect(&emulator, TOKEN);
    let report = sync_to(&directory, &desired);
    assert!(report.retries > 0, "{report:?}");
    assert_eq!(emulator_state(&emulator, &Default::default()), expected_state(&desired));
}

#[test]
fn new_groups_that_read_as_missing_for_a_while_are_retried() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("g1", people("a", 3), &[]), ("g2", people("b", 2), &["g1"])]);
    seed_people(&emulator, &desired, &Default::default());
    emulator.set_faults(FaultPlan { group_listing_lag: 1, group_read_lag: 2, ..FaultPlan::default() });
    sync_to(&connect(&emulator, TOKEN), &desired);
    assert_eq!(emulator_state(&emulator, &Default::default()), expected_state(&desired));

    // The next listing leaves a new group out, so the plan creates it again; the look-up by
    // nickname before the POST finds it, and no second group is made.
    let stale = plan(&connect(&emulator, TOKEN), &desired);
    assert!(stale.counts().created >= 1, "{stale}");
    emulator.reset_calls();
    let report = applied(apply(&connect(&emulator, TOKEN), &stale));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(emulator.calls().get("groups.create"), None, "{:?}", emulator.calls());
    assert!(emulator.nickname_counts().values().all(|n| *n == 1), "no duplicate groups");

    // Member listings answer 404 up to twice per new group (fewer when an earlier read, such
    // as a retried slow answer on a loaded machine, used one up), then the sync sees everything.
    let fresh = connect(&emulator, TOKEN);
    let read = sync::read_live_state(&fresh, 8, &FAST_RETRY, &BTreeSet::new()).expect("read");
    assert!((1..=4).contains(&read.retries), "at most two 404s per group, and some: {}", read.retries);
    assert!(sync::plan(&desired, &read.state, &plan_options()).is_empty());
}

#[test]
fn a_listing_that_keeps_failing_names_the_call_and_the_group() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("g1", people("a", 2), &[])]);
    seed_people(&emulator, &desired, &Default::default());
    sync_to(&connect(&emulator, TOKEN), &desired);
    emulator.set_faults(FaultPlan {
        rate_503: 1.0,
        methods: Some(BTreeSet::from(["groups.members.list".to_owned()])),
        ..FaultPlan::default()
    });
    let error = sync::read_live_state(&connect(&emulator, TOKEN), 8, &FAST_RETRY, &BTreeSet::new())
        .expect_err("every member listing fails");
    assert!(matches!(&error, ReadError::Members { group, .. } if group == "g1@groups.example.org"), "{error:?}");
    assert!(matches!(error.directory_error(), DirectoryError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("groups.members.list g1@groups.example.org: 503"), "{error}");
    assert_eq!(emulator.calls()["groups.members.list"], u64::from(FAST_RETRY.max_attempts));
}

#[test]
fn a_group_that_cannot_be_created_is_never_added_elsewhere() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("outer", people("o", 2), &["inner"]), ("inner", people("i", 2), &[])]);
    seed_people(&emulator, &desired, &Default::default());
    emulator.set_faults(FaultPlan { reject_groups: BTreeSet::from(["inner".to_owned()]), ..FaultPlan::default() });
    let directory = connect(&emulator, TOKEN);
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!((report.created, report.added), (1, 2), "{report:?}");
    let failed: Vec<String> = report.failed.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    assert_eq!(failed[0], "+ create group inner@groups.example.org");
    assert!(report.failed[0].1.contains("groups.create inner@groups.example.org: 400"), "{:?}", report.failed);
    assert!(report.failed[1..].iter().all(|(_, e)| e == "not sent: creating inner@groups.example.org failed"));
    assert_eq!(emulator.groups()["outer"].members.len(), 2);
}

#[test]
fn change_feed_rounds_converge_when_every_request_faults_once() {
    let emulator = emulator(2);
    let desired = hierarchy(&[("g1", people("a", 5), &[]), ("g2", people("b", 3), &["g1"]), ("g3", vec![], &["g2"])]);
    seed_people(&emulator, &desired, &Default::default());
    sync_to(&connect(&emulator, TOKEN), &desired);
    emulator.set_faults(every_request_faults_once(5));

    // From scratch: three pages of two groups, each page faulted once; every member named by
    // a look-up of its own (this directory has seen nobody yet), each faulted once too.
    let directory = connect(&emulator, TOKEN);
    let first = sync::read_live_state_delta(&directory, &FAST_RETRY, None).expect("a feed").expect("read");
    assert!(!first.restarted);
    assert!(sync::plan(&desired, &first.read.state, &plan_options()).is_empty());

    // A change by hand, then a round from the stored state sees it.
    emulator.remove_member_directly("g1", "a000@example.org");
    let fresh = connect(&emulator, TOKEN);
    let next = sync::read_live_state_delta(&fresh, &FAST_RETRY, Some(&first.state)).expect("a feed").expect("read");
    let plan = sync::plan(&desired, &next.read.state, &plan_options());
    assert_eq!(
        plan.changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["+ add    a000@example.org to g1@groups.example.org"]
    );
    assert!(next.read.retries > 0);
}
