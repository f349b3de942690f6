//! `groups add` and `groups remove`: one grant edited in a dataset's `members.toml` (and a new
//! person in `people.toml`), checked by loading the edited tree before anything is written,
//! then the access it changes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::args::{AddArgs, GlobalArgs, RemoveArgs};
use super::output::emit;
use super::resolve::{self, Revision};
use super::{Exit, InputError};
use crate::definitions::{self, Date, Definitions, DirSource, Source};
use crate::diff::{diff_hierarchies, render_text};
use crate::edit::{self, NewGrant};
use crate::load::Expanded;

const PEOPLE_FILE: &str = "groups/people.toml";

/// `groups add PERSON --dataset D --role R [--expires DATE] [--reason TEXT] [--email E]`.
pub fn add(global: &GlobalArgs, args: &AddArgs) -> Result<Exit> {
    let before = load_working_tree(global)?;
    let definitions = &before.definitions;
    let (dataset, role) = dataset_and_role(definitions, &args.dataset, &args.role)?;
    let expires = match &args.expires {
        None => None,
        Some(text) => {
            let date: Date = text.parse().map_err(|e: String| InputError(format!("--expires: {e}")))?;
            let today = resolve::today(global)?;
            if date < today {
                return Err(InputError(format!("--expires {date} is in the past (today is {today})")).into());
            }
            Some(date)
        }
    };
    let path = members_path(dataset);
    let text = read(global, &path)?;
    let mut changes = BTreeMap::new();
    let member = match member_to_add(definitions, &args.person, args.email.as_deref())? {
        // A person already listed by email keeps that spelling, so a new date replaces it.
        Member::Written(member) => match definitions.people.get(&member) {
            Some(person) if !edit::has_entry(&text, role, &member) && edit::has_entry(&text, role, &person.email) => {
                person.email.clone()
            }
            _ => member,
        },
        Member::NewPerson { key, email } => {
            let text = read(global, PEOPLE_FILE)?;
            let edited = edit::add_person(PEOPLE_FILE, &text, &key, &email).map_err(|e| InputError(e.to_string()))?;
            changes.insert(PEOPLE_FILE.to_owned(), edited);
            key
        }
    };
    let grant = NewGrant { role, member: &member, expires, reason: args.reason.as_deref() };
    let edited = edit::add_grant(&path, &text, &grant).map_err(|e| InputError(e.to_string()))?;
    changes.insert(path, edited);
    let after = resolve::load_with_changes(global, &changes)?;
    let broken = new_policy_violations(global, &before, &after)?;
    if !broken.is_empty() {
        let list = broken.iter().map(|v| format!("  {v}")).collect::<Vec<_>>().join("\n");
        if !args.force {
            return Err(InputError(format!(
                "the grant breaks groups/policy.toml; nothing was written (--force writes it anyway):\n{list}"
            ))
            .into());
        }
        eprintln!("warning: the grant breaks groups/policy.toml (written because of --force):\n{list}");
    }
    write_loaded(global, &before, &after, changes)
}

/// The policy violations the edited tree has and the tree before it had not (by message, as
/// lines move with the edit). CODEOWNERS is left out: it is regenerated after an edit.
fn new_policy_violations(global: &GlobalArgs, before: &Expanded, after: &Expanded) -> Result<Vec<String>> {
    let Some(policy) = super::policy::load_policy(global, &Revision::WorkingTree, after)? else {
        return Ok(Vec::new());
    };
    let today = resolve::today(global)?;
    let messages = |expanded: &Expanded| -> std::collections::BTreeSet<String> {
        let input = crate::policy::PolicyInput {
            definitions: &expanded.definitions,
            hierarchy: &expanded.hierarchy,
            today,
            codeowners: None,
            grant_context: None,
        };
        crate::policy::check(&policy, &input).0.into_iter().map(|d| d.message).collect()
    };
    let old = messages(before);
    Ok(messages(after).into_iter().filter(|m| !old.contains(m)).collect())
}

/// `groups remove PERSON --dataset D --role R`.
pub fn remove(global: &GlobalArgs, args: &RemoveArgs) -> Result<Exit> {
    let before = load_working_tree(global)?;
    let definitions = &before.definitions;
    let (dataset, role) = dataset_and_role(definitions, &args.dataset, &args.role)?;
    let path = members_path(dataset);
    let text = read(global, &path)?;
    // The file may name a person by key or by email.
    let written: Vec<String> = match definitions.find_person(&args.person) {
        Some(person) => vec![person.key.clone(), person.email.clone()],
        None => vec![args.person.clone()],
    };
    let first = edit::remove_grant(&path, &text, role, &written[0]);
    let edited = written[1..]
        .iter()
        .find_map(|member| edit::remove_grant(&path, &text, role, member).ok())
        .map_or(first, Ok)
        .map_err(|e| InputError(e.to_string()))?;
    let mut changes = BTreeMap::new();
    changes.insert(path, edited);
    write_checked(global, &before, changes)
}

