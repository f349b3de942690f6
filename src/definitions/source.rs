//! Where definitions are read from: a directory on disk or a tree in a Git repository.
//!
//! Git sources read blobs straight from the object database (no checkout), so they
//! work in bare repositories and never touch the working tree.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
///
/// Each directory is read from the object database once and its listing kept: a file is found
/// in its directory's listing, never by walking the tree from the root again (libgit2 does not
/// cache trees over 4 KiB, so a `datasets/` tree of a few hundred entries would be re-read and
/// re-inflated for every file).
pub struct GitSource<'repo> {
    repo: &'repo git2::Repository,
    /// The tree at the definitions root; `None` if the revision has nothing at the prefix.
    root: Option<git2::Tree<'repo>>,
    /// Directories already read, by path relative to the root; `None` when absent.
    listings: RefCell<HashMap<String, Option<Rc<Listing>>>>,
}

/// One directory's entries with their object ids, sorted by name for lookups.
struct Listing {
    entries: Vec<GitEntry>,
}

struct GitEntry {
    name: String,
    id: git2::Oid,
    kind: Option<git2::ObjectType>,
}

impl<'repo> GitSource<'repo> {
    /// Resolves `rev` (anything `git rev-parse` understands) to a tree. `prefix` is the path of
    /// the definitions root inside the repository ("" for the top).
    pub fn new(repo: &'repo git2::Repository, rev: &str, prefix: &str) -> Result<Self, SourceError> {
        let object = repo
            .revparse_single(rev)
            .map_err(|e| SourceError::Missing(format!("unknown revision `{rev}`: {}", e.message())))?;
        let tree = object.peel_to_tree()?;
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            Some(tree)
        } else {
            match tree.get_path(Path::new(prefix)) {
                Ok(entry) if entry.kind() == Some(git2::ObjectType::Tree) => Some(repo.find_tree(entry.id())?),
                _ => None,
            }
        };
        Ok(GitSource { repo, root, listings: RefCell::default() })
    }

    /// The listing of `dir`, read through its parent's listing the first time it is asked for.
    fn listing(&self, dir: &str) -> Result<Option<Rc<Listing>>, SourceError> {
        let dir = dir.trim_matches('/');
        if let Some(known) = self.listings.borrow().get(dir) {
            return Ok(known.clone());
        }
        let tree = if dir.is_empty() {
            self.root.clone()
        } else {
            let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
            match self.listing(parent)?.and_then(|listing| listing.find(name).map(|e| (e.id, e.kind))) {
                Some((id, Some(git2::ObjectType::Tree))) => Some(self.repo.find_tree(id)?),
                _ => None,
            }
        };
        let listing = tree.map(|tree| Rc::new(Listing::of(&tree)));
        self.listings.borrow_mut().insert(dir.to_owned(), listing.clone());
        Ok(listing)
    }
}

impl Listing {
    fn of(tree: &git2::Tree) -> Listing {
        let mut entries: Vec<GitEntry> = tree
            .iter()
            .filter_map(|entry| {
                let name = entry.name().ok()?.to_owned();
                Some(GitEntry { name, id: entry.id(), kind: entry.kind() })
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Listing { entries }
    }

    fn find(&self, name: &str) -> Option<&GitEntry> {
        let index = self.entries.binary_search_by(|e| e.name.as_str().cmp(name)).ok()?;
        Some(&self.entries[index])
    }
}

impl Source for GitSource<'_> {
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let Some(listing) = self.listing(dir)? else {
            return Ok(Vec::new());
        };
        let mut entries: Vec<Entry> = listing
            .entries
            .iter()
            .map(|e| Entry { name: e.name.clone(), is_dir: e.kind == Some(git2::ObjectType::Tree) })
            .collect();
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        let (dir, name) = path.trim_matches('/').rsplit_once('/').unwrap_or(("", path));
        let Some(listing) = self.listing(dir)? else {
            return Ok(None);
        };
        let Some(entry) = listing.find(name).filter(|e| e.kind == Some(git2::ObjectType::Blob)) else {
            return Ok(None);
        };
        let blob = self.repo.find_blob(entry.id)?;
        String::from_utf8(blob.content().to_vec()).map(Some).map_err(|_| SourceError::NotUtf8 { path: path.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository whose one commit holds `files` under `defs/`, with the same files on disk.
    fn repository(files: &[(&str, &str)]) -> (tempfile::TempDir, git2::Repository) {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (path, text) in files {
            let path = dir.path().join("defs").join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create directories");
            std::fs::write(path, text).expect("write file");
        }
        let repo = git2::Repository::init(dir.path()).expect("git init");
        {
            let mut index = repo.index().expect("index");
            index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).expect("git add");
            let tree = repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
            let signature = git2::Signature::now("tests", "tests@example.org").expect("signature");
            repo.commit(Some("HEAD"), &signature, &signature, "files", &tree, &[]).expect("commit");
        }
        (dir, repo)
    }

    #[test]
    fn git_source_answers_like_the_directory_it_was_committed_from() {
        let files = [
            ("groups/org.toml", "org"),
            ("groups/teams.toml", "teams"),
            ("datasets/b/dataset.toml", "b"),
            ("datasets/a/members.toml", "a members"),
            ("datasets/a/dataset.toml", "a"),
            ("datasets/a/nested/deep.toml", "deep"),
        ];
        let (dir, repo) = repository(&files);
        let git = GitSource::new(&repo, "HEAD", "defs/").expect("revision");
        let disk = DirSource::new(dir.path().join("defs"));
        let dirs = ["", "groups", "datasets", "datasets/a", "datasets/a/nested", "datasets/b", "datasets/c"];
        for dir in dirs.into_iter().chain(["missing/deeper"]) {
            assert_eq!(git.list(dir).expect("list"), disk.list(dir).expect("list"), "listing {dir:?}");
        }
        let paths = files.iter().map(|(path, _)| *path).chain(["datasets/c/dataset.toml", "nothing"]);
        for path in paths {
            assert_eq!(git.read(path).expect("read"), disk.read(path).expect("read"), "reading {path:?}");
        }
        assert_eq!(git.read("datasets/a/nested/deep.toml").expect("read").as_deref(), Some("deep"));
        assert!(git.list("groups/org.toml").expect("a file lists as nothing").is_empty());
        assert_eq!(git.read("datasets/a").expect("a directory reads as nothing"), None);
    }

    #[test]
    fn git_source_under_a_missing_prefix_is_empty() {
        let (_dir, repo) = repository(&[("groups/org.toml", "org")]);
        let git = GitSource::new(&repo, "HEAD", "elsewhere").expect("revision");
        assert!(git.list("").expect("list").is_empty());
        assert!(git.list("groups").expect("list").is_empty());
        assert_eq!(git.read("groups/org.toml").expect("read"), None);
        let top = GitSource::new(&repo, "HEAD", "").expect("revision");
        assert_eq!(top.list("").expect("list"), vec![Entry { name: "defs".into(), is_dir: true }]);
        assert_eq!(top.read("defs/groups/org.toml").expect("read").as_deref(), Some("org"));
    }
}
