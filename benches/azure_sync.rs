//! Sync to Azure AD against the Graph emulator with injected latency: API calls and wall time
//! for a first sync, a no-op full read of the synthetic 500-dataset organisation, 1,000
//! additions and 1,000 removals. Checked: no-op calls ≤ 1.05 × (group pages + member pages),
//! additions ≤ 1.1 × ceil(1000/20) PATCHes, removals ≤ 1.1 × ceil(1000/20) batches, and a
//! merged one-person change through the change feed ≤ 3 calls; the wall time is printed
//! against calls × latency / concurrency.
//!
//! `cargo bench --bench azure_sync`; scale with BENCH_DATASETS (500), BENCH_FIRST_DATASETS (25),
//! BENCH_LATENCY_MS (50) and BENCH_CONCURRENCY (32).
//!
//! Pacing: the bench gives the provider a rate of a million requests a second, so pacing never
//! waits. The emulator has no quota, and at the service's default rate (20 requests a second) a first sync
//! would take as long as pacing says it must, which measures the pacer, not the sync.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cpg_infra::definitions::{Date, Nesting, RequestRate};
use cpg_infra::directory::{AzureAuth, AzureConfig, AzureDirectory, Directory, OWNER_MARKER};
use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedGroup, SeedUser};
use cpg_infra::hierarchy::Hierarchy;
use cpg_infra::load::load_expanded;
use cpg_infra::sync::{self, ApplyOptions, ApplyOutcome, NoProgress, Plan, PlanOptions, RemovalLimits, RetryPolicy};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };
/// The provider's `$top`; the emulator allows it.
const PAGE_SIZE: usize = 999;
const DOMAIN: &str = "groups.example.org";
/// People added to (then removed from) groups in the write phases, 20 per group.
const CHANGES: usize = 1_000;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Bench {
    latency: Duration,
    concurrency: usize,
}

impl Bench {
    fn emulator(&self) -> AzureEmulator {
        let options = AzureEmulatorOptions { latency: self.latency, ..AzureEmulatorOptions::default() };
        AzureEmulator::start(options).expect("emulator")
    }

