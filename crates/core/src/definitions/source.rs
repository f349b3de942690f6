//! Where definitions are read from: a directory on disk or a tree in a Git repository.
//!
//! Git sources read blobs straight from the object database (no checkout), so they
//! work in bare repositories and never touch the working tree.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use thiserror::Error;

/// Failure to read the definitions' files (as opposed to errors in their content).
#[derive(Debug, Error)]
pub enum SourceError {
    /// One definitions path cannot be read as a definitions file. This is the user's input,
    /// so it becomes a located diagnostic like any mistake inside a file.
    #[error("{path}:{line}:{column}: {problem}")]
    Unreadable { path: String, line: usize, column: usize, problem: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{0}")]
    Missing(String),
}

impl SourceError {
    /// A problem with the file at `path` as a whole.
    pub fn unreadable(path: &str, problem: impl Into<String>) -> SourceError {
        SourceError::Unreadable { path: path.to_owned(), line: 1, column: 1, problem: problem.into() }
    }
}

/// A read-only view of a tree of definitions files, addressed by `/`-separated relative paths.
pub trait Source {
    /// The entries directly under `dir`, sorted; empty if absent.
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError>;
    /// The file's text, or `None` if it does not exist.
    fn read(&self, path: &str) -> Result<Option<String>, SourceError>;
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The entry's name; a name that is not UTF-8 is shown with replacement characters and
    /// its kind is `Unusable`.
    pub name: String,
    pub kind: EntryKind,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
}

/// What a directory entry is, as far as definitions are concerned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    File,
    Dir,
    /// Something that can never hold definitions, and why (a symbolic link, a name that is
    /// not UTF-8, a device...). Loading reports it instead of skipping it.
    Unusable(String),
}

/// Why symbolic links are refused: Git stores a link, not what it points to, so the working
/// tree and a revision would disagree, and a link can lead outside the definitions root.
const SYMLINK_PROBLEM: &str =
    "is a symbolic link; definitions must be plain files and directories (Git stores the link, not its target)";

/// The text of a definitions file, or where its first byte that is not UTF-8 is.
pub fn decode_utf8(path: &str, bytes: Vec<u8>) -> Result<String, SourceError> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let valid = &bytes[..error.utf8_error().valid_up_to()];
        let text = std::str::from_utf8(valid).unwrap_or_default();
        let line = text.matches('\n').count() + 1;
        let column = text[text.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
        let byte = bytes[valid.len()];
        SourceError::Unreadable {
            path: path.to_owned(),
            line,
            column,
            problem: format!("the file is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8"),
        }
    })
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
        if std::fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(SourceError::unreadable(dir, SYMLINK_PROBLEM));
        }
        let reader = match std::fs::read_dir(&path) {
            Ok(reader) => reader,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_problem(dir, &e)),
        };
        let mut entries = Vec::new();
        for entry in reader {
            let entry = entry.map_err(|e| io_problem(dir, &e))?;
            let file_type = entry.file_type().map_err(|e| io_problem(dir, &e))?;
            let (name, kind) = match entry.file_name().into_string() {
                Ok(name) => {
                    let kind = if file_type.is_symlink() {
                        EntryKind::Unusable(SYMLINK_PROBLEM.to_owned())
                    } else if file_type.is_dir() {
                        EntryKind::Dir
                    } else if file_type.is_file() {
                        EntryKind::File
                    } else {
                        EntryKind::Unusable("is neither a file nor a directory".to_owned())
                    };
                    (name, kind)
                }
                Err(raw) => (
                    raw.to_string_lossy().into_owned(),
                    EntryKind::Unusable("has a name that is not valid UTF-8; rename it".to_owned()),
                ),
            };
            entries.push(Entry { name, kind });
        }
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        let full = self.root.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(SourceError::unreadable(path, SYMLINK_PROBLEM)),
            Ok(meta) if meta.is_dir() => return Err(SourceError::unreadable(path, "is a directory, not a file")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_problem(path, &e)),
        }
        match std::fs::read(&full) {
            Ok(bytes) => decode_utf8(path, bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_problem(path, &e)),
        }
    }
}

