//! The members cache: `<group>-members.txt` files (the group's effective members, lowercased,
//! sorted, one per line) that services read instead of asking the slow directory.
//!
//! Owns which files there should be (`desired_files`, from the hierarchy), the plan that makes
//! a store hold exactly them (`plan`, pure: only files whose bytes differ are written, and
//! stale `*-members.txt` files are removed), and applying it with retries (`apply`). Stores
//! (`local`, `gcs`) only list, put and delete; they never decide. Every `*-members.txt` in a
//! store belongs to cpg-infra (the bucket is the organisation's own); nothing else in it is
//! ever touched.

mod azure_blob;
mod gcs;
mod local;

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest as _, Md5};

use crate::definitions::Definitions;
use crate::directory::DirectoryError;
use crate::hierarchy::Hierarchy;
use crate::sync::RetryPolicy;

pub use azure_blob::AzureBlobStore;
pub use gcs::GcsStore;
pub use local::LocalStore;

/// The file name suffix of a cached group.
pub const SUFFIX: &str = "-members.txt";

/// An MD5 digest, as object stores report them.
pub type Md5Digest = [u8; 16];

/// The MD5 digest of `bytes`.
pub fn md5_digest(bytes: &[u8]) -> Md5Digest {
    Md5::digest(bytes).into()
}

/// Where cache files are kept. Implementations list, put and delete; nothing more.
pub trait CacheStore: Sync {
    /// For messages: `gs://bucket`, `.cpg-infra/members-cache`.
    fn describe(&self) -> String;
    /// Every `*-members.txt` file and the digest of its bytes.
    fn list(&self) -> Result<BTreeMap<String, Md5Digest>, DirectoryError>;
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), DirectoryError>;
    /// Deleting a file that is already gone succeeds.
    fn delete(&self, name: &str) -> Result<(), DirectoryError>;
    /// Requests sent so far (0 for stores that are not remote).
    fn calls(&self) -> u64 {
        0
    }
}

/// Every file the cache should hold: file name → contents.
pub fn desired_files(definitions: &Definitions, hierarchy: &Hierarchy) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for group in crate::infra::cached_groups(definitions) {
        let mut members: Vec<String> =
            hierarchy.effective_members(&group).into_iter().map(str::to_ascii_lowercase).collect();
        members.sort();
        members.dedup();
        let mut content = String::new();
        for member in members {
            content.push_str(&member);
            content.push('\n');
        }
        files.insert(format!("{group}{SUFFIX}"), content);
    }
    files
}

/// What a cache refresh changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CachePlan {
    /// Files to write: new, or with other bytes.
    pub writes: Vec<String>,
    /// Stale files to remove.
    pub deletes: Vec<String>,
}

impl CachePlan {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.deletes.is_empty()
    }
}

impl fmt::Display for CachePlan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for name in &self.writes {
            writeln!(f, "  + write  {name}")?;
        }
        for name in &self.deletes {
            writeln!(f, "  - delete {name}")?;
        }
        writeln!(f, "cache plan: {} file(s) to write, {} to delete", self.writes.len(), self.deletes.len())
    }
}

/// The writes and deletes that make `live` hold exactly `desired`.
pub fn plan(desired: &BTreeMap<String, String>, live: &BTreeMap<String, Md5Digest>) -> CachePlan {
    let writes = desired
        .iter()
        .filter(|(name, content)| live.get(*name) != Some(&md5_digest(content.as_bytes())))
        .map(|(name, _)| name.clone())
        .collect();
    let deletes = live.keys().filter(|name| name.ends_with(SUFFIX) && !desired.contains_key(*name)).cloned().collect();
    CachePlan { writes, deletes }
}

/// What applying a cache plan did.
#[derive(Debug, Default)]
pub struct CacheReport {
    pub written: usize,
    pub deleted: usize,
    pub retries: usize,
    pub failed: Vec<(String, DirectoryError)>,
}

impl CacheReport {
    pub fn summary(&self) -> String {
        format!(
            "cache: {} file(s) written, {} deleted, {} failed, {} retried",
            self.written,
            self.deleted,
            self.failed.len(),
            self.retries
        )
    }
}

/// Writes and deletes what `plan` says, each with retries; a failure is reported and the rest
/// go on.
pub fn apply(
    store: &dyn CacheStore,
    plan: &CachePlan,
    desired: &BTreeMap<String, String>,
    retry: &RetryPolicy,
) -> CacheReport {
    let mut report = CacheReport::default();
    for name in &plan.writes {
        let bytes = desired.get(name).map(String::as_bytes).unwrap_or_default();
        let (result, attempts) = crate::sync::with_retries(retry, || store.put(name, bytes));
        report.retries += attempts - 1;
        match result {
            Ok(()) => report.written += 1,
            Err(error) => report.failed.push((format!("write {name}"), error)),
        }
    }
    for name in &plan.deletes {
        let (result, attempts) = crate::sync::with_retries(retry, || store.delete(name));
        report.retries += attempts - 1;
        match result {
            Ok(()) => report.deleted += 1,
            Err(error) => report.failed.push((format!("delete {name}"), error)),
        }
    }
    report
}

/// Reads a store's files with retries.
pub fn read(
    store: &dyn CacheStore,
    retry: &RetryPolicy,
) -> (Result<BTreeMap<String, Md5Digest>, DirectoryError>, usize) {
    let (result, attempts) = crate::sync::with_retries(retry, || store.list());
    (result, attempts - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_files_are_written_and_only_stale_cache_files_deleted() {
        let desired: BTreeMap<String, String> = [
            ("a-analysis-members.txt".to_owned(), "x@example.org\n".to_owned()),
            ("b-analysis-members.txt".to_owned(), "y@example.org\n".to_owned()),
            ("c-analysis-members.txt".to_owned(), String::new()),
        ]
        .into();
        let live: BTreeMap<String, Md5Digest> = [
            ("a-analysis-members.txt".to_owned(), md5_digest(b"x@example.org\n")),
            ("b-analysis-members.txt".to_owned(), md5_digest(b"old@example.org\n")),
            ("gone-analysis-members.txt".to_owned(), md5_digest(b"z@example.org\n")),
            ("README".to_owned(), md5_digest(b"not ours")),
        ]
        .into();
        let plan = plan(&desired, &live);
        assert_eq!(plan.writes, ["b-analysis-members.txt", "c-analysis-members.txt"]);
        assert_eq!(plan.deletes, ["gone-analysis-members.txt"]);
    }

    #[test]
    fn md5_matches_the_known_digest() {
        // RFC 1321's test vector.
        let hex: String = md5_digest(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "900150983cd24fb0d6963f7d28e17f72");
    }
}
