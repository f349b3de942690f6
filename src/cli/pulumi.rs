//! Running the `pulumi` CLI on rendered projects: the one place cpg-infra starts a process.
//!
//! Pulumi's output streams straight to the terminal and its exit status becomes ours; when a
//! project fails, the run says which one, how, and repeats the last lines pulumi wrote to
//! stderr, which a long run's output would otherwise have scrolled away. Never decides what to
//! run: `infra` passes the projects, in the order they must be deployed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use super::output::emit_line;
use super::Exit;

/// How many of a failed project's last stderr lines are repeated after it fails.
const LAST_LINES: usize = 5;

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
        let command = format!("pulumi {}", self.args.join(" "));
        for (index, dir) in dirs.iter().enumerate() {
            emit_line(&format!("{command} in {}", dir.display()));
            let mut child = Command::new(self.program)
                .args(&self.args)
                .current_dir(dir)
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {} in {}", self.program.display(), dir.display()))?;
            let last_lines = child.stderr.take().map(pass_on_keeping_last_lines).unwrap_or_default();
            let status = child.wait().with_context(|| format!("waiting for {command} in {}", dir.display()))?;
            if !status.success() {
                let not_run = dirs.len() - index - 1;
                let later = match not_run {
                    0 => String::new(),
                    n => format!("; {n} later project(s) not run"),
                };
                eprintln!("error: `{command}` failed in {} ({status}){later}", dir.display());
                if !last_lines.is_empty() {
                    eprintln!("its last lines on stderr:");
                    for line in &last_lines {
                        eprintln!("  {line}");
                    }
                }
                // A status that does not fit a byte (or a signal) is still a failure.
                let code = status.code().map_or(1, |c| u8::try_from(c & 0xff).unwrap_or(1)).max(1);
                return Ok(Exit::Pulumi(code));
            }
        }
        Ok(Exit::Success)
    }
}

/// Copies a child's stderr to ours as it comes, and returns its last non-empty lines once it
/// closes.
fn pass_on_keeping_last_lines(stderr: impl std::io::Read) -> Vec<String> {
    let mut last = VecDeque::with_capacity(LAST_LINES);
    let mut ours = std::io::stderr();
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        // Pulumi's own output is best effort: a closed stderr of ours must not stop it.
        let _ = ours.write_all(&line).and_then(|()| ours.write_all(b"\n"));
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if text.is_empty() {
            continue;
        }
        if last.len() == LAST_LINES {
            last.pop_front();
        }
        last.push_back(text);
    }
    last.into()
}
