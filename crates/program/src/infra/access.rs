//! The access matrix: who gets which access to which dataset resource, read off the same
//! driver and design the programs come from.
//!
//! A recording cloud that hosts every dataset stands in for the real ones, so the matrix is the
//! logical design, once, whatever clouds a dataset is on. Pure: definitions in, a matrix out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::definitions::{Dataset, Definitions};
use crate::hierarchy::Hierarchy;

use super::cloud::{
    AccountAccess, AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetSpec, Cloud, External,
    ExternalAccess, OnRequest, Outcome, Principal, ProjectAccess, RegistryAccess, RegistryId, Scope, SecretId,
};
use super::driver::drive;
use super::program::Value;

/// One grant: `who` gets `level` on `resource` of `owner`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessGrant {
    /// `organisation` or the dataset's name.
    pub owner: String,
    /// `bucket main`, `registry images`, `secret hail-test-gcp-key`, `account hail-full`, `project`.
    pub resource: String,
    /// `read`, `mutate`, `read on request (at most 7 days)`, `view-logs`...
    pub level: String,
    /// `group tob-wgs-analysis`, `account tob-wgs/notebooks`, `service web-server`.
    pub who: String,
}

/// Every grant of the design, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessMatrix {
    pub grants: Vec<AccessGrant>,
}

/// The matrix for these definitions (the design's own checks are not repeated here: a
/// definitions tree the infrastructure rejects gives the grants it could make).
pub fn access_matrix(definitions: &Definitions) -> AccessMatrix {
    let mut recorder = Recorder::default();
    drive(definitions, &mut [&mut recorder]);
    let mut grants = recorder.grants;
    grants.sort();
    grants.dedup();
    AccessMatrix { grants }
}

impl AccessMatrix {
    /// The level each group reaches on `owner`'s `resource`, directly or because it is nested
    /// in a granted group (a member of a granted group has its access).
    pub fn effective(&self, hierarchy: &Hierarchy, owner: &str, resource: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut reached: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for grant in self.grants.iter().filter(|g| g.owner == owner && g.resource == resource) {
            let Some(group) = grant.who.strip_prefix("group ") else {
                reached.entry(grant.who.clone()).or_default().insert(grant.level.clone());
                continue;
            };
            for inside in hierarchy.nested_groups(group) {
                reached.entry(format!("group {inside}")).or_default().insert(grant.level.clone());
            }
        }
        reached
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for grant in &self.grants {
            let _ = writeln!(out, "{} {}: {} ← {}", grant.owner, grant.resource, grant.level, grant.who);
        }
        out
    }

    /// One table per owner: resource, level, and who holds it.
    pub fn render_markdown(&self) -> String {
        let mut out = String::from(
            "# Access matrix\n\nWho is granted what on each dataset's resources, as `cpg-infra infra access --format markdown` prints it.\nMembers of a group have its access; groups nest as `groups/roles.toml` says.\n",
        );
        let mut by_owner: BTreeMap<&str, BTreeMap<(&str, &str), Vec<&str>>> = BTreeMap::new();
        for grant in &self.grants {
            by_owner
                .entry(&grant.owner)
                .or_default()
                .entry((&grant.resource, &grant.level))
                .or_default()
                .push(&grant.who);
        }
        for (owner, rows) in by_owner {
            let _ = writeln!(out, "\n## {owner}\n\n| resource | access | who |\n|---|---|---|");
            for ((resource, level), who) in rows {
                let who: Vec<String> = who.iter().map(|w| format!("`{w}`")).collect();
                let _ = writeln!(out, "| {resource} | {level} | {} |", who.join(", "));
            }
        }
        out
    }

