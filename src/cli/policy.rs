//! `policy check`: the definitions against the rules in `groups/policy.toml`.

use anyhow::Result;

use super::args::{GlobalArgs, PolicyCommand};
use super::output::emit_line;
use super::resolve;
use super::Exit;
use crate::policy::{self, PolicyInput, POLICY_FILE};

/// Runs one `policy` subcommand.
pub fn run(global: &GlobalArgs, command: &PolicyCommand) -> Result<Exit> {
    match command {
        PolicyCommand::Check => check(global),
    }
}

/// Every violation as `path:line:col: message` and exit 3, or a one-line summary.
fn check(global: &GlobalArgs) -> Result<Exit> {
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let Some(text) = resolve::read_file(global, &revision, POLICY_FILE)? else {
        emit_line(&format!("ok: no {POLICY_FILE}, so no rules to check"));
        return Ok(Exit::Success);
    };
    let policy = match policy::parse(&text, &expanded.definitions) {
        Ok(policy) => policy,
        Err(problems) => {
            eprint!("{problems}");
            eprintln!("error: {} problem(s) in {POLICY_FILE}; nothing was checked", problems.len());
            return Ok(Exit::InvalidInput);
        }
    };
    let input = PolicyInput {
        definitions: &expanded.definitions,
        hierarchy: &expanded.hierarchy,
        today: resolve::today(global)?,
        codeowners: None,
    };
    let violations = policy::check(&policy, &input);
    if !violations.is_empty() {
        eprint!("{violations}");
        eprintln!("error: {} policy violation(s)", violations.len());
        return Ok(Exit::InvalidInput);
    }
    emit_line(&format!("ok: {} rule(s) in {POLICY_FILE}, no violations", policy.rule_count()));
    Ok(Exit::Success)
}
