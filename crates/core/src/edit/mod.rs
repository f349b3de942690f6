//! In-place edits of definitions files: add or remove one grant in a dataset's `members.toml`,
//! add one person to `people.toml`.
//!
//! Owns only text → text: every edit parses the file with `toml_edit` and changes the one
//! entry asked for, so comments, order and layout stay byte-for-byte everywhere else.
//! Never reads or writes files and never validates the organisation; the caller loads the
//! edited tree before writing it.

mod members;
mod people;

pub use members::{add_grant, has_entry, reason_above, remove_grant, NewGrant};
pub use people::{add_person, add_person_with_note};

use thiserror::Error;

/// Why an edit could not be made; nothing is written.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EditError {
    #[error("{path}: cannot be edited: {problem}")]
    Unparsable { path: String, problem: String },
    #[error("{path}: `{key}` is not a list of members")]
    NotAList { path: String, key: String },
    #[error("{path}: `{member}` already has role `{role}`{until}")]
    AlreadyGranted { path: String, member: String, role: String, until: String },
    #[error("{path}: `{member}` does not have role `{role}`")]
    NotGranted { path: String, member: String, role: String },
    #[error("{path}: person `{key}` already exists")]
    PersonExists { path: String, key: String },
}
