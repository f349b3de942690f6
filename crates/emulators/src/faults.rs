//! What the emulators get wrong on purpose: seeded transport faults (429, 5xx, dropped
//! connections), permanent refusals, and replication lag counted in requests. Shared by every
//! emulator; each turns a `Fault` into its own API's error body.
//!
//! Lag is counted in requests, never in time, so a test that reproduces it does not depend on
//! how fast threads run. A faulted request never changes state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use axum::http::{Method, Uri};

/// Which requests fail, and how. Decisions come from a generator seeded with `seed`, one draw
/// per request that faults may apply to, in arrival order: the same seed and the same requests
/// give the same faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Share of requests answered 429 (Google: RESOURCE_EXHAUSTED) with a `Retry-After` header.
    pub rate_429: f64,
    /// The `Retry-After` value sent with 429, in whole seconds (may be 0).
    pub retry_after: Duration,
    /// Send 429 without a `Retry-After` header (the client falls back to its own backoff).
    pub omit_retry_after: bool,
    /// Share of requests answered 503 UNAVAILABLE.
    pub rate_503: f64,
    /// Share of requests answered 500 INTERNAL.
    pub rate_500: f64,
    /// Share of requests whose connection is closed without a response.
    pub rate_drop: f64,
    /// API method names (`groups.memberships.create`, `groups.members.remove`, …) faults apply
    /// to; `None` means all.
    pub methods: Option<BTreeSet<String>>,
    /// Stop injecting faults after this many.
    pub max_faults: Option<u64>,
    /// Fault one request (same method, path, query and body) at most this many times, so a
    /// client that retries more often than this always gets through, whatever the timing.
    pub max_faults_per_request: Option<u32>,
    /// Member emails that additions always refuse with 400 (Cloud Identity `memberships.create`;
    /// Graph `members/$ref` and the whole `members@odata.bind` PATCH that names one).
    pub reject_members: BTreeSet<String>,
    /// Member emails that are no account at all: Cloud Identity `memberships.create` answers
    /// 403 Error(2028), as for a group it does not have.
    pub unknown_members: BTreeSet<String>,
    /// Group emails (Graph: mailNicknames) that group creation always refuses with 400.
    pub reject_groups: BTreeSet<String>,
    /// A membership created through the API is missing from this many following
    /// `memberships.list` requests of its group (a stale read).
    pub membership_listing_lag: u32,
    /// A group created through the API is missing from this many following `groups.list`
    /// requests.
    pub group_listing_lag: u32,
    /// A group created through the API answers 404 to this many following direct reads
    /// (Cloud Identity `groups.lookup`, `groups.get`, `memberships.*` reads; Graph `groups.get`,
    /// `groups.members.list`); writes see it at once.
    pub group_read_lag: u32,
    /// A group created through the API is missing from this many following rounds of the
    /// change feed (Graph `/groups/delta`), then appears with all its members: the feed is
    /// replicated like any read (Graph group-delta reference).
    pub delta_lag: u32,
    /// Writes whose answer is lost: API method → how many of its successful writes are applied
    /// and then answered 503 (or, with `lose_by_reset`, by closing the connection), as when a
    /// gateway times out after the service made the change.
    pub lose_answers: BTreeMap<String, u32>,
    /// Lose answers by resetting the connection instead of answering 503.
    pub lose_by_reset: bool,
}

/// The fault plan and where its generator stands.
pub(crate) struct FaultState {
    pub(crate) plan: FaultPlan,
    random: SplitMix64,
    injected: u64,
    /// Faults injected per request identity, for `max_faults_per_request`.
    per_request: HashMap<u64, u32>,
    /// Answers lost so far, per API method.
    lost: HashMap<String, u32>,
}

/// How an applied write's answer is lost.
pub(crate) enum LostAnswer {
    Unavailable,
    Reset,
}

