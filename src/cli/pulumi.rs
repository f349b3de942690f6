//! Running the `pulumi` CLI on rendered projects: the one place cpg-infra starts a process.
//!
//! Pulumi's output streams straight to the terminal and its exit status becomes ours. Never
//! decides what to run: `infra` passes the projects, in the order they must be deployed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::output::emit_line;
use super::Exit;

/// Where to find pulumi and how to invoke it in each project.
pub struct PulumiRun<'a> {
    /// The `pulumi` executable.
    pub program: &'a Path,
    /// Arguments after `pulumi`, e.g. `preview --stack prod`.
    pub args: Vec<String>,
}

impl PulumiRun<'_> {
    /// Runs pulumi in each directory in turn and stops at the first that fails (a later
    /// project may read the stack outputs of an earlier one), returning its exit status.
    pub fn run_in(&self, dirs: &[PathBuf]) -> Result<Exit> {
        for dir in dirs {
            emit_line(&format!("pulumi {} in {}", self.args.join(" "), dir.display()));
            let status = Command::new(self.program)
                .args(&self.args)
                .current_dir(dir)
                .status()
                .with_context(|| format!("cannot run {} in {}", self.program.display(), dir.display()))?;
            if !status.success() {
                // A status that does not fit a byte (or a signal) is still a failure.
                let code = status.code().map_or(1, |c| u8::try_from(c & 0xff).unwrap_or(1)).max(1);
                return Ok(Exit::Pulumi(code));
            }
        }
        Ok(Exit::Success)
    }
}
