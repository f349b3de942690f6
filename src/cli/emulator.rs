//! `emulator google`: serves a fake directory API until interrupted.

use anyhow::{bail, Result};

use super::args::EmulatorCommand;
use super::Exit;

/// Runs one emulator in the foreground.
pub fn run(_command: &EmulatorCommand) -> Result<Exit> {
    bail!("the emulator is not built yet")
}
