//! `groups history`: every change of access over the first-parent history, for a person, a
//! group or a dataset. One walk: each commit is loaded with the parse cache shared along the
//! walk (only the files a commit changed are parsed again) and compared with the one before.
//! Revisions are expanded without judging expiry, so an expiry shows as its own event.

use anyhow::Result;
use serde::Serialize;

use super::args::{ExpandFormat, GlobalArgs, HistoryArgs};
use super::output::emit;
use super::resolve::{self, CommitInfo, Revision};
use super::{Exit, InputError};
use crate::definitions::{Date, ParseCache};
use crate::diff::{diff_hierarchies_for, AccessScope, Change};
use crate::hierarchy::{grant_locations, GroupKind};
use crate::load::Expanded;

/// One change of access.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub date: Date,
    /// `granted`, `removed`, `expiry-moved`, `expired`, `gained` or `lost` (through nesting).
    pub what: String,
    pub member: String,
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub commit: String,
    pub author: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
    /// The comment above the grant at that commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a walk keeps: the filter and the events found.
struct Filter {
    member: Option<String>,
    group: Option<String>,
    dataset: Option<String>,
}

impl Filter {
    fn group_matches(&self, expanded: &Expanded, group: &str) -> bool {
        match (&self.group, &self.dataset) {
            (Some(wanted), _) => group == wanted,
            (_, Some(dataset)) => expanded
                .hierarchy
                .group(group)
                .is_some_and(|g| matches!(&g.kind, GroupKind::Dataset { dataset: d, .. } if d == dataset)),
            _ => true,
        }
    }
}

pub fn run(global: &GlobalArgs, args: &HistoryArgs) -> Result<Exit> {
    let since = args.since.as_deref().map(str::parse::<Date>).transpose().map_err(InputError)?;
    let commits = resolve::first_parent_history(global)?;
    // Expiry is an event of its own here: nothing is left out for having ended.
    let timeless = GlobalArgs { root: global.root.clone(), rev: None, today: Some("1970-01-01".to_owned()) };
    let head = commits.last().map(|c| Revision::Git(c.commit.clone()));
    let latest = match &head {
        Some(revision) => resolve::load_groups(&timeless, revision).ok(),
        None => None,
    };
    let filter = resolve_filter(args, latest.as_ref())?;
    let cache = ParseCache::new();
    let mut previous: Option<Expanded> = None;
    let mut events = Vec::new();
    for commit in &commits {
        // A revision whose definitions do not load was never synced: it changes nothing.
        let Ok(Some(current)) = resolve::load_for_diff(&timeless, &Revision::Git(commit.commit.clone()), &cache) else {
            continue;
        };
        events.extend(changes(&timeless, previous.as_ref(), &current, commit, &filter));
        previous = Some(current);
    }
    if let Some(last) = &previous {
        let today = resolve::today(global)?;
        events.extend(expired(last, &filter, today, commits.last()));
    }
    events.retain(|e| since.is_none_or(|since| e.date >= since));
    events.sort_by_key(|e| e.date);
    emit(&match args.format {
        ExpandFormat::Json => serde_json::to_string_pretty(&events)? + "\n",
        ExpandFormat::Text => render(&events),
    });
    Ok(Exit::Success)
}

fn resolve_filter(args: &HistoryArgs, latest: Option<&Expanded>) -> Result<Filter> {
    let member = match (&args.person, latest) {
        (Some(person), Some(expanded)) => Some(super::groups::person_email(&expanded.definitions, person)?),
        (Some(person), None) => Some(person.to_ascii_lowercase()),
        _ => None,
    };
    if let (Some(dataset), Some(expanded)) = (&args.dataset, latest) {
        if !expanded.definitions.datasets.contains_key(dataset) {
            let known = expanded.definitions.datasets.keys().map(String::as_str);
            return Err(InputError(crate::definitions::unknown("dataset", dataset, known, false)).into());
        }
    }
    let group = match (&args.group, latest) {
        (Some(group), Some(expanded)) => {
            let prefixed = expanded.definitions.org_group_name(group);
            Some(
                expanded
                    .hierarchy
                    .find_group(&prefixed)
                    .or_else(|| expanded.hierarchy.find_group(group))
                    .map_or_else(|| group.clone(), |g| g.name.clone()),
            )
        }
        (group, _) => group.clone(),
    };
    Ok(Filter { member, group, dataset: args.dataset.clone() })
}

