//! Loading revisions through a shared `ParseCache` gives exactly what loading each alone gives,
//! and parses each distinct file once: a Git history where files are shared between revisions,
//! one changes, a dataset is renamed and one revision holds the same file twice.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::copy_example_org;
use cpg_infra::definitions::{Date, GitSource, LoadError, ParseCache};
use cpg_infra::diff::{diff_hierarchies, render_json};
use cpg_infra::load::{load_expanded, load_expanded_with_cache, Expanded};
use git2::{IndexAddOption, Repository, Signature, Time};

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

/// A repository with three commits of the test organisation: `base`; `changed`, where kenji
/// joins tob-wgs analysis, acute-care is renamed and perth-neuro is copied whole to a second
/// dataset; and `broken`, with a syntax error in org.toml.
struct History {
    _dir: tempfile::TempDir,
    repo: Repository,
    base: String,
    changed: String,
    broken: String,
}

fn history() -> History {
    let dir = tempfile::tempdir().expect("temporary directory");
    let repo = Repository::init(dir.path()).expect("git init");
    let root = dir.path();
    copy_example_org(root);
    let base = commit(&repo, "base");
    edit(&root.join("datasets/tob-wgs/members.toml"), "analysis = [\n", "analysis = [\n    \"kenji\",\n");
    fs::rename(root.join("datasets/acute-care"), root.join("datasets/acute-care-renamed")).expect("rename");
    common::copy_dir(&root.join("datasets/perth-neuro"), &root.join("datasets/perth-neuro-twin"));
    let changed = commit(&repo, "changed");
    edit(&root.join("groups/org.toml"), "[organisation]", "[organisation");
    let broken = commit(&repo, "broken");
    History { _dir: dir, repo, base, changed, broken }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} does not contain {from:?}", path.display());
    fs::write(path, text.replacen(from, to, 1)).expect("write");
}

fn commit(repo: &Repository, message: &str) -> String {
    let mut index = repo.index().expect("index");
    index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("git add");
    index.update_all(["*"], None).expect("git add -u");
    index.write().expect("write index");
    let tree = repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
    let parent = repo.head().ok().map(|h| h.peel_to_commit().expect("HEAD commit"));
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let signature = Signature::new("tests", "tests@example.org", &Time::new(1_764_115_200, 0)).expect("signature");
    repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents).expect("commit").to_string()
}

/// Everything a load produced, as comparable text (definitions carry every location).
fn outcome(loaded: Result<Expanded, LoadError>) -> String {
    match loaded {
        Ok(expanded) => format!("{:#?}\n{:#?}", expanded.definitions, expanded.hierarchy),
        Err(error) => format!("error: {error}"),
    }
}

fn load_alone(repo: &Repository, rev: &str) -> Result<Expanded, LoadError> {
    load_expanded(&GitSource::new(repo, rev, "").expect("revision"), TODAY)
}

fn load_cached(repo: &Repository, rev: &str, cache: &ParseCache) -> Result<Expanded, LoadError> {
    load_expanded_with_cache(&GitSource::new(repo, rev, "").expect("revision"), TODAY, cache)
}

/// Blob ids of the definitions files a load parses in `rev`.
fn definition_blobs(repo: &Repository, rev: &str) -> BTreeSet<git2::Oid> {
    let tree = repo.revparse_single(rev).expect("revision").peel_to_tree().expect("tree");
    let mut blobs = BTreeSet::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or_default();
        // policy.toml is read by `policy check`, not by the definitions loader.
        let groups_file = dir == "groups/" && name.ends_with(".toml") && name != "policy.toml";
        let dataset_file = dir.starts_with("datasets/") && ["dataset.toml", "members.toml"].contains(&name);
        if groups_file || dataset_file {
            blobs.insert(entry.id());
        }
        git2::TreeWalkResult::Ok
    })
    .expect("walk");
    blobs
}

#[test]
fn a_shared_cache_changes_nothing_and_parses_each_distinct_file_once() {
    let history = history();
    let repo = &history.repo;
    let cache = ParseCache::new();
    let base = load_cached(repo, &history.base, &cache).expect("base loads");
    let changed = load_cached(repo, &history.changed, &cache).expect("changed loads");
    let (base_alone, changed_alone) = (load_alone(repo, &history.base), load_alone(repo, &history.changed));
    assert_eq!(outcome(Ok(base.clone())), outcome(base_alone));
    assert_eq!(outcome(Ok(changed.clone())), outcome(changed_alone));

    let base_alone = load_alone(repo, &history.base).expect("base loads");
    let changed_alone = load_alone(repo, &history.changed).expect("changed loads");
    let diff = diff_hierarchies(&base.hierarchy, &changed.hierarchy);
    assert_eq!(diff, diff_hierarchies(&base_alone.hierarchy, &changed_alone.hierarchy));
    let json = render_json(&diff);
    assert!(json.contains("acute-care-renamed-analysis"), "{json}");
    assert!(json.contains("perth-neuro-twin-analysis"), "{json}");
    assert!(json.contains("kenji.watanabe@example.org"), "{json}");

    // The renamed and copied files' locations name their own paths.
    let twin = &changed.definitions.datasets["perth-neuro-twin"];
    assert_eq!(&*twin.location.path, "datasets/perth-neuro-twin/dataset.toml");
    let grant = twin.members.values().flatten().next().expect("a grant");
    assert_eq!(&*grant.location.path, "datasets/perth-neuro-twin/members.toml");

    let mut distinct = definition_blobs(repo, &history.base);
    distinct.extend(definition_blobs(repo, &history.changed));
    assert_eq!(cache.parsed_count(), distinct.len());
}

#[test]
fn revisions_loaded_in_parallel_through_one_cache_match_loads_alone() {
    let history = history();
    let revisions = [&history.base, &history.changed, &history.broken];
    let cache = ParseCache::new();
    let outcomes: Vec<String> = std::thread::scope(|scope| {
        let loads: Vec<_> = revisions
            .iter()
            .map(|rev| {
                let cache = &cache;
                let path = history.repo.path().to_owned();
                scope.spawn(move || {
                    let repo = Repository::open(path).expect("open");
                    outcome(load_cached(&repo, rev, cache))
                })
            })
            .collect();
        loads.into_iter().map(|load| load.join().expect("load thread")).collect()
    });
    for (rev, cached) in revisions.iter().zip(outcomes) {
        assert_eq!(cached, outcome(load_alone(&history.repo, rev)), "revision {rev}");
    }
}

#[test]
fn a_file_that_fails_to_parse_fails_the_same_way_from_the_cache() {
    let history = history();
    let cache = ParseCache::new();
    let first = outcome(load_cached(&history.repo, &history.broken, &cache));
    let again = outcome(load_cached(&history.repo, &history.broken, &cache));
    assert!(first.starts_with("error: ") && first.contains("groups/org.toml:"), "{first}");
    assert_eq!(first, again);
    assert_eq!(first, outcome(load_alone(&history.repo, &history.broken)));
}
