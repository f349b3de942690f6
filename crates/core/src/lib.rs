//! The core of cpg-infra: definitions (TOML files → validated types), their expansion into the
//! group hierarchy, and edits of the files. Pure and deterministic: no network, no clock (the day
//! is passed in), so every other crate can depend on it and it rebuilds only when it changes.

pub mod codeowners;
pub mod definitions;
pub mod edit;
pub mod graph;
pub mod hierarchy;
pub mod shell;
pub mod write_safely;
