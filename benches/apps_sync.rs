//! Hail Batch billing projects and Metamist projects of the synthetic organisation (every
//! dataset with both components), synced against their emulators: a first sync, a no-op and
//! one changed member. Each figure is checked against its bound: a no-op writes nothing and
//! reads Hail Batch's listing (which carries every project's users) or Metamist's listing only
//! (Metamist cannot be read back: the lists last written are kept in a state file); Metamist
//! writes each changed project once.
//!
//! `cargo bench --bench apps_sync`; scale with BENCH_DATASETS (500) and BENCH_CONCURRENCY (16).
//!
//! Pacing: the bench gives each provider a rate of a million requests a second, so pacing never
//! waits. The emulators have no quota, and at the services' default rate (10 requests a
//! second) a first sync would take as long as pacing says it must, which measures the pacer,
//! not the sync.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cpg_infra::apps;
use cpg_infra::apps::metamist::{MemberList, MetamistProject};
use cpg_infra::definitions::{Date, HailSettings, MetamistSettings, Nesting, RequestRate};
use cpg_infra::directory::{Directory, HailConfig, HailDirectory, ListDirectory, MetamistDirectory};
use cpg_infra::emulator::hail::HailEmulator;
use cpg_infra::emulator::metamist::MetamistEmulator;
use cpg_infra::hierarchy::Hierarchy;
use cpg_infra::load::{load_expanded, Expanded};
use cpg_infra::sync::{
    self, ApplyOptions, ApplyOutcome, ListOutcome, ListPlanOptions, NoProgress, PlanOptions, RemovalLimits,
    RetryPolicy, StateReader,
};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };
const TOKEN: &str = "bench";

/// Far above what the bench sends: pacing never waits (see the module comment).
fn unpaced() -> RequestRate {
    RequestRate::per_second(1_000_000.0).expect("a valid rate")
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The synthetic organisation with the hail and metamist components on every dataset.
fn organisation(datasets: usize) -> Expanded {
    let mut files = generate(SyntheticShape { datasets, ..SyntheticShape::large() });
    for (path, text) in files.iter_mut() {
        if path.ends_with("/dataset.toml") {
            *text = text.replacen("components = [", "components = [\"hail\", \"metamist\", ", 1);
        }
    }
    load_expanded(&MemorySource::new(files), TODAY).expect("valid")
}

struct Outcome {
    changes: usize,
    calls: u64,
    took: Duration,
}

/// Reads, plans and applies `desired`; the calls the directory sent.
fn sync_once(directory: &dyn Directory, desired: &Hierarchy, concurrency: usize) -> Outcome {
    let started = Instant::now();
    let before = directory.api_calls().unwrap_or(0);
    let retry = RetryPolicy::default();
    let read = sync::read_live_state(directory, concurrency, &retry, &BTreeSet::new()).expect("read");
    let options = PlanOptions {
        nesting: Nesting::Native,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: usize::MAX, max_removal_percent: 100 },
    };
    let plan = sync::plan(desired, &read.state, &options);
    let apply = ApplyOptions { concurrency, retry, allow_mass_removal: false };
    match sync::apply(directory, &plan, &apply, &NoProgress) {
        ApplyOutcome::Applied(report) => assert!(report.succeeded(), "{report:?}"),
        ApplyOutcome::Refused(refusals) => panic!("refused: {refusals:?}"),
    }
    Outcome { changes: plan.changes.len(), calls: directory.api_calls().unwrap_or(0) - before, took: started.elapsed() }
}

/// The same hierarchy with one member taken out of its first non-empty group.
fn one_member_fewer(desired: &Hierarchy) -> Hierarchy {
    let mut changed = desired.clone();
    let group = changed.groups.values_mut().find(|g| !g.members.is_empty()).expect("a group with members");
    let member = group.members.iter().next().cloned().expect("a member");
    group.members.remove(&member);
    changed
}

fn report(app: &str, step: &str, outcome: &Outcome) {
    println!("{app} {step}: {} change(s), {} call(s), {:.2?}", outcome.changes, outcome.calls, outcome.took);
}

