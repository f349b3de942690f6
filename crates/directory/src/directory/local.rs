//! The embedded default directory: groups in a JSON file under the definitions root.
//!
//! Opening takes an exclusive lock on `<state>.lock` that is held until the value is dropped,
//! so two syncs cannot interleave. Changes stay in memory until `flush`, which writes a new
//! file and renames it over the old one, so a crash never leaves a half-written state. A flush
//! with nothing changed writes nothing: a no-op sync of a large organisation costs no rewrite
//! and no fsync of its state file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::{Directory, DirectoryError, LiveGroup, LiveMember, MemberKind, NewGroup};
use crate::definitions::Date;

const OWNER: &str = "cpg-infra";

/// A file-backed directory.
pub struct LocalDirectory {
    path: PathBuf,
    state: Mutex<State>,
    /// Held for the lifetime of the directory; the OS releases the lock when it closes.
    /// `None` for a read-only directory.
    lock: Option<File>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    groups: BTreeMap<String, StoredGroup>,
    /// Whether the file must be written: something changed since it was read or written, or
    /// there is no file yet.
    #[serde(skip)]
    unsaved: bool,
}

impl State {
    /// Emails are case-insensitive; a hand-edited file may not be lowercase.
    fn normalised(self) -> State {
        let groups = self
            .groups
            .into_iter()
            .map(|(email, mut group)| {
                group.members = group.members.iter().map(|m| m.to_ascii_lowercase()).collect();
                group.expires = group.expires.iter().map(|(m, date)| (m.to_ascii_lowercase(), *date)).collect();
                (email.to_ascii_lowercase(), group)
            })
            .collect();
        State { groups, unsaved: self.unsaved }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredGroup {
    name: String,
    #[serde(default)]
    description: String,
    /// `cpg-infra` for groups this tool created; anything else is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    managed_by: Option<String>,
    #[serde(default)]
    members: BTreeSet<String>,
    /// The last day of access of members whose grant expires; the others have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    expires: BTreeMap<String, Date>,
}

impl LocalDirectory {
    /// Reads the state file without locking or creating anything, for plans that will not be
    /// applied. Writes are atomic renames, so a concurrent sync never shows a half-written file.
    /// Mutating a read-only directory fails.
    pub fn open_read_only(path: &Path) -> Result<LocalDirectory, DirectoryError> {
        Ok(LocalDirectory { path: path.to_owned(), state: Mutex::new(read_state(path)?), lock: None })
    }

    /// Opens (or starts) the state file at `path`, failing if another sync holds its lock.
    pub fn open(path: &Path) -> Result<LocalDirectory, DirectoryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| storage(parent, e))?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        for owned in [path, lock_path.as_path()] {
            crate::write_safely::refuse_symlink(owned).map_err(|e| storage(owned, e))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| storage(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(DirectoryError::Locked(lock_path.display().to_string()));
        }
        Ok(LocalDirectory { path: path.to_owned(), state: Mutex::new(read_state(path)?), lock: Some(lock) })
    }

    /// The in-memory state, for reading.
    fn state(&self) -> Result<MutexGuard<'_, State>, DirectoryError> {
        self.state.lock().map_err(|_| DirectoryError::Storage("state lock poisoned".into()))
    }

    /// The in-memory state, for changing; a read-only directory refuses.
    fn writable_state(&self) -> Result<MutexGuard<'_, State>, DirectoryError> {
        if self.lock.is_none() {
            return Err(DirectoryError::Storage(format!("{} was opened read-only", self.path.display())));
        }
        self.state()
    }

    /// Runs `change` on an owned group, under the state lock; `change` says whether it
    /// changed anything.
    fn with_owned_group(
        &self,
        group_email: &str,
        change: impl FnOnce(&mut StoredGroup) -> Result<bool, DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let mut state = self.writable_state()?;
        let group = find_group(&mut state, group_email)?;
        if group.managed_by.as_deref() != Some(OWNER) {
            return Err(DirectoryError::NotOwned(group_email.to_owned()));
        }
        if change(group)? {
            state.unsaved = true;
        }
        Ok(())
    }
}

fn find_group<'s>(state: &'s mut State, group_email: &str) -> Result<&'s mut StoredGroup, DirectoryError> {
    state.groups.get_mut(group_email).ok_or_else(|| DirectoryError::GroupNotFound(group_email.to_owned()))
}

/// Sets or clears a member's expiry; whether that changed anything.
fn set_or_clear(expires: &mut BTreeMap<String, Date>, member: &str, date: Option<Date>) -> bool {
    match date {
        Some(date) => expires.insert(member.to_owned(), date) != Some(date),
        None => expires.remove(member).is_some(),
    }
}

fn read_state(path: &Path) -> Result<State, DirectoryError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(serde_json::from_str::<State>(&text)
            .map_err(|e| DirectoryError::Storage(format!("{} is not a valid state file: {e}", path.display())))?
            .normalised()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State { unsaved: true, ..State::default() }),
        Err(e) => Err(storage(path, e)),
    }
}

