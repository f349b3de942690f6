//! The front half of every command: read definitions from a source and expand them.

use crate::definitions::{self, Date, Definitions, LoadError, ParseCache, Source};
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
    expand_loaded(definitions::load(source)?, today)
}

/// Like `load_expanded`, sharing parsed files through `cache` (see `definitions::load_with_cache`).
pub fn load_expanded_with_cache(source: &dyn Source, today: Date, cache: &ParseCache) -> Result<Expanded, LoadError> {
    expand_loaded(definitions::load_with_cache(source, cache)?, today)
}

/// The hierarchy includes the machine accounts the infrastructure puts in access-level groups.
fn expand_loaded(definitions: Definitions, today: Date) -> Result<Expanded, LoadError> {
    let mut hierarchy = hierarchy::expand(&definitions, today).map_err(LoadError::Invalid)?;
    hierarchy.add_groups(infra::workload_groups(&definitions));
    hierarchy.add_members(infra::machine_account_memberships(&definitions));
    Ok(Expanded { definitions, hierarchy })
}
