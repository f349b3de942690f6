//! `groups/policy.toml`: the organisation's rules about who may hold which access, checked on
//! validated definitions and their hierarchy.
//!
//! Owns parsing the policy file (`file.rs`) and the rules (`rules.rs`); every violation is a
//! `Diagnostic` located at the grant (or the file) it is about. Pure: no I/O, no clock ("today"
//! and the committed CODEOWNERS text are arguments). Never changes definitions.

mod approvals;
mod file;
mod rules;

pub use approvals::{
    administrators, check_reviews, required_approvals, ApprovalInput, Checked, Owners, PullRequestFacts, Requirement,
    Review,
};

pub use file::{parse, IncompatibleRoles, Policy, RoleLimits, POLICY_FILE};

use std::collections::BTreeMap;

use crate::definitions::{Date, Definitions, Diagnostics};
use crate::hierarchy::Hierarchy;

/// What the rules look at.
pub struct PolicyInput<'a> {
    pub definitions: &'a Definitions,
    pub hierarchy: &'a Hierarchy,
    pub today: Date,
    /// For the `codeowners` rule: the file `cpg-infra codeowners` would write, and the
    /// committed one (`None` when there is none).
    pub codeowners: Option<CodeownersFiles<'a>>,
    /// For `[roles.<role>]` limits: the members files' texts and when each grant line was
    /// committed (`None` when no such limit is set).
    pub grant_context: Option<&'a GrantContext>,
}

/// What the role limits read besides the definitions.
#[derive(Debug, Default)]
pub struct GrantContext {
    /// File path → its text (members files and roles.toml).
    pub texts: BTreeMap<String, String>,
    /// (file path, line) → the date of the commit that wrote the line; a line not committed
    /// yet has none and counts from today.
    pub committed_on: BTreeMap<(String, usize), Date>,
}

/// The generated and the committed `.github/CODEOWNERS`.
pub struct CodeownersFiles<'a> {
    pub path: &'a str,
    pub expected: &'a str,
    pub committed: Option<&'a str>,
}

/// Every violation of `policy`, sorted by file and position.
pub fn check(policy: &Policy, input: &PolicyInput) -> Diagnostics {
    let mut found = Diagnostics::default();
    rules::allowed_member_domains(policy, input, &mut found);
    rules::expiry_outside_domain(policy, input, &mut found);
    rules::max_grant_days(policy, input, &mut found);
    rules::every_dataset_has_data_manager(policy, input, &mut found);
    rules::pinned_groups_not_empty(policy, input, &mut found);
    rules::max_data_manager_datasets(policy, input, &mut found);
    rules::codeowners_current(policy, input, &mut found);
    rules::role_limits(policy, input, &mut found);
    rules::incompatible_roles(policy, input, &mut found);
    rules::reviews_overdue(policy, input, &mut found);
    found.finish()
}
