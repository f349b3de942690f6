//! The dry-run cloud: records every design call in cloud-neutral words and prints them.
//!
//! On its own it accepts every call; wrapped around a real cloud it forwards each call and
//! records the outcome, so tests can compare the logical design two clouds were asked for.
//! Never writes anything anywhere.

use std::collections::BTreeMap;
use std::fmt;

use crate::definitions::Dataset;

use super::cloud::{
    AccountAccess, AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetSpec, Cloud, External,
    ExternalAccess, OnRequest, Outcome, Principal, ProjectAccess, RegistryAccess, RegistryId, Scope, SecretId,
};
use super::program::Value;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub owner: String,
    pub component: String,
    /// What was asked, e.g. `grant read on bucket main to group tob-wgs-analysis`.
    pub action: String,
    /// `Err(reason)` when the cloud could not provide it.
    pub outcome: Result<(), String>,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {}: {}", self.owner, self.component, self.action)?;
        if let Err(reason) = &self.outcome {
            write!(f, " (unsupported: {reason})")?;
        }
        Ok(())
    }
}

/// Records calls, and forwards them when it wraps a cloud.
pub struct DryRun<'a> {
    name: &'static str,
    inner: Option<&'a mut dyn Cloud>,
    hosts: fn(&Dataset) -> bool,
    calls: Vec<Call>,
    /// Labels of accounts, for grants to them.
    accounts: BTreeMap<AccountId, String>,
}

impl<'a> DryRun<'a> {
    /// A recorder standing in for a cloud called `name` that hosts the datasets `hosts` picks.
    pub fn standalone(name: &'static str, hosts: fn(&Dataset) -> bool) -> DryRun<'a> {
        DryRun { name, inner: None, hosts, calls: Vec::new(), accounts: BTreeMap::new() }
    }

    /// A recorder in front of `inner`.
    pub fn wrapping(inner: &'a mut dyn Cloud) -> DryRun<'a> {
        DryRun {
            name: inner.name(),
            inner: Some(inner),
            hosts: |_| false,
            calls: Vec::new(),
            accounts: BTreeMap::new(),
        }
    }

    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    fn record<T>(&mut self, scope: &Scope, action: String, outcome: Outcome<T>) -> Outcome<T> {
        self.calls.push(Call {
            owner: scope.owner.to_string(),
            component: scope.component.to_owned(),
            action,
            outcome: outcome.as_ref().map(|_| ()).map_err(|u| format!("{}: {}", u.what, u.reason)),
        });
        outcome
    }

    fn who(&self, who: &Principal) -> String {
        match who {
            Principal::Group { name, .. } => format!("group {name}"),
            Principal::Service { name, email } => format!("service {name} ({email})"),
            Principal::Account(account) => {
                format!("account {}", self.accounts.get(*account).map_or(account.as_str(), String::as_str))
            }
        }
    }
}

impl fmt::Display for DryRun<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for call in &self.calls {
            writeln!(f, "{} {call}", self.name)?;
        }
        Ok(())
    }
}

