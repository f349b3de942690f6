//! Fake directory APIs on 127.0.0.1 that speak the real wire formats, for tests and benchmarks.
//!
//! Each emulator keeps its state in memory, runs its own runtime on its own thread, and can
//! inject latency and faults per request. Nothing here reaches the network beyond loopback.

pub mod azure;
mod azure_audit;
pub mod blob;
mod faults;
pub mod github;
pub mod google;
pub mod hail;
pub mod metamist;
mod requests;
mod server;

pub use faults::FaultPlan;

/// The MD5 digest object stores report for a stored object (GCS `md5Hash`, Azure `Content-MD5`).
fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}
