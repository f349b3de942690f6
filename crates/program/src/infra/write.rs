//! Writing projects to disk: `<out>/<project dir>/Pulumi.yaml`, each file replaced atomically.
//!
//! The only module of `infra` that does I/O. Never deletes anything: a project directory that
//! is no longer produced (a removed dataset) is reported as stale, because its stack must be
//! destroyed with Pulumi before its program goes away.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::split::Project;
use super::yaml;

/// Why projects were not written.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The folder holds the other layout. Its stacks are not these projects' stacks, so
    /// writing beside them would make every existing stack look stale (and be destroyed).
    #[error(
        "{out} holds the {found} layout ({evidence}); render into another folder, or move it away first (switching layouts moves every resource to new stacks)"
    )]
    OtherLayout { out: String, found: &'static str, evidence: String },
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The `Pulumi.yaml` files, with their resource counts.
    pub files: Vec<(PathBuf, usize)>,
    /// Project directories under `<out>/datasets/` that no project was written to.
    pub stale: Vec<PathBuf>,
}

/// Writes every project under `out`.
pub fn write_projects(out: &Path, projects: &[Project]) -> Result<Written, WriteError> {
    refuse_other_layout(out, projects)?;
    let mut files = Vec::new();
    for project in projects {
        let dir = if project.dir.is_empty() { out.to_path_buf() } else { out.join(&project.dir) };
        fs::create_dir_all(&dir).map_err(|source| WriteError::Io { path: dir.clone(), source })?;
        let path = dir.join("Pulumi.yaml");
        write_atomically(&path, yaml::render(project).as_bytes())?;
        files.push((path, project.program.resources.len()));
    }
    let mut stale = Vec::new();
    let datasets = out.join("datasets");
    if let Ok(entries) = fs::read_dir(&datasets) {
        for entry in entries.flatten() {
            let path = entry.path();
            let written = files.iter().any(|(file, _)| file.parent() == Some(path.as_path()));
            if path.join("Pulumi.yaml").is_file() && !written {
                stale.push(path);
            }
        }
    }
    stale.sort();
    Ok(Written { files, stale })
}

/// One project at the top is the single layout; projects in subfolders are the per-dataset one.
fn refuse_other_layout(out: &Path, projects: &[Project]) -> Result<(), WriteError> {
    let writing_single = projects.iter().any(|p| p.dir.is_empty());
    let single_there = out.join("Pulumi.yaml").is_file();
    let per_dataset_there = ["organisation", "datasets"].into_iter().find(|dir| out.join(dir).is_dir());
    let (found, evidence) = match (writing_single, single_there, per_dataset_there) {
        (true, _, Some(dir)) => ("per-dataset", format!("{dir}/")),
        (false, true, _) => ("single-project", "Pulumi.yaml".to_owned()),
        _ => return Ok(()),
    };
    Err(WriteError::OtherLayout { out: out.display().to_string(), found, evidence })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let temporary = path.with_extension("yaml.tmp");
    let error = |source| WriteError::Io { path: path.to_path_buf(), source };
    fs::write(&temporary, bytes).map_err(error)?;
    fs::rename(&temporary, path).map_err(error)
}
