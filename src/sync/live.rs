//! Observing a directory: one group listing, then one member listing per owned group.

use std::collections::{BTreeMap, BTreeSet};

use super::apply::{run_parallel, with_retries, RetryPolicy};
use crate::directory::{Directory, DirectoryError, LiveGroup};

/// What a directory holds now, keyed by lowercased group email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    pub groups: BTreeMap<String, LiveGroupState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGroupState {
    pub group: LiveGroup,
    /// Direct members (lowercased emails); empty for groups we do not own, which are listed
    /// only when they may be adopted.
    pub members: BTreeSet<String>,
}

/// Lists every group and the members of every owned group (and of the unowned groups in
/// `also_unowned`, which `--adopt` may take over), `concurrency` listings at a time.
/// Transient failures are retried like changes are; any listing that still fails fails the read,
/// because a plan from partial state could remove what it did not see.
pub fn read_live_state(
    directory: &dyn Directory,
    concurrency: usize,
    retry: &RetryPolicy,
    also_unowned: &BTreeSet<String>,
) -> Result<LiveState, DirectoryError> {
    let groups = with_retries(retry, || directory.list_groups()).0?;
    let owned: Vec<&LiveGroup> =
        groups.iter().filter(|g| g.owned || also_unowned.contains(&g.email.to_ascii_lowercase())).collect();
    let listings =
        run_parallel(&owned, concurrency, |group| with_retries(retry, || directory.list_members(&group.email)).0);
    let mut members_by_email = BTreeMap::new();
    for (group, listing) in owned.iter().zip(listings) {
        let members: BTreeSet<String> = listing?.into_iter().map(|m| m.to_ascii_lowercase()).collect();
        members_by_email.insert(group.email.to_ascii_lowercase(), members);
    }
    let groups = groups
        .into_iter()
        .map(|group| {
            let email = group.email.to_ascii_lowercase();
            let members = members_by_email.remove(&email).unwrap_or_default();
            (email, LiveGroupState { group, members })
        })
        .collect();
    Ok(LiveState { groups })
}
