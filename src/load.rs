//! The front half of every command: read definitions from a source and expand them.

use crate::definitions::{self, Date, Definitions, LoadError, Source};
use crate::hierarchy::{self, Hierarchy};
use crate::infra;

/// Validated definitions with their expanded hierarchy.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub definitions: Definitions,
    pub hierarchy: Hierarchy,
}

/// Loads, validates and expands; nesting cycles are reported like any other definitions error.
/// The hierarchy includes the machine accounts the infrastructure puts in access-level groups.
pub fn load_expanded(source: &dyn Source, today: Date) -> Result<Expanded, LoadError> {
    let definitions = definitions::load(source)?;
    let mut hierarchy = hierarchy::expand(&definitions, today).map_err(LoadError::Invalid)?;
    hierarchy.add_members(infra::machine_account_memberships(&definitions));
    Ok(Expanded { definitions, hierarchy })
}
