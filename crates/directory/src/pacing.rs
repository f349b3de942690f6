//! Request pacing: one token bucket per provider, shared by all of a run's concurrent requests
//! to it, so a sync stays under the service's quota instead of finding it through 429s. A
//! throttled answer's Retry-After pauses the bucket, so every worker waits, not only the one
//! that was told.
//!
//! The bucket is kept as the time its next request may go out at the steady rate (the generic
//! cell rate algorithm): each request reserves its slot under the lock and then sleeps outside
//! it, so waits are first come, first served and never spin. It never sends anything itself;
//! the providers call `acquire` before each request. Time comes from a `Clock`, so tests run
//! on a virtual one and never wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::definitions::RequestRate;

/// The longest a Retry-After pauses the bucket: as long as the sync's retries wait at most
/// (`RetryPolicy::max_delay`), so a service asking for an hour cannot stall the run for one.
pub const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Where the pacer reads the time and waits.
pub trait Clock: Send + Sync {
    /// Time since some fixed origin.
    fn now(&self) -> Duration;
    /// Returns at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Duration);
}

/// The machine's monotonic clock, and real sleeps.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep_until(&self, deadline: Duration) {
        std::thread::sleep(deadline.saturating_sub(self.now()));
    }
}

/// A clock that moves only when someone sleeps on it, straight to the deadline: threads that
/// wait concurrently end at the latest of their deadlines, as they would in real time.
#[derive(Default)]
pub struct VirtualClock {
    now: Mutex<Duration>,
}

impl VirtualClock {
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        *lock(&self.now)
    }

    fn sleep_until(&self, deadline: Duration) {
        let mut now = lock(&self.now);
        *now = (*now).max(deadline);
    }
}

/// One provider's token bucket.
pub struct Pacer {
    /// Time between two requests at the steady rate.
    interval: Duration,
    /// How far ahead of now the next slot may be while a request still goes at once: the
    /// burst's worth of intervals.
    tolerance: Duration,
    clock: Arc<dyn Clock>,
    /// When the next request would go out if the bucket were kept exactly at the rate (the
    /// theoretical arrival time); a bucket with tokens to spare has it in the past.
    next_slot: Mutex<Duration>,
    /// Requests paced so far, each request of a batch counted.
    requests: AtomicU64,
    /// Nanoseconds waited so far, summed over every request.
    waited_nanos: AtomicU64,
}

impl Pacer {
    /// A bucket at `rate` on the machine's clock, full to start with.
    pub fn new(rate: RequestRate) -> Pacer {
        Pacer::with_clock(rate, Arc::new(SystemClock::new()))
    }

    pub fn with_clock(rate: RequestRate, clock: Arc<dyn Clock>) -> Pacer {
        let interval = Duration::from_secs_f64(1.0 / rate.requests_per_second());
        let next_slot = Mutex::new(clock.now());
        Pacer {
            interval,
            tolerance: interval.saturating_mul(rate.burst()),
            clock,
            next_slot,
            requests: AtomicU64::new(0),
            waited_nanos: AtomicU64::new(0),
        }
    }

    /// Waits until `cost` requests (a batch counts each of its requests) may be sent, and
    /// returns how long it waited. A cost above the burst waits for a full bucket and then
    /// borrows from the requests after it.
    pub fn acquire(&self, cost: u32) -> Duration {
        let cost = cost.max(1);
        let (now, send_at) = {
            let mut next_slot = lock(&self.next_slot);
            let now = self.clock.now();
            let slot = (*next_slot).max(now) + self.interval.saturating_mul(cost);
            *next_slot = slot;
            (now, now.max(slot.saturating_sub(self.tolerance)))
        };
        self.requests.fetch_add(u64::from(cost), Ordering::Relaxed);
        let wait = send_at - now;
        if !wait.is_zero() {
            self.waited_nanos.fetch_add(wait.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
            self.clock.sleep_until(send_at);
        }
        wait
    }

    /// The service asked us to wait `retry_after` (at most `MAX_PAUSE` is taken): nothing goes
    /// out before then, and the bucket is empty at that point, so the requests after it resume
    /// at the steady rate rather than all at once.
    pub fn pause(&self, retry_after: Duration) {
        let mut next_slot = lock(&self.next_slot);
        let empty_at = self.clock.now() + retry_after.min(MAX_PAUSE) + self.tolerance;
        *next_slot = (*next_slot).max(empty_at);
    }

    /// Requests paced so far (each request of a batch counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Time waited so far, summed over every request.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(per_second: f64, burst: u32) -> (Pacer, Arc<VirtualClock>) {
        let clock = Arc::new(VirtualClock::new());
        let rate = RequestRate::new(per_second, burst).expect("a valid rate");
        (Pacer::with_clock(rate, clock.clone()), clock)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_full_bucket_sends_its_burst_at_once_then_keeps_the_rate() {
        let (pacer, clock) = pacer(10.0, 3);
        let waits: Vec<Duration> = (0..6).map(|_| pacer.acquire(1)).collect();
        assert_eq!(waits, [ms(0), ms(0), ms(0), ms(100), ms(100), ms(100)]);
        assert_eq!(clock.now(), ms(300));
        assert_eq!((pacer.requests(), pacer.waited()), (6, ms(300)));
    }

    #[test]
    fn an_idle_bucket_refills_up_to_its_burst_only() {
        let (pacer, clock) = pacer(10.0, 2);
        pacer.acquire(2);
        clock.sleep_until(Duration::from_secs(60));
        let waits: Vec<Duration> = (0..4).map(|_| pacer.acquire(1)).collect();
        assert_eq!(waits, [ms(0), ms(0), ms(100), ms(100)], "a long idle time saves no more than the burst");
    }

    #[test]
    fn a_batch_costs_each_of_its_requests() {
        let (pacer, clock) = pacer(20.0, 20);
        assert_eq!(pacer.acquire(20), ms(0), "one full batch fits the burst");
        assert_eq!(pacer.acquire(20), Duration::from_secs(1), "the next waits for the bucket to refill");
        assert_eq!(clock.now(), Duration::from_secs(1));
        let (small, _) = self::pacer(5.0, 2);
        assert_eq!(small.acquire(4), ms(400), "a batch above the burst borrows ahead");
        assert_eq!(small.acquire(1), ms(200));
        assert_eq!(small.requests(), 5);
    }

    #[test]
    fn retry_after_pauses_every_request_and_resumes_at_the_rate() {
        let (pacer, clock) = pacer(10.0, 5);
        pacer.acquire(1);
        pacer.pause(Duration::from_secs(2));
        pacer.pause(ms(50));
        assert_eq!(pacer.acquire(1), ms(2100), "nothing before the pause ends, and the bucket is empty then");
        assert_eq!(pacer.acquire(1), ms(100));
        assert_eq!(clock.now(), ms(2200), "a shorter pause never shortens a longer one");
        pacer.pause(Duration::from_secs(3600));
        assert_eq!(
            pacer.acquire(1),
            MAX_PAUSE + ms(100),
            "an hour's Retry-After pauses no longer than the retries wait"
        );
    }

    #[test]
    fn concurrent_workers_share_one_bucket() {
        let (pacer, clock) = pacer(100.0, 1);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        pacer.acquire(1);
                    }
                });
            }
        });
        assert_eq!(pacer.requests(), 100);
        assert_eq!(clock.now(), ms(990), "100 requests at 100 a second, the first at once");
    }
}