impl Cloud for DryRun<'_> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn hosts(&self, dataset: &Dataset) -> bool {
        match &self.inner {
            Some(inner) => inner.hosts(dataset),
            None => (self.hosts)(dataset),
        }
    }

    fn prepare(&mut self, scope: &Scope) -> Outcome<()> {
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.prepare(scope));
        self.record(scope, format!("prepare for {}", scope.component), outcome)
    }

    fn requester_pays(&self) -> Outcome<()> {
        self.inner.as_ref().map_or(Ok(()), |inner| inner.requester_pays())
    }

    fn site_problem(&self, dataset: &Dataset) -> Option<String> {
        self.inner.as_ref().and_then(|inner| inner.site_problem(dataset))
    }

    fn bucket(&mut self, scope: &Scope, spec: &BucketSpec) -> Outcome<BucketId> {
        let mut rules: Vec<String> = spec.lifecycle.iter().map(ToString::to_string).collect();
        if spec.requester_pays {
            rules.push("requester pays".to_owned());
        }
        let action = format!("bucket {} [{}]", spec.name, rules.join(", "));
        let outcome = match self.inner.as_mut() {
            Some(inner) => inner.bucket(scope, spec),
            None => Ok(BucketId::new(scope.owner, &spec.name)),
        };
        self.record(scope, action, outcome)
    }

    fn grant_bucket(&mut self, scope: &Scope, bucket: &BucketId, who: &Principal, access: BucketAccess) -> Outcome<()> {
        let action = format!("grant {} on bucket {} to {}", access.as_str(), bucket.as_str(), self.who(who));
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_bucket(scope, bucket, who, access));
        self.record(scope, action, outcome)
    }

    fn grant_bucket_on_request(&mut self, scope: &Scope, bucket: &BucketId, request: &OnRequest) -> Outcome<()> {
        let action = format!(
            "grant {} on bucket {} to {} on request, at most {}, approved by {}",
            request.access.as_str(),
            bucket.as_str(),
            self.who(&request.who),
            super::access::days(request.max_days),
            self.who(&request.approvers)
        );
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_bucket_on_request(scope, bucket, request));
        self.record(scope, action, outcome)
    }

    fn organisation_roles(&mut self, scope: &Scope) -> Outcome<()> {
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.organisation_roles(scope));
        self.record(scope, "the organisation's access roles".to_owned(), outcome)
    }

    fn grant_external(
        &mut self,
        scope: &Scope,
        target: External,
        who: &Principal,
        access: ExternalAccess,
    ) -> Outcome<()> {
        let action =
            format!("grant {} on the organisation's {} to {}", access.as_str(), target.as_str(), self.who(who));
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_external(scope, target, who, access));
        self.record(scope, action, outcome)
    }

    fn grant_project(&mut self, scope: &Scope, who: &Principal, access: ProjectAccess) -> Outcome<()> {
        let action = format!("grant {} on the project to {}", access.as_str(), self.who(who));
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_project(scope, who, access));
        self.record(scope, action, outcome)
    }

    fn machine_account(&mut self, scope: &Scope, name: &str) -> Outcome<AccountId> {
        let outcome = match self.inner.as_mut() {
            Some(inner) => inner.machine_account(scope, name),
            None => Ok(AccountId::new(scope.owner, name)),
        };
        if let Ok(account) = &outcome {
            self.accounts.insert(account.clone(), format!("{}/{name}", scope.owner));
        }
        self.record(scope, format!("machine account {name}"), outcome)
    }

    fn machine_account_key(&mut self, scope: &Scope, account: &AccountId) -> Outcome<Value> {
        let label = self.accounts.get(account).cloned().unwrap_or_else(|| account.as_str().to_owned());
        let outcome = match self.inner.as_mut() {
            Some(inner) => inner.machine_account_key(scope, account),
            None => Ok(Value::str(format!("<key of {label} on {}>", self.name))),
        };
        self.record(scope, format!("key of machine account {label}"), outcome)
    }

    fn grant_machine_account(
        &mut self,
        scope: &Scope,
        account: &AccountId,
        who: &Principal,
        access: AccountAccess,
    ) -> Outcome<()> {
        let label = self.accounts.get(account).cloned().unwrap_or_else(|| account.as_str().to_owned());
        let action = format!("grant {} on machine account {label} to {}", access.as_str(), self.who(who));
        let outcome =
            self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_machine_account(scope, account, who, access));
        self.record(scope, action, outcome)
    }

    fn secret(&mut self, scope: &Scope, name: &str) -> Outcome<SecretId> {
        let outcome = match self.inner.as_mut() {
            Some(inner) => inner.secret(scope, name),
            None => Ok(SecretId::new(scope.owner, name)),
        };
        self.record(scope, format!("secret {name}"), outcome)
    }

    fn secret_version(&mut self, scope: &Scope, secret: &SecretId, value: &Value) -> Outcome<()> {
        let what = match value {
            Value::String(text) => text.clone(),
            _ => "a value from another resource".to_owned(),
        };
        let action = format!("version of secret {} holding {what}", secret.as_str());
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.secret_version(scope, secret, value));
        self.record(scope, action, outcome)
    }

    fn grant_secret(&mut self, scope: &Scope, secret: &SecretId, who: &Principal) -> Outcome<()> {
        let action = format!("grant read on secret {} to {}", secret.as_str(), self.who(who));
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_secret(scope, secret, who));
        self.record(scope, action, outcome)
    }

    fn registry(&mut self, scope: &Scope, name: &str) -> Outcome<RegistryId> {
        let outcome = match self.inner.as_mut() {
            Some(inner) => inner.registry(scope, name),
            None => Ok(RegistryId::new(scope.owner, name)),
        };
        self.record(scope, format!("registry {name}"), outcome)
    }

    fn grant_registry(
        &mut self,
        scope: &Scope,
        registry: &RegistryId,
        who: &Principal,
        access: RegistryAccess,
    ) -> Outcome<()> {
        let action = format!("grant {} on registry {} to {}", access.as_str(), registry.as_str(), self.who(who));
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.grant_registry(scope, registry, who, access));
        self.record(scope, action, outcome)
    }

    fn budget(&mut self, scope: &Scope, spec: &BudgetSpec) -> Outcome<()> {
        let thresholds: Vec<String> =
            spec.alert_thresholds.iter().map(|t| format!("{}%", (t * 100.0).round())).collect();
        let action = format!(
            "{} budget {} {} alerting at {} to {}",
            spec.period.as_str(),
            spec.amount,
            spec.currency.as_deref().unwrap_or(""),
            thresholds.join(", "),
            spec.notify.join(", ")
        );
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.budget(scope, spec));
        self.record(scope, action, outcome)
    }

    fn blob(&mut self, scope: &Scope, bucket: &BucketId, spec: &BlobSpec) -> Outcome<()> {
        let action = format!("blob {} in bucket {}", spec.path, bucket.as_str());
        let outcome = self.inner.as_mut().map_or(Ok(()), |inner| inner.blob(scope, bucket, spec));
        self.record(scope, action, outcome)
    }

    fn bucket_address(&self, bucket: &BucketId) -> Value {
        match &self.inner {
            Some(inner) => inner.bucket_address(bucket),
            None => Value::str(bucket.as_str()),
        }
    }
}
