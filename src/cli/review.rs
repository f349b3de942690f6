//! `review open` and `review overdue`: recertification of each dataset's members as a pull
//! request. `open` commits the new review record on a local branch (git2; the working tree is
//! not touched) and writes the pull request's body; the workflow pushes and opens it, and the
//! access-request approvals check asks the dataset's data managers, whose merge attests.

use std::fmt::Write;

use anyhow::{Context, Result};

use super::args::{ExpandFormat, GlobalArgs, IssueArgs, ReviewCommand, ReviewOpenArgs};
use super::output::{emit, emit_line};
use super::resolve::{self, Revision};
use super::{Exit, InputError};
use crate::definitions::{review_record_path, Date};
use crate::recertify::{review_schedule, ScheduledReview};

/// The marker and label of the one issue listing overdue reviews.
const OVERDUE_MARKER: &str = "<!-- cpg-infra:reviews-overdue -->";
const OVERDUE_LABEL: &str = "access-review-overdue";

pub fn run(global: &GlobalArgs, command: &ReviewCommand) -> Result<Exit> {
    match command {
        ReviewCommand::Open(args) => open(global, args),
        ReviewCommand::Overdue(args) => overdue(global, args),
    }
}

fn open(global: &GlobalArgs, args: &ReviewOpenArgs) -> Result<Exit> {
    let revision = Revision::Git("HEAD".to_owned());
    let expanded = resolve::load(global, &revision)?;
    let definitions = &expanded.definitions;
    let policy = super::policy::load_policy(global, &revision, &expanded)?.unwrap_or_default();
    let today = resolve::today(global)?;
    let schedule = review_schedule(&policy, definitions);
    let chosen: Vec<&str> = match &args.dataset {
        Some(dataset) => {
            if !definitions.datasets.contains_key(dataset) {
                let known = definitions.datasets.keys().map(String::as_str);
                return Err(InputError(crate::definitions::unknown("dataset", dataset, known, false)).into());
            }
            vec![dataset.as_str()]
        }
        None => schedule.iter().filter(|r| r.is_due(today)).map(|r| r.dataset).collect(),
    };
    if chosen.is_empty() {
        emit_line(&format!("no review is due on {today}"));
        return Ok(Exit::Success);
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut branches = String::new();
    for dataset in chosen {
        let rows = super::audit::member_rows(global, &revision, &expanded, Some(dataset))?;
        let record = resolve::commit_review_record(global, dataset, today)?;
        let scheduled = schedule.iter().find(|r| r.dataset == dataset);
        let body = pull_request_body(dataset, &record, scheduled, &rows);
        let _ = writeln!(branches, "{} {dataset}", record.branch);
        match &args.out {
            Some(dir) => {
                let file = dir.join(format!("{dataset}.md"));
                std::fs::write(&file, body).with_context(|| format!("writing {}", file.display()))?;
            }
            None => emit(&format!("{body}\n")),
        }
        eprintln!("branch {} at {}: review of {dataset}", record.branch, &record.commit[..10]);
    }
    if let Some(dir) = &args.out {
        let file = dir.join("branches.txt");
        std::fs::write(&file, branches).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(Exit::Success)
}

/// The pull request: what to check, and every member with how and since when they hold it.
fn pull_request_body(
    dataset: &str,
    record: &resolve::ReviewCommit,
    scheduled: Option<&ScheduledReview>,
    rows: &[super::audit::Row],
) -> String {
    let escape = |text: &str| crate::diff::escape_markdown(text);
    let mut out = format!("## Access review of `{}`\n\n", escape(dataset));
    let _ = writeln!(
        out,
        "Members as of `{}`. Data managers: check each line; remove anyone who no longer needs access with \
         `cpg-infra groups remove PERSON --dataset {dataset} --role ROLE` committed on this branch, then approve. \
         Merging records the review in `{}`.\n",
        &record.reviewed_revision[..10],
        review_record_path(dataset)
    );
    if let Some(scheduled) = scheduled {
        let last = scheduled.last.map_or_else(|| "never".to_owned(), |r| r.reviewed_on.to_string());
        let _ = writeln!(out, "Reviewed every {} days; last review: {last}.\n", scheduled.every_days);
    }
    out.push_str("| role | member | account | how | since | granted in | expires | reason |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for row in rows {
        let granted = [row.commit.as_str(), row.pull_request.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let cells = [&row.role, &row.member, &row.account, &row.how, &row.since, &granted, &row.expires, &row.reason];
        let cells: Vec<String> = cells.iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The reviews more than `review_grace` days late, printed and (with --repo) kept in one issue.
fn overdue(global: &GlobalArgs, args: &IssueArgs) -> Result<Exit> {
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let policy = super::policy::load_policy(global, &revision, &expanded)?.unwrap_or_default();
    let today = resolve::today(global)?;
    let grace = policy.review_grace.as_ref().map_or(0, |rule| rule.value);
    let late: Vec<(String, Date, String)> = review_schedule(&policy, &expanded.definitions)
        .into_iter()
        .filter(|r| r.is_overdue(today, grace))
        .filter_map(|r| Some((r.dataset.to_owned(), r.due_on?, r.last?.location.to_string())))
        .collect();
    match args.format {
        ExpandFormat::Json => {
            let rows: Vec<_> = late
                .iter()
                .map(|(d, due, at)| serde_json::json!({"dataset": d, "due_on": due, "record": at}))
                .collect();
            emit_line(&serde_json::to_string_pretty(&serde_json::json!({"today": today, "overdue": rows}))?);
        }
        ExpandFormat::Text if late.is_empty() => emit_line(&format!("no review is overdue on {today}")),
        ExpandFormat::Text => {
            for (dataset, due, at) in &late {
                emit_line(&format!("{at}: the review of {dataset} was due on {due}"));
            }
        }
    }
    if let Some(repo) = &args.repo {
        let body = (!late.is_empty()).then(|| {
            let mut body = format!("Access reviews more than {grace} days late on {today}:\n\n");
            for (dataset, due, at) in &late {
                let _ =
                    writeln!(body, "- `{dataset}`: due on {due} (`{at}`); `cpg-infra review open --dataset {dataset}`");
            }
            body
        });
        let kept = crate::github::KeptIssue {
            marker: OVERDUE_MARKER,
            label: OVERDUE_LABEL,
            title: "Access reviews overdue",
            body: body.as_deref(),
        };
        let action = resolve::github(repo)?.keep_issue(&kept)?;
        eprintln!("{action}");
    }
    Ok(Exit::Success)
}
