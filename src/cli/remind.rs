//! `groups remind`: per dataset, the grants ending soon, each with the `groups add` command
//! that renews it and the line that grants it; with `--repo`, one issue per dataset kept
//! current (found by its marker, closed when nothing is due).

use std::fmt::Write;

use anyhow::Result;

use super::args::{ExpandFormat, GlobalArgs, RemindArgs};
use super::output::{emit, emit_line};
use super::resolve;
use super::{Exit, InputError};
use crate::definitions::Date;
use crate::recertify::{reminders, Reminder};

const LABEL: &str = "access-expiring";

pub fn run(global: &GlobalArgs, args: &RemindArgs) -> Result<Exit> {
    let days = crate::definitions::parse_day_count(&args.within)
        .ok_or_else(|| InputError(format!("--within `{}`: use days or weeks, like 14d or 2w", args.within)))?;
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let policy = super::policy::load_policy(global, &revision, &expanded)?.unwrap_or_default();
    let today = resolve::today(global)?;
    let until = today.add_days(days);
    let longest = |role: &str| {
        let role_limit = policy.role_limits.get(role).and_then(|l| l.max_days.as_ref()).map(|r| r.value);
        let overall = policy.max_grant_days.as_ref().map(|r| i64::from(r.value));
        role_limit.into_iter().chain(overall).min()
    };
    let found =
        reminders(&expanded.definitions, &expanded.hierarchy, &policy.data_manager_role, today, until, &longest);
    match args.issues.format {
        ExpandFormat::Json => {
            let report = serde_json::json!({ "today": today, "until": until, "datasets": found });
            emit_line(&serde_json::to_string_pretty(&report)?);
        }
        ExpandFormat::Text if found.is_empty() => emit_line(&format!("no grants end from {today} to {until}")),
        ExpandFormat::Text => {
            for reminder in &found {
                emit(&issue_body(reminder, today, until));
                emit_line("");
            }
        }
    }
    if let Some(repo) = &args.issues.repo {
        let github = resolve::github(repo)?;
        for dataset in expanded.definitions.datasets.keys() {
            let reminder = found.iter().find(|r| &r.dataset == dataset);
            let body = reminder.map(|r| issue_body(r, today, until));
            let marker = format!("<!-- cpg-infra:access-expiring:{dataset} -->");
            let title = format!("Access to {dataset} ends soon");
            let kept = crate::github::KeptIssue { marker: &marker, label: LABEL, title: &title, body: body.as_deref() };
            let action = github.keep_issue(&kept)?;
            if action != crate::github::IssueAction::None {
                eprintln!("{dataset}: {action}");
            }
        }
    }
    Ok(Exit::Success)
}

/// One dataset's reminder: who, until when, the renewal, and who should act.
fn issue_body(reminder: &Reminder, today: Date, until: Date) -> String {
    let mut out = format!("Access to `{}` that ends from {today} to {until}:\n\n", reminder.dataset);
    for grant in &reminder.grants {
        let who = grant
            .github
            .as_ref()
            .map_or_else(|| format!("`{}`", grant.member), |g| format!("@{g} (`{}`)", grant.member));
        let _ = writeln!(out, "- {who}: `{}` until {} (granted at `{}`)", grant.role, grant.expires, grant.location);
        match &grant.also_held {
            Some(other) => {
                let _ = writeln!(out, "  - no renewal needed: they keep this access {other}");
            }
            None => {
                let _ = writeln!(out, "  - to renew until {}: `{}`", grant.renew_until, grant.renew_command);
            }
        }
    }
    if !reminder.data_managers.is_empty() {
        let names: Vec<String> = reminder.data_managers.iter().map(|n| format!("@{n}")).collect();
        let _ = writeln!(out, "\nData managers ({}): renew what is still needed in a pull request.", names.join(", "));
    }
    out
}