/// The events of one commit: direct member changes (for a group or dataset, or a person's
/// own grants) and, for a person, access gained or lost through nesting.
fn changes(
    global: &GlobalArgs,
    before: Option<&Expanded>,
    after: &Expanded,
    commit: &CommitInfo,
    filter: &Filter,
) -> Vec<Event> {
    let empty = crate::hierarchy::Hierarchy::default();
    let scope = filter.member.as_deref().map_or(AccessScope::Nobody, AccessScope::Member);
    let diff = diff_hierarchies_for(before.map_or(&empty, |b| &b.hierarchy), &after.hierarchy, scope);
    let event = |what: &str, member: &str, group: &str, detail: Option<String>| Event {
        date: commit.date,
        what: what.to_owned(),
        member: member.to_owned(),
        group: group.to_owned(),
        detail,
        commit: commit.commit.clone(),
        author: commit.author.clone(),
        pull_request: pull_request_number(&commit.summary),
        reason: None,
    };
    let wanted = |member: &str| filter.member.as_deref().is_none_or(|m| m == member);
    let mut events = Vec::new();
    for change in &diff.groups_changed {
        let in_scope =
            filter.group_matches(after, &change.name) || before.is_some_and(|b| filter.group_matches(b, &change.name));
        if !in_scope {
            continue;
        }
        for member in change.members_added.iter().filter(|m| wanted(m)) {
            let until = change.added_until.get(member).map(|d| format!("until {d}"));
            let mut granted = event("granted", member, &change.name, until);
            granted.reason = reason(global, after, &change.name, member, &commit.commit);
            events.push(granted);
        }
        for member in change.members_removed.iter().filter(|m| wanted(m)) {
            events.push(event("removed", member, &change.name, None));
        }
        for moved in change.expiry_changed.iter().filter(|e| wanted(&e.member)) {
            let end = |d: Option<Date>| d.map_or_else(|| "no end".to_owned(), |d| d.to_string());
            let detail = format!("{} → {}", end(moved.before), end(moved.after));
            events.push(event("expiry-moved", &moved.member, &change.name, Some(detail)));
        }
    }
    if let Some(member) = &filter.member {
        for access in diff.access.iter().filter(|a| &a.member == member && a.via.is_some()) {
            let what = if access.change == Change::Gains { "gained" } else { "lost" };
            events.push(event(what, member, &access.group, access.via.as_ref().map(|v| format!("through {v}"))));
        }
    }
    events
}

/// Grants still written at the newest commit whose end has passed.
fn expired(last: &Expanded, filter: &Filter, today: Date, commit: Option<&CommitInfo>) -> Vec<Event> {
    let Some(commit) = commit else { return Vec::new() };
    let mut events = Vec::new();
    for group in
        last.hierarchy.groups.values().filter(|g| filter.group_matches(last, &g.name) || filter.member.is_some())
    {
        for (member, until) in &group.expires {
            if *until < today && filter.member.as_deref().is_none_or(|m| m == member) {
                events.push(Event {
                    date: until.add_days(1),
                    what: "expired".to_owned(),
                    member: member.clone(),
                    group: group.name.clone(),
                    detail: Some(format!("last day {until}")),
                    commit: commit.commit.clone(),
                    author: String::new(),
                    pull_request: None,
                    reason: None,
                });
            }
        }
    }
    events
}

/// The comment on the line above the grant, at `commit`.
fn reason(global: &GlobalArgs, expanded: &Expanded, group: &str, member: &str, commit: &str) -> Option<String> {
    let group = expanded.hierarchy.group(group)?;
    let location = grant_locations(&expanded.definitions, group, member).into_iter().next()?;
    let text = resolve::read_file(global, &Revision::Git(commit.to_owned()), &location.path).ok()??;
    crate::edit::reason_above(&text, location.line).map(str::to_owned)
}

/// The pull request a first-parent commit names: `Merge pull request #12 from …` or a squash
/// subject ending in `(#12)`.
pub(super) fn pull_request_number(summary: &str) -> Option<u64> {
    let digits = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok();
    if let Some(rest) = summary.strip_prefix("Merge pull request #") {
        return digits(rest);
    }
    let open = summary.trim_end().strip_suffix(')')?.rfind("(#")?;
    digits(&summary[open + 2..])
}

fn render(events: &[Event]) -> String {
    if events.is_empty() {
        return "no changes of access\n".to_owned();
    }
    let mut out = String::new();
    for e in events {
        let pr = e.pull_request.map(|n| format!(" #{n}")).unwrap_or_default();
        let detail = e.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default();
        let reason = e.reason.as_ref().map(|r| format!(" — {r}")).unwrap_or_default();
        let by = if e.author.is_empty() { String::new() } else { format!(" by {}", e.author) };
        out.push_str(&format!(
            "{} {} {} {}{detail}{reason}  [{}{by}{pr}]\n",
            e.date,
            e.what,
            e.member,
            e.group,
            &e.commit[..e.commit.len().min(10)]
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pull_request_number;

    #[test]
    fn pull_requests_are_read_from_merge_and_squash_subjects() {
        assert_eq!(pull_request_number("Merge pull request #42 from org/access-request/7"), Some(42));
        assert_eq!(pull_request_number("Access request #7: amara as analysis on tob-wgs (#43)"), Some(43));
        assert_eq!(pull_request_number("A plain commit"), None);
        assert_eq!(pull_request_number("Mentions (#x)"), None);
    }
}
