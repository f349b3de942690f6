//! The driver: walks datasets × clouds × components and calls the `Cloud` trait.
//!
//! Owns the order of the design (organisation first, then each dataset's buckets, machine
//! accounts, registries, budgets and members cache, then keys shared across clouds) and the
//! checks that need the whole organisation. **Architecture invariant:** pure, and no
//! cloud-specific branching: every cloud gets the same calls for the same dataset, and a call a
//! cloud cannot provide is reported, never skipped in silence.

use std::collections::{BTreeMap, BTreeSet};

use crate::definitions::{Dataset, Definitions};

use super::cloud::{
    AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetPeriod, BudgetSpec, Cloud, OnRequest, Outcome,
    Principal, Scope, Unsupported,
};
use super::design::{
    AccountDesign, AccountUser, BucketDesign, Service, ACCOUNTS, ACCOUNT_PROJECT_GRANTS, BUCKETS, BUDGET_CONTACT_ROLE,
    COMMON_BUCKET_GRANTS, CONFIG, CONFIG_BUCKET, CONFIG_READERS, CONFIG_READERS_GROUP, CROSS_CLOUD, EMERGENCY_WRITE,
    EXTERNAL_ACCOUNT_GRANTS, EXTERNAL_GRANTS, MEMBERS_CACHE, MEMBERS_CACHE_BUCKET, MEMBERS_CACHE_LIFECYCLE,
    MEMBERS_CACHE_READERS, ON_REQUEST, ORGANISATION_EXTERNAL_GRANTS, PROJECT_GRANTS, REGISTRIES,
    SERVICE_PROJECT_GRANTS, STORAGE_CONFIG, STORED_KEY_SERVICES, WORKLOAD_GROUPS,
};
use super::program::{Owner, Piece, Value};
use super::InfraError;

/// What the driver found besides the calls it made.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that make the design impossible; nothing should be rendered.
    pub errors: Vec<InfraError>,
    /// Things worth knowing that are not errors, e.g. keys one cloud cannot export.
    pub notes: Vec<String>,
}

/// Calls `clouds` for every dataset they host, in a fixed order.
pub fn drive(definitions: &Definitions, clouds: &mut [&mut dyn Cloud]) -> Report {
    let opted_in = opted_in(definitions);
    let mut driver = Driver { definitions, report: Report::default(), opted_in };
    driver.check_datasets(clouds);
    // The members-cache bucket (its files are the group sync's) and the config bucket.
    let configs: Vec<Option<BucketId>> = clouds.iter_mut().map(|cloud| driver.organisation(&mut **cloud)).collect();
    for dataset in definitions.datasets.values() {
        let mut placed = Vec::new();
        for (index, cloud) in clouds.iter_mut().enumerate() {
            if cloud.hosts(dataset) && cloud.site_problem(dataset).is_none() {
                let accounts = driver.dataset(&mut **cloud, dataset, configs[index].as_ref());
                placed.push((index, accounts));
            }
        }
        driver.cross_cloud(clouds, dataset, &placed);
    }
    driver.report.errors.sort();
    driver.report.errors.dedup();
    driver.report.notes.sort();
    driver.report.notes.dedup();
    driver.report
}

struct Driver<'a> {
    definitions: &'a Definitions,
    report: Report,
    /// (dataset, role) pairs of `ON_REQUEST` whose entitlement is wanted.
    opted_in: BTreeSet<(String, String)>,
}

