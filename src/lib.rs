//! cpg-infra: an organisation's access groups, kept in Git and pushed to its directories.
//!
//! Stages connect only by values: `definitions` (files → validated types) → `hierarchy`
//! (expanded groups, pure) → `diff` / `sync` (plan against a `directory`, then apply).

pub mod apps;
pub mod cache;
pub mod cli;
pub mod codeowners;
pub mod definitions;
pub mod diff;
pub mod directory;
pub mod edit;
pub mod emulator;
pub mod github;
pub mod graph;
pub mod hierarchy;
pub mod http_api;
pub mod infra;
pub mod load;
pub mod migrate;
pub mod policy;
pub mod sync;
pub mod synthetic;
pub mod write_safely;
