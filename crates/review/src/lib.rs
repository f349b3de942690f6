//! What a change does to access, and whether it may: the diff between two expansions (groups,
//! accounts, settings, infrastructure grants) and the policy rules and approvals it must pass.

// The lower crates' modules under their own names, so paths read `crate::definitions::…`.
use cpg_infra_core::{definitions, edit, hierarchy, shell};
use cpg_infra_program::infra;

pub mod diff;
pub mod policy;
pub mod recertify;