/// An OS error on one path, said once and in words (`permission denied`), without the code.
fn io_problem(path: &str, error: &std::io::Error) -> SourceError {
    let words = match error.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => {
            let text = error.to_string();
            // "Is a directory (os error 21)" → "is a directory"
            let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
            text[..1].to_lowercase() + &text[1..]
        }
    };
    SourceError::unreadable(path, format!("cannot be read: {words}"))
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
    kind: EntryKind,
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
            match self.listing(parent)?.and_then(|listing| listing.find(name).map(|e| (e.id, e.kind.clone()))) {
                Some((id, EntryKind::Dir)) => Some(self.repo.find_tree(id)?),
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
            .map(|entry| {
                let Entry { name, kind } = git_entry(&entry);
                GitEntry { name, id: entry.id(), kind }
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
        let mut entries: Vec<Entry> =
            listing.entries.iter().map(|e| Entry { name: e.name.clone(), kind: e.kind.clone() }).collect();
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        let (dir, name) = path.trim_matches('/').rsplit_once('/').unwrap_or(("", path));
        let Some(listing) = self.listing(dir)? else {
            return Ok(None);
        };
        let Some(entry) = listing.find(name) else {
            return Ok(None);
        };
        match &entry.kind {
            EntryKind::File => {}
            EntryKind::Dir => return Err(SourceError::unreadable(path, "is a directory, not a file")),
            EntryKind::Unusable(problem) => return Err(SourceError::unreadable(path, problem.clone())),
        }
        let blob = self.repo.find_blob(entry.id)?;
        decode_utf8(path, blob.content().to_vec()).map(Some)
    }
}

/// A tree entry as a directory entry: the same kinds and problems as on disk.
fn git_entry(entry: &git2::TreeEntry) -> Entry {
    let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
    let kind = if entry.name().is_err() {
        EntryKind::Unusable("has a name that is not valid UTF-8; rename it".to_owned())
    } else if entry.filemode() == i32::from(git2::FileMode::Link) {
        EntryKind::Unusable(SYMLINK_PROBLEM.to_owned())
    } else {
        match entry.kind() {
            Some(git2::ObjectType::Tree) => EntryKind::Dir,
            Some(git2::ObjectType::Blob) => EntryKind::File,
            _ => EntryKind::Unusable("is a submodule, not a file or directory".to_owned()),
        }
    };
    Entry { name, kind }
}

/// Another source with some files replaced or added: edited definitions, loaded and checked
/// before anything is written.
pub struct OverlaySource<'a> {
    base: &'a dyn Source,
    /// Path → the file's new text.
    files: BTreeMap<String, String>,
}

impl<'a> OverlaySource<'a> {
    pub fn new(base: &'a dyn Source, files: BTreeMap<String, String>) -> OverlaySource<'a> {
        OverlaySource { base, files }
    }
}

impl Source for OverlaySource<'_> {
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let mut entries = self.base.list(dir)?;
        let prefix = if dir.is_empty() { String::new() } else { format!("{}/", dir.trim_end_matches('/')) };
        for path in self.files.keys() {
            let Some(name) = path.strip_prefix(&prefix).filter(|name| !name.contains('/')) else {
                continue;
            };
            if !entries.iter().any(|entry| entry.name == name) {
                entries.push(Entry { name: name.to_owned(), kind: EntryKind::File });
            }
        }
        entries.sort();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        match self.files.get(path) {
            Some(text) => Ok(Some(text.clone())),
            None => self.base.read(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlay_replaces_and_adds_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("datasets/a")).unwrap();
        std::fs::write(dir.path().join("datasets/a/dataset.toml"), "old").unwrap();
        let base = DirSource::new(dir.path());
        let mut files = BTreeMap::new();
        files.insert("datasets/a/dataset.toml".to_owned(), "new".to_owned());
        files.insert("datasets/a/members.toml".to_owned(), "added".to_owned());
        let overlay = OverlaySource::new(&base, files);
        assert_eq!(overlay.read("datasets/a/dataset.toml").unwrap().as_deref(), Some("new"));
        assert_eq!(overlay.read("datasets/a/members.toml").unwrap().as_deref(), Some("added"));
        let names: Vec<String> = overlay.list("datasets/a").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["dataset.toml", "members.toml"]);
        let names: Vec<String> = overlay.list("datasets").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a"]);
    }

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
        assert!(git.read("datasets/a").is_err(), "a directory where a file belongs is an error");
        assert!(disk.read("datasets/a").is_err(), "on disk too");
    }

    #[test]
    fn git_source_under_a_missing_prefix_is_empty() {
        let (_dir, repo) = repository(&[("groups/org.toml", "org")]);
        let git = GitSource::new(&repo, "HEAD", "elsewhere").expect("revision");
        assert!(git.list("").expect("list").is_empty());
        assert!(git.list("groups").expect("list").is_empty());
        assert_eq!(git.read("groups/org.toml").expect("read"), None);
        let top = GitSource::new(&repo, "HEAD", "").expect("revision");
        assert_eq!(top.list("").expect("list"), vec![Entry { name: "defs".into(), kind: EntryKind::Dir }]);
        assert_eq!(top.read("defs/groups/org.toml").expect("read").as_deref(), Some("org"));
    }
}
