//! Writing an import into the definitions in place with `toml_edit`: comments, order and
//! layout of everything else stay byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, Item, Table};

use super::ImportPlan;

/// Adds the plan's people to `groups/people.toml` and its grants to each dataset's
/// `members.toml`; returns the files written.
pub fn write_plan(root: &Path, plan: &ImportPlan) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    if !plan.people.is_empty() {
        let path = root.join("groups/people.toml");
        let mut document = read(&path)?;
        if !document.contains_key("people") {
            let mut people = Table::new();
            people.set_implicit(true);
            document.insert("people", Item::Table(people));
        }
        let people =
            document["people"].as_table_mut().ok_or_else(|| format!("{}: `people` is not a table", path.display()))?;
        for person in &plan.people {
            let mut table = Table::new();
            table.insert("email", value(&person.email));
            table.decor_mut().set_prefix(
                "\n# Imported by `cpg-infra migrate import` from the old groups: review the key, add a name.\n",
            );
            people.insert(&person.key, Item::Table(table));
        }
        write(&path, &document)?;
        written.push(path);
    }
    let mut by_dataset: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for grant in &plan.grants {
        by_dataset.entry(&grant.dataset).or_default().push((&grant.role, &grant.member));
    }
    for (dataset, grants) in by_dataset {
        let path = root.join(format!("datasets/{dataset}/members.toml"));
        let mut document = if path.exists() { read(&path)? } else { DocumentMut::new() };
        for (role, member) in grants {
            match document.get_mut(role).and_then(Item::as_array_mut) {
                Some(array) => array.push(member),
                None => {
                    let mut array = Array::new();
                    array.push(member);
                    document.insert(role, value(array));
                }
            }
        }
        write(&path, &document)?;
        written.push(path);
    }
    Ok(written)
}

fn read(path: &Path) -> Result<DocumentMut, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.parse::<DocumentMut>().map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces the file atomically.
fn write(path: &Path, document: &DocumentMut) -> Result<(), String> {
    let temporary = path.with_extension("toml.tmp");
    fs::write(&temporary, document.to_string()).map_err(|e| format!("cannot write {}: {e}", temporary.display()))?;
    fs::rename(&temporary, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
