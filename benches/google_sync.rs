//! Sync to Google Cloud Identity against the emulator with injected latency: API calls and wall
//! time for a first sync, a no-op sync of the synthetic 500-dataset organisation, and 1,000
//! changes, and the syncs after a merge that read only what changed (`--changed-since`): a
//! one-person change and a merge that changes no group. Each figure is checked against its
//! bound: no-op calls ≤ 1.05 × (1 + groups + extra pages), wall ≤ 1.2 × calls × latency /
//! concurrency, one write per change; a merged one-person change ≤ 10 calls and a merge that
//! changes nothing ≤ 1 call.
//!
//! `cargo bench --bench google_sync`; scale with BENCH_DATASETS (500), BENCH_FIRST_DATASETS
//! (25, the first sync creates every group and membership one call each), BENCH_LATENCY_MS (50)
//! and BENCH_CONCURRENCY (32).
//!
//! Pacing: the bench gives the provider a rate of a million requests a second, so pacing never
//! waits (BENCH_RATE sets another, e.g. 40, the provider's default, to time a sync under it). The emulator has no quota, and at the service's default rate (40 requests a second) a first sync
//! would take as long as pacing says it must, which measures the pacer, not the sync.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cpg_infra::definitions::{Date, Nesting, RequestRate};
use cpg_infra::directory::{Directory, GoogleAuth, GoogleConfig, GoogleDirectory, OWNER_MARKER};
use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator, SeedGroup};
use cpg_infra::hierarchy::Hierarchy;
use cpg_infra::load::load_expanded;
use cpg_infra::sync::{self, ApplyOptions, ApplyOutcome, NoProgress, Plan, PlanOptions, RemovalLimits, RetryPolicy};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };
/// The provider's page size; the emulator allows it.
const PAGE_SIZE: usize = 500;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench {
    latency: Duration,
    concurrency: usize,
    /// Requests per second the provider may send.
    rate: f64,
}

impl Bench {
    fn emulator(&self) -> GoogleEmulator {
        let options = EmulatorOptions { latency: self.latency, max_page_size: PAGE_SIZE, ..EmulatorOptions::default() };
        GoogleEmulator::start(options).expect("emulator")
    }

    fn connect(&self, emulator: &GoogleEmulator) -> GoogleDirectory {
        GoogleDirectory::connect(&GoogleConfig {
            customer_id: "C03example".to_owned(),
            groups_domain: "groups.example.org".to_owned(),
            endpoint: Some(emulator.base_url()),
            auth: GoogleAuth::AccessToken("bench".to_owned()),
            security_groups: false,
            requests: RequestRate::per_second(self.rate).expect("a valid rate"),
        })
        .expect("connect")
    }

    fn plan(&self, directory: &dyn Directory, desired: &Hierarchy) -> Plan {
        let read = sync::read_live_state(directory, self.concurrency, &RetryPolicy::default(), &BTreeSet::new())
            .expect("read live state");
        sync::plan(desired, &read.state, &plan_options())
    }

    fn apply(&self, directory: &dyn Directory, plan: &Plan) {
        let options =
            ApplyOptions { concurrency: self.concurrency, retry: RetryPolicy::default(), allow_mass_removal: true };
        match sync::apply(directory, plan, &options, &NoProgress) {
            ApplyOutcome::Applied(report) => assert!(report.failed.is_empty(), "{:?}", &report.failed[..1]),
            ApplyOutcome::Refused(reasons) => panic!("refused: {reasons:?}"),
        }
    }

    /// Prints one phase and checks its wall time against the bound for its call count.
    fn report(&self, phase: &str, calls: u64, expected_calls: u64, wall: Duration) {
        // The latency over the workers, or the pacing, whichever is slower.
        let ideal = (self.latency.as_secs_f64() * calls as f64 / self.concurrency as f64).max(calls as f64 / self.rate);
        println!(
            "{phase:<28} calls {calls:>7} (expected {expected_calls:>7})  wall {:>8.2}s  bound 1.2×{ideal:.2}s  ratio {:.2}",
            wall.as_secs_f64(),
            wall.as_secs_f64() / ideal.max(f64::EPSILON)
        );
    }
}

/// Native nesting, no limits: the bench plans what it measures.
fn plan_options() -> PlanOptions {
    PlanOptions {
        nesting: Nesting::Native,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: usize::MAX, max_removal_percent: 100 },
    }
}

fn organisation(datasets: usize, variant: u64) -> Hierarchy {
    let shape = SyntheticShape { datasets, variant, ..SyntheticShape::large() };
    load_expanded(&MemorySource::new(generate(shape)), TODAY).expect("valid synthetic organisation").hierarchy
}

