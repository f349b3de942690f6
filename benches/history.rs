//! Cost of `groups history` over a long Git history: the synthetic organisation (500 datasets
//! by default) committed once, then N commits that each grant one person a role on one dataset
//! (subjects name a pull request, as squash merges do). `cargo bench --bench history`; sizes
//! with `CPG_BENCH_DATASETS=500`, history lengths with `CPG_BENCH_COMMITS=250,500,1000`.
//!
//! For each length it times one walk for a person (`groups history p00042`) and one for a
//! dataset (`--dataset ds0007`) through the real command, and prints the time per commit: the
//! walk parses only each commit's changed files (the parse cache), so the time per commit
//! must stay flat as the history grows (linear, not quadratic, in its length). One run per
//! length, not criterion's ten: a walk of 1,000 commits takes minutes on a shared machine.

use std::path::Path;
use std::time::Instant;

use clap::Parser;

use cpg_infra::cli::args::Cli;

mod common;

fn main() {
    let datasets: usize = env_number("CPG_BENCH_DATASETS", "500");
    let lengths = std::env::var("CPG_BENCH_COMMITS").unwrap_or_else(|_| "250,500,1000".to_owned());
    let lengths: Vec<usize> = lengths.split(',').map(|n| n.trim().parse().expect("a number of commits")).collect();
    let longest = *lengths.iter().max().expect("a length");
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();
    let repo = synthetic_history(dir.path(), datasets, longest);
    eprintln!("history: {datasets} datasets, {longest} commits written in {:.1} s", started.elapsed().as_secs_f64());
    // A shorter history is the same one, cut: its first `length` commits after the base.
    let tips: Vec<git2::Oid> = lengths.iter().map(|&length| nth_commit(&repo, length)).collect();
    for (&length, &tip) in lengths.iter().zip(&tips) {
        repo.set_head_detached(tip).expect("detach HEAD");
        for (what, args) in [
            ("person", vec!["groups", "history", "p00042"]),
            ("dataset", vec!["groups", "history", "--dataset", "ds0007"]),
        ] {
            let root = dir.path().to_str().expect("a UTF-8 path");
            let cli =
                Cli::try_parse_from([&["cpg-infra", "--root", root, "--today", "2026-11-26"][..], &args].concat())
                    .expect("arguments");
            let started = Instant::now();
            let _ = cpg_infra::cli::run(cli);
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "history-{datasets}-datasets/{length}-commits/{what}: {seconds:.1} s, {:.1} ms per commit",
                seconds * 1000.0 / (length + 1) as f64
            );
        }
    }
    println!("peak memory: {} MiB", peak_mib());
}

fn env_number(name: &str, default: &str) -> usize {
    std::env::var(name).unwrap_or_else(|_| default.to_owned()).parse().expect("a number")
}

/// The base organisation, then `commits` commits of one grant each, spread over the datasets.
fn synthetic_history(root: &Path, datasets: usize, commits: usize) -> git2::Repository {
    let repo = common::synthetic_repository(root, datasets);
    for n in 0..commits {
        let members = format!("datasets/ds{:04}/members.toml", (n * 7) % datasets);
        let person = format!("p{:05}", (n * 13) % 5_000);
        common::grant_analysis(&repo, &members, &person, &format!("Analysis for {person} (#{})", n + 1));
    }
    repo
}

/// The commit `n` grants after the base (the base is 0).
fn nth_commit(repo: &git2::Repository, n: usize) -> git2::Oid {
    let mut walk = repo.revwalk().expect("revwalk");
    walk.push_head().expect("HEAD");
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE).expect("sorting");
    walk.nth(n).expect("enough commits").expect("a commit")
}

/// The process's peak resident memory (Linux `VmHWM`), in MiB; 0 where unknown.
fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}
