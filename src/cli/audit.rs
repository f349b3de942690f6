//! `audit`: per dataset, every member and machine account with its role, how it is held
//! (listed, through a group, role-level, the infrastructure), since when and in which commit
//! and pull request (`git blame` of the grant's line), and its end. CSV for spreadsheets,
//! Markdown for a report.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Result;

use super::args::{AuditArgs, AuditFormat, GlobalArgs};
use super::history::pull_request_number;
use super::output::emit;
use super::resolve::{self, LineOrigin};
use super::{Exit, InputError};
use crate::definitions::{Grant, MemberRef};
use crate::load::Expanded;

/// One row of the report (and of a review's member list).
pub(super) struct Row {
    pub(super) dataset: String,
    pub(super) role: String,
    /// The person key, group reference or account as written.
    pub(super) member: String,
    pub(super) account: String,
    pub(super) how: String,
    pub(super) since: String,
    pub(super) commit: String,
    pub(super) pull_request: String,
    pub(super) expires: String,
    /// The `# …` comment above the grant, when there is one.
    pub(super) reason: String,
}

const HEADER: [&str; 9] = ["dataset", "role", "member", "account", "how", "since", "commit", "pull_request", "expires"];

pub fn run(global: &GlobalArgs, args: &AuditArgs) -> Result<Exit> {
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let definitions = &expanded.definitions;
    if let Some(dataset) = &args.dataset {
        if !definitions.datasets.contains_key(dataset) {
            let known = definitions.datasets.keys().map(String::as_str);
            return Err(InputError(crate::definitions::unknown("dataset", dataset, known, false)).into());
        }
    }
    let rows = member_rows(global, &revision, &expanded, args.dataset.as_deref())?;
    emit(&match args.format {
        AuditFormat::Csv => render_csv(&rows),
        AuditFormat::Markdown => render_markdown(&rows),
    });
    Ok(Exit::Success)
}

/// Every member and machine account of every dataset (or of `only`), sorted by dataset, role
/// and account, with the commit that granted each line (`git blame`) and its reason comment.
pub(super) fn member_rows(
    global: &GlobalArgs,
    revision: &resolve::Revision,
    expanded: &Expanded,
    only: Option<&str>,
) -> Result<Vec<Row>> {
    let definitions = &expanded.definitions;
    let origins = resolve::grant_line_origins(global, revision, definitions)?;
    let mut texts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for grant in definitions.role_grants() {
        let path = grant.location.path.to_string();
        if let std::collections::btree_map::Entry::Vacant(entry) = texts.entry(path) {
            let text = resolve::read_file(global, revision, entry.key())?;
            entry.insert(text);
        }
    }
    let context = RowContext { origins: &origins, texts: &texts };
    let mut rows = Vec::new();
    for dataset in definitions.datasets.values().filter(|d| only.is_none_or(|only| only == d.name)) {
        let listed = dataset.members.iter().flat_map(|(role, grants)| grants.iter().map(move |g| (role, g, "listed")));
        let role_level = definitions
            .roles
            .values()
            .filter(|role| definitions.dataset_has_role(dataset, &role.name))
            .flat_map(|role| role.members.iter().map(move |g| (&role.name, g, "role-level (roles.toml)")));
        for (role, grant, how) in listed.chain(role_level) {
            rows.extend(grant_rows(expanded, &dataset.name, role, grant, how, &context));
        }
    }
    for (group, account) in crate::infra::machine_account_memberships(definitions) {
        let Some(crate::hierarchy::GroupKind::Dataset { dataset, role }) =
            expanded.hierarchy.group(&group).map(|g| g.kind.clone())
        else {
            continue;
        };
        if only.is_some_and(|only| only != dataset) {
            continue;
        }
        rows.push(Row {
            dataset,
            role,
            member: account.clone(),
            account,
            how: "machine account (infrastructure)".into(),
            since: String::new(),
            commit: String::new(),
            pull_request: String::new(),
            expires: String::new(),
            reason: String::new(),
        });
    }
    rows.sort_by(|a, b| (&a.dataset, &a.role, &a.account).cmp(&(&b.dataset, &b.role, &b.account)));
    Ok(rows)
}

/// What the rows read besides the definitions: each grant line's commit, each file's text.
struct RowContext<'a> {
    origins: &'a BTreeMap<(String, usize), LineOrigin>,
    texts: &'a BTreeMap<String, Option<String>>,
}

/// A grant's rows: one per account it gives the role to (a group reference, one per member).
fn grant_rows(
    expanded: &Expanded,
    dataset: &str,
    role: &str,
    grant: &Grant,
    how: &str,
    context: &RowContext,
) -> Vec<Row> {
    let origins = context.origins;
    let reason = context
        .texts
        .get(grant.location.path.as_ref())
        .and_then(Option::as_deref)
        .and_then(|text| crate::edit::reason_above(text, grant.location.line))
        .unwrap_or_default()
        .to_owned();
    let definitions = &expanded.definitions;
    let (member, accounts, how) = match &grant.member {
        MemberRef::Person(key) => {
            let email = definitions.people.get(key).map(|p| p.email.clone()).unwrap_or_default();
            (key.clone(), vec![email], how.to_owned())
        }
        MemberRef::Email(email) => (email.clone(), vec![email.clone()], how.to_owned()),
        MemberRef::Group(group) => {
            let short = group.strip_prefix(definitions.organisation.group_prefix.as_str()).unwrap_or(group);
            let members = expanded.hierarchy.effective_members(group).into_iter().map(str::to_owned).collect();
            (format!("group:{short}"), members, format!("{how}, through group:{short}"))
        }
    };
    let origin = origins.get(&(grant.location.path.to_string(), grant.location.line));
    accounts
        .into_iter()
        .map(|account| Row {
            dataset: dataset.to_owned(),
            role: role.to_owned(),
            member: member.clone(),
            account,
            how: how.clone(),
            since: origin.map_or_else(|| "not committed".to_owned(), |o| o.date.to_string()),
            commit: origin.map_or_else(String::new, |o| o.commit[..o.commit.len().min(10)].to_owned()),
            pull_request: origin
                .and_then(|o| pull_request_number(&o.summary))
                .map_or_else(String::new, |n| format!("#{n}")),
            expires: grant.expires.map_or_else(String::new, |d| d.to_string()),
            reason: reason.clone(),
        })
        .collect()
}

fn fields(row: &Row) -> [&str; 9] {
    [
        &row.dataset,
        &row.role,
        &row.member,
        &row.account,
        &row.how,
        &row.since,
        &row.commit,
        &row.pull_request,
        &row.expires,
    ]
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. A field that
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@`) is prefixed with `'`.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) { format!("'{field}") } else { field.to_owned() };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

fn render_csv(rows: &[Row]) -> String {
    let mut out = HEADER.join(",") + "\n";
    for row in rows {
        let _ = writeln!(out, "{}", fields(row).map(csv_field).join(","));
    }
    out
}

fn render_markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut current = None;
    for row in rows {
        if current != Some(&row.dataset) {
            let _ = writeln!(
                out,
                "{}## {}\n",
                if current.is_some() { "\n" } else { "" },
                crate::diff::escape_markdown(&row.dataset)
            );
            let _ = writeln!(out, "| {} |\n|{}", HEADER[1..].join(" | "), "---|".repeat(HEADER.len() - 1));
            current = Some(&row.dataset);
        }
        let cells: Vec<String> = fields(row)[1..].iter().map(|f| crate::diff::escape_markdown(f)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