pub(crate) enum Fault {
    /// 429, with the `Retry-After` to send if any.
    TooManyRequests(Option<Duration>),
    Unavailable,
    Internal,
    Drop,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> FaultState {
        FaultState {
            random: SplitMix64(plan.seed),
            plan,
            injected: 0,
            per_request: HashMap::new(),
            lost: HashMap::new(),
        }
    }

    /// Draws once for a request to `method` (identified by `request`, a hash of what it sends)
    /// if faults apply to it.
    pub(crate) fn next_fault(&mut self, method: &str, request: u64) -> Option<Fault> {
        let plan = &self.plan;
        let rates = [plan.rate_429, plan.rate_503, plan.rate_500, plan.rate_drop];
        let faulted_before = self.per_request.get(&request).copied().unwrap_or(0);
        if rates.iter().all(|rate| *rate <= 0.0)
            || plan.max_faults.is_some_and(|max| self.injected >= max)
            || plan.max_faults_per_request.is_some_and(|max| faulted_before >= max)
            || plan.methods.as_ref().is_some_and(|methods| !methods.contains(method))
        {
            return None;
        }
        let retry_after = (!plan.omit_retry_after).then_some(plan.retry_after);
        let draw = self.random.next_f64();
        let mut threshold = 0.0;
        let faults = [Fault::TooManyRequests(retry_after), Fault::Unavailable, Fault::Internal, Fault::Drop];
        for (rate, fault) in rates.into_iter().zip(faults) {
            threshold += rate.max(0.0);
            if draw < threshold {
                self.injected += 1;
                *self.per_request.entry(request).or_default() += 1;
                return Some(fault);
            }
        }
        None
    }
}

impl FaultState {
    /// Whether the answer to a write to `method` that was just applied is to be lost.
    pub(crate) fn lose_answer(&mut self, method: &str) -> Option<LostAnswer> {
        let budget = self.plan.lose_answers.get(method).copied().unwrap_or(0);
        let lost = self.lost.entry(method.to_owned()).or_default();
        if *lost >= budget {
            return None;
        }
        *lost += 1;
        Some(if self.plan.lose_by_reset { LostAnswer::Reset } else { LostAnswer::Unavailable })
    }
}

/// What makes two requests the same request: a retry sends the same method, path, query and
/// body.
pub(crate) fn request_identity(method: &Method, uri: &Uri, body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    (method.as_str(), uri.to_string(), body).hash(&mut hasher);
    hasher.finish()
}

/// SplitMix64: a tiny, well-mixed, seedable generator; enough to spread faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_sequence_depends_only_on_the_seed() {
        let plan = FaultPlan { seed: 7, rate_429: 0.3, rate_503: 0.3, ..FaultPlan::default() };
        let sequence = |plan: &FaultPlan| {
            let mut state = FaultState::new(plan.clone());
            (0..64)
                .map(|request| state.next_fault("groups.list", request).map(|f| matches!(f, Fault::Unavailable)))
                .collect::<Vec<_>>()
        };
        assert_eq!(sequence(&plan), sequence(&plan));
        assert_ne!(sequence(&plan), sequence(&FaultPlan { seed: 8, ..plan.clone() }));
        let limited = FaultPlan { max_faults: Some(2), rate_429: 1.0, ..FaultPlan::default() };
        assert_eq!(sequence(&limited).iter().filter(|f| f.is_some()).count(), 2);
    }

    #[test]
    fn one_request_faults_at_most_the_given_number_of_times() {
        let plan = FaultPlan { rate_503: 1.0, max_faults_per_request: Some(2), ..FaultPlan::default() };
        let mut state = FaultState::new(plan);
        let faulted = |state: &mut FaultState, request| state.next_fault("groups.list", request).is_some();
        assert!(faulted(&mut state, 1) && faulted(&mut state, 1));
        assert!(!faulted(&mut state, 1), "a third attempt of the same request was faulted");
        assert!(faulted(&mut state, 2), "another request has its own budget");
    }
}
