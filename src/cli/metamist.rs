//! `groups sync --provider metamist`: Metamist cannot be read back, so the plan compares each
//! project's desired member list with the one last written (the state file) and the listing of
//! projects, and applying writes only the projects that changed (all with `--full-write`).

use anyhow::Result;

use super::args::{GlobalArgs, PlanFormat, SyncArgs};
use super::output::{emit, emit_line};
use super::{resolve, Exit, InputError};
use crate::apps::metamist::{member_list, projects, MemberList, MetamistProject};
use crate::directory::{DirectoryError, ListDirectory, MetamistDirectory};
use crate::load::Expanded;
use crate::sync::{self, ApplyOptions, ListOutcome, ListPlanOptions, RemovalLimits, RetryPolicy, StateReader};

/// Requests in flight at once unless --concurrency says.
const DEFAULT_CONCURRENCY: usize = 8;

/// One Metamist sync on definitions already loaded.
pub fn sync(global: &GlobalArgs, args: &SyncArgs, expanded: &Expanded) -> Result<Exit> {
    let definitions = &expanded.definitions;
    let (endpoint, token, settings) = resolve::metamist_config(definitions)?;
    let state_path = resolve::local_state_path(global, args.state.as_deref(), &settings.state_file);
    let directory =
        MetamistDirectory::connect(&endpoint, &token, settings.requests).map_err(|e| InputError(e.to_string()))?;
    // People sign in to Metamist with their Google account.
    let aliases = definitions.google_accounts();
    let desired = |project: &MetamistProject| -> MemberList {
        member_list(definitions, &expanded.hierarchy, &settings, &aliases, project)
    };
    let ours = projects(definitions);
    let retry = RetryPolicy::default();

    let (listed, read_attempts) = sync::with_retries(&retry, || directory.list_projects());
    let listed = listed.map_err(|error| match error {
        // Credentials or permissions: configuration, not an outage.
        DirectoryError::Rejected(_) => anyhow::Error::new(InputError(error.to_string())),
        _ => anyhow::anyhow!("reading the Metamist projects failed: {error}"),
    })?;
    let mut state = StateReader::open(&state_path).map_err(|e| InputError(e.to_string()))?;
    let limits = &definitions.organisation.sync;
    let options = ListPlanOptions {
        full_write: args.full_write,
        limits: RemovalLimits { max_removals: limits.max_removals, max_removal_percent: limits.max_removal_percent },
        // A text plan lists up to as many lines as a directory's plan does; JSON lists all.
        lines: (!args.verbose && matches!(args.format, PlanFormat::Text)).then_some(super::groups::PLAN_LINES_IN_FULL),
    };
    let plan =
        sync::plan_lists(&ours, &desired, &listed, &mut state, &options).map_err(|e| InputError(e.to_string()))?;
    drop(state);
    match args.format {
        PlanFormat::Text => {
            emit_line(&directory.describe());
            emit_line(&format!(
                "Metamist cannot be read back: each project is compared with the list last written ({}), so changes made in Metamist by hand are not seen; --full-write writes every project again",
                state_path.display()
            ));
            emit(&plan.to_string());
        }
        PlanFormat::Json => emit_line(&serde_json::to_string_pretty(&plan)?),
    }
    let refused = !plan.refusals.is_empty() && !args.allow_mass_removal;
    if !args.confirm {
        if refused {
            eprintln!(
                "dry run: nothing was changed; a safety limit refuses this plan: applying it needs --confirm --allow-mass-removal"
            );
            return Ok(Exit::Refused);
        }
        if !plan.is_empty() {
            eprintln!("dry run: nothing was changed; run again with --confirm to apply");
        }
        return super::groups::refresh_cache(global, args, expanded, Exit::Success);
    }
    let concurrency = args.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    let apply = ApplyOptions { concurrency, retry, allow_mass_removal: args.allow_mass_removal };
    let progress = super::progress::on_stderr("wrote", "projects");
    match sync::apply_lists(&directory, &plan, &desired, &apply, progress.as_ref()) {
        ListOutcome::Refused(reasons) => {
            for reason in reasons {
                eprintln!("refused: {reason}");
            }
            eprintln!("nothing was applied; re-run with --allow-mass-removal if these removals are intended");
            eprintln!("the members cache was left as it is");
            Ok(Exit::Refused)
        }
        ListOutcome::Applied(mut report) => {
            report.retries += read_attempts - 1;
            for (project, error) in &report.failed {
                eprintln!("failed: {project}: {error}");
            }
            let mut exit = if report.failed.is_empty() { Exit::Success } else { Exit::Failure };
            // Projects whose write failed lose their entry: the next run writes them again.
            if let Err(error) =
                sync::save_state(&state_path, &ours, &report.written_projects, &report.failed_projects(), &desired)
            {
                eprintln!("failed to save the lists written: {error}; the next run writes these projects again");
                exit = Exit::Failure;
            }
            emit_line(&report.summary());
            super::groups::refresh_cache(global, args, expanded, exit)
        }
    }
}
