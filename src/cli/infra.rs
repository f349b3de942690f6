//! `infra plan` and `infra render`.

use anyhow::{bail, Result};

use super::args::{GlobalArgs, InfraCommand};
use super::Exit;

/// Runs one `infra` subcommand.
pub fn run(_global: &GlobalArgs, _command: &InfraCommand) -> Result<Exit> {
    bail!("infra is not built yet")
}
