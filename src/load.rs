//! The front half of every command: read definitions from a source and expand them.

use crate::definitions::{self, Date, Definitions, LoadError, Source};
use crate::hierarchy::{self, Hierarchy};

/// Validated definitions with their expanded hierarchy.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub definitions: Definitions,
    pub hierarchy: Hierarchy,
}

/// Loads, validates and expands; nesting cycles are reported like any other definitions error.
pub fn load_expanded(source: &dyn Source, today: Date) -> Result<Expanded, LoadError> {
    let definitions = definitions::load(source)?;
    let hierarchy = hierarchy::expand(&definitions, today).map_err(LoadError::Invalid)?;
    Ok(Expanded { definitions, hierarchy })
}