    pub fn render_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// `1 day`, `7 days`.
pub(crate) fn days(count: u32) -> String {
    format!("{count} day{}", if count == 1 { "" } else { "s" })
}

/// `group <name>`, `account <owner>/<name>`, `service <name>`.
fn principal_label(who: &Principal) -> String {
    match who {
        Principal::Group { name, .. } => format!("group {name}"),
        Principal::Account(account) => format!("account {}", account.as_str()),
        Principal::Service { name, .. } => format!("service {name}"),
    }
}

/// A cloud that hosts everything and writes down each grant.
#[derive(Default)]
struct Recorder {
    grants: Vec<AccessGrant>,
}

impl Recorder {
    fn grant(&mut self, scope: &Scope, resource: String, level: &str, who: &Principal) {
        let who = principal_label(who);
        self.grants.push(AccessGrant { owner: scope.owner.to_string(), resource, level: level.to_owned(), who });
    }
}

impl Cloud for Recorder {
    fn name(&self) -> &'static str {
        "design"
    }

    fn hosts(&self, dataset: &Dataset) -> bool {
        dataset.gcp.is_some() || dataset.azure.is_some()
    }

    fn site_problem(&self, _dataset: &Dataset) -> Option<String> {
        None
    }

    fn bucket(&mut self, scope: &Scope, spec: &BucketSpec) -> Outcome<BucketId> {
        Ok(BucketId::new(scope.owner, &spec.name))
    }

    fn grant_bucket(&mut self, scope: &Scope, bucket: &BucketId, who: &Principal, access: BucketAccess) -> Outcome<()> {
        self.grant(scope, format!("bucket {}", bucket.name()), access.as_str(), who);
        Ok(())
    }

    fn grant_bucket_on_request(&mut self, scope: &Scope, bucket: &BucketId, request: &OnRequest) -> Outcome<()> {
        let approvers = principal_label(&request.approvers);
        let level = format!(
            "{} on request (at most {}), approved by {approvers}",
            request.access.as_str(),
            days(request.max_days)
        );
        self.grant(scope, format!("bucket {}", bucket.name()), &level, &request.who);
        Ok(())
    }

    fn grant_external(
        &mut self,
        scope: &Scope,
        target: External,
        who: &Principal,
        access: ExternalAccess,
    ) -> Outcome<()> {
        self.grant(scope, format!("external {}", target.as_str()), access.as_str(), who);
        Ok(())
    }

    fn grant_project(&mut self, scope: &Scope, who: &Principal, access: ProjectAccess) -> Outcome<()> {
        self.grant(scope, "project".to_owned(), access.as_str(), who);
        Ok(())
    }

    fn machine_account(&mut self, scope: &Scope, name: &str) -> Outcome<AccountId> {
        Ok(AccountId::new(scope.owner, name))
    }

    fn machine_account_key(&mut self, _scope: &Scope, account: &AccountId) -> Outcome<Value> {
        Ok(Value::str(format!("key of {}", account.as_str())))
    }

    fn grant_machine_account(
        &mut self,
        scope: &Scope,
        account: &AccountId,
        who: &Principal,
        access: AccountAccess,
    ) -> Outcome<()> {
        self.grant(scope, format!("account {}", account.name()), access.as_str(), who);
        Ok(())
    }

    fn secret(&mut self, scope: &Scope, name: &str) -> Outcome<SecretId> {
        Ok(SecretId::new(scope.owner, name))
    }

    fn secret_version(&mut self, _scope: &Scope, _secret: &SecretId, _value: &Value) -> Outcome<()> {
        Ok(())
    }

    fn grant_secret(&mut self, scope: &Scope, secret: &SecretId, who: &Principal) -> Outcome<()> {
        self.grant(scope, format!("secret {}", secret.name()), "read", who);
        Ok(())
    }

    fn registry(&mut self, scope: &Scope, name: &str) -> Outcome<RegistryId> {
        Ok(RegistryId::new(scope.owner, name))
    }

    fn grant_registry(
        &mut self,
        scope: &Scope,
        registry: &RegistryId,
        who: &Principal,
        access: RegistryAccess,
    ) -> Outcome<()> {
        self.grant(scope, format!("registry {}", registry.name()), access.as_str(), who);
        Ok(())
    }

    fn budget(&mut self, _scope: &Scope, _spec: &BudgetSpec) -> Outcome<()> {
        Ok(())
    }

    fn blob(&mut self, _scope: &Scope, _bucket: &BucketId, _spec: &BlobSpec) -> Outcome<()> {
        Ok(())
    }
}
