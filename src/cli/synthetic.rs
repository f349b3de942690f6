//! `synthetic OUT`: writes a synthetic organisation to disk, for benchmarking the commands.

use anyhow::{Context, Result};

use super::args::SyntheticArgs;
use super::output::emit_line;
use super::Exit;
use crate::synthetic::{generate, SyntheticShape};

pub fn run(args: &SyntheticArgs) -> Result<Exit> {
    let shape = SyntheticShape { datasets: args.datasets, variant: args.variant, ..SyntheticShape::large() };
    // Replace the definitions wholesale so a variant does not leave stale datasets behind.
    for dir in ["groups", "datasets"] {
        let path = args.out.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let files = generate(shape);
    for (path, text) in &files {
        let path = args.out.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    emit_line(&format!("wrote {} files for {} datasets to {}", files.len(), shape.datasets, args.out.display()));
    Ok(Exit::Success)
}
