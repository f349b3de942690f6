//! The `cpg-infra` binary: parses arguments and hands over to `cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    cpg_infra::cli::run(cpg_infra::cli::args::Cli::parse())
}
