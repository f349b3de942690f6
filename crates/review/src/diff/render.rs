//! Renderers for a `HierarchyDiff`: text for terminals, markdown for pull-request comments,
//! JSON for programs.

use std::fmt::Write;

use similar::{ChangeTag, TextDiff};

use super::{AccessChange, Change, ExpiryChange, GroupChange, HierarchyDiff};
use crate::definitions::Date;

/// Markdown sections longer than this many lines are folded into `<details>`.
pub const MARKDOWN_COLLAPSE_LINES: usize = 50;

/// Plain text: groups added and removed, a line diff of each changed group's members, and
/// the access each member gains or loses.
pub fn render_text(diff: &HierarchyDiff) -> String {
    if diff.is_empty() {
        return "no changes\n".to_owned();
    }
    let mut out = String::new();
    if !diff.groups_added.is_empty() {
        let _ = writeln!(out, "groups added ({}):", diff.groups_added.len());
        for group in &diff.groups_added {
            let _ = writeln!(out, "  + {} <{}>", group.name, group.email);
        }
    }
    if !diff.groups_removed.is_empty() {
        let _ = writeln!(out, "groups removed ({}):", diff.groups_removed.len());
        for group in &diff.groups_removed {
            let _ = writeln!(out, "  - {} <{}>", group.name, group.email);
        }
    }
    if !diff.groups_changed.is_empty() {
        let _ = writeln!(out, "members:");
        for change in &diff.groups_changed {
            let _ = writeln!(out, "  {}", change.name);
            out.push_str(&member_line_diff(change));
        }
    }
    if !diff.accounts.is_empty() {
        let _ = writeln!(out, "accounts:");
        for account in &diff.accounts {
            let _ = writeln!(out, "  ~ {}", account_sentence(account));
        }
    }
    if !diff.settings.is_empty() {
        let _ = writeln!(out, "settings:");
        for setting in &diff.settings {
            let _ = writeln!(out, "  ~ {}", setting_sentence(setting));
        }
    }
    if !diff.access.is_empty() {
        let _ = writeln!(out, "access:");
        for access in &diff.access {
            let _ = writeln!(out, "  {}", access_sentence(access));
        }
    }
    let _ = writeln!(out, "{}", summary(diff));
    out
}

/// The changed lines of a group's listing, computed by a line diff of old and new listings,
/// then the members whose grant ends on another day.
fn member_line_diff(change: &GroupChange) -> String {
    let listing = |groups: &[&String], members: &[&String]| {
        let mut text = String::new();
        for group in groups {
            let _ = writeln!(text, "group  {group}");
        }
        for member in members {
            let until = change.added_until.get(*member).map(|date| format!(" (until {date})")).unwrap_or_default();
            let _ = writeln!(text, "member {member}{until}");
        }
        text
    };
    // Only the changed entries matter: unchanged ones would appear on both sides.
    let old =
        listing(&change.groups_removed.iter().collect::<Vec<_>>(), &change.members_removed.iter().collect::<Vec<_>>());
    let new =
        listing(&change.groups_added.iter().collect::<Vec<_>>(), &change.members_added.iter().collect::<Vec<_>>());
    let mut out = String::new();
    for line in TextDiff::from_lines(&old, &new).iter_all_changes() {
        let sign = match line.tag() {
            ChangeTag::Insert => '+',
            ChangeTag::Delete => '-',
            ChangeTag::Equal => continue,
        };
        let _ = write!(out, "    {sign} {}", line.value());
    }
    for expiry in &change.expiry_changed {
        let _ = writeln!(out, "    ~ member {} {}", expiry.member, expiry_words(expiry));
    }
    out
}

/// `until 2027-03-31 → until 2027-06-30`, with `no end date` for a grant that does not expire.
fn expiry_words(expiry: &ExpiryChange) -> String {
    let end = |date: Option<Date>| date.map_or_else(|| "no end date".to_owned(), |d| format!("until {d}"));
    format!("{} → {}", end(expiry.before), end(expiry.after))
}

fn account_sentence(account: &super::AccountChange) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_owned());
    format!(
        "{} {} account: {} → {} (every membership moves with it)",
        account.person,
        account.provider,
        value(&account.before),
        value(&account.after)
    )
}

fn setting_sentence(setting: &super::SettingChange) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not set)".to_owned());
    format!("{} {}: {} → {}", setting.file, setting.key, value(&setting.before), value(&setting.after))
}

