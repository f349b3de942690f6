//! Applying a plan: phase by phase, bounded concurrency, retries with backoff for transient
//! failures, and every failure collected rather than stopping the run. A change that needs a
//! group whose creation failed in this run is not sent and counts as failed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Change, Plan};
use crate::directory::{Directory, DirectoryError, NewGroup};

/// Retries for throttling and unavailability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per change, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 6, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Apply even when the plan trips a removal limit.
    pub allow_mass_removal: bool,
}

/// What applying did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    pub adopted: usize,
    pub created: usize,
    pub added: usize,
    /// Memberships re-added as the right kind or given a new expiry.
    pub updated: usize,
    pub removed: usize,
    pub deleted: usize,
    /// Changes that failed after retries, with the last error, and changes not sent because
    /// they needed a group whose creation failed.
    pub failed: Vec<(Change, String)>,
    /// Set when the directory could not make the applied changes durable.
    pub flush_error: Option<String>,
    /// Members the directory does not know: member → (why, the groups they were not added to).
    /// One entry per member, however many groups it was to join.
    pub unknown_members: BTreeMap<String, (String, Vec<String>)>,
    /// Why the directory stopped the run, and how many changes were then not sent.
    pub stopped: Option<(String, usize)>,
    /// Attempts beyond the first, across all changes.
    pub retries: usize,
    /// Attempts beyond the first while reading the live state before the plan (set by the
    /// caller, which did the reading); the summary counts both.
    pub read_retries: usize,
    pub seconds: f64,
    /// Requests the directory sent during apply and the reads before it, when it counts them.
    pub api_calls: Option<u64>,
}

impl ApplyReport {
    /// Whether every change was applied and saved.
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.flush_error.is_none()
            && self.unknown_members.is_empty()
            && self.stopped.is_none()
    }

    pub fn summary(&self) -> String {
        let calls = self.api_calls.map(|c| format!("; {c} API call(s)")).unwrap_or_default();
        let adopted = if self.adopted > 0 { format!("{} group(s) adopted, ", self.adopted) } else { String::new() };
        format!(
            "applied: {adopted}{} group(s) created, {} member(s) added, {} updated, {} removed, {} group(s) deleted; {} failed; {} retried{calls}; {:.2}s",
            self.created,
            self.added,
            self.updated,
            self.removed,
            self.deleted,
            self.failed.len() + self.unknown_members.values().map(|(_, groups)| groups.len()).sum::<usize>(),
            self.retries + self.read_retries,
            self.seconds
        )
    }
}

