//! `groups sync --changed-since`: which groups a sync must read, from what changed in the
//! definitions since a revision; or why it must read everything.

use std::collections::BTreeSet;

use anyhow::Result;

use super::args::{GlobalArgs, ProviderName, SyncArgs};
use super::resolve::{self, Revision};
use super::synced;
use crate::definitions::Nesting;
use crate::hierarchy::Hierarchy;
use crate::load::Expanded;
use crate::sync;

/// The groups to read and plan, and the revision they changed since.
pub struct Scope {
    /// The base commit.
    pub since: String,
    /// Emails of the groups whose desired state differs between the base and now.
    pub groups: BTreeSet<String>,
}

impl Scope {
    /// The line that says what was read.
    pub fn describe(&self) -> String {
        format!("changed since {}: {} group(s) read", short(&self.since), self.groups.len())
    }
}

/// The scope of a `--changed-since` sync, or `None` (after one line saying why) when it must
/// read everything. `desired` is what the run wants in the directory now.
pub fn scope(
    global: &GlobalArgs,
    args: &SyncArgs,
    expanded: &Expanded,
    desired: &Hierarchy,
    nesting: Nesting,
) -> Result<Option<Scope>> {
    let Some(since) = args.changed_since.as_deref() else { return Ok(None) };
    if !reads_group_by_group(args.provider) {
        eprintln!("--changed-since is for --provider google and local; reading as usual");
        return Ok(None);
    }
    if args.full_read {
        eprintln!("--full-read: reading everything");
        return Ok(None);
    }
    let full_read = |reason: &str| {
        eprintln!("{reason}; reading everything");
        Ok(None)
    };
    if expanded.definitions.organisation.transition_mapping.is_some() && !args.retire_old_groups {
        return full_read("the transition nests old groups, which only a full read sees");
    }
    // The base is loaded as of the day it was synced, when it is the recorded revision, so that
    // grants that have expired since count as changes.
    let (rev, day) = if since.is_empty() {
        match synced::read(&synced::path(global, provider_key(args.provider))) {
            Ok(recorded) => (recorded.commit, Some(recorded.date)),
            Err(reason) => return full_read(&reason),
        }
    } else {
        (since.to_owned(), None)
    };
    let head = global.rev.as_deref().unwrap_or("HEAD");
    let base = match resolve::ancestor_commit(global, &rev, head) {
        Ok(base) => base,
        Err(reason) => return full_read(&reason),
    };
    let at_base =
        GlobalArgs { root: global.root.clone(), rev: Some(base.clone()), today: day.or(global.today.clone()) };
    let before = match resolve::load_groups(&at_base, &Revision::Git(base.clone())) {
        Ok(before) => before,
        Err(error) => return full_read(&format!("the definitions at {} do not load ({error})", short(&base))),
    };
    let desired_before = super::groups::desired_in_directory(args.provider, &before);
    let mut groups = sync::changed_groups(&desired_before, desired, nesting);
    if args.provider == ProviderName::Google {
        let settings_before = sync::desired_settings(&before.definitions, &desired_before);
        let settings_now = sync::desired_settings(&expanded.definitions, desired);
        let emails: BTreeSet<&String> = settings_before.keys().chain(settings_now.keys()).collect();
        groups.extend(
            emails.into_iter().filter(|email| settings_before.get(*email) != settings_now.get(*email)).cloned(),
        );
    }
    Ok(Some(Scope { since: base, groups }))
}

/// The providers read by listing each group, whose reads `--changed-since` narrows.
pub fn reads_group_by_group(provider: ProviderName) -> bool {
    matches!(provider, ProviderName::Google | ProviderName::Local)
}

/// How a provider is named in its state file.
pub fn provider_key(provider: ProviderName) -> &'static str {
    match provider {
        ProviderName::Google => "google",
        ProviderName::Azure => "azure",
        ProviderName::Hail => "hail",
        ProviderName::Metamist => "metamist",
        ProviderName::Local => "local",
        ProviderName::All => "all",
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