fn access_sentence(access: &AccessChange) -> String {
    let verb = match access.change {
        Change::Gains => "gains",
        Change::Loses => "loses",
    };
    match &access.via {
        Some(via) => format!("{} {verb} {} via {via}", access.member, access.group),
        None => format!("{} {verb} {} (direct)", access.member, access.group),
    }
}

fn summary(diff: &HierarchyDiff) -> String {
    let added: usize = diff.groups_changed.iter().map(|c| c.members_added.len() + c.groups_added.len()).sum();
    let removed: usize = diff.groups_changed.iter().map(|c| c.members_removed.len() + c.groups_removed.len()).sum();
    let moved: usize = diff.groups_changed.iter().map(|c| c.expiry_changed.len()).sum();
    let mut expiry = if moved > 0 { format!(", {moved} expiry date(s) changed") } else { String::new() };
    if !diff.accounts.is_empty() {
        let _ = write!(expiry, ", {} account(s) moved", diff.accounts.len());
    }
    if !diff.settings.is_empty() {
        let _ = write!(expiry, ", {} setting(s) changed", diff.settings.len());
    }
    format!(
        "{} group(s) added, {} removed; {added} membership(s) added, {removed} removed{expiry}; {} access change(s)",
        diff.groups_added.len(),
        diff.groups_removed.len(),
        diff.access.len()
    )
}

/// The warning that leads a diff when another build of the tool disagrees with this one.
pub fn render_disagreement(disagreement: &super::Disagreement, markdown: bool) -> String {
    let mut out = String::new();
    if disagreement.is_empty() {
        return out;
    }
    let heading = "The pull request's own build of the tool computes other access changes than the trusted build \
                   does: the code change alone moves the access below, which this diff does not show.";
    let _ = writeln!(
        out,
        "{}\n",
        if markdown { format!("> [!WARNING]\n> {heading}") } else { format!("warning: {heading}") }
    );
    for (title, list) in [
        ("Only with the pull request's code", &disagreement.only_other),
        ("Only with the trusted code", &disagreement.only_this),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}", if markdown { format!("**{title}**\n") } else { format!("{title}:") });
        for a in list {
            let change = match a.change {
                Change::Gains => "gains",
                Change::Loses => "loses",
            };
            let member = if markdown { escape_markdown(&a.member) } else { a.member.clone() };
            let bullet = if markdown { "- " } else { "  " };
            let _ = writeln!(out, "{bullet}{member} {change} `{}`", a.group);
        }
        out.push('\n');
    }
    out
}

/// Text that goes into a Markdown comment as plain text: every character Markdown or HTML
/// would act on is escaped, so a display name cannot open a comment (`<!--`) that hides the
/// rest, add a link, or break a table.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '|' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Markdown for a pull-request comment; long sections are collapsed.
pub fn render_markdown(diff: &HierarchyDiff) -> String {
    let mut out = String::from("### Access changes\n\n");
    if diff.is_empty() {
        out.push_str("No group or access changes.\n");
        return out;
    }
    let _ = writeln!(out, "{}\n", summary(diff));
    let mut groups = Vec::new();
    for group in &diff.groups_added {
        groups.push(format!("| ➕ added | `{}` | {} |", group.name, group.email));
    }
    for group in &diff.groups_removed {
        groups.push(format!("| ➖ removed | `{}` | {} |", group.name, group.email));
    }
    section(&mut out, "Groups", "| change | group | email |\n|---|---|---|", &groups);
    let mut members = Vec::new();
    for change in &diff.groups_changed {
        for member in &change.members_added {
            let m = escape_markdown(member);
            match change.added_until.get(member) {
                Some(date) => members.push(format!("| `{}` | ➕ | {m} (until {date}) |", change.name)),
                None => members.push(format!("| `{}` | ➕ | {m} |", change.name)),
            }
        }
        for expiry in &change.expiry_changed {
            let m = escape_markdown(&expiry.member);
            members.push(format!("| `{}` | 📅 | {m} ({}) |", change.name, expiry_words(expiry)));
        }
        for g in &change.groups_added {
            members.push(format!("| `{}` | ➕ | group `{g}` |", change.name));
        }
        for m in &change.members_removed {
            members.push(format!("| `{}` | ➖ | {} |", change.name, escape_markdown(m)));
        }
        for g in &change.groups_removed {
            members.push(format!("| `{}` | ➖ | group `{g}` |", change.name));
        }
    }
    section(&mut out, "Direct members", "| group | change | member |\n|---|---|---|", &members);
    let access: Vec<String> = diff
        .access
        .iter()
        .map(|a| {
            let change = match a.change {
                Change::Gains => "gains",
                Change::Loses => "**loses**",
            };
            let via = a.via.as_deref().map_or("direct".to_owned(), |v| format!("via `{v}`"));
            format!("| {} | {change} | `{}` | {via} |", escape_markdown(&a.member), a.group)
        })
        .collect();
    let accounts: Vec<String> =
        diff.accounts.iter().map(|a| format!("| {} |", escape_markdown(&account_sentence(a)))).collect();
    section(&mut out, "Accounts", "| moved account |\n|---|", &accounts);
    let settings: Vec<String> =
        diff.settings.iter().map(|s| format!("| {} |", escape_markdown(&setting_sentence(s)))).collect();
    section(&mut out, "Settings that decide access", "| change |\n|---|", &settings);
    section(&mut out, "Effective access", "| member | change | group | how |\n|---|---|---|---|", &access);
    out
}