/// Puts `desired` into the emulator as if synced: owned groups with their direct members.
fn seed(emulator: &GoogleEmulator, desired: &Hierarchy) {
    for group in desired.groups.values() {
        let nested = group.groups.iter().map(|child| desired.groups[child].email.clone());
        emulator.insert_group(SeedGroup {
            email: group.email.clone(),
            display_name: group.name.clone(),
            description: format!("{} [{OWNER_MARKER}]", group.description),
            members: group.members.iter().cloned().chain(nested).collect(),
            ..SeedGroup::default()
        });
    }
}

/// Listing calls for a read: one groups.list page per PAGE_SIZE groups, then per group one
/// memberships.list page per PAGE_SIZE members.
fn read_calls(desired: &Hierarchy) -> u64 {
    let pages = |n: usize| n.div_ceil(PAGE_SIZE).max(1) as u64;
    pages(desired.groups.len()) + desired.groups.values().map(|g| pages(g.members.len() + g.groups.len())).sum::<u64>()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not match skips the run.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"google_sync".contains(a.as_str())) {
        return;
    }
    let bench = Bench {
        latency: Duration::from_millis(setting("BENCH_LATENCY_MS", 50)),
        concurrency: setting("BENCH_CONCURRENCY", 32) as usize,
        rate: setting("BENCH_RATE", 1_000_000) as f64,
    };
    let datasets = setting("BENCH_DATASETS", 500) as usize;
    let first_datasets = setting("BENCH_FIRST_DATASETS", 25) as usize;
    println!(
        "latency {:?} per call, concurrency {}, page size {PAGE_SIZE}, at most {} requests a second",
        bench.latency, bench.concurrency, bench.rate
    );

    // First sync: every group and membership is one write.
    let small = organisation(first_datasets, 0);
    let emulator = bench.emulator();
    let directory = bench.connect(&emulator);
    let started = Instant::now();
    let plan = bench.plan(&directory, &small);
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    println!(
        "first sync of {first_datasets} datasets: {} groups, {} memberships, {} changes",
        small.groups.len(),
        small.membership_count(),
        plan.changes.len()
    );
    bench.report("first sync", emulator.total_calls(), 1 + plan.changes.len() as u64, wall);
    drop(emulator);

    // No-op sync of the whole organisation.
    let desired = organisation(datasets, 0);
    let emulator = bench.emulator();
    seed(&emulator, &desired);
    let directory = bench.connect(&emulator);
    let started = Instant::now();
    let plan = bench.plan(&directory, &desired);
    let wall = started.elapsed();
    assert!(plan.is_empty(), "a seeded directory should need no changes");
    println!(
        "organisation of {datasets} datasets: {} groups, {} memberships",
        desired.groups.len(),
        desired.membership_count()
    );
    let expected = read_calls(&desired);
    let calls = emulator.total_calls();
    bench.report("no-op sync", calls, expected, wall);
    assert!(calls as f64 <= 1.05 * expected as f64, "no-op calls {calls} over 1.05 × {expected}");

    // After a merge: only the groups whose desired state changed are read and planned.
    let mut merged = desired.clone();
    let group = merged.groups.values_mut().find(|g| g.name.ends_with("-analysis")).expect("an analysis group");
    group.members.insert("new.analyst@example.org".to_owned());
    for (phase, after, bound) in [("merged one-person change", &merged, 10), ("merge changing no group", &desired, 1)] {
        emulator.reset_calls();
        let started = Instant::now();
        let changed = sync::changed_groups(&desired, after, Nesting::Native);
        let read =
            sync::read_live_groups(&directory, &changed, bench.concurrency, &RetryPolicy::default(), &BTreeSet::new())
                .expect("read the changed groups");
        let plan = sync::plan_groups(after, &read.state, &plan_options(), &changed);
        bench.apply(&directory, &plan);
        let wall = started.elapsed();
        let calls = emulator.total_calls();
        bench.report(&format!("{phase} ({} group(s))", changed.len()), calls, bound, wall);
        assert!(calls <= bound, "{phase}: {calls} calls over {bound}");
    }
    // About 1,000 changes: the variant organisation moves some grants.
    let changed = organisation(datasets, 3);
    let plan = bench.plan(&directory, &changed);
    let changes = plan.changes.len() as u64;
    emulator.reset_calls();
    let started = Instant::now();
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    bench.report(&format!("apply {changes} changes"), emulator.total_calls(), changes, wall);
    assert_eq!(emulator.total_calls(), changes, "one write per change");
}