/// Edits apply to the files on disk, never to a revision.
pub(super) fn load_working_tree(global: &GlobalArgs) -> Result<Expanded> {
    if let Some(rev) = &global.rev {
        return Err(InputError(format!("--rev {rev}: edits apply to the working tree, not to a revision")).into());
    }
    resolve::load(global, &Revision::WorkingTree)
}

pub(super) fn members_path(dataset: &str) -> String {
    format!("datasets/{dataset}/members.toml")
}

/// The dataset and role as the definitions spell them, or an error suggesting the nearest.
fn dataset_and_role<'d>(definitions: &'d Definitions, dataset: &str, role: &str) -> Result<(&'d str, &'d str)> {
    let Some((name, found)) = definitions.datasets.get_key_value(dataset) else {
        let known = definitions.datasets.keys().map(String::as_str);
        return Err(InputError(definitions::unknown("dataset", dataset, known, false)).into());
    };
    let Some((role_name, _)) = definitions.roles.get_key_value(role) else {
        let known = definitions.roles.keys().map(String::as_str);
        return Err(InputError(definitions::unknown("role", role, known, true)).into());
    };
    if !definitions.dataset_has_role(found, role) {
        let component = definitions.roles[role].requires_component.clone().unwrap_or_default();
        return Err(InputError(format!(
            "role `{role}` needs component `{component}`, which dataset `{dataset}` does not list (datasets/{dataset}/dataset.toml)"
        ))
        .into());
    }
    Ok((name, role_name))
}

/// Who `groups add` writes into the members list.
enum Member {
    /// As written in the file: a person key, `group:<name>` or an email.
    Written(String),
    /// A person to add to people.toml first.
    NewPerson { key: String, email: String },
}

fn member_to_add(definitions: &Definitions, person: &str, email: Option<&str>) -> Result<Member> {
    if let Some(found) = definitions.find_person(person) {
        if let Some(email) = email.filter(|e| !e.eq_ignore_ascii_case(&found.email)) {
            return Err(InputError(format!(
                "person `{}` already exists in {PEOPLE_FILE} with email `{}`, not `{email}`",
                found.key, found.email
            ))
            .into());
        }
        return Ok(Member::Written(found.key.clone()));
    }
    if person.starts_with("group:") || person.contains('@') {
        if email.is_some() {
            return Err(
                InputError(format!("--email names a new person's email; `{person}` is not a person key")).into()
            );
        }
        // Whether the group exists or the domain is allowed is checked by loading the edit.
        return Ok(Member::Written(person.to_owned()));
    }
    match email {
        Some(email) => Ok(Member::NewPerson { key: person.to_owned(), email: email.to_owned() }),
        None => {
            let known = definitions.people.keys().map(String::as_str);
            let message = definitions::unknown("person", person, known, false);
            Err(InputError(format!("{message} ({PEOPLE_FILE}); give --email to add a new person")).into())
        }
    }
}

/// A definitions file's text ("" when it does not exist yet).
pub(super) fn read(global: &GlobalArgs, path: &str) -> Result<String> {
    Ok(DirSource::new(&global.root).read(path)?.unwrap_or_default())
}

/// Loads the tree with `changes` applied; writes them only if it loads, then prints the access
/// they change.
fn write_checked(global: &GlobalArgs, before: &Expanded, changes: BTreeMap<String, String>) -> Result<Exit> {
    let after = resolve::load_with_changes(global, &changes)?;
    write_loaded(global, before, &after, changes)
}

/// `write_checked` for an edited tree already loaded.
pub(super) fn write_loaded(
    global: &GlobalArgs,
    before: &Expanded,
    after: &Expanded,
    changes: BTreeMap<String, String>,
) -> Result<Exit> {
    for (path, text) in &changes {
        write_atomically(&global.root.join(path), text)?;
        eprintln!("wrote {path}");
    }
    emit(&render_text(&diff_hierarchies(&before.hierarchy, &after.hierarchy)));
    Ok(Exit::Success)
}

/// Writes through a temporary file beside `path`, so a reader never sees half a file, and
/// never through a symbolic link.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    crate::write_safely::write_file(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
