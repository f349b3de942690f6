//! What the small emulators (Hail Batch, Blob service) share: per-operation request counts
//! and the switch that answers every distinct request 503 once before serving it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct RequestLog {
    calls: Mutex<BTreeMap<String, u64>>,
    fault_once: Mutex<bool>,
    faulted: Mutex<BTreeSet<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RequestLog {
    pub(crate) fn count(&self, operation: &str) {
        *lock(&self.calls).entry(operation.to_owned()).or_default() += 1;
    }

    pub(crate) fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    pub(crate) fn reset(&self) {
        lock(&self.calls).clear();
    }

    pub(crate) fn fault_each_request_once(&self, on: bool) {
        *lock(&self.fault_once) = on;
    }

    /// Whether this request (method and URI) is to be answered with a fault: the first time
    /// it is seen while faults are on.
    pub(crate) fn should_fault(&self, request: &str) -> bool {
        *lock(&self.fault_once) && lock(&self.faulted).insert(request.to_owned())
    }
}
