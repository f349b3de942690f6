//! Where definitions are read from: a directory on disk or a tree in a Git repository.
//!
//! Git sources read blobs straight from the object database (no checkout), so they
//! work in bare repositories and never touch the working tree.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Failure to read the definitions' files (as opposed to errors in their content).
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{path} is not valid UTF-8")]
    NotUtf8 { path: String },
    #[error("{0}")]
    Missing(String),
}

/// A read-only view of a tree of definitions files, addressed by `/`-separated relative paths.
pub trait Source {
    /// Names of the entries directly under `dir` (files and directories), sorted; empty if absent.
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError>;
    /// The file's text, or `None` if it does not exist.
    fn read(&self, path: &str) -> Result<Option<String>, SourceError>;
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// Definitions in a directory on disk.
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl Into<PathBuf>) -> DirSource {
        DirSource { root: root.into() }
    }
}

impl Source for DirSource {
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let path = self.root.join(dir);
        let reader = match std::fs::read_dir(&path) {
            Ok(reader) => reader,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(SourceError::Io { path: dir.to_owned(), source }),
        };
        let mut entries = Vec::new();
        for entry in reader {
            let entry = entry.map_err(|source| SourceError::Io { path: dir.to_owned(), source })?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let is_dir = entry.path().is_dir();
            entries.push(Entry { name, is_dir });
        }
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        match std::fs::read(self.root.join(path)) {
            Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| SourceError::NotUtf8 { path: path.to_owned() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError::Io { path: path.to_owned(), source }),
        }
    }
}

/// Definitions in the tree of one Git commit, optionally under a subdirectory of the repository.
pub struct GitSource<'repo> {
    repo: &'repo git2::Repository,
    tree: git2::Tree<'repo>,
    prefix: String,
}

impl<'repo> GitSource<'repo> {
    /// Resolves `rev` (anything `git rev-parse` understands) to a tree. `prefix` is the path of
    /// the definitions root inside the repository ("" for the top).
    pub fn new(repo: &'repo git2::Repository, rev: &str, prefix: &str) -> Result<Self, SourceError> {
        let object = repo
            .revparse_single(rev)
            .map_err(|e| SourceError::Missing(format!("unknown revision `{rev}`: {}", e.message())))?;
        let tree = object.peel_to_tree()?;
        let prefix = prefix.trim_matches('/').to_owned();
        Ok(GitSource { repo, tree, prefix })
    }

    fn full_path(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, path),
        }
    }

    fn entry(&self, path: &str) -> Option<git2::TreeEntry<'static>> {
        let full = self.full_path(path);
        if full.is_empty() {
            return None;
        }
        self.tree.get_path(Path::new(&full)).ok()
    }
}

impl Source for GitSource<'_> {
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let tree = if self.full_path(dir).is_empty() {
            self.tree.clone()
        } else {
            match self.entry(dir) {
                Some(entry) if entry.kind() == Some(git2::ObjectType::Tree) => self.repo.find_tree(entry.id())?,
                _ => return Ok(Vec::new()),
            }
        };
        let mut entries: Vec<Entry> = tree
            .iter()
            .filter_map(|entry| {
                let name = entry.name().ok()?.to_owned();
                Some(Entry { name, is_dir: entry.kind() == Some(git2::ObjectType::Tree) })
            })
            .collect();
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        let Some(entry) = self.entry(path) else {
            return Ok(None);
        };
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.id())?;
        String::from_utf8(blob.content().to_vec()).map(Some).map_err(|_| SourceError::NotUtf8 { path: path.to_owned() })
    }
}
