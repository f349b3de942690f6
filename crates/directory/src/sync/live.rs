//! Observing a directory: one group listing, then one member listing per owned group; or,
//! for a directory with a change feed, what changed since the last stored read.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::apply::{run_parallel, with_retries, NoProgress, Progress, RetryPolicy};
use crate::directory::{DeltaState, Directory, DirectoryError, LiveGroup, LiveMember};

/// What a directory holds now, keyed by lowercased group email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    pub groups: BTreeMap<String, LiveGroupState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGroupState {
    pub group: LiveGroup,
    /// Direct members by lowercased email; empty for groups we do not own, which are listed
    /// only when they may be adopted.
    pub members: BTreeMap<String, LiveMember>,
}

/// The live state and what it took to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRead {
    pub state: LiveState,
    /// Attempts beyond the first, across every listing.
    pub retries: usize,
}

/// A listing that still failed after its retries, naming what was being read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("listing the groups failed: {0}")]
    Groups(DirectoryError),
    #[error("listing the members of {group} failed: {error}")]
    Members { group: String, error: DirectoryError },
    #[error("looking up {group} failed: {error}")]
    Lookup { group: String, error: DirectoryError },
}

impl ReadError {
    /// What the directory answered.
    pub fn directory_error(&self) -> &DirectoryError {
        match self {
            ReadError::Groups(error) | ReadError::Members { error, .. } | ReadError::Lookup { error, .. } => error,
        }
    }
}

/// Lists every group and the members of every owned group (and of the unowned groups in
/// `also_unowned`, which `--adopt` may take over), `concurrency` listings at a time.
/// Transient failures (including a group the listing returned that the next read does not find
/// yet) are retried like changes are; any listing that still fails fails the read, because a
/// plan from partial state could remove what it did not see.
pub fn read_live_state(
    directory: &dyn Directory,
    concurrency: usize,
    retry: &RetryPolicy,
    also_unowned: &BTreeSet<String>,
) -> Result<LiveRead, ReadError> {
    read_live_state_with_progress(directory, concurrency, retry, also_unowned, &NoProgress)
}

/// `read_live_state`, telling `progress` about the member listings (one per group read, the
/// long part of a large directory's read) as they finish.
pub fn read_live_state_with_progress(
    directory: &dyn Directory,
    concurrency: usize,
    retry: &RetryPolicy,
    also_unowned: &BTreeSet<String>,
    progress: &dyn Progress,
) -> Result<LiveRead, ReadError> {
    let (groups, attempts) = with_retries(retry, || directory.list_groups());
    let mut retries = attempts - 1;
    let groups = groups.map_err(ReadError::Groups)?;
    let reading = MemberReading { concurrency, retry, also_unowned, progress };
    let members_by_email = list_members_of_owned(directory, &groups, &reading, &mut retries)?;
    Ok(LiveRead { state: state_of(groups, members_by_email), retries })
}

/// How the member listings of a read run.
struct MemberReading<'a> {
    concurrency: usize,
    retry: &'a RetryPolicy,
    /// Unowned groups whose members are listed too (`--adopt` may take them over).
    also_unowned: &'a BTreeSet<String>,
    progress: &'a dyn Progress,
}

/// Reads only the groups in `emails` (lowercased): each looked up directly, and the members of
/// those that are owned (or in `also_unowned`) listed. A group the directory does not have is
/// left out, as a full read would. Failures fail the read, as in `read_live_state`.
pub fn read_live_groups(
    directory: &dyn Directory,
    emails: &BTreeSet<String>,
    concurrency: usize,
    retry: &RetryPolicy,
    also_unowned: &BTreeSet<String>,
) -> Result<LiveRead, ReadError> {
    let emails: Vec<&String> = emails.iter().collect();
    let lookups = run_parallel(&emails, concurrency, |email| with_retries(retry, || directory.get_group(email)));
    let mut retries = 0;
    let mut found = Vec::new();
    for (email, (lookup, attempts)) in emails.iter().zip(lookups) {
        retries += attempts - 1;
        let group = lookup.map_err(|error| ReadError::Lookup { group: (*email).clone(), error })?;
        found.extend(group);
    }
    let reading = MemberReading { concurrency, retry, also_unowned, progress: &NoProgress };
    let members_by_email = list_members_of_owned(directory, &found, &reading, &mut retries)?;
    Ok(LiveRead { state: state_of(found, members_by_email), retries })
}

