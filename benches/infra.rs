//! Speed of the infrastructure design on the synthetic organisation of 500 datasets (GCP only,
//! six components each): build the program (driver + GCP cloud), render it as one Pulumi YAML
//! project, and split it per dataset and render every project. `cargo bench --bench infra`.
//!
//! Also prints resource counts for 125, 250 and 500 datasets, and for 500 datasets that list
//! only their data managers, to show that the count follows datasets × components only.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};

use cpg_infra::definitions::Date;
use cpg_infra::infra::{self, per_owner, render_yaml, single};
use cpg_infra::load::{load_expanded, Expanded};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn load(shape: SyntheticShape) -> Expanded {
    load_expanded(&MemorySource::new(generate(shape)), TODAY).expect("valid")
}

fn resources(expanded: &Expanded) -> usize {
    infra::build(&expanded.definitions).expect("a valid design").program.resources.len()
}

fn infra_bench(c: &mut Criterion) {
    let large = load(SyntheticShape::large());
    for datasets in [125, 250] {
        let smaller = load(SyntheticShape { datasets, ..SyntheticShape::large() });
        eprintln!(
            "{datasets} datasets: {} resources, {} memberships",
            resources(&smaller),
            smaller.hierarchy.membership_count()
        );
    }
    // The same datasets with only their data managers listed: a fraction of the memberships.
    let trimmed: BTreeMap<String, String> = generate(SyntheticShape::large())
        .into_iter()
        .map(|(path, text)| {
            let text = if path.ends_with("members.toml") {
                text.lines().filter(|l| l.starts_with("data-manager")).map(|l| format!("{l}\n")).collect()
            } else {
                text
            };
            (path, text)
        })
        .collect();
    let trimmed = load_expanded(&MemorySource::new(trimmed), TODAY).expect("valid");
    eprintln!(
        "500 datasets, data managers only: {} resources, {} memberships",
        resources(&trimmed),
        trimmed.hierarchy.membership_count()
    );
    let build = infra::build(&large.definitions).expect("a valid design");
    let text = render_yaml(&single(build.program.clone(), "Synthetic"));
    eprintln!(
        "500 datasets: {} resources, {} memberships; one project of {} MB, {} lines",
        build.program.resources.len(),
        large.hierarchy.membership_count(),
        text.len() / 1_000_000,
        text.lines().count()
    );

    let mut group = c.benchmark_group("infra-500-datasets");
    group.sample_size(10);
    group.bench_function("build", |b| b.iter(|| infra::build(&large.definitions).expect("valid")));
    group.bench_function("build+render", |b| {
        b.iter(|| {
            let build = infra::build(&large.definitions).expect("valid");
            render_yaml(&single(build.program, "Synthetic")).len()
        })
    });
    group.bench_function("build+render-per-dataset", |b| {
        b.iter(|| {
            let build = infra::build(&large.definitions).expect("valid");
            per_owner(&build.program, "Synthetic").iter().map(|p| render_yaml(p).len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, infra_bench);
criterion_main!(benches);