/// Told about each finished change, e.g. to draw a progress bar. Called from worker threads.
pub trait Progress: Sync {
    fn start(&self, _total: usize) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

#[derive(Debug, Clone, PartialEq)]
pub enum ApplyOutcome {
    /// Nothing was applied: the plan trips a safety limit.
    Refused(Vec<String>),
    Applied(ApplyReport),
}

/// Runs `plan` against `directory`. Phases run in order (adopt, create, add and update, remove,
/// delete) so a member moving between groups never loses access midway; changes inside a phase
/// run in parallel. Additions of a group whose creation failed (and changes inside it) are not
/// sent: the directory would record its email as a user, which no later read tells apart.
pub fn apply(directory: &dyn Directory, plan: &Plan, options: &ApplyOptions, progress: &dyn Progress) -> ApplyOutcome {
    if !plan.refusals.is_empty() && !options.allow_mass_removal {
        return ApplyOutcome::Refused(plan.refusals.clone());
    }
    progress.start(plan.changes.len());
    let started = Instant::now();
    let retries = AtomicUsize::new(0);
    let phases: [fn(&Change) -> bool; 5] = [
        |c| matches!(c, Change::AdoptGroup { .. }),
        |c| matches!(c, Change::CreateGroup { .. }),
        |c| matches!(c, Change::AddMember { .. } | Change::ReAddMember { .. } | Change::SetExpiry { .. }),
        |c| matches!(c, Change::RemoveMember { .. }),
        |c| matches!(c, Change::DeleteGroup { .. }),
    ];
    let mut report = ApplyReport::default();
    let mut failed_creations = BTreeSet::new();
    // Set once the directory stops the run: nothing more is sent.
    let stop: Mutex<Option<String>> = Mutex::new(None);
    let mut not_sent = 0;
    for in_phase in phases {
        let mut changes = Vec::new();
        for change in plan.changes.iter().filter(|c| in_phase(c)) {
            match blocked_by(change, &failed_creations) {
                Some(group) => {
                    progress.advance();
                    report.failed.push((change.clone(), format!("not sent: creating {group} failed")));
                }
                None => changes.push(change),
            }
        }
        let added: BTreeSet<&str> = changes
            .iter()
            .filter_map(|change| match change {
                Change::AddMember { member, .. } | Change::ReAddMember { member, .. } => Some(member.as_str()),
                _ => None,
            })
            .collect();
        if !added.is_empty() {
            directory.prepare_members(&added.into_iter().collect::<Vec<_>>());
        }
        let units = batch_units(&changes, directory.batch_size());
        let results: Vec<Result<(), DirectoryError>> = run_parallel(&units, options.concurrency, |unit| {
            if let Some(reason) = lock(&stop).clone() {
                return unit.changes().iter().map(|_| Err(DirectoryError::Stopped(reason.clone()))).collect();
            }
            let (results, attempts) = apply_unit_with_retries(directory, unit, &options.retry);
            retries.fetch_add(attempts.saturating_sub(1), Ordering::Relaxed);
            if let Some(Err(DirectoryError::Stopped(reason))) =
                results.iter().find(|r| matches!(r, Err(DirectoryError::Stopped(_))))
            {
                lock(&stop).get_or_insert_with(|| reason.clone());
            }
            for _ in unit.changes() {
                progress.advance();
            }
            results
        })
        .into_iter()
        .flatten()
        .collect();
        let changes: Vec<&Change> = units.iter().flat_map(Unit::changes).collect();
        for (change, result) in changes.into_iter().zip(results) {
            match result {
                Ok(()) => match change {
                    Change::AdoptGroup { .. } => report.adopted += 1,
                    Change::CreateGroup { .. } => report.created += 1,
                    Change::AddMember { .. } => report.added += 1,
                    Change::ReAddMember { .. } | Change::SetExpiry { .. } => report.updated += 1,
                    Change::RemoveMember { .. } => report.removed += 1,
                    Change::DeleteGroup { .. } => report.deleted += 1,
                },
                Err(DirectoryError::Stopped(_)) => not_sent += 1,
                Err(DirectoryError::UnknownMember { member, reason }) => {
                    let group = match change {
                        Change::AddMember { group, .. } | Change::ReAddMember { group, .. } => group.clone(),
                        other => other.to_string(),
                    };
                    report.unknown_members.entry(member).or_insert_with(|| (reason, Vec::new())).1.push(group);
                }
                Err(error) => {
                    if let Change::CreateGroup { email, .. } = change {
                        failed_creations.insert(email.as_str());
                    }
                    report.failed.push((change.clone(), error.to_string()));
                }
            }
        }
    }
    progress.finish();
    report.stopped = lock(&stop).take().map(|reason| (reason, not_sent));
    // Directories that write at flush (one call per changed project) get the same retries.
    let (flushed, attempts) = with_retries(&options.retry, || directory.flush());
    retries.fetch_add(attempts.saturating_sub(1), Ordering::Relaxed);
    report.flush_error = flushed.err().map(|e| e.to_string());
    report.api_calls = directory.api_calls();
    report.retries = retries.into_inner();
    report.seconds = started.elapsed().as_secs_f64();
    ApplyOutcome::Applied(report)
}

/// What one worker sends at once: a single change, or several additions or removals of one
/// group that the directory takes in one batched call.
enum Unit<'a> {
    One(&'a Change),
    Additions(&'a str, Vec<&'a Change>),
    Removals(&'a str, Vec<&'a Change>),
}

impl<'a> Unit<'a> {
    fn changes(&self) -> Vec<&'a Change> {
        match self {
            Unit::One(change) => vec![*change],
            Unit::Additions(_, changes) | Unit::Removals(_, changes) => changes.clone(),
        }
    }
}

/// Cuts a phase's changes into units: plain additions and removals of the same group in
/// chunks of `batch_size` (when the directory batches), everything else one by one.
fn batch_units<'a>(changes: &[&'a Change], batch_size: usize) -> Vec<Unit<'a>> {
    if batch_size <= 1 {
        return changes.iter().map(|change| Unit::One(change)).collect();
    }
    let mut additions: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    let mut removals: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    let mut units = Vec::new();
    for change in changes {
        match change {
            Change::AddMember { group, .. } => additions.entry(group.as_str()).or_default().push(change),
            Change::RemoveMember { group, .. } => removals.entry(group.as_str()).or_default().push(change),
            other => units.push(Unit::One(other)),
        }
    }
    for (group, changes) in additions {
        units.extend(changes.chunks(batch_size).map(|chunk| Unit::Additions(group, chunk.to_vec())));
    }
    for (group, changes) in removals {
        units.extend(changes.chunks(batch_size).map(|chunk| Unit::Removals(group, chunk.to_vec())));
    }
    units
}

