//! The command-line interface: argument handling and output only; the work is done by the
//! library modules.

mod approvals;
pub mod args;
mod audit;
mod cache;
mod changed_since;
mod codeowners;
mod codify;
mod drift_report;
mod edit;
mod emulator;
mod expiring;
mod groups;
mod history;
mod infra;
mod metamist;
mod migrate;
mod output;
mod plan_file;
mod policy;
mod progress;
mod pulumi;
mod remind;
mod resolve;
mod review;
mod synced;
mod synthetic;

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;

use crate::definitions::Diagnostics;
use args::{Cli, Command, GlobalArgs};

/// What a command's exit status means (documented in docs/USAGE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; nothing to report.
    Success,
    /// Differences found (`--exit-code`), no path (`why`), changes that failed or were not sent,
    /// or a directory that could not be read after retries.
    Failure,
    /// A safety limit refused the plan; nothing was applied.
    Refused,
    /// Bad definitions, arguments or configuration.
    InvalidInput,
    /// `infra preview` and `infra up`: the status the `pulumi` CLI exited with.
    Pulumi(u8),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Refused => 2,
            Exit::InvalidInput => 3,
            Exit::Pulumi(code) => code,
        }
    }
}

/// An error in what the user gave us (arguments, configuration), as opposed to a failure.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Runs a parsed command line and maps errors to exit statuses.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            if let Some(diagnostics) = error.downcast_ref::<Diagnostics>() {
                eprint!("{diagnostics}");
                eprintln!("error: {} problem(s) in the definitions; nothing was changed", diagnostics.len());
                return ExitCode::from(Exit::InvalidInput.code());
            }
            eprintln!("error: {error:#}");
            let input = error.downcast_ref::<InputError>().is_some();
            ExitCode::from(if input { Exit::InvalidInput } else { Exit::Failure }.code())
        }
    }
}

fn dispatch(cli: &Cli) -> Result<Exit> {
    match &cli.command {
        Command::Validate => groups::validate(&cli.global),
        Command::Groups(command) => groups::run(&cli.global, command),
        Command::Policy(command) => policy::run(&cli.global, command),
        Command::Audit(args) => audit::run(&cli.global, args),
        Command::Codeowners(args) => codeowners::run(&cli.global, args),
        Command::Infra(command) => infra::run(&cli.global, command),
        Command::Emulator(command) => emulator::run(command),
        Command::Synthetic(args) => synthetic::run(args),
        Command::Review(command) => review::run(&cli.global, command),
        Command::Migrate(args::MigrateCommand::Import(args)) => migrate::import(&cli.global, args),
        Command::Migrate(args::MigrateCommand::Plan(args)) => migrate::plan(&cli.global, args),
    }
}
