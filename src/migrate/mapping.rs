//! The mapping file of an import: which old group and which old cache secret stand for which
//! role of the new structure, per dataset (`{dataset}` in a name is each defined dataset).
//!
//! ```toml
//! [groups]
//! "{dataset}-access" = "analysis"
//! [caches]
//! "{dataset}-access-members-cache" = "analysis"
//! [secrets]
//! project = "old-analysis-runner"   # default: each dataset's [gcp] project
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::definitions::{unknown, Definitions, Diagnostics, Location};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    groups: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    caches: BTreeMap<String, Spanned<String>>,
    secrets: Option<SecretsTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsTable {
    project: Option<String>,
}

/// A checked mapping: every role it names exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Old live group name pattern → role.
    pub groups: Vec<(String, String)>,
    /// Old cache secret name pattern → role.
    pub caches: Vec<(String, String)>,
    /// The project holding the cache secrets, when not each dataset's own.
    pub secrets_project: Option<String>,
}

impl Mapping {
    /// A pattern for one dataset.
    pub fn name(pattern: &str, dataset: &str) -> String {
        pattern.replace("{dataset}", dataset)
    }
}

/// Parses and checks the mapping file at `label` (for messages) with contents `text`.
pub fn load_mapping(label: &str, text: &str, definitions: &Definitions) -> Result<Mapping, Diagnostics> {
    let path: Arc<str> = Arc::from(label);
    let mut diagnostics = Diagnostics::default();
    let file: MappingFile = toml::from_str(text).map_err(|error| {
        let location = Location::at_offset(&path, text, error.span().map_or(0, |s| s.start));
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(location, error.message().trim().to_owned());
        diagnostics
    })?;
    let mut check = |entries: BTreeMap<String, Spanned<String>>| -> Vec<(String, String)> {
        let mut checked = Vec::new();
        for (pattern, role) in entries {
            if definitions.roles.contains_key(role.get_ref()) {
                checked.push((pattern, role.get_ref().clone()));
            } else {
                let location = Location::at_offset(&path, text, role.span().start);
                let known = definitions.roles.keys().map(String::as_str);
                diagnostics.push(location, unknown("role", role.get_ref(), known, true));
            }
        }
        checked
    };
    let mapping = Mapping {
        groups: check(file.groups),
        caches: check(file.caches),
        secrets_project: file.secrets.and_then(|s| s.project),
    };
    if diagnostics.is_empty() {
        Ok(mapping)
    } else {
        Err(diagnostics.finish())
    }
}