/// The datasets that opt in to each on-request grant: those whose definitions name someone
/// for its role, and every dataset they depend on (their group is nested in the dependency's
/// when the role is shared), so the nested group's members find an entitlement there.
fn opted_in(definitions: &Definitions) -> BTreeSet<(String, String)> {
    let common = definitions.organisation.common_dataset.as_deref();
    let mut wanted = BTreeSet::new();
    for (role, ..) in ON_REQUEST {
        let shared = definitions.dependency_grants.shared_roles.iter().any(|r| r == role);
        let mut pending: Vec<&str> = definitions
            .datasets
            .values()
            .filter(|d| d.members.get(*role).is_some_and(|grants| !grants.is_empty()))
            .map(|d| d.name.as_str())
            .collect();
        while let Some(name) = pending.pop() {
            if !wanted.insert((name.to_owned(), (*role).to_owned())) || !shared {
                continue;
            }
            let Some(dataset) = definitions.datasets.get(name) else { continue };
            pending.extend(dataset.depends_on.iter().map(|d| d.name.as_str()));
            pending.extend(common.filter(|c| *c != name));
        }
    }
    wanted
}

/// A dataset's role group, resolved to its name and email.
struct Group {
    name: String,
    email: String,
}

impl Group {
    fn principal(&self) -> Principal<'_> {
        Principal::Group { name: &self.name, email: &self.email }
    }
}

impl<'a> Driver<'a> {
    /// Datasets with components but no cloud, settings a cloud needs, and budget settings.
    fn check_datasets(&mut self, clouds: &[&mut dyn Cloud]) {
        for dataset in self.definitions.datasets.values() {
            let hosted: Vec<&&mut dyn Cloud> = clouds.iter().filter(|c| c.hosts(dataset)).collect();
            if hosted.is_empty() && !dataset.components.is_empty() {
                self.report
                    .errors
                    .push(InfraError::NoCloud { dataset: dataset.name.clone(), location: dataset.location.clone() });
            }
            for cloud in hosted {
                if let Some(problem) = cloud.site_problem(dataset) {
                    self.report.errors.push(InfraError::Site {
                        dataset: dataset.name.clone(),
                        cloud: cloud.name().to_owned(),
                        problem,
                        location: dataset.location.clone(),
                    });
                }
            }
            self.check_budget(dataset);
            self.check_access_levels(dataset);
        }
        if let Some(admins) = &self.definitions.organisation.administrators {
            if !self.definitions.groups.contains_key(&admins.name) {
                self.report.errors.push(InfraError::UnknownAdministrators {
                    name: admins.name.clone(),
                    location: admins.location.clone(),
                });
            }
        }
    }

    /// Access-level machine accounts get their access only through their access-level group,
    /// so a component that brings them needs the component that brings the groups (one error
    /// per component). Without such a role at all, the accounts get no access: a note.
    fn check_access_levels(&mut self, dataset: &Dataset) {
        let mut missing: BTreeMap<&str, (Vec<&str>, Option<String>)> = BTreeMap::new();
        for design in ACCOUNTS.iter().filter(|a| dataset.components.contains(a.component)) {
            let Some(role) = design.kind.access_level_role() else { continue };
            if self.definitions.dataset_has_role(dataset, role) {
                continue;
            }
            let needs = self.definitions.roles.get(role).and_then(|r| r.requires_component.clone());
            let entry = missing.entry(design.component).or_default();
            entry.0.push(design.name);
            entry.1 = entry.1.take().or(needs);
        }
        for (component, (accounts, needs)) in missing {
            let accounts = accounts.join(", ");
            match needs {
                Some(needs) => self.report.errors.push(InfraError::Site {
                    dataset: dataset.name.clone(),
                    cloud: "every cloud".to_owned(),
                    problem: format!(
                        "component `{component}` brings machine accounts ({accounts}) that get their access through the access-level groups; add component `{needs}`"
                    ),
                    location: dataset.location.clone(),
                }),
                None => self.report.notes.push(format!(
                    "{}: machine accounts {accounts} get no access: roles.toml has no access-level roles (test, standard, full)",
                    dataset.name
                )),
            }
        }
    }

