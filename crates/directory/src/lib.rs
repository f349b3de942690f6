//! Where the groups live: the directory providers (local file, Google Cloud Identity, Azure AD,
//! Hail Batch, Metamist) over their real APIs, the plan → apply sync, and the members cache.

// The lower crates' modules under their own names, so paths read `crate::definitions::…`.
use cpg_infra_core::{definitions, hierarchy, write_safely};
use cpg_infra_program::infra;

pub mod apps;
pub mod cache;
pub mod directory;
pub mod http_api;
pub mod pacing;
pub mod sync;
