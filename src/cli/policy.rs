//! `policy check`: the definitions against the rules in `groups/policy.toml`.

use anyhow::{anyhow, Result};

use super::args::{GlobalArgs, PolicyCheckArgs, PolicyCommand};
use super::output::emit_line;
use super::resolve::{self, Revision};
use super::Exit;
use crate::codeowners::CODEOWNERS_FILE;
use crate::load::Expanded;
use crate::policy::{self, CodeownersFiles, GrantContext, Policy, PolicyInput, POLICY_FILE};

/// Runs one `policy` subcommand.
pub fn run(global: &GlobalArgs, command: &PolicyCommand) -> Result<Exit> {
    match command {
        PolicyCommand::Check(args) => check(global, args),
        PolicyCommand::Approvals(args) => super::approvals::run(global, args),
    }
}

/// The policy at `revision`, `None` without a policy file; its own mistakes are located
/// diagnostics (exit 3).
pub fn load_policy(global: &GlobalArgs, revision: &Revision, expanded: &Expanded) -> Result<Option<Policy>> {
    let Some(text) = resolve::read_file(global, revision, POLICY_FILE)? else {
        return Ok(None);
    };
    policy::parse(&text, &expanded.definitions).map(Some).map_err(|problems| anyhow!(problems))
}

/// Every violation as `path:line:col: message` and exit 3, or a one-line summary.
fn check(global: &GlobalArgs, args: &PolicyCheckArgs) -> Result<Exit> {
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let policy_revision = args.policy_rev.clone().map_or_else(|| revision.clone(), Revision::Git);
    let Some(policy) = load_policy(global, &policy_revision, &expanded)? else {
        emit_line(&format!("ok: no {POLICY_FILE}, so no rules to check"));
        return Ok(Exit::Success);
    };
    let (expected, committed) = if policy.codeowners.is_some() {
        let expected = super::codeowners::generate(global, &revision, &expanded)?;
        (Some(expected), resolve::read_codeowners(global, &revision)?)
    } else {
        (None, None)
    };
    let context = if policy.role_limits.is_empty() { None } else { Some(grant_context(global, &revision, &expanded)?) };
    let input = PolicyInput {
        grant_context: context.as_ref(),
        definitions: &expanded.definitions,
        hierarchy: &expanded.hierarchy,
        today: resolve::today(global)?,
        codeowners: expected.as_deref().map(|expected| CodeownersFiles {
            path: CODEOWNERS_FILE,
            expected,
            committed: committed.as_deref(),
        }),
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

/// The texts of the files that hold grants, and the commit date of each grant's line (by
/// `git blame`), for the role limits.
fn grant_context(global: &GlobalArgs, revision: &Revision, expanded: &Expanded) -> Result<GrantContext> {
    let mut context = GrantContext::default();
    for ((path, line), origin) in resolve::grant_line_origins(global, revision, &expanded.definitions)? {
        context.committed_on.insert((path, line), origin.date);
    }
    let files: std::collections::BTreeSet<String> =
        expanded.definitions.role_grants().map(|grant| grant.location.path.to_string()).collect();
    for path in files {
        if let Some(text) = resolve::read_file(global, revision, &path)? {
            context.texts.insert(path, text);
        }
    }
    Ok(context)
}