    fn connect(&self, emulator: &AzureEmulator) -> AzureDirectory {
        AzureDirectory::connect(&AzureConfig {
            tenant_id: "00000000-0000-4000-8000-000000000000".to_owned(),
            groups_domain: DOMAIN.to_owned(),
            endpoint: Some(emulator.base_url()),
            authority: None,
            auth: AzureAuth::AccessToken { token: "bench".to_owned(), source: "the bench".to_owned() },
            people: BTreeMap::new(),
            identities: Vec::new(),
            requests: RequestRate::per_second(1_000_000.0).expect("a valid rate"),
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

    fn report(&self, phase: &str, calls: u64, bound: &str, wall: Duration) {
        let ideal = self.latency.as_secs_f64() * calls as f64 / self.concurrency as f64;
        println!(
            "{phase:<26} calls {calls:>6} ({bound})  wall {:>7.2}s  calls×latency/concurrency {ideal:.2}s  ratio {:.2}",
            wall.as_secs_f64(),
            wall.as_secs_f64() / ideal.max(f64::EPSILON)
        );
    }
}

fn organisation(datasets: usize) -> Hierarchy {
    let shape = SyntheticShape { datasets, ..SyntheticShape::large() };
    load_expanded(&MemorySource::new(generate(shape)), TODAY).expect("valid synthetic organisation").hierarchy
}

fn nickname(email: &str) -> &str {
    email.split('@').next().unwrap_or(email)
}

/// A user for every person in `desired`, and `extra` more named `new{i}@example.org`.
fn seed_users(emulator: &AzureEmulator, desired: &Hierarchy, extra: usize) {
    let people: BTreeSet<String> = desired.groups.values().flat_map(|g| g.members.iter().cloned()).collect();
    for email in people.into_iter().chain((0..extra).map(new_person)) {
        emulator.insert_user(SeedUser {
            user_principal_name: email.clone(),
            mail: Some(email.clone()),
            display_name: email,
        });
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

fn new_person(index: usize) -> String {
    format!("new{index:04}@example.org")
}

/// Puts `desired` into the emulator as if synced, nested groups first.
fn seed_groups(emulator: &AzureEmulator, desired: &Hierarchy) {
    for name in desired.bottom_up_order() {
        let group = &desired.groups[name];
        let nested = group.groups.iter().map(|child| nickname(&desired.groups[child].email).to_owned());
        emulator.insert_group(SeedGroup {
            display_name: nickname(&group.email).to_owned(),
            mail_nickname: nickname(&group.email).to_owned(),
            description: format!("{} [{OWNER_MARKER}]", group.description),
            members: group.members.iter().cloned().chain(nested).collect(),
        });
    }
}

/// Group pages, then per group its member pages.
fn read_calls(desired: &Hierarchy) -> u64 {
    let pages = |n: usize| n.div_ceil(PAGE_SIZE).max(1) as u64;
    pages(desired.groups.len()) + desired.groups.values().map(|g| pages(g.members.len() + g.groups.len())).sum::<u64>()
}

fn main() {
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"azure_sync".contains(a.as_str())) {
        return;
    }
    let bench = Bench {
        latency: Duration::from_millis(setting("BENCH_LATENCY_MS", 50)),
        concurrency: setting("BENCH_CONCURRENCY", 32) as usize,
    };
    let datasets = setting("BENCH_DATASETS", 500) as usize;
    let first_datasets = setting("BENCH_FIRST_DATASETS", 25) as usize;
    println!("latency {:?} per call, concurrency {}, page size {PAGE_SIZE}", bench.latency, bench.concurrency);

    // First sync: one creation per group, one PATCH per 20 members of a group, one look-up per person.
    let small = organisation(first_datasets);
    let emulator = bench.emulator();
    seed_users(&emulator, &small, 0);
    let directory = bench.connect(&emulator);
    let started = Instant::now();
    let plan = bench.plan(&directory, &small);
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    let calls = emulator.calls();
    let chunks: u64 = small.groups.values().map(|g| (g.members.len() + g.groups.len()).div_ceil(20) as u64).sum();
    println!(
        "first sync of {first_datasets} datasets: {} groups, {} memberships; calls {calls:?}",
        small.groups.len(),
        small.membership_count()
    );
    let writes = calls.get("groups.create").copied().unwrap_or(0) + calls.get("groups.update").copied().unwrap_or(0);
    bench.report(
        "first sync",
        emulator.total_calls(),
        &format!("writes {writes} ≤ groups + chunks {}", small.groups.len() as u64 + chunks),
        wall,
    );
    assert!(writes <= small.groups.len() as u64 + chunks);
    drop(emulator);

    // No-op full read of the whole organisation.
    let desired = organisation(datasets);
    let emulator = bench.emulator();
    seed_users(&emulator, &desired, CHANGES);
    seed_groups(&emulator, &desired);
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
    bench.report("no-op sync (full read)", calls, &format!("expected {expected}"), wall);
    assert!(calls as f64 <= 1.05 * expected as f64, "no-op calls {calls} over 1.05 × {expected}");

    // After a merge: the change feed reads what changed since the last run, then one addition.
    let retry = RetryPolicy::default();
    let first = sync::read_live_state_delta(&directory, &retry, None).expect("a change feed").expect("read the feed");
    let mut merged = desired.clone();
    let group = merged.groups.values_mut().find(|g| g.name.ends_with("-analysis")).expect("an analysis group");
    group.members.insert(new_person(0));
    emulator.reset_calls();
    let started = Instant::now();
    let read = sync::read_live_state_delta(&directory, &retry, Some(&first.state)).expect("a feed").expect("read");
    let plan = sync::plan(&merged, &read.read.state, &plan_options());
    assert_eq!(plan.changes.len(), 1, "one person joins one group");
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    let calls = emulator.total_calls();
    bench.report("merged one-person change", calls, "change feed, bound 3", wall);
    assert!(calls <= 3, "a merged one-person change took {calls} calls");
    // Back to the seeded organisation for the phases below (not measured).
    bench.apply(&directory, &bench.plan(&directory, &desired));

    // 1,000 additions: 20 new people in each of 50 groups.
    let mut grown = desired.clone();
    let targets: Vec<String> =
        grown.groups.keys().step_by(grown.groups.len() / (CHANGES / 20)).take(CHANGES / 20).cloned().collect();
    for (index, name) in targets.iter().enumerate() {
        let group = grown.groups.get_mut(name).expect("group");
        group.members.extend((0..20).map(|i| new_person(index * 20 + i)));
    }
    let plan = bench.plan(&directory, &grown);
    assert_eq!(plan.counts().added, CHANGES);
    emulator.reset_calls();
    let started = Instant::now();
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    let calls = emulator.calls();
    let patches = calls.get("groups.update").copied().unwrap_or(0);
    let bound = 1.1 * CHANGES.div_ceil(20) as f64;
    bench.report(
        &format!("{CHANGES} additions"),
        emulator.total_calls(),
        &format!(
            "PATCHes {patches} ≤ {bound:.0}; people looked up {} in {} batches",
            calls.get("$batch/users.list").copied().unwrap_or(0) + calls.get("users.list").copied().unwrap_or(0),
            calls.get("$batch").copied().unwrap_or(0)
        ),
        wall,
    );
    assert!(patches as f64 <= bound, "{patches} PATCHes");

    // 1,000 removals: the same people leave again.
    let plan = bench.plan(&directory, &desired);
    assert_eq!(plan.counts().removed, CHANGES);
    emulator.reset_calls();
    let started = Instant::now();
    bench.apply(&directory, &plan);
    let wall = started.elapsed();
    let calls = emulator.calls();
    let batches = calls.get("$batch").copied().unwrap_or(0);
    bench.report(
        &format!("{CHANGES} removals"),
        emulator.total_calls(),
        &format!("batches {batches} ≤ {bound:.0}"),
        wall,
    );
    assert!(batches as f64 <= bound, "{batches} batches");
}
