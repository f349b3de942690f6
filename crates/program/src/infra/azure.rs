//! Azure: the `Cloud` trait as Pulumi `azure-native:*` resources, with groups looked up
//! through `azuread:getGroup`.
//!
//! Owns how the design maps onto Azure: per owner a provider for its subscription, a resource
//! group, one storage account whose blob containers are the buckets (lifecycle rules in one
//! management policy, soft delete account-wide), user-assigned managed identities, a Key Vault,
//! container registries, consumption budgets, and role assignments to group object ids. Groups
//! are never created here. Never does I/O: it only adds resources to its program.

use std::collections::BTreeMap;

use crate::definitions::{Dataset, Definitions};

use super::cloud::{
    AccountAccess, AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetPeriod, BudgetSpec, Cloud, External,
    ExternalAccess, Lifecycle, OnRequest, Outcome, Principal, ProjectAccess, RegistryAccess, RegistryId, Scope,
    SecretId, Unsupported,
};
use super::names::{self, NameClaim, NameKind};
use super::program::{Origin, Owner, Piece, Program, Ref, Resource, Value};

/// The stack config value holding the first day budgets count from (Azure requires one).
pub const BUDGET_START_CONFIG: &str = "azureBudgetStartDate";

/// Azure consumption budgets accept at most this many notifications.
const MAX_NOTIFICATIONS: usize = 5;

/// Built-in role definitions (the same GUIDs in every tenant).
mod roles {
    pub const STORAGE_BLOB_DATA_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    pub const STORAGE_BLOB_DATA_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
    pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
    pub const MANAGED_IDENTITY_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";
    pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    pub const MONITORING_READER: &str = "43d0d8ad-25c7-4714-9337-8ba259a9fe05";
    pub const LOG_ANALYTICS_READER: &str = "73c42c96-874c-492b-b04d-ab87d138a893";
}

const BLOBS: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";

/// Azure has no list-only blob role: Storage Blob Data Reader, restricted by an ABAC condition
/// to the `Blob.List` sub-operation.
fn list_only_condition() -> String {
    format!("((!(ActionMatches{{'{BLOBS}/read'}} AND NOT SubOperationMatches{{'Blob.List'}})))")
}

