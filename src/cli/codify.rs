//! `groups codify-drift --plan FILE`: the members a sync would remove because they were added
//! by hand in a directory, written into the definitions as grants instead (for a pull request
//! that keeps them). The plan is the JSON of `groups sync --format json`, as the nightly job
//! keeps it; nothing is read from a directory here.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use anyhow::Result;
use similar::TextDiff;

use super::args::{CodifyArgs, GlobalArgs};
use super::edit::{load_working_tree, members_path, read, write_loaded};
use super::output::{emit, emit_line};
use super::{resolve, Exit, InputError};
use crate::definitions::Definitions;
use crate::diff::{diff_hierarchies, render_text};
use crate::edit::{self, NewGrant};
use crate::hierarchy::{GroupKind, Hierarchy};

/// A member the sync would remove: added in the directory, not in the definitions.
struct HandAddition {
    group: String,
    member: String,
}

/// What becomes of one hand addition.
enum Outcome {
    /// A grant of `role` on `dataset` to the person `key`.
    Kept { dataset: String, role: String, key: String },
    /// Not written, and why.
    Skipped(String),
}

pub fn run(global: &GlobalArgs, args: &CodifyArgs) -> Result<Exit> {
    let before = load_working_tree(global)?;
    let additions = hand_additions(&args.plan)?;
    let today = resolve::today(global)?;
    let reason = format!("kept from drift: added by hand in the directory, codified on {today}");
    let by_account = people_by_account(&before.definitions);
    let mut changes: BTreeMap<String, String> = BTreeMap::new();
    let mut report = String::new();
    let mut kept = 0;
    for addition in &additions {
        let (dataset, role, key) = match classify(&before.hierarchy, &by_account, addition) {
            Outcome::Kept { dataset, role, key } => (dataset, role, key),
            Outcome::Skipped(why) => {
                let _ = writeln!(report, "skipped {} in {}: {why}", addition.member, addition.group);
                continue;
            }
        };
        let path = members_path(&dataset);
        let text = match changes.get(&path) {
            Some(text) => text.clone(),
            None => read(global, &path)?,
        };
        if edit::has_entry(&text, &role, &key) {
            let _ = writeln!(
                report,
                "skipped {} in {}: `{key}` is already granted `{role}`",
                addition.member, addition.group
            );
            continue;
        }
        let grant = NewGrant { role: &role, member: &key, expires: None, reason: Some(&reason) };
        let edited = edit::add_grant(&path, &text, &grant).map_err(|e| InputError(e.to_string()))?;
        changes.insert(path, edited);
        let _ = writeln!(report, "kept {} in {}: `{key}` as `{role}` on `{dataset}`", addition.member, addition.group);
        kept += 1;
    }
    if additions.is_empty() {
        emit_line("the plan removes no member: nothing added by hand to keep");
        return Ok(Exit::Success);
    }
    emit(&report);
    if kept == 0 {
        emit_line("nothing to codify");
        return Ok(Exit::Success);
    }
    // The edited tree must load (and so pass validation) before anything is shown or written.
    let after = resolve::load_with_changes(global, &changes)?;
    if !args.dry_run {
        return write_loaded(global, &before, &after, changes);
    }
    for (path, new) in &changes {
        let old = read(global, path)?;
        let diff = TextDiff::from_lines(&old, new);
        emit(&diff.unified_diff().header(&format!("a/{path}"), &format!("b/{path}")).to_string());
    }
    emit_line(&render_text(&diff_hierarchies(&before.hierarchy, &after.hierarchy)));
    eprintln!("dry run: nothing was written; run again without --dry-run to write the edits");
    Ok(Exit::Success)
}

/// The removals of a `groups sync --format json` plan.
fn hand_additions(path: &std::path::Path) -> Result<Vec<HandAddition>> {
    let changes = super::plan_file::member_changes(path)?;
    Ok(changes.into_iter().filter(|c| !c.adds).map(|c| HandAddition { group: c.group, member: c.member }).collect())
}

/// Each person's key by every account they sign in with (people.toml email, Google account).
fn people_by_account(definitions: &Definitions) -> HashMap<String, String> {
    let mut accounts = HashMap::new();
    for person in definitions.people.values() {
        accounts.insert(person.email.to_ascii_lowercase(), person.key.clone());
        if let Some(google) = &person.google {
            accounts.insert(google.to_ascii_lowercase(), person.key.clone());
        }
    }
    accounts
}

fn classify(hierarchy: &Hierarchy, by_account: &HashMap<String, String>, addition: &HandAddition) -> Outcome {
    let Some(group) = hierarchy.find_group(&addition.group) else {
        return Outcome::Skipped("the group is not defined (any more)".to_owned());
    };
    let GroupKind::Dataset { dataset, role } = &group.kind else {
        return Outcome::Skipped(format!(
            "`{}` is an organisation group: add the member in groups/ by hand",
            group.name
        ));
    };
    let member = addition.member.to_ascii_lowercase();
    if let Some(nested) = hierarchy.find_group(&member) {
        return Outcome::Skipped(format!(
            "a group nested by hand: nest `{}` in the definitions if it should stay",
            nested.name
        ));
    }
    match by_account.get(&member) {
        Some(key) => Outcome::Kept { dataset: dataset.clone(), role: role.clone(), key: key.clone() },
        None => Outcome::Skipped(format!(
            "not in groups/people.toml; to keep them: `cpg-infra groups add KEY --email {member} --dataset {dataset} --role {role}`"
        )),
    }
}
