//! `groups expiring`: grants whose last day is near, each with the commit that added it.

use std::collections::BTreeMap;

use anyhow::Result;

use super::args::{ExpandFormat, ExpiringArgs, GlobalArgs};
use super::output::{emit, emit_line};
use super::resolve::{self, LineOrigin};
use super::{Exit, InputError};
use crate::hierarchy::{expiring_grants, ExpiringGrant};

/// Lists the grants ending from today to `--within` days later, soonest first.
pub fn run(global: &GlobalArgs, args: &ExpiringArgs) -> Result<Exit> {
    let days = parse_within(&args.within)?;
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let today = resolve::today(global)?;
    let until = today.add_days(days);
    let grants = expiring_grants(&expanded.definitions, today, until);
    let mut lines_per_file: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for grant in &grants {
        lines_per_file.entry(&grant.location.path).or_default().push(grant.location.line);
    }
    let mut origins: BTreeMap<(String, usize), Option<LineOrigin>> = BTreeMap::new();
    let mut in_git = true;
    for (path, lines) in lines_per_file {
        match resolve::line_origins(global, &revision, path, &lines)? {
            Some(found) => origins.extend(found.into_iter().map(|(line, origin)| ((path.to_owned(), line), origin))),
            None => in_git = false,
        }
    }
    let origin =
        |grant: &ExpiringGrant| origins.get(&(grant.location.path.to_string(), grant.location.line)).cloned().flatten();
    match args.format {
        ExpandFormat::Json => {
            let rows: Vec<serde_json::Value> = grants
                .iter()
                .map(|grant| {
                    let mut row = serde_json::to_value(grant).unwrap_or_default();
                    row["added_by"] = serde_json::to_value(origin(grant)).unwrap_or_default();
                    row
                })
                .collect();
            let report = serde_json::json!({ "today": today, "until": until, "grants": rows });
            emit_line(&serde_json::to_string_pretty(&report)?);
        }
        ExpandFormat::Text => {
            if grants.is_empty() {
                emit_line(&format!("no grants end from {today} to {until}"));
                return Ok(Exit::Success);
            }
            let mut out = format!("{} grant(s) end from {today} to {until}:\n", grants.len());
            for grant in &grants {
                let added = match origin(grant) {
                    Some(o) => format!(
                        "added in {} by {}, committed by {} on {}: {}",
                        &o.commit[..10.min(o.commit.len())],
                        o.author,
                        o.committer,
                        o.date,
                        o.summary
                    ),
                    None if in_git => "not committed yet".to_owned(),
                    None => "not in a Git repository".to_owned(),
                };
                out.push_str(&format!(
                    "  {}  {} in {}  ({})\n    {added}\n",
                    grant.expires, grant.member, grant.group, grant.location
                ));
            }
            emit(&out);
        }
    }
    Ok(Exit::Success)
}

/// `14d` → 14, `2w` → 14; a bare number is days.
fn parse_within(text: &str) -> Result<i64> {
    crate::definitions::parse_day_count(text)
        .ok_or_else(|| InputError(format!("--within `{text}`: use days or weeks, like 14d or 2w")).into())
}