/// Azure has no read-and-create blob role: Storage Blob Data Contributor, restricted by an ABAC
/// condition to reading and adding new blobs (no overwrite, move or delete).
fn append_only_condition() -> String {
    ["write", "delete", "move/action"]
        .iter()
        .map(|action| format!("(!(ActionMatches{{'{BLOBS}/{action}'}}))"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Why Azure cannot host a component, if it cannot (its accounts are not made there either).
pub(crate) fn component_problem(component: &str) -> Option<Unsupported> {
    (component == "spark").then(|| Unsupported {
        what: "Dataproc clusters".to_owned(),
        reason: "Hail Query on Dataproc is Google Cloud's; Azure has no counterpart in the design yet".to_owned(),
    })
}

/// Builds the Azure part of the program.
pub struct Azure<'a> {
    definitions: &'a Definitions,
    program: Program,
    /// Per owner: resource group, storage account, vault, lifecycle.
    homes: BTreeMap<Owner, Home>,
    buckets: BTreeMap<BucketId, AzureBucket>,
    accounts: BTreeMap<AccountId, String>,
    secrets: BTreeMap<SecretId, String>,
    registries: BTreeMap<RegistryId, String>,
}

/// What an owner has in its subscription.
#[derive(Debug, Default)]
struct Home {
    resource_group: String,
    storage_account: Option<String>,
    vault: Option<String>,
    /// Management-policy rules gathered from the buckets.
    rules: Vec<Value>,
    soft_delete_days: u32,
    /// Blob versioning for the whole account when any container asks for it.
    versioning: bool,
    /// The component that made the storage account (lifecycle resources are labelled with it).
    storage_component: String,
}

#[derive(Debug, Clone)]
struct AzureBucket {
    container: String,
    storage_account: String,
    resource_group: String,
    /// Where the container lives (a blob written by another owner needs a provider there).
    site: Site,
}

/// A subscription and region to deploy to, from a dataset's `[azure]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    dataset: String,
    subscription: String,
    region: String,
}

impl Site {
    fn of(dataset: &Dataset) -> Site {
        Site {
            dataset: dataset.name.clone(),
            subscription: subscription(dataset).to_owned(),
            region: region(dataset).to_owned(),
        }
    }
}

impl<'a> Azure<'a> {
    pub fn new(definitions: &'a Definitions) -> Azure<'a> {
        Azure {
            definitions,
            program: Program::default(),
            homes: BTreeMap::new(),
            buckets: BTreeMap::new(),
            accounts: BTreeMap::new(),
            secrets: BTreeMap::new(),
            registries: BTreeMap::new(),
        }
    }

    /// The resources added so far, with each storage account's lifecycle policy and soft delete.
    /// The program being built, to set how it is kept.
    pub fn program_mut(&mut self) -> &mut Program {
        &mut self.program
    }

    pub fn into_program(mut self) -> Program {
        let homes = std::mem::take(&mut self.homes);
        for (owner, home) in homes {
            let Some(account) = &home.storage_account else { continue };
            let origin =
                Origin { owner: owner.clone(), cloud: "azure".to_owned(), component: home.storage_component.clone() };
            let provider = provider_name(&owner, None);
            let base = [
                ("accountName", Value::output(account, "name")),
                ("resourceGroupName", Value::output(&home.resource_group, "name")),
            ];
            if home.soft_delete_days > 0 {
                let retention = Value::map([
                    ("enabled", Value::Bool(true)),
                    ("days", Value::Number(f64::from(home.soft_delete_days))),
                ]);
                let mut properties = Value::map(base.clone());
                insert(&mut properties, "blobServicesName", Value::str("default"));
                insert(&mut properties, "deleteRetentionPolicy", retention.clone());
                insert(&mut properties, "isVersioningEnabled", Value::Bool(home.versioning));
                insert(&mut properties, "containerDeleteRetentionPolicy", retention);
                let mut resource =
                    Resource::new("azure-native:storage:BlobServiceProperties", origin.clone(), properties);
                resource.options.provider = Some(Ref::to(&provider));
                self.program.add(&format!("{}-azure-storage-blob-service", owner.prefix()), resource);
            }
            if !home.rules.is_empty() {
                let mut properties = Value::map(base);
                insert(&mut properties, "managementPolicyName", Value::str("default"));
                insert(&mut properties, "policy", Value::map([("rules", Value::List(home.rules.clone()))]));
                let mut resource = Resource::new("azure-native:storage:ManagementPolicy", origin, properties);
                resource.options.provider = Some(Ref::to(&provider));
                self.program.add(&format!("{}-azure-storage-lifecycle", owner.prefix()), resource);
            }
        }
        self.program
    }

    fn origin(scope: &Scope) -> Origin {
        Origin { owner: scope.owner.clone(), cloud: "azure".to_owned(), component: scope.component.to_owned() }
    }

    /// Adds a resource owned by the scope's owner, through a provider for `site`.
    fn add_on(&mut self, scope: &Scope, site: &Site, local: &str, type_token: &str, properties: Value) -> String {
        let name = format!("{}-azure-{local}", scope.owner.prefix());
        let description = format!("subscription {}, region {}", subscription(scope.site), region(scope.site));
        self.program.sites.entry((scope.owner.clone(), "azure".to_owned())).or_insert(description);
        let provider = self.provider(scope.owner, site);
        let mut resource = Resource::new(type_token, Self::origin(scope), properties);
        resource.options.provider = Some(Ref::to(&provider));
        self.program.add(&name, resource);
        name
    }

    fn add(&mut self, scope: &Scope, local: &str, type_token: &str, properties: Value) -> String {
        self.home(scope);
        self.add_on(scope, &Site::of(scope.site), local, type_token, properties)
    }

    /// The provider for `owner`'s resources in `site`'s subscription, added on first use.
    fn provider(&mut self, owner: &Owner, site: &Site) -> String {
        let own_site = match owner {
            Owner::Organisation => true,
            Owner::Dataset(name) => *name == site.dataset,
        };
        let name = provider_name(owner, (!own_site).then_some(site.dataset.as_str()));
        if !self.program.resources.contains_key(&name) {
            let origin = Origin { owner: owner.clone(), cloud: "azure".to_owned(), component: "base".to_owned() };
            let properties = Value::map([
                ("subscriptionId", Value::str(&site.subscription)),
                ("location", Value::str(&site.region)),
            ]);
            self.program.add(&name, Resource::new("pulumi:providers:azure-native", origin, properties));
        }
        name
    }

    /// The owner's resource group, added on first use.
    fn home(&mut self, scope: &Scope) -> &mut Home {
        if !self.homes.contains_key(scope.owner) {
            let owner = scope.owner;
            let base = Scope { component: "base", ..*scope };
            let group_name = names::prefixed(names::name_prefix(self.definitions), "-", owner.prefix());
            let within = format!("subscription `{}`", subscription(scope.site));
            self.claim(scope, NameKind::AzureResourceGroup, Some(within), &group_name, owner.prefix());
            let properties = Value::map([
                ("resourceGroupName", Value::str(group_name)),
                ("location", Value::str(region(scope.site))),
            ]);
            let resource_group = self.add_on(
                &base,
                &Site::of(scope.site),
                "resource-group",
                "azure-native:resources:ResourceGroup",
                properties,
            );
            let home = Home { resource_group, ..Home::default() };
            self.homes.insert(owner.clone(), home);
        }
        self.homes.get_mut(scope.owner).expect("inserted above")
    }

    fn resource_group_value(&mut self, scope: &Scope) -> Value {
        Value::output(&self.home(scope).resource_group, "name")
    }

    /// A name unique across Azure: the name prefix, the owner and a suffix, letters and digits
    /// only (the prefix starts with a letter, as key vault names must).
    fn global_name(&mut self, scope: &Scope, kind: NameKind, suffix: &str) -> String {
        let (name, base) = storage_global_name(self.definitions, scope.owner, suffix);
        self.claim(scope, kind, Some(String::new()), &name, &base);
        name
    }

    /// Records a name made from the owner's name, for `claims` to check.
    fn claim(&mut self, scope: &Scope, kind: NameKind, namespace: Option<String>, name: &str, unprefixed: &str) {
        self.program.names.push(NameClaim {
            kind,
            namespace,
            name: name.to_owned(),
            unprefixed: Some(unprefixed.to_owned()),
            owner: scope.owner.clone(),
            source: names::owner_source(scope.owner, scope.site),
        });
    }

    /// The principal id and type of a role assignment's principal.
    fn principal(&mut self, who: &Principal) -> Outcome<(Value, &'static str)> {
        match who {
            Principal::Group { name, .. } => {
                let lookup = self.program.variable(
                    &format!("azure-group-{name}"),
                    Value::Invoke {
                        function: "azuread:getGroup".to_owned(),
                        // Display names are not unique in a tenant; the mail nickname is the
                        // group's name, as the sync creates it.
                        arguments: [
                            ("mailNickname".to_owned(), Value::str(*name)),
                            ("securityEnabled".to_owned(), Value::Bool(true)),
                        ]
                        .into(),
                        return_field: Some("objectId".to_owned()),
                    },
                );
                Ok((Value::reference(lookup), "Group"))
            }
            Principal::Account(account) => {
                let resource = self.accounts.get(*account).cloned().unwrap_or_default();
                Ok((Value::output(&resource, "principalId"), "ServicePrincipal"))
            }
            Principal::Service { name, .. } => Err(Unsupported {
                what: format!("access for the {name} service"),
                reason: "[services] names Google service accounts, which Azure role assignments cannot name".to_owned(),
            }),
        }
    }

    fn role_assignment(
        &mut self,
        scope: &Scope,
        local: &str,
        target: Value,
        who: &Principal,
        role: RoleGrant,
    ) -> Outcome<()> {
        let (principal_id, principal_type) = self.principal(who)?;
        let subscription = subscription(scope.site).to_owned();
        let mut properties = Value::map([
            ("principalId", principal_id),
            ("principalType", Value::str(principal_type)),
            (
                "roleDefinitionId",
                Value::str(format!(
                    "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}",
                    role.id
                )),
            ),
            ("scope", target),
        ]);
        if let Some(condition) = role.condition {
            insert(&mut properties, "condition", Value::str(condition));
            insert(&mut properties, "conditionVersion", Value::str("2.0"));
        }
        self.add(scope, local, "azure-native:authorization:RoleAssignment", properties);
        Ok(())
    }

    fn label(&self, scope: &Scope, who: &Principal) -> String {
        who.label(&self.definitions.organisation.group_prefix, scope.owner)
    }

    fn storage_account(&mut self, scope: &Scope) -> String {
        if let Some(account) = &self.home(scope).storage_account {
            return account.clone();
        }
        let resource_group = self.resource_group_value(scope);
        let properties = Value::map([
            ("accountName", Value::str(self.global_name(scope, NameKind::AzureStorageAccount, ""))),
            ("resourceGroupName", resource_group),
            ("location", Value::str(region(scope.site))),
            ("kind", Value::str("StorageV2")),
            ("sku", Value::map([("name", Value::str("Standard_LRS"))])),
            ("allowBlobPublicAccess", Value::Bool(false)),
            ("minimumTlsVersion", Value::str("TLS1_2")),
            ("enableHttpsTrafficOnly", Value::Bool(true)),
        ]);
        let account = self.add(scope, "storage-account", "azure-native:storage:StorageAccount", properties);
        if let Some(resource) = self.program.resources.get_mut(&account) {
            resource.options.retain_on_delete = true;
        }
        let home = self.home(scope);
        home.storage_account = Some(account.clone());
        home.storage_component = scope.component.to_owned();
        account
    }

    fn vault(&mut self, scope: &Scope) -> String {
        if let Some(vault) = &self.home(scope).vault {
            return vault.clone();
        }
        let tenant = self.program.variable(
            "azure-tenant-id",
            Value::Invoke {
                function: "azure-native:authorization:getClientConfig".to_owned(),
                arguments: BTreeMap::new(),
                return_field: Some("tenantId".to_owned()),
            },
        );
        let resource_group = self.resource_group_value(scope);
        let properties = Value::map([
            ("vaultName", Value::str(self.global_name(scope, NameKind::AzureKeyVault, "kv"))),
            ("resourceGroupName", resource_group),
            ("location", Value::str(region(scope.site))),
            (
                "properties",
                Value::map([
                    ("tenantId", Value::reference(tenant)),
                    ("sku", Value::map([("family", Value::str("A")), ("name", Value::str("standard"))])),
                    ("enableRbacAuthorization", Value::Bool(true)),
                    ("enableSoftDelete", Value::Bool(true)),
                ]),
            ),
        ]);
        let vault = self.add(scope, "key-vault", "azure-native:keyvault:Vault", properties);
        self.home(scope).vault = Some(vault.clone());
        vault
    }
}

/// A role definition and, for levels Azure has no role for, the condition that narrows it.
struct RoleGrant {
    id: &'static str,
    condition: Option<String>,
}

impl RoleGrant {
    fn plain(id: &'static str) -> RoleGrant {
        RoleGrant { id, condition: None }
    }
}

fn provider_name(owner: &Owner, other_site: Option<&str>) -> String {
    match other_site {
        None => format!("{}-azure-provider", owner.prefix()),
        Some(site) => format!("{}-azure-provider-{site}", owner.prefix()),
    }
}

fn subscription(site: &Dataset) -> &str {
    site.azure.as_ref().map_or("", |a| a.subscription.as_str())
}

fn region(site: &Dataset) -> &str {
    site.azure.as_ref().and_then(|a| a.region.as_deref()).unwrap_or("")
}

fn insert(map: &mut Value, key: &str, value: Value) {
    if let Value::Map(map) = map {
        map.insert(key.to_owned(), value);
    }
}

/// A name unique across Azure (storage account, key vault, registry): the name prefix glued to
/// the owner's name and `suffix`, letters and digits only; and the part before the prefix.
fn storage_global_name(definitions: &Definitions, owner: &Owner, suffix: &str) -> (String, String) {
    let base = names::alphanumeric(&format!("{}{suffix}", owner.prefix()));
    (names::prefixed(names::name_prefix(definitions), "", &base), base)
}

/// The ARM id of the user-assigned managed identity `machine_account` makes for the design
/// account `name` of `dataset`: in the dataset's subscription, in its resource group (`home`).
pub fn managed_identity_id(definitions: &Definitions, dataset: &Dataset, name: &str) -> String {
    let resource_group =
        names::prefixed(names::name_prefix(definitions), "-", Owner::Dataset(dataset.name.clone()).prefix());
    format!(
        "/subscriptions/{}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        subscription(dataset)
    )
}

/// The storage account and container the group sync writes the members cache to on Azure.
pub fn members_cache_container(definitions: &Definitions) -> (String, String) {
    let (account, _) = storage_global_name(definitions, &Owner::Organisation, "");
    (account, super::design::MEMBERS_CACHE_BUCKET.to_owned())
}

fn no_identity_keys() -> Unsupported {
    Unsupported {
        what: "machine-account keys".to_owned(),
        reason: "user-assigned managed identities have no keys (workloads elsewhere use federated credentials)"
            .to_owned(),
    }
}

fn days_after_modification(days: u32) -> Value {
    Value::map([("daysAfterModificationGreaterThan", Value::Number(f64::from(days)))])
}

impl Cloud for Azure<'_> {
    fn name(&self) -> &'static str {
        "azure"
    }

    fn hosts(&self, dataset: &Dataset) -> bool {
        dataset.azure.is_some()
    }

    fn requester_pays(&self) -> Outcome<()> {
        Err(Unsupported {
            what: "requester pays".to_owned(),
            reason: "Azure storage bills egress to the account owner, never to the reader".to_owned(),
        })
    }

    fn site_problem(&self, dataset: &Dataset) -> Option<String> {
        let azure = dataset.azure.as_ref()?;
        azure.region.is_none().then(|| "[azure] needs a region: Azure resources have no default location".to_owned())
    }

    fn bucket(&mut self, scope: &Scope, spec: &BucketSpec) -> Outcome<BucketId> {
        if spec.requester_pays {
            return Err(Unsupported {
                what: format!("a requester-pays bucket ({})", spec.name),
                reason: "Azure storage bills egress to the account owner, never to the reader".to_owned(),
            });
        }
        let account = self.storage_account(scope);
        let resource_group = self.home(scope).resource_group.clone();
        let properties = Value::map([
            ("accountName", Value::output(&account, "name")),
            ("resourceGroupName", Value::output(&resource_group, "name")),
            ("containerName", Value::str(&spec.name)),
            ("publicAccess", Value::str("None")),
        ]);
        let container =
            self.add(scope, &format!("bucket-{}", spec.name), "azure-native:storage:BlobContainer", properties);
        if let Some(resource) = self.program.resources.get_mut(&container) {
            resource.options.retain_on_delete = true;
        }
        self.program.outputs.insert(format!("{container}-name"), Value::output(&container, "name"));
        let prefix = format!("{}/", spec.name);
        let rule_name = names::alphanumeric(&spec.name);
        for rule in &spec.lifecycle {
            let (suffix, target, action) = match *rule {
                Lifecycle::Versioned { noncurrent_days } => {
                    // Versioning and soft delete are settings of the whole storage account;
                    // old versions of this container's blobs are deleted by its own rule.
                    let home = self.home(scope);
                    home.versioning = true;
                    home.soft_delete_days = home.soft_delete_days.max(noncurrent_days);
                    let delete =
                        Value::map([("daysAfterCreationGreaterThan", Value::Number(f64::from(noncurrent_days)))]);
                    ("versions", "version", ("delete", delete))
                }
                // Azure discards uncommitted blocks (unfinished uploads) after 7 days by itself.
                Lifecycle::AbortUploadsAfter { .. } => continue,
                Lifecycle::DeleteAfter { days } => ("delete", "baseBlob", ("delete", days_after_modification(days))),
                Lifecycle::ArchiveAfter { days } => {
                    ("archive", "baseBlob", ("tierToArchive", days_after_modification(days)))
                }
            };
            let rule = Value::map([
                ("name", Value::str(format!("{rule_name}{suffix}"))),
                ("enabled", Value::Bool(true)),
                ("type", Value::str("Lifecycle")),
                (
                    "definition",
                    Value::map([
                        ("actions", Value::map([(target, Value::map([action]))])),
                        (
                            "filters",
                            Value::map([
                                ("blobTypes", Value::list([Value::str("blockBlob")])),
                                ("prefixMatch", Value::list([Value::str(&prefix)])),
                            ]),
                        ),
                    ]),
                ),
            ]);
            self.home(scope).rules.push(rule);
        }
        let bucket = AzureBucket { container, storage_account: account, resource_group, site: Site::of(scope.site) };
        let id = BucketId::new(scope.owner, &spec.name);
        self.buckets.insert(id.clone(), bucket);
        Ok(id)
    }

    fn prepare(&mut self, scope: &Scope) -> Outcome<()> {
        match scope.component {
            "spark" => Err(Unsupported {
                what: "Dataproc clusters".to_owned(),
                reason: "Hail Query on Dataproc is Google Cloud's; Azure has no counterpart in the design yet"
                    .to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn grant_external(
        &mut self,
        _scope: &Scope,
        target: External,
        _who: &Principal,
        access: ExternalAccess,
    ) -> Outcome<()> {
        Err(Unsupported {
            what: format!("{} on the {}", access.as_str(), target.as_str().replace('-', " ")),
            reason: "the organisation's services ([infra.gcp]) run on Google Cloud".to_owned(),
        })
    }

    fn grant_bucket_on_request(&mut self, _scope: &Scope, bucket: &BucketId, request: &OnRequest) -> Outcome<()> {
        let OnRequest { access, max_days, .. } = request;
        Err(Unsupported {
            what: format!(
                "{} access to {} on request for up to {}",
                access.as_str(),
                bucket.name(),
                super::access::days(*max_days)
            ),
            reason: "time-limited access needs Entra ID Privileged Identity Management, which Pulumi does not manage"
                .to_owned(),
        })
    }

    fn grant_project(&mut self, scope: &Scope, who: &Principal, access: ProjectAccess) -> Outcome<()> {
        // Reader covers listing storage accounts and containers, compute and role assignments.
        let role = match access {
            ProjectAccess::ListBuckets | ProjectAccess::ViewCompute | ProjectAccess::ViewIamRoles => roles::READER,
            ProjectAccess::ViewLogs => roles::LOG_ANALYTICS_READER,
            ProjectAccess::ViewMonitoring => roles::MONITORING_READER,
            // Nothing to pay for: Azure containers are never requester pays (the plan notes it).
            ProjectAccess::UseRequesterPays => return Ok(()),
            ProjectAccess::ReportBatchJobs | ProjectAccess::EditBatchJobs => {
                return Err(Unsupported {
                    what: format!("{} access", access.as_str()),
                    reason: "Cromwell on Azure Batch is not in the design yet".to_owned(),
                })
            }
            ProjectAccess::AdminClusters | ProjectAccess::RunClusters | ProjectAccess::ViewClusters => {
                return Err(Unsupported {
                    what: format!("{} access", access.as_str()),
                    reason: "Dataproc has no Azure counterpart in the design yet".to_owned(),
                })
            }
        };
        let resource_group = self.home(scope).resource_group.clone();
        let local = format!("project-{}-{}", access.as_str(), self.label(scope, who));
        self.role_assignment(scope, &local, Value::output(&resource_group, "id"), who, RoleGrant::plain(role))
    }

    fn grant_bucket(&mut self, scope: &Scope, bucket: &BucketId, who: &Principal, access: BucketAccess) -> Outcome<()> {
        let container = self.buckets.get(bucket).map(|b| b.container.clone()).unwrap_or_default();
        let role = match access {
            BucketAccess::List => {
                RoleGrant { id: roles::STORAGE_BLOB_DATA_READER, condition: Some(list_only_condition()) }
            }
            BucketAccess::Read => RoleGrant::plain(roles::STORAGE_BLOB_DATA_READER),
            BucketAccess::Append => {
                RoleGrant { id: roles::STORAGE_BLOB_DATA_CONTRIBUTOR, condition: Some(append_only_condition()) }
            }
            BucketAccess::Mutate => RoleGrant::plain(roles::STORAGE_BLOB_DATA_CONTRIBUTOR),
        };
        let local = format!("bucket-{}-{}-{}", bucket.name(), access.as_str(), self.label(scope, who));
        self.role_assignment(scope, &local, Value::output(&container, "id"), who, role)
    }

    fn machine_account(&mut self, scope: &Scope, name: &str) -> Outcome<AccountId> {
        let resource_group = self.resource_group_value(scope);
        let properties = Value::map([
            ("resourceName", Value::str(name)),
            ("resourceGroupName", resource_group),
            ("location", Value::str(region(scope.site))),
        ]);
        let resource = self.add(
            scope,
            &format!("account-{name}"),
            "azure-native:managedidentity:UserAssignedIdentity",
            properties,
        );
        self.program.outputs.insert(format!("{resource}-client-id"), Value::output(&resource, "clientId"));
        let id = AccountId::new(scope.owner, name);
        self.accounts.insert(id.clone(), resource);
        Ok(id)
    }

    fn machine_account_key(&mut self, _scope: &Scope, _account: &AccountId) -> Outcome<Value> {
        Err(no_identity_keys())
    }

    fn grant_machine_account(
        &mut self,
        scope: &Scope,
        account: &AccountId,
        who: &Principal,
        access: AccountAccess,
    ) -> Outcome<()> {
        if access == AccountAccess::ManageKeys {
            return Err(no_identity_keys());
        }
        let resource = self.accounts.get(account).cloned().unwrap_or_default();
        let local = format!("account-{}-{}-{}", account.name(), access.as_str(), self.label(scope, who));
        let role = RoleGrant::plain(roles::MANAGED_IDENTITY_OPERATOR);
        self.role_assignment(scope, &local, Value::output(&resource, "id"), who, role)
    }

    fn secret(&mut self, scope: &Scope, name: &str) -> Outcome<SecretId> {
        let vault = self.vault(scope);
        let resource_group = self.resource_group_value(scope);
        let properties = Value::map([
            ("resourceGroupName", resource_group),
            ("vaultName", Value::output(&vault, "name")),
            ("secretName", Value::str(name)),
            ("properties", Value::map([])),
        ]);
        let resource = self.add(scope, &format!("secret-{name}"), "azure-native:keyvault:Secret", properties);
        let id = SecretId::new(scope.owner, name);
        self.secrets.insert(id.clone(), resource);
        Ok(id)
    }

    /// Key Vault versions a secret whenever its value changes: the version is the value.
    fn secret_version(&mut self, _scope: &Scope, secret: &SecretId, value: &Value) -> Outcome<()> {
        let resource = self.secrets.get(secret).cloned().unwrap_or_default();
        if let Some(secret) = self.program.resources.get_mut(&resource) {
            secret.properties.insert("properties".to_owned(), Value::map([("value", value.clone())]));
        }
        Ok(())
    }

    fn grant_secret(&mut self, scope: &Scope, secret: &SecretId, who: &Principal) -> Outcome<()> {
        let resource = self.secrets.get(secret).cloned().unwrap_or_default();
        let local = format!("secret-{}-read-{}", secret.name(), self.label(scope, who));
        let role = RoleGrant::plain(roles::KEY_VAULT_SECRETS_USER);
        self.role_assignment(scope, &local, Value::output(&resource, "id"), who, role)
    }

    fn registry(&mut self, scope: &Scope, name: &str) -> Outcome<RegistryId> {
        let resource_group = self.resource_group_value(scope);
        let properties = Value::map([
            ("registryName", Value::str(self.global_name(scope, NameKind::AzureRegistry, name))),
            ("resourceGroupName", resource_group),
            ("location", Value::str(region(scope.site))),
            ("sku", Value::map([("name", Value::str("Standard"))])),
            ("adminUserEnabled", Value::Bool(false)),
        ]);
        let resource =
            self.add(scope, &format!("registry-{name}"), "azure-native:containerregistry:Registry", properties);
        self.program.outputs.insert(format!("{resource}-address"), Value::output(&resource, "loginServer"));
        let id = RegistryId::new(scope.owner, name);
        self.registries.insert(id.clone(), resource);
        Ok(id)
    }

    fn grant_registry(
        &mut self,
        scope: &Scope,
        registry: &RegistryId,
        who: &Principal,
        access: RegistryAccess,
    ) -> Outcome<()> {
        let resource = self.registries.get(registry).cloned().unwrap_or_default();
        let role = RoleGrant::plain(match access {
            RegistryAccess::Read => roles::ACR_PULL,
            RegistryAccess::Write => roles::ACR_PUSH,
        });
        let local = format!("registry-{}-{}-{}", registry.name(), access.as_str(), self.label(scope, who));
        self.role_assignment(scope, &local, Value::output(&resource, "id"), who, role)
    }

    fn budget(&mut self, scope: &Scope, spec: &BudgetSpec) -> Outcome<()> {
        if let BudgetPeriod::Fixed { .. } = spec.period {
            return Err(Unsupported {
                what: "a fixed budget".to_owned(),
                reason: "consumption budgets reset every month, quarter or year".to_owned(),
            });
        }
        let billing = scope.site.azure.as_ref().and_then(|a| a.billing_currency.as_deref());
        if let Some(currency) = spec.currency.as_deref().filter(|c| Some(*c) != billing) {
            return Err(Unsupported {
                what: format!("a budget in {currency}"),
                reason: match billing {
                    Some(billing) => format!("Azure budgets are in the subscription's billing currency, {billing}"),
                    None => format!(
                        "Azure budgets are in the subscription's billing currency: set [azure] billing_currency = \"{currency}\" if that is it"
                    ),
                },
            });
        }
        if spec.alert_thresholds.len() > MAX_NOTIFICATIONS {
            return Err(Unsupported {
                what: format!("{} alert thresholds", spec.alert_thresholds.len()),
                reason: format!("a consumption budget sends at most {MAX_NOTIFICATIONS} notifications"),
            });
        }
        let start = self.program.config(
            BUDGET_START_CONFIG,
            "The first day budgets count from, the first of a month (e.g. 2026-01-01T00:00:00Z)",
        );
        let resource_group = self.resource_group_value(scope);
        let notify = Value::list(spec.notify.iter().map(Value::str));
        let notifications = spec
            .alert_thresholds
            .iter()
            .map(|fraction| {
                let percent = (fraction * 100.0).round();
                let notification = Value::map([
                    ("enabled", Value::Bool(true)),
                    ("operator", Value::str("GreaterThanOrEqualTo")),
                    ("threshold", Value::Number(percent)),
                    ("thresholdType", Value::str("Actual")),
                    ("contactEmails", notify.clone()),
                ]);
                (format!("actual-{}-percent", percent as i64), notification)
            })
            .collect();
        let period = spec.period.as_str();
        let properties = Value::map([
            ("budgetName", Value::str(format!("{}-{period}", scope.owner))),
            ("scope", Value::str(format!("/subscriptions/{}", subscription(scope.site)))),
            ("amount", Value::Number(spec.amount)),
            ("category", Value::str("Cost")),
            ("timeGrain", Value::str("Monthly")),
            ("timePeriod", Value::map([("startDate", Value::reference(start))])),
            (
                "filter",
                Value::map([(
                    "dimensions",
                    Value::map([
                        ("name", Value::str("ResourceGroupName")),
                        ("operator", Value::str("In")),
                        ("values", Value::list([resource_group])),
                    ]),
                )]),
            ),
            ("notifications", Value::Map(notifications)),
        ]);
        self.add(scope, &format!("budget-{period}"), "azure-native:consumption:Budget", properties);
        Ok(())
    }

    fn blob(&mut self, scope: &Scope, bucket: &BucketId, spec: &BlobSpec) -> Outcome<()> {
        let Some(target) = self.buckets.get(bucket).cloned() else {
            return Ok(());
        };
        let properties = Value::map([
            ("accountName", Value::output(&target.storage_account, "name")),
            ("resourceGroupName", Value::output(&target.resource_group, "name")),
            ("containerName", Value::output(&target.container, "name")),
            ("blobName", Value::str(&spec.path)),
            ("contentType", Value::str("text/plain")),
            ("source", Value::StringAsset(Box::new(spec.content.clone()))),
        ]);
        let name =
            self.add_on(scope, &target.site, &format!("blob-{}", spec.name), "azure-native:storage:Blob", properties);
        self.program.outputs.insert(format!("{name}-content"), spec.content.clone());
        Ok(())
    }

    fn bucket_address(&self, bucket: &BucketId) -> Value {
        let Some(target) = self.buckets.get(bucket) else {
            return Value::str(bucket.as_str());
        };
        Value::Interpolation(vec![
            Piece::Text("https://".to_owned()),
            Piece::Ref(Ref::field(&target.storage_account, "name")),
            Piece::Text(format!(".blob.core.windows.net/{}", bucket.name())),
        ])
    }
}
