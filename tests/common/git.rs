//! A temporary Git repository holding the frozen test organisation, built with git2: commits
//! with fixed authors and dates, branches, so nothing depends on the machine's Git setup.

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature, Time};

use super::{copy_example_org, cpg, cpg_on, Run};

/// 2025-11-26T00:00:00Z, the date of every commit unless a test says otherwise.
pub const COMMIT_TIME: i64 = 1_764_115_200;

/// A non-bare repository whose working tree is the definitions root, on branch `main`.
pub struct GitOrg {
    _dir: tempfile::TempDir,
    pub repo: Repository,
    pub root: PathBuf,
}

impl GitOrg {
    /// The frozen organisation, committed once on `main` by "Org Admin".
    pub fn new() -> GitOrg {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut options = RepositoryInitOptions::new();
        options.initial_head("main");
        let repo = Repository::init_opts(dir.path(), &options).expect("git init");
        let root = dir.path().to_owned();
        copy_example_org(&root);
        let org = GitOrg { _dir: dir, repo, root };
        org.commit_as("Org Admin", "example organisation", COMMIT_TIME);
        org
    }

    /// Commits every file of the working tree on HEAD as `author`; returns the SHA.
    pub fn commit_as(&self, author: &str, message: &str, time: i64) -> String {
        let mut index = self.repo.index().expect("index");
        index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("git add");
        index.update_all(["*"], None).expect("git add -u");
        index.write().expect("write index");
        let tree = self.repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
        let parent = self.repo.head().ok().map(|h| h.peel_to_commit().expect("HEAD commit"));
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let email = format!("{}@example.org", author.to_lowercase().replace(' ', "."));
        let sig = Signature::new(author, &email, &Time::new(time, 0)).expect("signature");
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).expect("commit").to_string()
    }

    /// Creates `name` at HEAD and switches to it (the working tree is already that commit).
    pub fn switch_to_new_branch(&self, name: &str) {
        let head = self.repo.head().expect("HEAD").peel_to_commit().expect("HEAD commit");
        self.repo.branch(name, &head, false).expect("branch");
        self.repo.set_head(&format!("refs/heads/{name}")).expect("switch branch");
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).expect("read file")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        cpg(&self.root, args)
    }

    pub fn run_on(&self, today: &str, args: &[&str]) -> Run {
        cpg_on(&self.root, today, args)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
