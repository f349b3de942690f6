//! `groups drift-report --plan FILE --provider P`: for each member a sync adds back or removes
//! because someone changed the group by hand, who did it and when, from the directory's own
//! audit log; and what the sync did (or would do) about it. One audit read per group that
//! drifted; nothing is changed anywhere.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use super::args::{DiffFormat, DriftReportArgs, GlobalArgs, ProviderName};
use super::changed_since::provider_key;
use super::output::emit;
use super::plan_file::{member_changes, MemberChange};
use super::{resolve, Exit, InputError};
use crate::diff::escape_markdown;
use crate::directory::{AuditAction, AuditEvent, DirectoryError};
use crate::sync::{self, RetryPolicy};

/// One drifted membership and what the audit log says of it.
#[derive(serde::Serialize)]
struct Attributed<'a> {
    group: &'a str,
    member: &'a str,
    /// What was done by hand: `added` (the sync removes it) or `removed` (the sync adds it back).
    by_hand: AuditAction,
    /// The newest matching event, if the log has one in the window.
    event: Option<&'a AuditEvent>,
    /// Why the log could not be read for this group.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreadable: Option<String>,
}

pub fn run(global: &GlobalArgs, args: &DriftReportArgs) -> Result<Exit> {
    let days = crate::definitions::parse_day_count(&args.within)
        .ok_or_else(|| InputError(format!("--within `{}`: use days or weeks, like 7d or 2w", args.within)))?;
    if !matches!(args.provider, ProviderName::Google | ProviderName::Azure) {
        return Err(InputError("--provider: only google and azure keep an audit log the report can read".into()).into());
    }
    let changes = member_changes(&args.plan)?;
    let since = format!("{}T00:00:00Z", resolve::today(global)?.add_days(-days));
    if changes.is_empty() {
        match args.format {
            DiffFormat::Text => emit(&format!("no change made by hand in {}\n", provider_key(args.provider))),
            DiffFormat::Json => emit(&(serde_json::to_string_pretty(&report_json(args, &since, &[]))? + "\n")),
            // Markdown is for an issue: nothing to say is no text, so the workflow posts nothing.
            DiffFormat::Markdown => {}
        }
        return Ok(Exit::Success);
    }
    let expanded = resolve::load(global, &resolve::default_revision(global))?;
    let directory = super::migrate::old_directory(global, args.provider, &expanded.definitions)?;
    let log =
        directory.audit_log().ok_or_else(|| InputError(format!("{} keeps no audit log", directory.describe())))?;

    let mut events: BTreeMap<&str, Result<Vec<AuditEvent>, DirectoryError>> = BTreeMap::new();
    for change in &changes {
        // Throttling and outages are retried as the sync retries them (Retry-After, backoff).
        events.entry(change.group.as_str()).or_insert_with(|| {
            sync::with_retries(&RetryPolicy::default(), || log.membership_events(&change.group, &since)).0
        });
    }
    let attributed: Vec<Attributed> =
        changes.iter().map(|change| attribute(change, &events[change.group.as_str()])).collect();
    let failed = attributed.iter().any(|a| a.unreadable.is_some());
    let text = match args.format {
        DiffFormat::Json => serde_json::to_string_pretty(&report_json(args, &since, &attributed))? + "\n",
        DiffFormat::Text => render_text(args, &since, &attributed),
        DiffFormat::Markdown => render_markdown(args, &since, &attributed),
    };
    emit(&text);
    Ok(if failed { Exit::Failure } else { Exit::Success })
}

fn attribute<'a>(change: &'a MemberChange, events: &'a Result<Vec<AuditEvent>, DirectoryError>) -> Attributed<'a> {
    // The plan adds back what was removed by hand, and removes what was added by hand.
    let by_hand = if change.adds { AuditAction::Removed } else { AuditAction::Added };
    let (event, unreadable) = match events {
        Ok(events) => {
            let member = change.member.to_ascii_lowercase();
            // Events come newest first: the first match is the change that made the drift.
            (events.iter().find(|e| e.action == by_hand && e.member == member), None)
        }
        Err(error) => (None, Some(error.to_string())),
    };
    Attributed { group: &change.group, member: &change.member, by_hand, event, unreadable }
}

/// "removes it" / "removed it" / "adds it back" / "added it back".
fn what_the_sync_does(attributed: &Attributed, applied: bool) -> &'static str {
    match (attributed.by_hand, applied) {
        (AuditAction::Added, false) => "the sync removes it",
        (AuditAction::Added, true) => "the sync removed it",
        (AuditAction::Removed, false) => "the sync adds it back",
        (AuditAction::Removed, true) => "the sync added it back",
    }
}

fn verb(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Added => "added to",
        AuditAction::Removed => "removed from",
    }
}

/// Who and when, or why the log does not say.
fn who(attributed: &Attributed, since: &str) -> String {
    match (&attributed.unreadable, attributed.event) {
        (Some(reason), _) => format!("audit log unreadable: {reason}"),
        (None, Some(event)) => format!("by {} at {}", event.actor, event.time),
        // Audit logs are late (minutes to hours), and older changes are outside the window.
        (None, None) => format!("no event in the audit log since {since} (not there yet, or older)"),
    }
}

fn render_text(args: &DriftReportArgs, since: &str, attributed: &[Attributed]) -> String {
    let mut out = format!(
        "{} change(s) made by hand in {} (audit log since {since}):\n",
        attributed.len(),
        provider_key(args.provider)
    );
    for a in attributed {
        let _ = writeln!(
            out,
            "  {} {} {} {}; {}",
            a.member,
            verb(a.by_hand),
            a.group,
            who(a, since),
            what_the_sync_does(a, args.applied)
        );
    }
    out
}

fn render_markdown(args: &DriftReportArgs, since: &str, attributed: &[Attributed]) -> String {
    let mut out = format!(
        "### Changes made by hand in {}\n\nFrom the directory's audit log since {since}.\n\n| member | change | group | by | when | the sync |\n|---|---|---|---|---|---|\n",
        provider_key(args.provider)
    );
    for a in attributed {
        let (by, when) = match (&a.unreadable, a.event) {
            (None, Some(event)) => (format!("`{}`", escape_markdown(&event.actor)), event.time.clone()),
            _ => (who(a, since), String::new()),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | `{}` | {by} | {when} | {} |",
            escape_markdown(a.member),
            verb(a.by_hand),
            escape_markdown(a.group),
            what_the_sync_does(a, args.applied)
        );
    }
    out
}

fn report_json(args: &DriftReportArgs, since: &str, attributed: &[Attributed]) -> serde_json::Value {
    serde_json::json!({
        "provider": provider_key(args.provider),
        "since": since,
        "applied": args.applied,
        "changes": attributed,
    })
}