/// The members of the owned groups among `groups` (and of those in `also_unowned`), by
/// lowercased group email; retries are added to `retries`.
fn list_members_of_owned(
    directory: &dyn Directory,
    groups: &[LiveGroup],
    reading: &MemberReading,
    retries: &mut usize,
) -> Result<BTreeMap<String, BTreeMap<String, LiveMember>>, ReadError> {
    let read: Vec<&LiveGroup> =
        groups.iter().filter(|g| g.owned || reading.also_unowned.contains(&g.email.to_ascii_lowercase())).collect();
    reading.progress.start(read.len());
    let listings = run_parallel(&read, reading.concurrency, |group| {
        let listing = with_retries(reading.retry, || directory.list_members(&group.email));
        reading.progress.advance();
        listing
    });
    reading.progress.finish();
    let mut members_by_email = BTreeMap::new();
    for (group, (listing, attempts)) in read.iter().zip(listings) {
        *retries += attempts - 1;
        let listing = listing.map_err(|error| ReadError::Members { group: group.email.clone(), error })?;
        members_by_email.insert(group.email.to_ascii_lowercase(), members_by_lowercased_email(listing));
    }
    Ok(members_by_email)
}

/// A listing keyed by lowercased email.
fn members_by_lowercased_email(listing: Vec<LiveMember>) -> BTreeMap<String, LiveMember> {
    listing
        .into_iter()
        .map(|member| {
            let email = member.email.to_ascii_lowercase();
            (email.clone(), LiveMember { email, ..member })
        })
        .collect()
}

/// The groups with their members (none for those not listed), keyed by lowercased email.
fn state_of(groups: Vec<LiveGroup>, mut members_by_email: BTreeMap<String, BTreeMap<String, LiveMember>>) -> LiveState {
    let groups = groups
        .into_iter()
        .map(|group| {
            let email = group.email.to_ascii_lowercase();
            let members = members_by_email.remove(&email).unwrap_or_default();
            (email, LiveGroupState { group, members })
        })
        .collect();
    LiveState { groups }
}

/// A read through a directory's change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRead {
    pub read: LiveRead,
    /// What to store for the next run.
    pub state: DeltaState,
    /// The stored link had expired, so everything was read again.
    pub restarted: bool,
}

/// Reads through the directory's change feed from `since` (everything when `None`), retried
/// like a listing; an expired link starts the feed over. `None` when the directory has no feed.
pub fn read_live_state_delta(
    directory: &dyn Directory,
    retry: &RetryPolicy,
    since: Option<&DeltaState>,
) -> Option<Result<DeltaRead, ReadError>> {
    let mut retries = 0;
    let mut read = |since: Option<&DeltaState>| -> Option<Result<DeltaState, DirectoryError>> {
        // The first answer also tells whether there is a feed at all.
        let mut first = Some(directory.read_delta(since)?);
        let (result, attempts) = with_retries(retry, || {
            first.take().unwrap_or_else(|| directory.read_delta(since).unwrap_or_else(|| Ok(DeltaState::default())))
        });
        retries += attempts - 1;
        Some(result)
    };
    let (state, restarted) = match read(since)? {
        Err(DirectoryError::DeltaExpired(_)) if since.is_some() => (read(None)?, true),
        other => (other, false),
    };
    let state = match state {
        Ok(state) => state,
        Err(error) => return Some(Err(ReadError::Groups(error))),
    };
    Some(Ok(DeltaRead { read: LiveRead { state: live_state_of(&state), retries }, state, restarted }))
}

/// The live state a change feed's groups describe.
pub fn live_state_of(delta: &DeltaState) -> LiveState {
    let groups = delta
        .groups
        .iter()
        .map(|(email, group)| {
            let members = group
                .members
                .values()
                .map(|m| (m.email.clone(), LiveMember { email: m.email.clone(), kind: m.kind, expires: None }))
                .collect();
            let live = LiveGroup {
                name: group.name.clone(),
                email: email.clone(),
                description: group.description.clone(),
                owned: group.owned,
            };
            (email.clone(), LiveGroupState { group: live, members })
        })
        .collect();
    LiveState { groups }
}