fn storage(path: &Path, error: std::io::Error) -> DirectoryError {
    DirectoryError::Storage(format!("{}: {error}", path.display()))
}

impl Directory for LocalDirectory {
    fn describe(&self) -> String {
        format!("local directory {}", self.path.display())
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let state = self.state()?;
        Ok(state
            .groups
            .iter()
            .map(|(email, group)| LiveGroup {
                name: group.name.clone(),
                email: email.clone(),
                description: group.description.clone(),
                owned: group.managed_by.as_deref() == Some(OWNER),
            })
            .collect())
    }

    fn get_group(&self, group_email: &str) -> Result<Option<LiveGroup>, DirectoryError> {
        let state = self.state()?;
        Ok(state.groups.get(group_email).map(|group| LiveGroup {
            name: group.name.clone(),
            email: group_email.to_owned(),
            description: group.description.clone(),
            owned: group.managed_by.as_deref() == Some(OWNER),
        }))
    }

    /// A member is a group when the file holds a group with its email: the file keeps no
    /// member types, so it can never record a group as an account.
    fn list_members(&self, group_email: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let state = self.state()?;
        let group =
            state.groups.get(group_email).ok_or_else(|| DirectoryError::GroupNotFound(group_email.to_owned()))?;
        Ok(group
            .members
            .iter()
            .map(|email| LiveMember {
                email: email.clone(),
                kind: if state.groups.contains_key(email) { MemberKind::Group } else { MemberKind::Account },
                expires: group.expires.get(email).copied(),
            })
            .collect())
    }

    fn adopt_group(&self, group_email: &str, description: &str) -> Result<(), DirectoryError> {
        let mut state = self.writable_state()?;
        let group = find_group(&mut state, group_email)?;
        if group.managed_by.as_deref() != Some(OWNER) || group.description != description {
            group.managed_by = Some(OWNER.to_owned());
            group.description = description.to_owned();
            state.unsaved = true;
        }
        Ok(())
    }

    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError> {
        let mut state = self.writable_state()?;
        if let Some(existing) = state.groups.get(&group.email) {
            return match existing.managed_by.as_deref() {
                Some(OWNER) => Ok(()),
                _ => Err(DirectoryError::NotOwned(group.email.clone())),
            };
        }
        state.groups.insert(
            group.email.clone(),
            StoredGroup {
                name: group.name.clone(),
                description: group.description.clone(),
                managed_by: Some(OWNER.to_owned()),
                members: BTreeSet::new(),
                expires: BTreeMap::new(),
            },
        );
        state.unsaved = true;
        Ok(())
    }

