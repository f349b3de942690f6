//! Writing an import into the definitions in place, through the same text edits as
//! `groups add` (`crate::edit`): comments, order and layout of everything else stay byte for
//! byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::ImportPlan;
use crate::edit::{add_grant, add_person_with_note, NewGrant};

const REVIEW: &str = "Imported by `cpg-infra migrate import` from the old groups: review the key, add a name.";

/// Adds the plan's people to `groups/people.toml` and its grants to each dataset's
/// `members.toml`; returns the files written.
pub fn write_plan(root: &Path, plan: &ImportPlan) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    if !plan.people.is_empty() {
        let file = "groups/people.toml";
        let mut text = read(&root.join(file))?;
        for person in &plan.people {
            text = add_person_with_note(file, &text, &person.key, &person.email, Some(REVIEW))
                .map_err(|e| e.to_string())?;
        }
        written.push(write(&root.join(file), &text)?);
    }
    let mut by_dataset: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for grant in &plan.grants {
        by_dataset.entry(&grant.dataset).or_default().push((&grant.role, &grant.member));
    }
    for (dataset, grants) in by_dataset {
        let file = format!("datasets/{dataset}/members.toml");
        let path = root.join(&file);
        let mut text = if path.exists() { read(&path)? } else { String::new() };
        for (role, member) in grants {
            let grant = NewGrant { role, member, expires: None, reason: None };
            text = add_grant(&file, &text, &grant).map_err(|e| e.to_string())?;
        }
        written.push(write(&path, &text)?);
    }
    Ok(written)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Replaces the file atomically.
fn write(path: &Path, text: &str) -> Result<PathBuf, String> {
    let temporary = path.with_extension("toml.tmp");
    fs::write(&temporary, text).map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    fs::rename(&temporary, path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}