fn main() {
    let datasets = setting("BENCH_DATASETS", 500) as usize;
    let concurrency = setting("BENCH_CONCURRENCY", 16) as usize;
    let started = Instant::now();
    let expanded = organisation(datasets);
    println!("{datasets} datasets loaded in {:.2?}", started.elapsed());

    let hail = HailSettings {
        enabled: true,
        endpoint: None,
        auth_endpoint: None,
        aggregator: Some("billing-aggregator".to_owned()),
        account_usernames: "{dataset}-{level}".to_owned(),
        requests: unpaced(),
    };
    let hail = apps::hail::desired(&expanded.definitions, &expanded.hierarchy, &hail);
    let desired = hail.projects;
    let projects = desired.groups.len() as u64;
    let emulator = HailEmulator::start(0, TOKEN).expect("hail emulator");
    // The aggregator exists; the datasets' users are created by the first sync.
    emulator.insert_users(&["billing-aggregator"]);
    let config = HailConfig {
        endpoint: emulator.base_url(),
        auth_endpoint: emulator.base_url(),
        token: TOKEN.to_owned(),
        ours: desired.groups.keys().cloned().collect(),
        machine_users: hail.machine_users.clone(),
        requests: unpaced(),
    };
    let directory = HailDirectory::connect(&config).expect("connect");
    let first = sync_once(&directory, &desired, concurrency);
    report("hail", "first sync", &first);
    // The listing, one call per change, one read-back per created project, the auth
    // service's listing and one creation per dataset user.
    let users = hail.machine_users.len() as u64;
    assert_eq!(first.calls, 1 + first.changes as u64 + projects + 1 + users, "calls of the first sync");
    assert!(first.changes as u64 > projects, "every project created and filled");
    let noop = sync_once(&directory, &desired, concurrency);
    report("hail", "no-op", &noop);
    assert_eq!((noop.changes, noop.calls), (0, 1), "the listing carries every project's users");
    let one = sync_once(&directory, &one_member_fewer(&desired), concurrency);
    report("hail", "one removal", &one);
    assert_eq!((one.changes, one.calls), (1, 2), "the listing and one removal");

    let metamist = MetamistSettings {
        enabled: true,
        endpoint: None,
        audience: None,
        account: Some("cpg-infra-sync@example.org".to_owned()),
        state_file: String::new(),
        main: MetamistSettings::default_roles(false),
        test: MetamistSettings::default_roles(true),
        requests: unpaced(),
    };
    let aliases = expanded.definitions.google_accounts();
    let ours = apps::metamist::projects(&expanded.definitions);
    let projects = ours.len() as u64;
    let emulator = MetamistEmulator::start(0, TOKEN).expect("metamist emulator");
    let state = tempfile::tempdir().expect("state folder");
    let state = state.path().join("metamist-lists.jsonl");
    let directory = MetamistDirectory::connect(&emulator.base_url(), TOKEN, unpaced()).expect("connect");
    let base = |p: &MetamistProject| {
        apps::metamist::member_list(&expanded.definitions, &expanded.hierarchy, &metamist, &aliases, p)
    };
    let run = |desired: &(dyn Fn(&MetamistProject) -> MemberList + Sync)| {
        let started = Instant::now();
        let before = emulator.calls().values().sum::<u64>();
        let listed = directory.list_projects().expect("listing");
        let options = ListPlanOptions {
            full_write: false,
            limits: RemovalLimits { max_removals: usize::MAX, max_removal_percent: 100 },
            lines: Some(1_000),
        };
        let mut reader = StateReader::open(&state).expect("state");
        let plan = sync::plan_lists(&ours, desired, &listed, &mut reader, &options).expect("plan");
        let apply = ApplyOptions { concurrency, retry: RetryPolicy::default(), allow_mass_removal: true };
        let ListOutcome::Applied(report) = sync::apply_lists(&directory, &plan, desired, &apply, &NoProgress) else {
            panic!("refused")
        };
        assert!(report.failed.is_empty(), "{report:?}");
        sync::save_state(&state, &ours, &report.written_projects, &report.failed_projects(), desired)
            .expect("state saved");
        let calls = emulator.calls();
        Outcome { changes: plan.writes.len(), calls: calls.values().sum::<u64>() - before, took: started.elapsed() }
    };
    let first = run(&base);
    report("metamist", "first sync", &first);
    assert_eq!(first.calls, 1 + 2 * projects, "one listing, one creation and one write per project");
    let noop = run(&base);
    report("metamist", "no-op", &noop);
    assert_eq!((noop.changes, noop.calls), (0, 1), "one listing, no write");
    let first_project = ours[0].name.clone();
    let one_fewer = |p: &MetamistProject| {
        let mut list = base(p);
        if p.name == first_project {
            let member = list.keys().next().cloned().expect("a member");
            list.remove(&member);
        }
        list
    };
    let one = run(&one_fewer);
    report("metamist", "one removal", &one);
    assert_eq!((one.changes, one.calls), (1, 2), "the listing and one write");
}
