//! Applying a plan: phase by phase, bounded concurrency, retries with backoff for transient
//! failures, and every failure collected rather than stopping the run. A change that needs a
//! group whose creation failed in this run is not sent and counts as failed.

use std::collections::BTreeSet;
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
        self.failed.is_empty() && self.flush_error.is_none()
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
            self.failed.len(),
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
        let results = run_parallel(&changes, options.concurrency, |change| {
            let (result, attempts) = apply_with_retries(directory, change, &options.retry);
            retries.fetch_add(attempts.saturating_sub(1), Ordering::Relaxed);
            progress.advance();
            result
        });
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
    report.flush_error = directory.flush().err().map(|e| e.to_string());
    report.api_calls = directory.api_calls();
    report.retries = retries.into_inner();
    report.seconds = started.elapsed().as_secs_f64();
    ApplyOutcome::Applied(report)
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

/// Calls `operation` until it succeeds, fails permanently, or runs out of attempts. Returns the
/// last result and the number of attempts made.
pub(crate) fn with_retries<T>(
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
    fn parallel_map_keeps_order() {
        let items: Vec<usize> = (0..100).collect();
        assert_eq!(run_parallel(&items, 4, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
