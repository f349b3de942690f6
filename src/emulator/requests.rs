//! What the small emulators (Hail Batch, Metamist, Blob service) share: per-operation request
//! counts, the switch that answers every distinct request 503 once before serving it, the
//! bearer-token check and JSON answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::server::Request;

#[derive(Default)]
pub(crate) struct RequestLog {
    calls: Mutex<BTreeMap<String, u64>>,
    fault_once: Mutex<bool>,
    faulted: Mutex<BTreeSet<String>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the request carries `Authorization: Bearer <token>`.
pub(crate) fn bearer_is(request: &Request, token: &str) -> bool {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.strip_prefix("Bearer ") == Some(token))
}

/// A JSON response.
pub(crate) fn json_answer(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
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