/// Applies one unit, retrying only the members whose result was transient; returns one result
/// per change and the attempts made (the most any member needed).
fn apply_unit_with_retries(
    directory: &dyn Directory,
    unit: &Unit,
    policy: &RetryPolicy,
) -> (Vec<Result<(), DirectoryError>>, usize) {
    let (group, changes, adding) = match unit {
        Unit::One(change) => {
            let (result, attempts) = apply_with_retries(directory, change, policy);
            return (vec![result], attempts);
        }
        Unit::Additions(group, changes) => (*group, changes, true),
        Unit::Removals(group, changes) => (*group, changes, false),
    };
    let mut results: Vec<Option<Result<(), DirectoryError>>> = vec![None; changes.len()];
    let mut pending: Vec<usize> = (0..changes.len()).collect();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let answers = if adding {
            let members: Vec<(String, Option<crate::definitions::Date>)> = pending
                .iter()
                .filter_map(|&index| match changes[index] {
                    Change::AddMember { member, expires, .. } => Some((member.clone(), *expires)),
                    _ => None,
                })
                .collect();
            directory.add_members(group, &members)
        } else {
            let members: Vec<String> = pending
                .iter()
                .filter_map(|&index| match changes[index] {
                    Change::RemoveMember { member, .. } => Some(member.clone()),
                    _ => None,
                })
                .collect();
            directory.remove_members(group, &members)
        };
        let mut still_pending = Vec::new();
        let mut wait = None;
        for (index, answer) in pending.iter().copied().zip(answers) {
            match answer {
                Err(error) if error.is_retryable() && attempt < policy.max_attempts => {
                    wait = wait.max(Some(error.retry_after()));
                    still_pending.push(index);
                }
                answer => results[index] = Some(answer),
            }
        }
        if still_pending.is_empty() {
            let missing = || Err(DirectoryError::Storage("the directory gave no result for this change".to_owned()));
            return (results.into_iter().map(|r| r.unwrap_or_else(missing)).collect(), attempt as usize);
        }
        std::thread::sleep(backoff(policy, attempt, wait.flatten()));
        pending = still_pending;
    }
}

/// The group whose failed creation this change depends on: the group it changes, or the group
/// it adds as a member.
fn blocked_by<'a>(change: &Change, failed_creations: &BTreeSet<&'a str>) -> Option<&'a str> {
    let (group, member) = match change {
        Change::AddMember { group, member, .. } | Change::ReAddMember { group, member, .. } => (group, Some(member)),
        Change::SetExpiry { group, .. } | Change::RemoveMember { group, .. } | Change::DeleteGroup { group } => {
            (group, None)
        }
        Change::AdoptGroup { .. } | Change::CreateGroup { .. } => return None,
    };
    [Some(group), member].into_iter().flatten().find_map(|email| failed_creations.get(email.as_str()).copied())
}

/// Applies one change, retrying transient failures; returns the result and the attempts made.
/// A re-add is two calls, each retried on its own, so a retry never repeats the removal after
/// the addition went through.
fn apply_with_retries(
    directory: &dyn Directory,
    change: &Change,
    policy: &RetryPolicy,
) -> (Result<(), DirectoryError>, usize) {
    match change {
        Change::ReAddMember { group, member, expires, .. } => {
            let (removed, removal_attempts) = with_retries(policy, || directory.remove_member(group, member));
            if removed.is_err() {
                return (removed, removal_attempts);
            }
            let (added, attempts) = with_retries(policy, || directory.add_member(group, member, *expires));
            (added, removal_attempts + attempts - 1)
        }
        _ => with_retries(policy, || apply_one(directory, change)),
    }
}

