//! The `cpg-infra` binary: parses arguments and hands over to `cli`.

use std::process::ExitCode;

use clap::Parser;
use cpg_infra::cli::{self, args::Cli, Exit};

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(parsed) => cli::run(parsed),
        Err(error) => {
            // clap exits 2 on a bad argument, but 2 means "refused by a safety limit" here;
            // a bad command line is invalid input (3). `--help` and `--version` are not errors.
            let _ = error.print();
            let exit = if error.use_stderr() { Exit::InvalidInput } else { Exit::Success };
            ExitCode::from(exit.code())
        }
    }
}
