//! `groups cache` and the members-cache step of `groups sync`: write `<group>-members.txt`
//! for every cached group to each `[cache]` destination, dry run unless confirmed.

use anyhow::Result;

use super::output::emit;
use super::resolve;
use super::{Exit, GlobalArgs, InputError};
use crate::cache;
use crate::directory::DirectoryError;
use crate::load::Expanded;
use crate::sync::RetryPolicy;

/// Plans (and with `confirm`, applies) the cache refresh on every destination. Text goes to
/// stdout, or to stderr when stdout carries JSON. Failures are reported and make exit 1.
pub fn refresh(global: &GlobalArgs, expanded: &Expanded, confirm: bool, to_stderr: bool) -> Result<Exit> {
    let say = |text: &str| if to_stderr { eprint!("{text}") } else { emit(text) };
    let desired = cache::desired_files(&expanded.definitions, &expanded.hierarchy);
    let retry = RetryPolicy::default();
    let mut exit = Exit::Success;
    for store in resolve::cache_stores(global, &expanded.definitions)? {
        say(&format!("{}\n", store.describe()));
        let (live, read_retries) = cache::read(store.as_ref(), &retry);
        let live = match live {
            Ok(live) => live,
            Err(DirectoryError::Rejected(message)) => return Err(InputError(message).into()),
            Err(error) => {
                eprintln!("failed: reading {}: {error}", store.describe());
                exit = Exit::Failure;
                continue;
            }
        };
        let plan = cache::plan(&desired, &live);
        say(&plan.to_string());
        if !confirm {
            continue;
        }
        let mut report = cache::apply(store.as_ref(), &plan, &desired, &retry);
        report.retries += read_retries;
        for (what, error) in &report.failed {
            eprintln!("failed: cache {what}: {error}");
        }
        if !report.failed.is_empty() {
            exit = Exit::Failure;
        }
        say(&format!("{}; {} request(s)\n", report.summary(), store.calls()));
    }
    Ok(exit)
}
