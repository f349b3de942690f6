//! What the small emulators (Hail Batch, Metamist, Blob service) share: per-operation request
//! counts, the switch that answers every distinct request 503 once before serving it, the
//! bearer-token check and JSON answers.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::server::{ConnectionKiller, Request, Server};

#[derive(Default)]
pub(crate) struct RequestLog {
    calls: Mutex<BTreeMap<String, u64>>,
    fault_once: Mutex<bool>,
    faulted: Mutex<BTreeSet<String>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Replication lag counted in reads: an object created while it is on is missing from the
/// next n reads that would show it (a listing counts for every hidden object).
#[derive(Debug, Default)]
pub(crate) struct NewObjectLag {
    reads: u32,
    hidden: BTreeMap<String, u32>,
}

impl NewObjectLag {
    /// Objects created from now on are missing from their next `reads` reads.
    pub(crate) fn set(&mut self, reads: u32) {
        self.reads = reads;
    }

    pub(crate) fn created(&mut self, name: &str) {
        if self.reads > 0 {
            self.hidden.insert(name.to_owned(), self.reads);
        }
    }

    pub(crate) fn is_hidden(&self, name: &str) -> bool {
        self.hidden.get(name).is_some_and(|n| *n > 0)
    }

    /// A listing was answered: every hidden object is one read closer to showing.
    pub(crate) fn listed(&mut self) {
        self.hidden.values_mut().for_each(|n| *n = n.saturating_sub(1));
    }

    /// `name` was read directly.
    pub(crate) fn read(&mut self, name: &str) {
        if let Some(n) = self.hidden.get_mut(name) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Whether the request carries `Authorization: Bearer <token>`.
pub(crate) fn bearer_is<B>(request: &hyper::Request<B>, token: &str) -> bool {
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

/// Serves `handle` on 127.0.0.1:`port`, each request with its own handle on `shared`.
pub(crate) fn serve<S, F, Fut>(port: u16, thread_name: &str, shared: &Arc<S>, handle: F) -> io::Result<Server>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request, ConnectionKiller) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let for_server = Arc::clone(shared);
    Server::start(port, thread_name, move |request, killer| handle(Arc::clone(&for_server), request, killer))
}

/// The handle methods every small emulator has: where it listens and its request log. The
/// type has the fields `server: Server` and `shared: Arc<_>`, whose `requests` is the log.
macro_rules! request_log_handle {
    ($emulator:ty, $operations:literal) => {
        impl $emulator {
            /// The base URL, ending with `/`.
            pub fn base_url(&self) -> String {
                format!("http://{}/", self.server.address())
            }

            #[doc = concat!("Requests per operation (", $operations, ").")]
            pub fn calls(&self) -> std::collections::BTreeMap<String, u64> {
                self.shared.requests.calls()
            }

            pub fn reset_calls(&self) {
                self.shared.requests.reset();
            }

            /// Answers every distinct request once with a fault before serving it (a faulted
            /// request changes nothing).
            pub fn fault_each_request_once(&self, on: bool) {
                self.shared.requests.fault_each_request_once(on);
            }
        }
    };
}
pub(crate) use request_log_handle;
