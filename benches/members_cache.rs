//! The members cache in a GCS bucket on the emulator (with injected latency), for the synthetic
//! organisation: a first full write, a no-op refresh, and a refresh after a small change. Each
//! figure is checked against its bound: the no-op sends listing calls only (one per page of
//! 1,000 objects), a write sends one upload per changed file.
//!
//! `cargo bench --bench members_cache`; scale with BENCH_DATASETS (500) and BENCH_LATENCY_MS (5).

use std::time::{Duration, Instant};

use cpg_infra::cache::{self, CacheStore, GcsStore};
use cpg_infra::definitions::Date;
use cpg_infra::directory::GoogleAuth;
use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator};
use cpg_infra::load::load_expanded;
use cpg_infra::sync::RetryPolicy;
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn refresh(store: &GcsStore, desired: &std::collections::BTreeMap<String, String>) -> (usize, u64, Duration) {
    let started = Instant::now();
    let before = store.calls();
    let retry = RetryPolicy::default();
    let (live, _) = cache::read(store, &retry);
    let plan = cache::plan(desired, &live.expect("listing"));
    let report = cache::apply(store, &plan, desired, &retry);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    (plan.writes.len() + plan.deletes.len(), store.calls() - before, started.elapsed())
}

fn main() {
    let datasets = setting("BENCH_DATASETS", 500) as usize;
    let latency = Duration::from_millis(setting("BENCH_LATENCY_MS", 5));
    let emulator =
        GoogleEmulator::start(EmulatorOptions { latency, max_page_size: 1000, ..EmulatorOptions::default() })
            .expect("emulator");
    let expanded =
        load_expanded(&MemorySource::new(generate(SyntheticShape { datasets, ..SyntheticShape::large() })), TODAY)
            .expect("valid");
    let bucket = cpg_infra::infra::members_cache_bucket(&expanded.definitions);
    emulator.create_bucket(&bucket);
    let auth = GoogleAuth::AccessToken("bench".to_owned());
    let store = GcsStore::connect(&bucket, Some(&emulator.base_url()), &auth).expect("connect");
    let desired = cache::desired_files(&expanded.definitions, &expanded.hierarchy);
    let pages = desired.len().div_ceil(1000) as u64;

    let (changed, calls, took) = refresh(&store, &desired);
    println!("first write: {changed} file(s), {calls} call(s), {took:.2?} ({datasets} datasets, {latency:?} latency)");
    assert_eq!(calls, 1 + changed as u64, "one listing and one upload per file");

    let (changed, calls, took) = refresh(&store, &desired);
    println!("no-op refresh: {changed} file(s), {calls} call(s), {took:.2?}");
    assert_eq!((changed, calls), (0, pages), "a no-op only lists");

    let mut edited = desired.clone();
    let first = edited.keys().next().cloned().expect("a file");
    edited.get_mut(&first).expect("file").push_str("new.person@example.org\n");
    let (changed, calls, took) = refresh(&store, &edited);
    println!("one changed file: {changed} file(s), {calls} call(s), {took:.2?}");
    assert_eq!((changed, calls), (1, pages + 1), "one upload for one changed file");
}