    fn check_budget(&mut self, dataset: &Dataset) {
        let wanted = dataset.components.contains("budget");
        let amounts = dataset.budgets.values().any(|b| b.monthly.is_some() || b.fixed.is_some());
        let fixed_without_start = dataset.budgets.values().any(|b| b.fixed.is_some() && b.fixed_start.is_none());
        let problems = [
            (wanted && !amounts).then_some("has the `budget` component but no [budget] with `monthly` or `fixed`"),
            (!wanted && amounts).then_some("sets a [budget] but does not list the `budget` component"),
            fixed_without_start.then_some("sets a `fixed` budget without `fixed_start` (the day it counts from)"),
        ];
        for problem in problems.into_iter().flatten() {
            self.report.errors.push(InfraError::Budget {
                dataset: dataset.name.clone(),
                problem: problem.to_owned(),
                location: dataset.location.clone(),
            });
        }
    }

    /// The organisation's resources on one cloud: the members-cache bucket, in the common
    /// dataset's project or subscription. Returns the bucket when the cloud hosts any dataset.
    fn organisation(&mut self, cloud: &mut dyn Cloud) -> Option<BucketId> {
        let used = self.definitions.datasets.values().any(|d| cloud.hosts(d));
        if !used {
            return None;
        }
        let common = self.definitions.organisation.common_dataset.as_ref();
        let home = common.and_then(|name| self.definitions.datasets.get(name));
        let home = match home {
            Some(home) if cloud.hosts(home) && cloud.site_problem(home).is_none() => home,
            Some(home) if cloud.hosts(home) => return None,
            _ => {
                let reason = match common {
                    Some(name) => format!("the common dataset `{name}` is not deployed on {}", cloud.name()),
                    None => "groups/org.toml names no common_dataset".to_owned(),
                };
                self.report.errors.push(InfraError::NoOrganisationHome { cloud: cloud.name().to_owned(), reason });
                return None;
            }
        };
        let owner = Owner::Organisation;
        let scope = Scope { owner: &owner, site: home, component: "access-roles" };
        let outcome = cloud.organisation_roles(&scope);
        self.unavailable(cloud.name(), &scope, outcome);
        let scope = Scope { component: MEMBERS_CACHE, ..scope };
        let spec = BucketSpec {
            name: MEMBERS_CACHE_BUCKET.to_owned(),
            lifecycle: MEMBERS_CACHE_LIFECYCLE.to_vec(),
            requester_pays: false,
        };
        let outcome = cloud.bucket(&scope, &spec);
        if let Some(bucket) = self.check(cloud.name(), &scope, outcome) {
            self.grant_services(cloud, &scope, &bucket, MEMBERS_CACHE_READERS);
        }
        let scope = Scope { component: CONFIG, ..scope };
        let spec = BucketSpec {
            name: CONFIG_BUCKET.to_owned(),
            lifecycle: MEMBERS_CACHE_LIFECYCLE.to_vec(),
            requester_pays: false,
        };
        let outcome = cloud.bucket(&scope, &spec);
        let config = self.check(cloud.name(), &scope, outcome)?;
        self.grant_services(cloud, &scope, &config, CONFIG_READERS);
        // Every dataset's analysts and access levels, through one group.
        let readers = self.organisation_group(CONFIG_READERS_GROUP);
        let outcome = cloud.grant_bucket(&scope, &config, &readers.principal(), BucketAccess::Read);
        self.check(cloud.name(), &scope, outcome);
        for (target, access, group) in ORGANISATION_EXTERNAL_GRANTS {
            let design = WORKLOAD_GROUPS.iter().find(|g| g.name == *group);
            let scope = Scope { component: design.and_then(|g| g.component).unwrap_or("analysis-runner"), ..scope };
            let group = self.organisation_group(group);
            let outcome = cloud.grant_external(&scope, *target, &group.principal(), *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }
        Some(config)
    }

    /// `<dataset>/storage.toml` in the config bucket: the address of each bucket per access
    /// level, for the tools that run analyses (also a stack output).
    fn storage_config(
        &mut self,
        cloud: &mut dyn Cloud,
        dataset: &Dataset,
        owner: &Owner,
        config: &BucketId,
        buckets: &[(&'static BucketDesign, BucketId)],
    ) {
        let mut pieces = vec![Piece::Text(format!("# Storage of dataset {}, written by cpg-infra.\n", dataset.name))];
        for (level, entries) in STORAGE_CONFIG {
            let present: Vec<(&str, &BucketId)> = entries
                .iter()
                .filter_map(|(key, name)| buckets.iter().find(|(d, _)| d.name == *name).map(|(_, id)| (*key, id)))
                .collect();
            if present.is_empty() {
                continue;
            }
            pieces.push(Piece::Text(format!("\n[{level}]\n")));
            for (key, bucket) in present {
                pieces.push(Piece::Text(format!("{key} = \"")));
                match cloud.bucket_address(bucket) {
                    Value::Interpolation(parts) => pieces.extend(parts),
                    Value::String(text) => pieces.push(Piece::Text(text)),
                    other => pieces.push(Piece::Text(format!("{other:?}"))),
                }
                pieces.push(Piece::Text("\"\n".to_owned()));
            }
        }
        let scope = Scope { owner, site: dataset, component: CONFIG };
        let spec = BlobSpec {
            name: "storage-config".to_owned(),
            path: format!("{}/storage.toml", dataset.name),
            content: Value::Interpolation(pieces),
        };
        let outcome = cloud.blob(&scope, config, &spec);
        self.check(cloud.name(), &scope, outcome);
    }

    /// Grants the organisation's services (`[services]`) their access to a bucket; a service
    /// the organisation does not name gets nothing, and a cloud that cannot name it is a note.
    fn grant_services(
        &mut self,
        cloud: &mut dyn Cloud,
        scope: &Scope,
        bucket: &BucketId,
        services: &[(Service, BucketAccess)],
    ) {
        for (service, access) in services {
            let Some(email) = self.definitions.organisation.services.get(service.as_str()) else { continue };
            let who = Principal::Service { name: service.as_str(), email };
            let outcome = cloud.grant_bucket(scope, bucket, &who, *access);
            self.narrowing(cloud.name(), scope, outcome);
        }
    }

    /// Everything a dataset gets on one cloud; returns its machine accounts.
    fn dataset(
        &mut self,
        cloud: &mut dyn Cloud,
        dataset: &Dataset,
        config: Option<&BucketId>,
    ) -> Vec<(&'static AccountDesign, AccountId)> {
        let owner = Owner::Dataset(dataset.name.clone());
        // A component the cloud cannot host (Dataproc on Azure) is left out there, with a note.
        let mut hosted: BTreeSet<&str> = BTreeSet::new();
        for component in &dataset.components {
            let scope = Scope { owner: &owner, site: dataset, component };
            match cloud.prepare(&scope) {
                Ok(()) => {
                    hosted.insert(component.as_str());
                }
                Err(unsupported) => self.unavailable(cloud.name(), &scope, Err(unsupported)),
            }
        }
        let has = |component: &str| hosted.contains(component);
        let is_common = self.definitions.organisation.common_dataset.as_deref() == Some(dataset.name.as_str());
        let mut buckets: Vec<(&'static BucketDesign, BucketId)> = Vec::new();
        for design in BUCKETS.iter().filter(|b| has(b.component)) {
            let scope = Scope { owner: &owner, site: dataset, component: design.component };
            let mut requester_pays = design.requester_pays;
            if let (true, Err(unsupported)) = (requester_pays, cloud.requester_pays()) {
                let note = format!(
                    "{} bucket {} on {}: not requester pays ({})",
                    owner,
                    design.name,
                    cloud.name(),
                    unsupported.reason
                );
                self.report.notes.push(note);
                requester_pays = false;
            }
            let spec =
                BucketSpec { name: design.name.to_owned(), lifecycle: design.lifecycle.to_vec(), requester_pays };
            let outcome = cloud.bucket(&scope, &spec);
            let Some(bucket) = self.check(cloud.name(), &scope, outcome) else { continue };
            let common_grants = COMMON_BUCKET_GRANTS.iter().filter(|(name, ..)| is_common && *name == design.name);
            let grants = design.groups.iter().copied().chain(common_grants.map(|(_, role, access)| (*role, *access)));
            for (role, access) in grants {
                let Some(group) = self.group(dataset, role) else { continue };
                let scope = Scope { component: self.role_component(role, design.component), ..scope };
                let outcome = cloud.grant_bucket(&scope, &bucket, &group.principal(), access);
                self.check(cloud.name(), &scope, outcome);
            }
            self.grant_services(cloud, &scope, &bucket, design.services);
            self.on_request(cloud, dataset, &scope, design.name, &bucket);
            buckets.push((design, bucket));
        }
        for (component, role, access) in PROJECT_GRANTS {
            if component.is_some_and(|c| !has(c)) {
                continue;
            }
            let Some(group) = self.group(dataset, role) else { continue };
            let component = component.unwrap_or_else(|| self.role_component(role, "storage"));
            let scope = Scope { owner: &owner, site: dataset, component };
            let outcome = cloud.grant_project(&scope, &group.principal(), *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }

        let mut accounts: Vec<(&'static AccountDesign, AccountId)> = Vec::new();
        for design in ACCOUNTS.iter().filter(|a| has(a.component)) {
            let scope = Scope { owner: &owner, site: dataset, component: design.component };
            let outcome = cloud.machine_account(&scope, design.name);
            let Some(account) = self.check(cloud.name(), &scope, outcome) else { continue };
            for (bucket_design, bucket) in &buckets {
                for (_, access) in bucket_design.accounts.iter().filter(|(name, _)| *name == design.name) {
                    let outcome = cloud.grant_bucket(&scope, bucket, &Principal::Account(&account), *access);
                    self.check(cloud.name(), &scope, outcome);
                }
            }
            for (user, access) in design.users {
                let group;
                let other;
                let who = match user {
                    AccountUser::Role(role) => match self.group(dataset, role) {
                        Some(found) => {
                            group = found;
                            group.principal()
                        }
                        None => continue,
                    },
                    AccountUser::Itself => Principal::Account(&account),
                    AccountUser::Account(name) => match accounts.iter().find(|(d, _)| d.name == *name) {
                        Some((_, found)) => {
                            other = found.clone();
                            Principal::Account(&other)
                        }
                        None => continue,
                    },
                    AccountUser::Service(service) => match self.service(*service) {
                        Some(principal) => principal,
                        None => {
                            self.no_service(cloud.name(), &scope, *service);
                            continue;
                        }
                    },
                };
                let outcome = cloud.grant_machine_account(&scope, &account, &who, *access);
                self.narrowing(cloud.name(), &scope, outcome);
            }
            accounts.push((design, account));
        }
        for (component, name, access) in ACCOUNT_PROJECT_GRANTS.iter().filter(|(c, ..)| has(c)) {
            let Some((_, account)) = accounts.iter().find(|(d, _)| d.name == *name) else { continue };
            let scope = Scope { owner: &owner, site: dataset, component };
            let outcome = cloud.grant_project(&scope, &Principal::Account(account), *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }
        for (component, service, access) in SERVICE_PROJECT_GRANTS.iter().filter(|(c, ..)| has(c)) {
            let scope = Scope { owner: &owner, site: dataset, component };
            let Some(who) = self.service(*service) else {
                self.no_service(cloud.name(), &scope, *service);
                continue;
            };
            let outcome = cloud.grant_project(&scope, &who, *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }
        for (component, target, access, role) in EXTERNAL_GRANTS.iter().filter(|(c, ..)| has(c)) {
            let Some(group) = self.group(dataset, role) else { continue };
            let scope = Scope { owner: &owner, site: dataset, component };
            let outcome = cloud.grant_external(&scope, *target, &group.principal(), *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }
        for (name, target, access) in EXTERNAL_ACCOUNT_GRANTS {
            let Some((design, account)) = accounts.iter().find(|(d, _)| d.name == *name) else { continue };
            let scope = Scope { owner: &owner, site: dataset, component: design.component };
            let outcome = cloud.grant_external(&scope, *target, &Principal::Account(account), *access);
            self.unavailable(cloud.name(), &scope, outcome);
        }
        self.stored_keys(cloud, dataset, &owner, &accounts);
        if let (Some(config), false) = (config, buckets.is_empty()) {
            self.storage_config(cloud, dataset, &owner, config, &buckets);
        }

        for design in REGISTRIES.iter().filter(|r| has(r.component)) {
            let scope = Scope { owner: &owner, site: dataset, component: design.component };
            let outcome = cloud.registry(&scope, design.name);
            let Some(registry) = self.check(cloud.name(), &scope, outcome) else { continue };
            for (role, access) in design.groups {
                let Some(group) = self.group(dataset, role) else { continue };
                let outcome = cloud.grant_registry(&scope, &registry, &group.principal(), *access);
                self.check(cloud.name(), &scope, outcome);
            }
        }

        self.budgets(cloud, dataset, &owner);

        accounts
    }

    /// Time-limited access to one bucket: the opted-in on-request grants (approved by the
    /// dataset's approver role) and the administrators' emergency write (approved by another
    /// administrator).
    fn on_request(
        &mut self,
        cloud: &mut dyn Cloud,
        dataset: &Dataset,
        scope: &Scope,
        bucket_name: &str,
        bucket: &BucketId,
    ) {
        for (role, _, access, max_days, approvers) in ON_REQUEST.iter().filter(|grant| grant.1 == bucket_name) {
            if !self.opted_in.contains(&(dataset.name.clone(), (*role).to_owned())) {
                continue;
            }
            let (Some(group), Some(approvers)) = (self.group(dataset, role), self.group(dataset, approvers)) else {
                continue;
            };
            let needs = self.definitions.roles.get(*role).and_then(|r| r.requires_component.as_deref());
            let scope = Scope { component: needs.unwrap_or(scope.component), ..*scope };
            let request = OnRequest {
                who: group.principal(),
                access: *access,
                max_days: *max_days,
                approvers: approvers.principal(),
            };
            let outcome = cloud.grant_bucket_on_request(&scope, bucket, &request);
            self.narrowing(cloud.name(), &scope, outcome);
        }
        let (emergency_bucket, access, max_days) = EMERGENCY_WRITE;
        let admins = self.definitions.organisation.administrators.as_ref();
        let Some(admins) =
            admins.filter(|a| emergency_bucket == bucket_name && self.definitions.groups.contains_key(&a.name))
        else {
            return;
        };
        let admins = self.organisation_group(&admins.name);
        let request = OnRequest { who: admins.principal(), access, max_days, approvers: admins.principal() };
        let outcome = cloud.grant_bucket_on_request(scope, bucket, &request);
        self.narrowing(cloud.name(), scope, outcome);
    }

    /// Keys of accounts whose workloads run elsewhere (cromwell), kept as secrets in the same
    /// cloud and readable by the analysis runner and the hail account of the same level.
    fn stored_keys(
        &mut self,
        cloud: &mut dyn Cloud,
        dataset: &Dataset,
        owner: &Owner,
        accounts: &[(&'static AccountDesign, AccountId)],
    ) {
        for (design, account) in accounts.iter().filter(|(design, _)| design.stored_key) {
            let scope = Scope { owner, site: dataset, component: design.component };
            let key = match cloud.machine_account_key(&scope, account) {
                Ok(key) => key,
                Err(unsupported) => {
                    self.narrowing(cloud.name(), &scope, Err(unsupported));
                    continue;
                }
            };
            let outcome = cloud.secret(&scope, &format!("{}-key", design.name));
            let Some(secret) = self.check(cloud.name(), &scope, outcome) else { continue };
            let outcome = cloud.secret_version(&scope, &secret, &key);
            self.check(cloud.name(), &scope, outcome);
            let hail = accounts.iter().filter(|(other, _)| other.component == "hail" && other.kind == design.kind);
            for (_, hail) in hail {
                let outcome = cloud.grant_secret(&scope, &secret, &Principal::Account(hail));
                self.check(cloud.name(), &scope, outcome);
            }
            for service in STORED_KEY_SERVICES {
                let Some(email) = self.definitions.organisation.services.get(service.as_str()) else { continue };
                let outcome =
                    cloud.grant_secret(&scope, &secret, &Principal::Service { name: service.as_str(), email });
                self.narrowing(cloud.name(), &scope, outcome);
            }
        }
    }

    fn budgets(&mut self, cloud: &mut dyn Cloud, dataset: &Dataset, owner: &Owner) {
        let budget = dataset.budgets.get(cloud.name());
        let (true, Some(budget)) = (dataset.components.contains("budget"), budget) else { return };
        let notify = self.group(dataset, BUDGET_CONTACT_ROLE).map(|g| g.email).into_iter().collect::<Vec<_>>();
        let periods = [
            budget.monthly.map(|amount| (BudgetPeriod::Monthly, amount)),
            budget.fixed.zip(budget.fixed_start).map(|(amount, start)| (BudgetPeriod::Fixed { start }, amount)),
        ];
        let scope = Scope { owner, site: dataset, component: "budget" };
        for (period, amount) in periods.into_iter().flatten() {
            let spec = BudgetSpec {
                period,
                amount,
                currency: budget.currency.clone(),
                alert_thresholds: budget.alert_thresholds.clone(),
                notify: notify.clone(),
            };
            let outcome = cloud.budget(&scope, &spec);
            self.check(cloud.name(), &scope, outcome);
        }
    }

    /// Stores the keys of a dataset's exported machine accounts on each of its other clouds,
    /// as secrets readable by the groups that use the account (e.g. a GCP hail account's key in
    /// the dataset's Azure Key Vault).
    fn cross_cloud(
        &mut self,
        clouds: &mut [&mut dyn Cloud],
        dataset: &Dataset,
        placed: &[(usize, Vec<(&'static AccountDesign, AccountId)>)],
    ) {
        let owner = Owner::Dataset(dataset.name.clone());
        let scope = Scope { owner: &owner, site: dataset, component: CROSS_CLOUD };
        for (from_index, accounts) in placed {
            for (to_index, to_accounts) in placed.iter().filter(|(to, _)| to != from_index) {
                let (from, to) = pair(clouds, *from_index, *to_index);
                let mut not_exported: BTreeMap<Unsupported, Vec<&str>> = BTreeMap::new();
                for (design, account) in accounts.iter().filter(|(design, _)| design.export_key) {
                    let key = match from.machine_account_key(&scope, account) {
                        Ok(key) => key,
                        Err(unsupported) => {
                            not_exported.entry(unsupported).or_default().push(design.name);
                            continue;
                        }
                    };
                    let name = format!("{}-{}-key", design.name, from.name());
                    let outcome = to.secret(&scope, &name);
                    let Some(secret) = self.check(to.name(), &scope, outcome) else { continue };
                    let outcome = to.secret_version(&scope, &secret, &key);
                    self.check(to.name(), &scope, outcome);
                    // Read by the dataset's account of the same name there, and nobody else:
                    // a group that read the key could act as the account.
                    for (_, reader) in to_accounts.iter().filter(|(other, _)| other.name == design.name) {
                        let outcome = to.grant_secret(&scope, &secret, &Principal::Account(reader));
                        self.check(to.name(), &scope, outcome);
                    }
                }
                for (unsupported, names) in not_exported {
                    self.report.notes.push(format!(
                        "{}: {} of {} on {} not stored on {}: {}",
                        dataset.name,
                        unsupported.what,
                        names.join(", "),
                        from.name(),
                        to.name(),
                        unsupported.reason
                    ));
                }
            }
        }
    }

    /// The dataset's group for `role`, if the dataset has that role.
    fn group(&self, dataset: &Dataset, role: &str) -> Option<Group> {
        if !self.definitions.dataset_has_role(dataset, role) {
            return None;
        }
        let name = self.definitions.dataset_group_name(&dataset.name, role);
        let email = self.definitions.group_email(&name);
        Some(Group { name, email })
    }

    /// An organisation group (`groups/org-groups.toml`, or one the design derives), by name.
    fn organisation_group(&self, name: &str) -> Group {
        let name = self.definitions.org_group_name(name);
        let email = self.definitions.group_email(&name);
        Group { name, email }
    }

    /// An organisation service's principal, if `[services]` names it.
    fn service(&self, service: Service) -> Option<Principal<'a>> {
        let (name, email) = self.definitions.organisation.services.get_key_value(service.as_str())?;
        Some(Principal::Service { name, email })
    }

    fn no_service(&mut self, cloud: &str, scope: &Scope, service: Service) {
        let unsupported = Unsupported {
            what: format!("access for the {} service", service.as_str()),
            reason: format!("groups/org.toml [services] names no `{}`", service.as_str()),
        };
        self.unavailable(cloud, scope, Err(unsupported));
    }

    /// For what a workload needs that this cloud or these definitions cannot provide yet: a
    /// note saying which component goes without it (the plan shows it), never a silent skip.
    fn unavailable(&mut self, cloud: &str, scope: &Scope, outcome: Outcome<()>) {
        if let Err(unsupported) = outcome {
            self.report.notes.push(format!(
                "{} on {cloud}: component {} goes without {} ({})",
                scope.owner, scope.component, unsupported.what, unsupported.reason
            ));
        }
    }

    /// The component a grant to `role` belongs to: the one the role needs, else the bucket's.
    fn role_component(&self, role: &str, fallback: &'static str) -> &'a str {
        match self.definitions.roles.get(role).and_then(|r| r.requires_component.as_deref()) {
            Some(component) => component,
            None => fallback,
        }
    }

    /// For grants whose absence only narrows access (time-limited access, key management,
    /// services named by another cloud's accounts): a cloud that cannot make one says so in a
    /// note, and nobody gets more than the design allows.
    fn narrowing(&mut self, cloud: &str, scope: &Scope, outcome: Outcome<()>) {
        if let Err(unsupported) = outcome {
            self.report.notes.push(format!(
                "{} on {cloud}: no {} ({}); nobody gets it instead",
                scope.owner, unsupported.what, unsupported.reason
            ));
        }
    }

    /// Turns an unsupported call into an error for its dataset and component.
    fn check<T>(&mut self, cloud: &str, scope: &Scope, outcome: Outcome<T>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(unsupported) => {
                let owner = match scope.owner {
                    Owner::Organisation => "the organisation".to_owned(),
                    Owner::Dataset(name) => format!("dataset `{name}`"),
                };
                self.report.errors.push(InfraError::Unsupported {
                    owner,
                    cloud: cloud.to_owned(),
                    component: scope.component.to_owned(),
                    what: unsupported.what,
                    reason: unsupported.reason,
                    location: scope.site.location.clone(),
                });
                None
            }
        }
    }
}

/// Two distinct clouds of the slice, mutably.
fn pair<'c>(clouds: &'c mut [&mut dyn Cloud], a: usize, b: usize) -> (&'c mut dyn Cloud, &'c mut dyn Cloud) {
    assert_ne!(a, b, "a cloud is not paired with itself");
    if a < b {
        let (left, right) = clouds.split_at_mut(b);
        (&mut *left[a], &mut *right[0])
    } else {
        let (left, right) = clouds.split_at_mut(a);
        (&mut *right[0], &mut *left[b])
    }
}
