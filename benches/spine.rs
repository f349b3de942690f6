//! Speed of the spine on a synthetic organisation of 500 datasets (~10k groups, ~200k
//! memberships): load (parse + validate) from memory, expand, diff two variants, plan against
//! a synced directory. `cargo bench --bench spine`.

use criterion::{criterion_group, criterion_main, Criterion};

use cpg_infra::definitions::{self, Date, Nesting};
use cpg_infra::diff::diff_hierarchies;
use cpg_infra::directory::{LiveGroup, LiveMember, MemberKind};
use cpg_infra::hierarchy;
use cpg_infra::load::load_expanded;
use cpg_infra::sync::{plan, LiveGroupState, LiveState, PlanOptions, RemovalLimits};
use cpg_infra::synthetic::{generate, MemorySource, SyntheticShape};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

fn spine(c: &mut Criterion) {
    let base_files = generate(SyntheticShape::large());
    let head_files = generate(SyntheticShape { variant: 1, ..SyntheticShape::large() });
    let base = load_expanded(&MemorySource::new(base_files.clone()), TODAY).expect("valid");
    let head = load_expanded(&MemorySource::new(head_files), TODAY).expect("valid");
    let diff = diff_hierarchies(&base.hierarchy, &head.hierarchy);
    eprintln!(
        "synthetic organisation: {} datasets, {} groups, {} memberships; variant diff: {} groups changed, {} access changes",
        base.definitions.datasets.len(),
        base.hierarchy.groups.len(),
        base.hierarchy.membership_count(),
        diff.groups_changed.len(),
        diff.access.len()
    );

    let mut group = c.benchmark_group("spine-500-datasets");
    group.sample_size(10);
    let source = MemorySource::new(base_files.clone());
    group.bench_function("load", |b| b.iter(|| definitions::load(&source).expect("valid")));
    group.bench_function("expand", |b| b.iter(|| hierarchy::expand(&base.definitions, TODAY).expect("acyclic")));
    group.bench_function("diff", |b| b.iter(|| diff_hierarchies(&base.hierarchy, &head.hierarchy)));
    let live = synced_state(&base.hierarchy);
    let options = PlanOptions {
        nesting: Nesting::Native,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: usize::MAX, max_removal_percent: 100 },
    };
    group.bench_function("plan-noop", |b| b.iter(|| plan(&base.hierarchy, &live, &options)));
    group.bench_function("plan-variant", |b| b.iter(|| plan(&head.hierarchy, &live, &options)));
    group.finish();
}

/// Live state equal to the hierarchy (kinds and expiry included), as after a sync with native
/// nesting.
fn synced_state(hierarchy: &cpg_infra::hierarchy::Hierarchy) -> LiveState {
    let groups = hierarchy
        .groups
        .values()
        .map(|g| {
            let member = |email: &String, kind| {
                let live = LiveMember { email: email.clone(), kind, expires: g.expires.get(email).copied() };
                (email.clone(), live)
            };
            let nested = g.groups.iter().map(|child| member(&hierarchy.groups[child].email, MemberKind::Group));
            let members = g.members.iter().map(|m| member(m, MemberKind::Account)).chain(nested).collect();
            let live =
                LiveGroup { name: g.name.clone(), email: g.email.clone(), description: String::new(), owned: true };
            (g.email.clone(), LiveGroupState { group: live, members })
        })
        .collect();
    LiveState { groups }
}

criterion_group!(benches, spine);
criterion_main!(benches);
