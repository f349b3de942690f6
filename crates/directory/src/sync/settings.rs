//! Group settings (Google: the Groups Settings API): what each group should have, compared with
//! what it has, and one update per group that differs carrying only the differing fields.
//!
//! `desired_settings` and `plan_settings` are pure; `read_settings` and `apply_settings` go
//! through the sync's retries, like listings and changes do. Only owned groups are read or
//! changed: the caller says which those are.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::apply::{run_parallel, with_retries, RetryPolicy};
use crate::definitions::{Definitions, GoogleGroupSettings};
use crate::directory::{DirectoryError, GroupSettings, GroupSettingsDirectory};
use crate::hierarchy::{GroupKind, Hierarchy};

/// The settings each group of `hierarchy` should have, by email: `[providers.google]
/// group_settings`, overridden field by field by the group's own `google_settings` (its role's,
/// for a dataset group). Groups with nothing to set are left out, so an organisation without
/// settings gets an empty map and no settings call at all.
pub fn desired_settings(definitions: &Definitions, hierarchy: &Hierarchy) -> BTreeMap<String, GoogleGroupSettings> {
    let defaults = definitions.organisation.google.as_ref().map(|g| g.group_settings.clone()).unwrap_or_default();
    let prefix = definitions.organisation.group_prefix.as_str();
    hierarchy
        .groups
        .values()
        .filter_map(|group| {
            let own = match &group.kind {
                GroupKind::Dataset { role, .. } => definitions.roles.get(role).map(|r| &r.google_settings),
                GroupKind::Organisation => group
                    .name
                    .strip_prefix(prefix)
                    .and_then(|name| definitions.groups.get(name))
                    .map(|g| &g.google_settings),
            };
            let settings = own.map_or_else(|| defaults.clone(), |own| own.over(&defaults));
            (!settings.is_empty()).then(|| (group.email.clone(), settings))
        })
        .collect()
}

/// One group's settings update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsChange {
    pub group: String,
    /// Field → what the group has (`None`: not read, for a group this run creates) and what it
    /// should have.
    pub fields: BTreeMap<String, FieldChange>,
    /// The group does not exist (or is not ours) yet: its settings are read after it is.
    pub new_group: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub from: Option<String>,
    pub to: String,
}

impl SettingsChange {
    /// Exactly the fields to send.
    pub fn update(&self) -> GroupSettings {
        self.fields.iter().map(|(field, change)| (field.clone(), change.to.clone())).collect()
    }
}

impl fmt::Display for SettingsChange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let when = if self.new_group { " (once the group is ours)" } else { "" };
        write!(f, "~ settings {}{when}:", self.group)?;
        for (index, (field, change)) in self.fields.iter().enumerate() {
            let separator = if index == 0 { " " } else { ", " };
            match &change.from {
                Some(from) => write!(f, "{separator}{field} {from} → {}", change.to)?,
                None => write!(f, "{separator}{field} → {}", change.to)?,
            }
        }
        Ok(())
    }
}

/// The updates that bring `live` to `desired`: one per group whose read settings differ, with
/// only the differing fields, and one with every field for each group of `new_groups` (not
/// readable before this run creates or adopts it). Groups in neither are not ours: nothing.
pub fn plan_settings(
    desired: &BTreeMap<String, GoogleGroupSettings>,
    live: &BTreeMap<String, GroupSettings>,
    new_groups: &BTreeSet<String>,
) -> Vec<SettingsChange> {
    let mut changes = Vec::new();
    for (group, wanted) in desired {
        let (current, new_group) = match live.get(group) {
            Some(current) => (Some(current), false),
            None if new_groups.contains(group) => (None, true),
            None => continue,
        };
        let fields: BTreeMap<String, FieldChange> = wanted
            .fields
            .iter()
            .filter_map(|(field, to)| {
                let from = current.and_then(|c| c.get(field)).cloned();
                (from.as_ref() != Some(to)).then(|| (field.clone(), FieldChange { from, to: to.clone() }))
            })
            .collect();
        if !fields.is_empty() {
            changes.push(SettingsChange { group: group.clone(), fields, new_group });
        }
    }
    changes
}

/// The settings of `groups`, each read once (and retried), `concurrency` at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsRead {
    pub live: BTreeMap<String, GroupSettings>,
    /// Groups whose settings could not be read after retries, with the last error.
    pub failed: Vec<(String, DirectoryError)>,
    /// Attempts beyond the first.
    pub retries: usize,
}

pub fn read_settings(
    directory: &dyn GroupSettingsDirectory,
    groups: &[String],
    concurrency: usize,
    retry: &RetryPolicy,
) -> SettingsRead {
    let mut read = SettingsRead::default();
    // One read first: credentials without the API's scope fail every group alike, and are
    // reported once.
    if let Some(first) = groups.first() {
        let (result, attempts) = with_retries(retry, || directory.read_settings(first));
        read.retries += attempts - 1;
        match result {
            Err(error @ DirectoryError::MissingScope(_)) => {
                read.failed.push(("every group".to_owned(), error));
                return read;
            }
            Ok(settings) => {
                read.live.insert(first.clone(), settings);
            }
            Err(error) => read.failed.push((first.clone(), error)),
        }
    }
    let rest = groups.get(1..).unwrap_or_default();
    let results = run_parallel(rest, concurrency, |group| with_retries(retry, || directory.read_settings(group)));
    for (group, (result, attempts)) in rest.iter().zip(results) {
        read.retries += attempts - 1;
        match result {
            Ok(settings) => {
                read.live.insert(group.clone(), settings);
            }
            Err(error) => read.failed.push((group.clone(), error)),
        }
    }
    read
}

