//! What the benchmarks over Git histories share: the synthetic organisation written to a
//! directory and committed, and one commit more on top.

use std::path::Path;

use cpg_infra::synthetic::{generate, SyntheticShape};

/// Writes the synthetic organisation of `datasets` datasets under `root`, in a new repository,
/// committed once.
pub fn synthetic_repository(root: &Path, datasets: usize) -> git2::Repository {
    let shape = SyntheticShape { datasets, ..SyntheticShape::large() };
    for (path, text) in generate(shape) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create directories");
        std::fs::write(path, text).expect("write file");
    }
    let repo = git2::Repository::init(root).expect("git init");
    commit(&repo, "synthetic organisation", &[]);
    repo
}

/// Gives `person` the analysis role on the dataset whose members file is `members` (relative to
/// the repository), and commits that file alone.
pub fn grant_analysis(repo: &git2::Repository, members: &str, person: &str, message: &str) {
    let path = repo.workdir().expect("a working tree").join(members);
    let text = std::fs::read_to_string(&path).expect("read members");
    std::fs::write(&path, text.replacen("analysis = [", &format!("analysis = [\"{person}\", "), 1))
        .expect("write members");
    commit(repo, message, &[members]);
}

/// Commits `paths` (everything when empty) on HEAD.
pub fn commit(repo: &git2::Repository, message: &str, paths: &[&str]) {
    let mut index = repo.index().expect("index");
    if paths.is_empty() {
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).expect("git add");
    } else {
        for path in paths {
            index.add_path(Path::new(path)).expect("git add");
        }
    }
    index.write().expect("write index");
    let tree = repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
    let parent = repo.head().ok().map(|head| head.peel_to_commit().expect("HEAD commit"));
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let signature = git2::Signature::now("bench", "bench@example.org").expect("signature");
    repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &parents).expect("commit");
}
