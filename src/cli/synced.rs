//! The revision a provider last synced completely, kept in `.cpg-infra/<provider>-synced.json`
//! under --root, so that the next sync can read only the groups whose definitions changed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::args::GlobalArgs;

/// What a complete sync leaves for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedRevision {
    /// The commit the desired state was loaded from.
    pub commit: String,
    /// The day expiry was judged against: the base is loaded as of that day again, so grants
    /// that expired since count as changes.
    pub date: String,
}

/// Where `provider`'s synced revision is kept.
pub fn path(global: &GlobalArgs, provider: &str) -> PathBuf {
    global.root.join(format!(".cpg-infra/{provider}-synced.json"))
}

/// The recorded revision; `Err` says why there is none to use.
pub fn read(path: &Path) -> Result<SyncedRevision, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: not a synced revision ({e})", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("no synced revision is recorded at {}", path.display()))
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// Records `synced` (refusing to write through a symlink, like the other state files).
pub fn record(path: &Path, synced: &SyncedRevision) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = serde_json::to_string_pretty(synced).map_err(std::io::Error::other)? + "\n";
    crate::write_safely::write_file(path, text.as_bytes())
}
