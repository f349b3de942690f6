//! cpg-infra: an organisation's access groups, kept in Git and pushed to its directories.
//!
//! Stages connect only by values: `definitions` (files → validated types) → `hierarchy`
//! (expanded groups, pure) → `diff` / `sync` (plan against a `directory`, then apply).
//! The stages live in the workspace's crates (`crates/`); this crate is the command line and
//! re-exports them under their module names, so every path reads `cpg_infra::definitions::…`.

pub use cpg_infra_core::{codeowners, definitions, edit, graph, hierarchy, shell, write_safely};
pub use cpg_infra_directory::{apps, cache, directory, http_api, pacing, sync};
pub use cpg_infra_emulators as emulator;
pub use cpg_infra_program::{infra, load};
pub use cpg_infra_review::{diff, policy, recertify};

pub mod cli;
pub mod github;
pub mod migrate;
pub mod synthetic;
