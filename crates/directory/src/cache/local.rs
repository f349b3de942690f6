//! The members cache in a local directory (the embedded default, and for services that read a
//! mounted folder). Files are replaced atomically.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::{md5_digest, CacheStore, Md5Digest, SUFFIX};
use crate::directory::DirectoryError;

/// Cache files in a directory; created on the first write.
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: impl Into<PathBuf>) -> LocalStore {
        LocalStore { dir: dir.into() }
    }
}

fn storage_error(what: &str, path: &std::path::Path, error: std::io::Error) -> DirectoryError {
    DirectoryError::Storage(format!("cannot {what} {}: {error}", path.display()))
}

impl CacheStore for LocalStore {
    fn describe(&self) -> String {
        format!("members cache in {}", self.dir.display())
    }

    fn list(&self) -> Result<BTreeMap<String, Md5Digest>, DirectoryError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(storage_error("list", &self.dir, e)),
        };
        let mut files = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| storage_error("list", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if !name.ends_with(SUFFIX) {
                continue;
            }
            let bytes = fs::read(entry.path()).map_err(|e| storage_error("read", &entry.path(), e))?;
            files.insert(name, md5_digest(&bytes));
        }
        Ok(files)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), DirectoryError> {
        fs::create_dir_all(&self.dir).map_err(|e| storage_error("create", &self.dir, e))?;
        let path = self.dir.join(name);
        crate::write_safely::write_file(&path, bytes).map_err(|e| storage_error("write", &path, e))
    }

    fn delete(&self, name: &str) -> Result<(), DirectoryError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(storage_error("delete", &path, e)),
        }
    }
}