fn section(out: &mut String, title: &str, header: &str, rows: &[String]) {
    if rows.is_empty() {
        return;
    }
    let collapse = rows.len() > MARKDOWN_COLLAPSE_LINES;
    if collapse {
        let _ = writeln!(out, "<details><summary>{title} ({})</summary>\n", rows.len());
    } else {
        let _ = writeln!(out, "#### {title} ({})\n", rows.len());
    }
    let _ = writeln!(out, "{header}");
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
    if collapse {
        out.push_str("\n</details>\n");
    }
    out.push('\n');
}

/// The diff as pretty JSON.
pub fn render_json(diff: &HierarchyDiff) -> String {
    let mut json = serde_json::to_string_pretty(diff).unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_cannot_be_opened_by_a_name() {
        use super::escape_markdown;
        assert_eq!(escape_markdown("Eve <!-- hidden"), "Eve &lt;\\!-- hidden");
        assert_eq!(escape_markdown("[click](http://x)"), "\\[click\\]\\(http://x\\)");
        assert_eq!(escape_markdown("a|b\nc"), "a\\|b c");
        assert_eq!(escape_markdown("plain.name@example.org"), "plain.name@example.org");
    }

    use super::*;
    use crate::diff::diff_hierarchies;
    use crate::hierarchy::outline as hierarchy;

    #[test]
    fn text_shows_member_lines_and_access() {
        let base = hierarchy(&[("web", &[], &["analysis"]), ("analysis", &["a@o.org"], &[])]);
        let head = hierarchy(&[("web", &[], &["analysis"]), ("analysis", &["b@o.org"], &[])]);
        let text = render_text(&diff_hierarchies(&base, &head));
        assert!(text.contains("  analysis\n    - member a@o.org\n    + member b@o.org\n"), "{text}");
        assert!(text.contains("b@o.org gains web via analysis"), "{text}");
        assert!(text.contains("a@o.org loses analysis (direct)"), "{text}");
    }

    #[test]
    fn expiry_shows_in_text_and_markdown() {
        let day = |text: &str| text.parse::<Date>().unwrap();
        let base = hierarchy(&[("g", &["a@o.org"], &[])]);
        let mut head = hierarchy(&[("g", &["a@o.org", "b@o.org"], &[])]);
        let expires = &mut head.groups.get_mut("g").unwrap().expires;
        expires.insert("a@o.org".to_owned(), day("2027-03-31"));
        expires.insert("b@o.org".to_owned(), day("2027-06-30"));
        let diff = diff_hierarchies(&base, &head);
        let text = render_text(&diff);
        assert!(
            text.contains(
                "  g\n    + member b@o.org (until 2027-06-30)\n    ~ member a@o.org no end date → until 2027-03-31\n"
            ),
            "{text}"
        );
        assert!(text.contains("1 membership(s) added, 0 removed, 1 expiry date(s) changed;"), "{text}");
        let markdown = render_markdown(&diff);
        assert!(markdown.contains("| `g` | ➕ | b@o.org (until 2027-06-30) |"), "{markdown}");
        assert!(markdown.contains("| `g` | 📅 | a@o.org (no end date → until 2027-03-31) |"), "{markdown}");
    }

    #[test]
    fn markdown_collapses_long_sections() {
        let many: Vec<String> = (0..60).map(|i| format!("p{i}@o.org")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let base = hierarchy(&[("g", &[], &[])]);
        let head = hierarchy(&[("g", &refs, &[])]);
        let markdown = render_markdown(&diff_hierarchies(&base, &head));
        assert!(markdown.contains("<details><summary>Direct members (60)</summary>"));
        assert!(render_markdown(&diff_hierarchies(&base, &base)).contains("No group or access changes"));
    }
}