/// What applying settings updates did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsReport {
    pub updated: usize,
    /// Groups whose update failed after retries, with the last error.
    pub failed: Vec<(String, DirectoryError)>,
    pub retries: usize,
}

/// Sends each update once (retried), `concurrency` at a time; updates for groups not read
/// (`new_group`) are not sent: their settings are planned again once they can be read.
pub fn apply_settings(
    directory: &dyn GroupSettingsDirectory,
    changes: &[SettingsChange],
    concurrency: usize,
    retry: &RetryPolicy,
) -> SettingsReport {
    let sendable: Vec<&SettingsChange> = changes.iter().filter(|c| !c.new_group).collect();
    let results = run_parallel(&sendable, concurrency, |change| {
        let update = change.update();
        with_retries(retry, || directory.update_settings(&change.group, &update))
    });
    let mut report = SettingsReport::default();
    for (change, (result, attempts)) in sendable.iter().zip(results) {
        report.retries += attempts - 1;
        match result {
            Ok(()) => report.updated += 1,
            Err(error) => report.failed.push((change.group.clone(), error)),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    fn settings(pairs: &[(&str, &str)]) -> GroupSettings {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn wanted(pairs: &[(&str, &str)]) -> GoogleGroupSettings {
        GoogleGroupSettings { fields: settings(pairs) }
    }

    #[test]
    fn only_differing_fields_of_read_groups_are_planned() {
        let desired = BTreeMap::from([
            ("same@g".to_owned(), wanted(&[("whoCanJoin", "INVITED_CAN_JOIN")])),
            ("drifted@g".to_owned(), wanted(&[("whoCanJoin", "INVITED_CAN_JOIN"), ("isArchived", "true")])),
            ("new@g".to_owned(), wanted(&[("isArchived", "false")])),
            ("not-ours@g".to_owned(), wanted(&[("isArchived", "false")])),
        ]);
        let live = BTreeMap::from([
            ("same@g".to_owned(), settings(&[("whoCanJoin", "INVITED_CAN_JOIN"), ("isArchived", "false")])),
            ("drifted@g".to_owned(), settings(&[("whoCanJoin", "ANYONE_CAN_JOIN"), ("isArchived", "true")])),
        ]);
        let changes = plan_settings(&desired, &live, &BTreeSet::from(["new@g".to_owned()]));
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "~ settings drifted@g: whoCanJoin ANYONE_CAN_JOIN → INVITED_CAN_JOIN",
                "~ settings new@g (once the group is ours): isArchived → false",
            ]
        );
        assert_eq!(changes[0].update(), settings(&[("whoCanJoin", "INVITED_CAN_JOIN")]));
        assert!(plan_settings(&desired, &BTreeMap::new(), &BTreeSet::new()).is_empty());
    }

    /// Settings in memory; the first `flaky` calls of each kind fail with a 503.
    struct Fake {
        groups: Mutex<BTreeMap<String, GroupSettings>>,
        flaky: Mutex<usize>,
        updates: Mutex<Vec<(String, GroupSettings)>>,
    }

    impl Fake {
        fn flake(&self) -> Result<(), DirectoryError> {
            let mut flaky = self.flaky.lock().unwrap();
            if *flaky > 0 {
                *flaky -= 1;
                return Err(DirectoryError::Unavailable("503".into()));
            }
            Ok(())
        }
    }

    impl GroupSettingsDirectory for Fake {
        fn read_settings(&self, group: &str) -> Result<GroupSettings, DirectoryError> {
            self.flake()?;
            self.groups.lock().unwrap().get(group).cloned().ok_or_else(|| DirectoryError::NotOwned(group.to_owned()))
        }

        fn update_settings(&self, group: &str, fields: &GroupSettings) -> Result<(), DirectoryError> {
            self.flake()?;
            self.updates.lock().unwrap().push((group.to_owned(), fields.clone()));
            self.groups.lock().unwrap().get_mut(group).unwrap().extend(fields.clone());
            Ok(())
        }
    }

    #[test]
    fn reads_and_updates_are_retried_and_converge() {
        let retry =
            RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let fake = Fake {
            groups: Mutex::new(BTreeMap::from([("a@g".to_owned(), settings(&[("isArchived", "false")]))])),
            flaky: Mutex::new(2),
            updates: Mutex::new(Vec::new()),
        };
        let desired = BTreeMap::from([("a@g".to_owned(), wanted(&[("isArchived", "true")]))]);
        let groups = vec!["a@g".to_owned(), "b@g".to_owned()];
        let read = read_settings(&fake, &groups, 1, &retry);
        assert_eq!(read.retries, 2);
        assert_eq!(read.failed, [("b@g".to_owned(), DirectoryError::NotOwned("b@g".to_owned()))]);
        let changes = plan_settings(&desired, &read.live, &BTreeSet::new());
        let report = apply_settings(&fake, &changes, 2, &retry);
        assert_eq!((report.updated, report.failed.len()), (1, 0));
        assert_eq!(*fake.updates.lock().unwrap(), [("a@g".to_owned(), settings(&[("isArchived", "true")]))]);
        let again = read_settings(&fake, &groups[..1], 1, &retry);
        assert!(plan_settings(&desired, &again.live, &BTreeSet::new()).is_empty());
    }
}
