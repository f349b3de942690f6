//! `policy approvals BASE HEAD`: who must approve a change, and with `--reviews`, whether they
//! have (the access-review workflow's required status).

use std::collections::BTreeSet;
use std::fmt::Write;

use anyhow::Result;

use super::args::{ApprovalsArgs, DiffFormat, GlobalArgs};
use super::groups::load_revisions;
use super::output::emit;
use super::resolve::{self, Revision};
use super::Exit;
use crate::diff::diff_hierarchies;
use crate::policy::{check_reviews, required_approvals, ApprovalInput, Checked, PullRequestFacts};

/// Prints the requirements (and their state with `--reviews`); exit 1 while any is missing.
pub fn run(global: &GlobalArgs, args: &ApprovalsArgs) -> Result<Exit> {
    let (base_rev, head_rev) = (Revision::Git(args.base.clone()), Revision::Git(args.head.clone()));
    let (base, head) = load_revisions(global, &base_rev, &head_rev)?;
    let hierarchy =
        |side: &Option<crate::load::Expanded>| side.as_ref().map(|e| e.hierarchy.clone()).unwrap_or_default();
    let diff = diff_hierarchies(&hierarchy(&base), &hierarchy(&head));
    let (changed_files, prefix) = resolve::changed_files(global, &args.base, &args.head)?;
    // The data-manager role is the base's policy's: the change cannot rename it away.
    let data_manager_role = match &base {
        Some(expanded) => super::policy::load_policy(global, &base_rev, expanded)?
            .map(|policy| policy.data_manager_role)
            .unwrap_or_else(|| "data-manager".to_owned()),
        None => "data-manager".to_owned(),
    };
    let requirements = required_approvals(&ApprovalInput {
        base: base.as_ref().map(|e| (&e.definitions, &e.hierarchy)),
        head: head.as_ref().map(|e| &e.hierarchy),
        diff: &diff,
        changed_files: &changed_files,
        prefix: &prefix,
        data_manager_role: &data_manager_role,
    });
    let checked = match (args.reviews, &args.repo) {
        (Some(number), Some(repo)) => Some(fetch_and_check(repo, number, &args.head, &requirements)?),
        _ => None,
    };
    let rows: Vec<Checked> = checked.clone().unwrap_or_else(|| {
        requirements.iter().map(|r| Checked { requirement: r.clone(), approved_by: BTreeSet::new() }).collect()
    });
    let reviewed = checked.is_some();
    emit(&match args.format {
        DiffFormat::Json => {
            serde_json::to_string_pretty(&serde_json::json!({ "reviews_checked": reviewed, "requirements": rows }))?
                + "\n"
        }
        DiffFormat::Markdown => render(&rows, reviewed, true),
        DiffFormat::Text => render(&rows, reviewed, false),
    });
    let missing = rows.iter().any(|row| row.approved_by.is_empty());
    Ok(if reviewed && missing { Exit::Failure } else { Exit::Success })
}

/// Reads the pull request and its reviews and applies them. The head the reviews are checked
/// against is the revision that was diffed: a push since then makes every approval stale.
fn fetch_and_check(
    repo: &str,
    number: u64,
    head: &str,
    requirements: &[crate::policy::Requirement],
) -> Result<Vec<Checked>> {
    let github = resolve::github(repo)?;
    let pull = github.pull_request(number)?;
    let reviews = github.reviews(number)?;
    let mut requesters = BTreeSet::from([pull.author.to_lowercase()]);
    if pull.author_is_bot {
        // A pull request the form made: the person who opened the issue asked for the access.
        if let Some(issue) = crate::github::closed_issue(&pull.body) {
            requesters.insert(github.issue_author(issue)?.to_lowercase());
        }
    }
    // `head` may be a name (a branch, `HEAD`); only the pull request's own head is checked.
    let head_sha = if head.len() == 40 && head.chars().all(|c| c.is_ascii_hexdigit()) { head } else { &pull.head_sha };
    if head_sha != pull.head_sha {
        return Err(super::InputError(format!(
            "pull request #{number} is at {}, not at {head}: its reviews are not for this change",
            pull.head_sha
        ))
        .into());
    }
    Ok(check_reviews(requirements, &PullRequestFacts { head_sha, requesters, reviews: &reviews }))
}

/// One line per requirement: who, whether approved, why. Markdown escapes every name.
fn render(rows: &[Checked], reviewed: bool, markdown: bool) -> String {
    let mut out = String::new();
    let escape = |text: &str| if markdown { crate::diff::escape_markdown(text) } else { text.to_owned() };
    if rows.is_empty() {
        out.push_str("No approvals needed: nothing changes.\n");
        return out;
    }
    let missing = rows.iter().filter(|r| r.approved_by.is_empty()).count();
    let heading = match (reviewed, missing) {
        (false, _) => "Approvals needed, one from each:".to_owned(),
        (true, 0) => "Every approval needed is given:".to_owned(),
        (true, n) => format!("{n} approval(s) missing, one from each:"),
    };
    let _ = writeln!(out, "{}", if markdown { format!("**{heading}**\n") } else { heading });
    for row in rows {
        let requirement = &row.requirement;
        let who = match &requirement.stands_in_for {
            Some(original) => format!("{} (for {original}, none of whom has a GitHub user name)", requirement.owners),
            None => requirement.owners.to_string(),
        };
        let approvers = if requirement.approvers.is_empty() {
            "nobody can approve: add `github` user names in people.toml".to_owned()
        } else {
            requirement.approvers.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", ")
        };
        let state = match (reviewed, row.approved_by.is_empty()) {
            (false, _) => String::new(),
            (true, true) => "missing: ".to_owned(),
            (true, false) => {
                format!(
                    "approved by {}: ",
                    row.approved_by.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", ")
                )
            }
        };
        let bullet = if markdown { "- " } else { "  " };
        let _ = writeln!(
            out,
            "{bullet}{state}{} ({}); {}",
            escape(&who),
            escape(&approvers),
            escape(&requirement.reasons.join(", "))
        );
    }
    out
}
