//! Cost of reading definitions from Git against the working tree, on the synthetic
//! organisation at 500 and 2,000 datasets written to a temporary repository of two commits
//! (the second changes one members file). `cargo bench --bench revisions`; sizes with
//! `CPG_BENCH_DATASETS=500,2000`.
//!
//! - `validate-working-tree`: load and expand from the directory, what `validate` does.
//! - `validate-rev-head`: the same from `HEAD` through git2, what `--rev HEAD validate` does.
//! - `diff-one-file`: both commits loaded through one parse cache, then diffed, what
//!   `groups diff HEAD~1 HEAD` does, on one thread so the figure is its CPU time
//!   (the command loads the two sides in parallel).
//!
//! Targets: `validate-rev-head` ≤ 1.2× and `diff-one-file` ≤ 1.3× `validate-working-tree`.
//! On a shared machine wall times drift by tens of percent between runs; to compare revisions,
//! count instructions of the commands instead (`cpg-infra synthetic DIR --datasets 2000`, commit
//! it twice, then `valgrind --tool=callgrind cpg-infra --root DIR groups diff HEAD~1 HEAD`).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

use cpg_infra::definitions::{Date, DirSource, GitSource, ParseCache};
use cpg_infra::diff::diff_hierarchies;
use cpg_infra::load::{load_expanded, load_expanded_with_cache};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn revisions(c: &mut Criterion) {
    let sizes = std::env::var("CPG_BENCH_DATASETS").unwrap_or_else(|_| "500,2000".to_owned());
    for datasets in sizes.split(',').map(|n| n.trim().parse::<usize>().expect("a number of datasets")) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let repo = synthetic_history(dir.path(), datasets);
        let mut group = c.benchmark_group(format!("revisions-{datasets}-datasets"));
        group.sample_size(10);
        let working_tree = DirSource::new(dir.path());
        group.bench_function("validate-working-tree", |b| {
            b.iter(|| load_expanded(&working_tree, TODAY).expect("valid"))
        });
        group.bench_function("validate-rev-head", |b| {
            b.iter(|| load_expanded(&GitSource::new(&repo, "HEAD", "").expect("HEAD"), TODAY).expect("valid"))
        });
        group.bench_function("diff-one-file", |b| {
            b.iter(|| {
                let cache = ParseCache::new();
                let base = GitSource::new(&repo, "HEAD~1", "").expect("HEAD~1");
                let base = load_expanded_with_cache(&base, TODAY, &cache).expect("valid");
                let head = GitSource::new(&repo, "HEAD", "").expect("HEAD");
                let head = load_expanded_with_cache(&head, TODAY, &cache).expect("valid");
                diff_hierarchies(&base.hierarchy, &head.hierarchy)
            })
        });
        group.finish();
    }
}

/// The synthetic organisation committed, then one member more in one dataset, committed.
fn synthetic_history(root: &Path, datasets: usize) -> git2::Repository {
    let repo = common::synthetic_repository(root, datasets);
    common::grant_analysis(&repo, "datasets/ds0007/members.toml", "p04999", "one member more");
    repo
}

criterion_group!(benches, revisions);
criterion_main!(benches);
