//! Changes outside the group hierarchy that still move access: a person's account on a
//! provider (every membership moves to the new account) and the settings files that decide
//! access (org.toml, policy.toml, the transition mapping). Each account change becomes access
//! gained by the new account and lost by the old one, group by group, so it shows in every
//! format and counts for `--exit-code`; each setting that differs is listed by key.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{AccessChange, Change};
use crate::definitions::Definitions;
use crate::hierarchy::Hierarchy;

/// One key of a settings file whose value differs; `None` where it is not set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    pub file: String,
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A person's account on one provider moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountChange {
    /// The person's primary email.
    pub person: String,
    /// `google`, `azure` or `hail_batch`.
    pub provider: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Every key (dotted, arrays and tables under their parent's key) whose value differs
/// between the two texts of `file`; a file that does not parse is one change of the whole.
pub fn setting_changes(file: &str, base: Option<&str>, head: Option<&str>) -> Vec<SettingChange> {
    let flatten = |text: Option<&str>| -> Result<BTreeMap<String, String>, ()> {
        let Some(text) = text else { return Ok(BTreeMap::new()) };
        let table: toml::Table = toml::from_str(text).map_err(|_| ())?;
        let mut out = BTreeMap::new();
        flatten_into("", &toml::Value::Table(table), &mut out);
        Ok(out)
    };
    match (flatten(base), flatten(head)) {
        (Ok(before), Ok(after)) => {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            keys.into_iter()
                .filter(|key| before.get(*key) != after.get(*key))
                .map(|key| SettingChange {
                    file: file.to_owned(),
                    key: key.clone(),
                    before: before.get(key).cloned(),
                    after: after.get(key).cloned(),
                })
                .collect()
        }
        _ if base == head => Vec::new(),
        _ => vec![SettingChange {
            file: file.to_owned(),
            key: "(the whole file)".to_owned(),
            before: base.map(|_| "…".to_owned()),
            after: head.map(|_| "…".to_owned()),
        }],
    }
}

fn flatten_into(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                flatten_into(&key, value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// People whose account on a provider differs between the revisions (people in both).
pub fn account_changes(base: &Definitions, head: &Definitions) -> Vec<AccountChange> {
    let mut changes = Vec::new();
    for (key, after) in &head.people {
        let Some(before) = base.people.get(key).filter(|b| b.email == after.email) else { continue };
        let accounts = [
            ("google", &before.google, &after.google),
            ("azure", &before.azure, &after.azure),
            ("hail_batch", &before.hail_batch, &after.hail_batch),
        ];
        for (provider, old, new) in accounts {
            if old != new {
                changes.push(AccountChange {
                    person: after.email.clone(),
                    provider: provider.to_owned(),
                    before: old.clone(),
                    after: new.clone(),
                });
            }
        }
    }
    changes
}

/// The access each moved account gains and loses: every group the person is in, at each
/// side, reached through the account. An account that is not set is the primary email on
/// Google (the directory signs the person in with it) and nothing elsewhere.
pub fn account_access(changes: &[AccountChange], base: &Hierarchy, head: &Hierarchy) -> Vec<AccessChange> {
    let mut access = Vec::new();
    for change in changes {
        let fallback = |account: &Option<String>| match (account, change.provider.as_str()) {
            (Some(account), _) => Some(account.clone()),
            (None, "google") => Some(change.person.clone()),
            (None, _) => None,
        };
        let via = Some(format!("{} account of {}", change.provider, change.person));
        for (hierarchy, account, kind) in
            [(head, fallback(&change.after), Change::Gains), (base, fallback(&change.before), Change::Loses)]
        {
            let Some(account) = account else { continue };
            for group in groups_of(hierarchy, &change.person) {
                access.push(AccessChange { member: account.clone(), group, change: kind, via: via.clone() });
            }
        }
    }
    access
}

/// Every group `email` is in, directly or through nesting.
fn groups_of(hierarchy: &Hierarchy, email: &str) -> BTreeSet<String> {
    let parents = hierarchy.parents();
    let mut pending: Vec<&str> =
        hierarchy.groups.values().filter(|g| g.members.contains(email)).map(|g| g.name.as_str()).collect();
    let mut found = BTreeSet::new();
    while let Some(group) = pending.pop() {
        if found.insert(group.to_owned()) {
            pending.extend(parents.get(group).into_iter().flatten().copied());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_changed_key_is_listed_with_both_values() {
        let base = "[organisation]\nname = \"x\"\n[providers.hail]\naggregator = \"a\"\n[sync]\npinned_groups = [\"admins\"]\n";
        let head =
            "[organisation]\nname = \"x\"\n[providers.hail]\naggregator = \"b\"\n[sync]\npinned_groups = []\nmax = 3\n";
        let changes = setting_changes("groups/org.toml", Some(base), Some(head));
        let keys: Vec<(&str, Option<&str>, Option<&str>)> =
            changes.iter().map(|c| (c.key.as_str(), c.before.as_deref(), c.after.as_deref())).collect();
        assert_eq!(
            keys,
            [
                ("providers.hail.aggregator", Some("\"a\""), Some("\"b\"")),
                ("sync.max", None, Some("3")),
                ("sync.pinned_groups", Some("[\"admins\"]"), Some("[]")),
            ]
        );
        assert!(setting_changes("groups/org.toml", Some(base), Some(base)).is_empty());
        assert_eq!(setting_changes("m.toml", None, Some("a = 1")).len(), 1);
    }
}