    /// The file only records the expiry: the next sync after that day removes the member.
    fn add_member(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError> {
        self.with_owned_group(group_email, |group| {
            let member = member_email.to_ascii_lowercase();
            let expiry_changed = set_or_clear(&mut group.expires, &member, expires);
            Ok(group.members.insert(member) || expiry_changed)
        })
    }

    fn set_expiry(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError> {
        let member = member_email.to_ascii_lowercase();
        self.with_owned_group(group_email, |group| {
            if !group.members.contains(&member) {
                return Err(DirectoryError::Rejected(format!("{member} is not a member of {group_email}")));
            }
            Ok(set_or_clear(&mut group.expires, &member, expires))
        })
    }

    fn remove_member(&self, group_email: &str, member_email: &str) -> Result<(), DirectoryError> {
        self.with_owned_group(group_email, |group| {
            let member = member_email.to_ascii_lowercase();
            let expiry_changed = group.expires.remove(&member).is_some();
            Ok(group.members.remove(&member) || expiry_changed)
        })
    }

    fn delete_group(&self, group_email: &str) -> Result<(), DirectoryError> {
        // Check and removal under one lock, so nothing changes the group in between.
        let mut state = self.writable_state()?;
        if find_group(&mut state, group_email)?.managed_by.as_deref() != Some(OWNER) {
            return Err(DirectoryError::NotOwned(group_email.to_owned()));
        }
        state.groups.remove(group_email);
        state.unsaved = true;
        Ok(())
    }

    fn flush(&self) -> Result<(), DirectoryError> {
        let mut state = self.writable_state()?;
        if !state.unsaved {
            return Ok(());
        }
        let mut json = serde_json::to_string_pretty(&*state).map_err(|e| DirectoryError::Storage(e.to_string()))?;
        json.push('\n');
        crate::write_safely::write_file(&self.path, json.as_bytes()).map_err(|e| storage(&self.path, e))?;
        state.unsaved = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(directory: &LocalDirectory, group: &str) -> Vec<String> {
        directory.list_members(group).unwrap().into_iter().map(|m| m.email).collect()
    }

    #[test]
    fn expiry_and_member_kinds_are_kept_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        let day = |text: &str| Some(text.parse::<Date>().unwrap());
        {
            let directory = LocalDirectory::open(&path).unwrap();
            for name in ["outer", "inner"] {
                let group = NewGroup { name: name.into(), email: format!("{name}@g.org"), description: String::new() };
                directory.create_group(&group).unwrap();
            }
            directory.add_member("outer@g.org", "inner@g.org", None).unwrap();
            directory.add_member("outer@g.org", "a@o.org", day("2027-01-31")).unwrap();
            directory.add_member("outer@g.org", "b@o.org", day("2027-02-28")).unwrap();
            directory.set_expiry("outer@g.org", "a@o.org", day("2027-03-31")).unwrap();
            directory.set_expiry("outer@g.org", "b@o.org", None).unwrap();
            assert!(directory.set_expiry("outer@g.org", "nobody@o.org", None).is_err());
            directory.flush().unwrap();
        }
        let directory = LocalDirectory::open_read_only(&path).unwrap();
        let listed: Vec<(String, MemberKind, Option<Date>)> =
            directory.list_members("outer@g.org").unwrap().into_iter().map(|m| (m.email, m.kind, m.expires)).collect();
        assert_eq!(
            listed,
            [
                ("a@o.org".to_owned(), MemberKind::Account, day("2027-03-31")),
                ("b@o.org".to_owned(), MemberKind::Account, None),
                ("inner@g.org".to_owned(), MemberKind::Group, None),
            ]
        );
    }

    #[test]
    fn second_open_is_locked_out_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/directory.json");
        let first = LocalDirectory::open(&path).unwrap();
        assert!(matches!(LocalDirectory::open(&path), Err(DirectoryError::Locked(_))));
        drop(first);
        assert!(LocalDirectory::open(&path).is_ok());
    }

    #[test]
    fn a_read_only_directory_reads_but_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        fs::write(&path, r#"{"groups":{"a@g.org":{"name":"a","managed_by":"cpg-infra","members":["x@o.org"]}}}"#)
            .unwrap();
        let directory = LocalDirectory::open_read_only(&path).unwrap();
        assert_eq!(emails(&directory, "a@g.org"), ["x@o.org"]);
        assert!(matches!(directory.add_member("a@g.org", "y@o.org", None), Err(DirectoryError::Storage(_))));
        assert!(matches!(directory.flush(), Err(DirectoryError::Storage(_))));
        assert!(!dir.path().join("directory.json.lock").exists(), "a read-only open took the lock");
    }

    #[test]
    fn changes_persist_only_after_flush_and_unowned_groups_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        fs::write(&path, r#"{"groups":{"hand@g.org":{"name":"hand","members":["x@o.org"]}}}"#).unwrap();
        {
            let directory = LocalDirectory::open(&path).unwrap();
            let group = NewGroup { name: "a".into(), email: "a@g.org".into(), description: String::new() };
            directory.create_group(&group).unwrap();
            directory.add_member("a@g.org", "Bob@O.org", None).unwrap();
            assert_eq!(
                directory.remove_member("hand@g.org", "x@o.org"),
                Err(DirectoryError::NotOwned("hand@g.org".into()))
            );
            directory.flush().unwrap();
        }
        let directory = LocalDirectory::open(&path).unwrap();
        assert_eq!(emails(&directory, "a@g.org"), ["bob@o.org"]);
        let owned: Vec<(String, bool)> =
            directory.list_groups().unwrap().into_iter().map(|g| (g.name, g.owned)).collect();
        assert_eq!(owned, [("a".to_owned(), true), ("hand".to_owned(), false)]);
    }

    #[test]
    fn a_flush_without_changes_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        // Compact, as no flush writes it: a rewrite would show.
        let text =
            r#"{"groups":{"a@g.org":{"name":"a","description":"d","managed_by":"cpg-infra","members":["x@o.org"]}}}"#;
        fs::write(&path, text).unwrap();
        let directory = LocalDirectory::open(&path).unwrap();
        let group = NewGroup { name: "a".into(), email: "a@g.org".into(), description: "d".into() };
        directory.create_group(&group).unwrap();
        directory.adopt_group("a@g.org", "d").unwrap();
        directory.add_member("a@g.org", "X@o.org", None).unwrap();
        directory.remove_member("a@g.org", "absent@o.org").unwrap();
        directory.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(!dir.path().join("directory.json.tmp").exists());

        directory.add_member("a@g.org", "y@o.org", None).unwrap();
        directory.flush().unwrap();
        assert_ne!(fs::read_to_string(&path).unwrap(), text);
        let listed = LocalDirectory::open_read_only(&path).unwrap().list_members("a@g.org").unwrap();
        let emails: Vec<String> = listed.into_iter().map(|m| m.email).collect();
        assert_eq!(emails, ["x@o.org", "y@o.org"]);
    }

    #[test]
    fn the_first_flush_writes_the_file_even_without_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.json");
        LocalDirectory::open(&path).unwrap().flush().unwrap();
        assert!(LocalDirectory::open_read_only(&path).unwrap().list_groups().unwrap().is_empty());
        assert!(path.exists());
    }
}