fn apply_one(directory: &dyn Directory, change: &Change) -> Result<(), DirectoryError> {
    match change {
        Change::CreateGroup { name, email, description } => directory.create_group(&NewGroup {
            name: name.clone(),
            email: email.clone(),
            description: description.clone(),
        }),
        Change::AdoptGroup { group, description } => directory.adopt_group(group, description),
        Change::AddMember { group, member, expires } | Change::ReAddMember { group, member, expires, .. } => {
            directory.add_member(group, member, *expires)
        }
        Change::SetExpiry { group, member, expires, .. } => directory.set_expiry(group, member, *expires),
        Change::RemoveMember { group, member } => directory.remove_member(group, member),
        Change::DeleteGroup { group } => directory.delete_group(group),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `operation` until it succeeds, fails permanently, or runs out of attempts. Returns the
/// last result and the number of attempts made.
pub fn with_retries<T>(
    policy: &RetryPolicy,
    mut operation: impl FnMut() -> Result<T, DirectoryError>,
) -> (Result<T, DirectoryError>, usize) {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        match operation() {
            Err(error) if error.is_retryable() && attempt < policy.max_attempts => {
                std::thread::sleep(backoff(policy, attempt, error.retry_after()));
            }
            result => return (result, attempt as usize),
        }
    }
}

/// The wait before attempt `attempt + 1`: the server's Retry-After when given, otherwise
/// exponential backoff with "full jitter" (a random point in [base·2ⁿ/2, base·2ⁿ]).
fn backoff(policy: &RetryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(policy.max_delay);
    }
    let ceiling = policy.base_delay.saturating_mul(1 << attempt.min(16)).min(policy.max_delay);
    let half = ceiling / 2;
    half + half.mul_f64(jitter_fraction())
}

/// A cheap random fraction in [0, 1) from the clock's low bits and the thread; enough to keep
/// parallel retries from marching in step.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    (hasher.finish() % 10_000) as f64 / 10_000.0
}

/// Maps `work` over `items` on up to `concurrency` threads, keeping the input order.
pub(crate) fn run_parallel<I: Sync, T: Send>(items: &[I], concurrency: usize, work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let workers = concurrency.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(&work).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<T>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(index) else { break };
                let value = work(item);
                *results[index].lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
            });
        }
    });
    results.into_iter().filter_map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_errors_then_gives_up() {
        let policy =
            RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let mut calls = 0;
        let (result, attempts) = with_retries(&policy, || {
            calls += 1;
            if calls < 2 {
                Err(DirectoryError::Throttled {
                    call: "groups.list".into(),
                    retry_after: Some(Duration::from_millis(1)),
                })
            } else {
                Ok(calls)
            }
        });
        assert_eq!((result, attempts), (Ok(2), 2));
        let (result, attempts) = with_retries::<()>(&policy, || Err(DirectoryError::Unavailable("503".into())));
        assert_eq!(attempts, 3);
        assert!(result.is_err());
        let (_, attempts) = with_retries::<()>(&policy, || Err(DirectoryError::Rejected("400".into())));
        assert_eq!(attempts, 1, "permanent errors are not retried");
    }

    #[test]
    fn backoff_grows_and_respects_retry_after() {
        let policy =
            RetryPolicy { max_attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        let first = backoff(&policy, 1, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200), "{first:?}");
        assert!(backoff(&policy, 9, None) <= Duration::from_secs(1));
        assert_eq!(backoff(&policy, 1, Some(Duration::from_secs(7))), Duration::from_secs(1));
    }

    #[test]
    fn batched_directories_get_additions_and_removals_per_group_in_chunks() {
        let add = |group: &str, i: usize| Change::AddMember {
            group: group.to_owned(),
            member: format!("p{i}@example.org"),
            expires: None,
        };
        let remove = |i: usize| Change::RemoveMember { group: "g2".to_owned(), member: format!("p{i}@example.org") };
        let mut changes: Vec<Change> = (0..45).map(|i| add("g1", i)).collect();
        changes.extend((0..3).map(|i| add("g2", i)));
        changes.extend((0..21).map(remove));
        changes.push(Change::SetExpiry {
            group: "g1".to_owned(),
            member: "x@example.org".to_owned(),
            expires: None,
            previous: None,
        });
        let refs: Vec<&Change> = changes.iter().collect();
        let sizes = |units: &[Unit]| {
            units
                .iter()
                .map(|unit| match unit {
                    Unit::One(_) => ("one", 1),
                    Unit::Additions(group, chunk) => (if *group == "g1" { "add g1" } else { "add g2" }, chunk.len()),
                    Unit::Removals(_, chunk) => ("remove g2", chunk.len()),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            sizes(&batch_units(&refs, 20)),
            [
                ("one", 1),
                ("add g1", 20),
                ("add g1", 20),
                ("add g1", 5),
                ("add g2", 3),
                ("remove g2", 20),
                ("remove g2", 1)
            ]
        );
        assert!(batch_units(&refs, 1).iter().all(|unit| matches!(unit, Unit::One(_))));
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<usize> = (0..100).collect();
        assert_eq!(run_parallel(&items, 4, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
