//! Google Cloud: the `Cloud` trait as Pulumi `gcp:*` resources.
//!
//! Owns how the design maps onto GCP: buckets with IAM members, service accounts and keys,
//! Secret Manager, Artifact Registry, billing budgets. Groups are IAM members `group:<email>`;
//! they are never created here. Never does I/O: it only adds resources to its program.

use std::collections::BTreeMap;

use crate::definitions::{Dataset, Definitions};

use super::cloud::{
    AccountAccess, AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetPeriod, BudgetSpec, Cloud, External,
    ExternalAccess, Lifecycle, OnRequest, Outcome, Principal, ProjectAccess, RegistryAccess, RegistryId, Scope,
    SecretId, Unsupported,
};
use super::names::{self, NameClaim, NameKind};
use super::program::{Origin, Owner, Program, Ref, Resource, Value};

/// Where buckets and registries go when `[gcp]` names no region: the US multi-region.
pub const DEFAULT_LOCATION: &str = "US";

/// The stack config value holding the billing account budgets are created under.
pub const BILLING_ACCOUNT_CONFIG: &str = "gcpBillingAccount";

const SECONDS_PER_DAY: u32 = 86_400;

/// Builds the GCP part of the program.
pub struct Gcp<'a> {
    definitions: &'a Definitions,
    program: Program,
    /// Handle → logical resource name, per kind.
    buckets: BTreeMap<BucketId, String>,
    /// Handle → the bucket's GCS name, for IAM conditions.
    bucket_names: BTreeMap<BucketId, String>,
    accounts: BTreeMap<AccountId, String>,
    secrets: BTreeMap<SecretId, String>,
    registries: BTreeMap<RegistryId, (String, String, String)>,
    /// The organisation's custom roles (`organisation_roles`): role → resource name.
    custom_roles: BTreeMap<CustomRole, String>,
}

/// The organisation's custom roles. Bucket levels carry `storage.buckets.get` with object
/// access, which the predefined object roles lack (Hail checks a bucket's metadata before
/// using it); the Dataproc worker role is the predefined one without its storage access,
/// which would reach every bucket of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum CustomRole {
    BucketRead,
    BucketAppend,
    BucketMutate,
    DataprocWorker,
}

const OBJECT_READ: &[&str] = &["storage.buckets.get", "storage.objects.get", "storage.objects.list"];
const OBJECT_CREATE: &[&str] = &[
    "storage.objects.create",
    "storage.multipartUploads.create",
    "storage.multipartUploads.abort",
    "storage.multipartUploads.listParts",
    "storage.multipartUploads.list",
];
const OBJECT_CHANGE: &[&str] = &["storage.objects.delete", "storage.objects.update", "storage.objects.restore"];
/// `roles/dataproc.worker` without `storage.*`.
const DATAPROC_WORKER: &[&str] = &[
    "dataproc.agents.create",
    "dataproc.agents.delete",
    "dataproc.agents.get",
    "dataproc.agents.list",
    "dataproc.agents.update",
    "dataproc.tasks.lease",
    "dataproc.tasks.listInvalidatedLeases",
    "dataproc.tasks.reportStatus",
    "logging.logEntries.create",
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.create",
];

impl CustomRole {
    const ALL: [CustomRole; 4] =
        [CustomRole::BucketRead, CustomRole::BucketAppend, CustomRole::BucketMutate, CustomRole::DataprocWorker];

    /// Role ids: letters, digits, `_` and `.`.
    fn id(self) -> &'static str {
        match self {
            CustomRole::BucketRead => "cpgInfraBucketRead",
            CustomRole::BucketAppend => "cpgInfraBucketAppend",
            CustomRole::BucketMutate => "cpgInfraBucketMutate",
            CustomRole::DataprocWorker => "cpgInfraDataprocWorker",
        }
    }

    fn title(self) -> &'static str {
        match self {
            CustomRole::BucketRead => "Bucket read: objects and bucket metadata",
            CustomRole::BucketAppend => "Bucket append: read and create objects, never overwrite or delete",
            CustomRole::BucketMutate => "Bucket mutate: objects and bucket metadata, never the bucket itself",
            CustomRole::DataprocWorker => "Dataproc worker without storage access",
        }
    }

    fn permissions(self) -> Vec<&'static str> {
        match self {
            CustomRole::BucketRead => OBJECT_READ.to_vec(),
            CustomRole::BucketAppend => [OBJECT_READ, OBJECT_CREATE].concat(),
            CustomRole::BucketMutate => [OBJECT_READ, OBJECT_CREATE, OBJECT_CHANGE].concat(),
            CustomRole::DataprocWorker => DATAPROC_WORKER.to_vec(),
        }
    }

    fn for_bucket(access: BucketAccess) -> Option<CustomRole> {
        match access {
            // The predefined lister already carries bucket metadata.
            BucketAccess::List => None,
            BucketAccess::Read => Some(CustomRole::BucketRead),
            BucketAccess::Append => Some(CustomRole::BucketAppend),
            BucketAccess::Mutate => Some(CustomRole::BucketMutate),
        }
    }
}

impl<'a> Gcp<'a> {
    pub fn new(definitions: &'a Definitions) -> Gcp<'a> {
        Gcp {
            definitions,
            program: Program::default(),
            buckets: BTreeMap::new(),
            bucket_names: BTreeMap::new(),
            accounts: BTreeMap::new(),
            secrets: BTreeMap::new(),
            registries: BTreeMap::new(),
            custom_roles: BTreeMap::new(),
        }
    }

    fn organisation_id(&self) -> Option<&str> {
        self.definitions.organisation.gcp.organisation_id.as_deref()
    }

    /// The IAM roles for a level of bucket access: the organisation's custom role, or without
    /// an organisation id the nearest predefined roles (without bucket metadata reads).
    fn bucket_roles(&self, access: BucketAccess) -> Vec<Value> {
        if let Some(resource) = CustomRole::for_bucket(access).and_then(|role| self.custom_roles.get(&role)) {
            return vec![Value::output(resource, "name")];
        }
        let predefined: &[&str] = match access {
            BucketAccess::List => &["roles/storage.legacyBucketReader"],
            BucketAccess::Read => &["roles/storage.objectViewer"],
            BucketAccess::Append => &["roles/storage.objectViewer", "roles/storage.objectCreator"],
            BucketAccess::Mutate => &["roles/storage.objectAdmin"],
        };
        predefined.iter().map(|role| Value::str(*role)).collect()
    }

    /// The privileged-access service agent's role on the scope's project, once per project:
    /// entitlements there cannot grant anything without it.
    fn privileged_access_agent(&mut self, scope: &Scope, organisation_id: &str) -> String {
        let local = "project-privileged-access-agent";
        let name = Self::resource_name(scope, local);
        if !self.program.resources.contains_key(&name) {
            let properties = Value::map([
                ("project", Value::str(project(scope.site))),
                ("role", Value::str("roles/privilegedaccessmanager.serviceAgent")),
                (
                    "member",
                    Value::str(format!(
                        "serviceAccount:service-org-{organisation_id}@gcp-sa-pam.iam.gserviceaccount.com"
                    )),
                ),
            ]);
            self.add(scope, local, "gcp:projects:IAMMember", properties);
        }
        name
    }

    /// The resources added so far.
    /// The program being built, to set how it is kept.
    pub fn program_mut(&mut self) -> &mut Program {
        &mut self.program
    }

    pub fn into_program(self) -> Program {
        self.program
    }

    fn resource_name(scope: &Scope, local: &str) -> String {
        format!("{}-gcp-{local}", scope.owner.prefix())
    }

    fn origin(scope: &Scope) -> Origin {
        Origin { owner: scope.owner.clone(), cloud: "gcp".to_owned(), component: scope.component.to_owned() }
    }

    /// Adds a resource owned by the scope's owner, and notes where that owner lives.
    fn add(&mut self, scope: &Scope, local: &str, type_token: &str, properties: Value) -> String {
        let name = Self::resource_name(scope, local);
        let site = site_description(scope.site);
        let first = self.program.sites.insert((scope.owner.clone(), "gcp".to_owned()), site).is_none();
        // The organisation's resources live in the common dataset's project, which it claims.
        if first && matches!(scope.owner, Owner::Dataset(_)) {
            self.claim(scope, NameKind::GcpProject, None, project(scope.site), None);
        }
        let mut resource = Resource::new(type_token, Self::origin(scope), properties);
        resource.options.depends_on = self.prerequisites(scope, type_token);
        self.program.add(&name, resource);
        name
    }

    /// What a dataset's resource needs before it can be created, which no property refers to
    /// (so Pulumi would otherwise create them all at once): the project when the program
    /// creates it, and the API of the resource's type enabled in it (a new project has none
    /// on), added here when no component enabled it already.
    fn prerequisites(&mut self, scope: &Scope, type_token: &str) -> Vec<String> {
        if !matches!(scope.owner, Owner::Dataset(_)) || type_token == "gcp:organizations:Project" {
            return Vec::new();
        }
        let project = Self::project_resource_name(scope.site);
        let mut prerequisites = Vec::new();
        if self.program.resources.contains_key(&project) {
            prerequisites.push(project);
        }
        if let Some(api) = api_of(type_token) {
            prerequisites.push(self.enable_api(scope, api));
        }
        prerequisites
    }

    /// The `gcp:projects:Service` that turns `api` on in the scope's project; one per project.
    fn enable_api(&mut self, scope: &Scope, api: &str) -> String {
        let short = api.split('.').next().unwrap_or(api);
        let name = Self::resource_name(scope, &format!("api-{short}"));
        if !self.program.resources.contains_key(&name) {
            let properties = Value::map([
                ("project", Value::str(project(scope.site))),
                ("service", Value::str(api)),
                // Turning an API off breaks whatever else uses it; removing the resource never does.
                ("disableOnDestroy", Value::Bool(false)),
            ]);
            self.add(scope, &format!("api-{short}"), "gcp:projects:Service", properties);
        }
        name
    }

    /// Records a name for `claims` to check. Names unique within a project are written where
    /// the project is; names made from the dataset, where the dataset is.
    fn claim(
        &mut self,
        scope: &Scope,
        kind: NameKind,
        namespace: Option<String>,
        name: &str,
        unprefixed: Option<String>,
    ) {
        let source = match (&unprefixed, scope.site.gcp.as_ref()) {
            (None, Some(gcp)) => gcp.project_location.clone(),
            _ => names::owner_source(scope.owner, scope.site),
        };
        self.program.names.push(NameClaim {
            kind,
            namespace,
            name: name.to_owned(),
            unprefixed,
            owner: scope.owner.clone(),
            source,
        });
    }

    /// The IAM member string of a principal.
    fn member(&self, who: &Principal) -> Value {
        match who {
            Principal::Group { email, .. } => Value::str(format!("group:{email}")),
            Principal::Service { email, .. } => Value::str(format!("serviceAccount:{email}")),
            Principal::Account(account) => match self.accounts.get(*account) {
                Some(resource) => Value::prefixed("serviceAccount:", Ref::field(resource, "email")),
                None => Value::str(format!("serviceAccount:unknown-{}", account.as_str())),
            },
        }
    }

    fn label(&self, scope: &Scope, who: &Principal) -> String {
        who.label(&self.definitions.organisation.group_prefix, scope.owner)
    }

    /// The name of a dataset's project resource, which exists when the program creates it.
    fn project_resource_name(site: &Dataset) -> String {
        let owner = Owner::Dataset(site.name.clone());
        Self::resource_name(&Scope { owner: &owner, site, component: "project" }, "project")
    }

    /// The dataset's project itself, when `[gcp] create_in` asks for it: created once, billed
    /// to the stack's billing account, and never deleted by Pulumi (it holds the data).
    fn project_resource(&mut self, scope: &Scope) {
        let Some(gcp) = scope.site.gcp.as_ref() else { return };
        let Some(parent) = &gcp.create_in else { return };
        let site_scope =
            Scope { owner: &Owner::Dataset(scope.site.name.clone()), site: scope.site, component: "project" };
        if self.program.resources.contains_key(&Self::project_resource_name(scope.site)) {
            return;
        }
        let billing = self.program.config(BILLING_ACCOUNT_CONFIG, "The billing account budgets are created under");
        let (key, id) = match parent.split_once('/') {
            Some(("folders", id)) => ("folderId", id),
            Some((_, id)) => ("orgId", id),
            None => ("orgId", parent.as_str()),
        };
        let properties = Value::map([
            ("projectId", Value::str(&gcp.project)),
            ("name", Value::str(&gcp.project)),
            (key, Value::str(id)),
            ("billingAccount", Value::reference(billing)),
            ("autoCreateNetwork", Value::Bool(false)),
            ("deletionPolicy", Value::str("PREVENT")),
            ("labels", labels(site_scope.owner)),
        ]);
        let name = self.add(&site_scope, "project", "gcp:organizations:Project", properties);
        if let Some(resource) = self.program.resources.get_mut(&name) {
            resource.options.retain_on_delete = true;
        }
    }

    /// A bucket name, unique across GCS: `<name prefix>-<dataset>-<bucket>`.
    fn bucket_name(&mut self, scope: &Scope, name: &str) -> String {
        let (full, base) = gcs_bucket_name(self.definitions, scope.owner, name);
        self.claim(scope, NameKind::GcsBucket, Some(String::new()), &full, Some(base));
        full
    }
}

/// The GCS name of `owner`'s bucket `name`, and the part the owner contributes to it.
fn gcs_bucket_name(definitions: &Definitions, owner: &Owner, name: &str) -> (String, String) {
    let base = match owner {
        Owner::Organisation => names::bucket_part(name),
        Owner::Dataset(dataset) => names::bucket_part(&format!("{dataset}-{name}")),
    };
    (names::prefixed(names::name_prefix(definitions), "-", &base), base)
}

/// The GCS bucket the group sync writes the members cache to (Pulumi creates it).
pub fn members_cache_bucket(definitions: &Definitions) -> String {
    gcs_bucket_name(definitions, &Owner::Organisation, super::design::MEMBERS_CACHE_BUCKET).0
}

/// A service account's id (the part before `@`): 6–30 lowercase letters, digits and hyphens.
fn service_account_id(name: &str) -> String {
    names::fit(name, 6, 30, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', Some('-'))
}

/// The email a machine account called `name` gets in the dataset's project: known before the
/// account exists, so the group sync can make it a member of its access-level group.
pub fn service_account_email(site: &Dataset, name: &str) -> Option<String> {
    let project = &site.gcp.as_ref()?.project;
    Some(format!("{}@{project}.iam.gserviceaccount.com", service_account_id(name)))
}

/// The API a resource type is served by, for those a project has off until enabled.
fn api_of(type_token: &str) -> Option<&'static str> {
    let module = type_token.split(':').nth(1)?;
    Some(match module {
        "storage" => "storage.googleapis.com",
        "serviceaccount" => "iam.googleapis.com",
        "secretmanager" => "secretmanager.googleapis.com",
        "artifactregistry" => "artifactregistry.googleapis.com",
        "billing" => "billingbudgets.googleapis.com",
        "monitoring" => "monitoring.googleapis.com",
        "privilegedaccessmanager" => "privilegedaccessmanager.googleapis.com",
        _ => return None,
    })
}

/// The APIs a component's resources need in the project.
fn apis(component: &str) -> &'static [&'static str] {
    match component {
        "storage" => &["storage.googleapis.com", "privilegedaccessmanager.googleapis.com", "iam.googleapis.com"],
        "test-storage" | "upload" | "release" => &["storage.googleapis.com"],
        "hail" => &["compute.googleapis.com", "iam.googleapis.com", "storage.googleapis.com"],
        "cromwell" => {
            &["batch.googleapis.com", "compute.googleapis.com", "iam.googleapis.com", "secretmanager.googleapis.com"]
        }
        "notebooks" => &["notebooks.googleapis.com", "iam.googleapis.com"],
        "spark" => &["dataproc.googleapis.com", "iam.googleapis.com"],
        "registry" => &["artifactregistry.googleapis.com"],
        "budget" => &["billingbudgets.googleapis.com", "monitoring.googleapis.com"],
        "analysis-runner" => &["iam.googleapis.com"],
        _ => &[],
    }
}

fn project(site: &Dataset) -> &str {
    site.gcp.as_ref().map_or("", |g| g.project.as_str())
}

fn location(site: &Dataset) -> &str {
    site.gcp.as_ref().and_then(|g| g.region.as_deref()).unwrap_or(DEFAULT_LOCATION)
}

fn site_description(site: &Dataset) -> String {
    let default = site.gcp.as_ref().is_some_and(|g| g.region.is_none());
    format!("project {}, location {}{}", project(site), location(site), if default { " (default)" } else { "" })
}

/// What a missing `[infra.gcp]` setting costs.
fn not_configured(what: String, setting: &str) -> Unsupported {
    Unsupported { what, reason: format!("groups/org.toml [infra.gcp] sets no {setting}") }
}

fn labels(owner: &Owner) -> Value {
    Value::map([("owner", Value::str(names::label_value(owner.prefix()))), ("managed-by", Value::str("cpg-infra"))])
}

impl Cloud for Gcp<'_> {
    fn name(&self) -> &'static str {
        "gcp"
    }

    fn hosts(&self, dataset: &Dataset) -> bool {
        dataset.gcp.is_some()
    }

    fn site_problem(&self, _dataset: &Dataset) -> Option<String> {
        None
    }

    fn prepare(&mut self, scope: &Scope) -> Outcome<()> {
        self.project_resource(scope);
        for api in apis(scope.component) {
            self.enable_api(scope, api);
        }
        Ok(())
    }

    fn bucket(&mut self, scope: &Scope, spec: &BucketSpec) -> Outcome<BucketId> {
        self.project_resource(scope);
        let mut versioned = false;
        let mut rules = Vec::new();
        for rule in &spec.lifecycle {
            match *rule {
                Lifecycle::Versioned { noncurrent_days } => {
                    versioned = true;
                    rules.push(Value::map([
                        ("action", Value::map([("type", Value::str("Delete"))])),
                        (
                            "condition",
                            Value::map([("daysSinceNoncurrentTime", Value::Number(f64::from(noncurrent_days)))]),
                        ),
                    ]));
                }
                Lifecycle::AbortUploadsAfter { days } => rules.push(Value::map([
                    ("action", Value::map([("type", Value::str("AbortIncompleteMultipartUpload"))])),
                    ("condition", Value::map([("age", Value::Number(f64::from(days)))])),
                ])),
                Lifecycle::DeleteAfter { days } => rules.push(Value::map([
                    ("action", Value::map([("type", Value::str("Delete"))])),
                    ("condition", Value::map([("age", Value::Number(f64::from(days)))])),
                ])),
                Lifecycle::ArchiveAfter { days } => rules.push(Value::map([
                    (
                        "action",
                        Value::map([("type", Value::str("SetStorageClass")), ("storageClass", Value::str("ARCHIVE"))]),
                    ),
                    ("condition", Value::map([("age", Value::Number(f64::from(days)))])),
                ])),
            }
        }
        let bucket_name = self.bucket_name(scope, &spec.name);
        let mut properties = Value::map([
            ("name", Value::str(&bucket_name)),
            ("project", Value::str(project(scope.site))),
            ("location", Value::str(location(scope.site))),
            ("uniformBucketLevelAccess", Value::Bool(true)),
            ("publicAccessPrevention", Value::str("enforced")),
            // Object versioning keeps what was deleted or overwritten; soft delete would keep
            // a second copy of it (GCS's default is 7 days), so it is off.
            ("softDeletePolicy", Value::map([("retentionDurationSeconds", Value::Number(0.0))])),
            ("versioning", Value::map([("enabled", Value::Bool(versioned))])),
            ("labels", labels(scope.owner)),
        ]);
        if let Value::Map(map) = &mut properties {
            if !rules.is_empty() {
                map.insert("lifecycleRules".to_owned(), Value::List(rules));
            }
            if spec.requester_pays {
                map.insert("requesterPays".to_owned(), Value::Bool(true));
            }
            // Autoclass picks storage classes itself: not with buckets whose lifecycle deletes
            // or archives objects by age.
            let by_age = spec
                .lifecycle
                .iter()
                .any(|r| matches!(r, Lifecycle::DeleteAfter { .. } | Lifecycle::ArchiveAfter { .. }));
            if scope.site.gcp.as_ref().is_some_and(|g| g.autoclass) && !by_age {
                map.insert("autoclass".to_owned(), Value::map([("enabled", Value::Bool(true))]));
            }
        }
        let name = self.add(scope, &format!("bucket-{}", spec.name), "gcp:storage:Bucket", properties);
        if let Some(resource) = self.program.resources.get_mut(&name) {
            resource.options.retain_on_delete = true;
        }
        self.program.outputs.insert(format!("{name}-name"), Value::output(&name, "name"));
        let id = BucketId::new(scope.owner, &spec.name);
        self.buckets.insert(id.clone(), name);
        self.bucket_names.insert(id.clone(), bucket_name);
        Ok(id)
    }

    fn grant_bucket(&mut self, scope: &Scope, bucket: &BucketId, who: &Principal, access: BucketAccess) -> Outcome<()> {
        let resource = self.buckets.get(bucket).cloned().unwrap_or_default();
        let roles = self.bucket_roles(access);
        let count = roles.len();
        for (i, role) in roles.into_iter().enumerate() {
            let mut local = format!("bucket-{}-{}-{}", bucket.name(), access.as_str(), self.label(scope, who));
            if count > 1 {
                local.push_str(&format!("-{}", i + 1));
            }
            let properties = Value::map([
                ("bucket", Value::output(&resource, "name")),
                ("role", role),
                ("member", self.member(who)),
            ]);
            self.add(scope, &local, "gcp:storage:BucketIAMMember", properties);
        }
        Ok(())
    }

    fn grant_bucket_on_request(&mut self, scope: &Scope, bucket: &BucketId, request: &OnRequest) -> Outcome<()> {
        let OnRequest { who, access, max_days, approvers } = request;
        let Some(organisation_id) = self.organisation_id().map(str::to_owned) else {
            return Err(not_configured(
                format!("{} access to {} on request", access.as_str(), bucket.name()),
                "organisation_id (the privileged-access service agent is the organisation's)",
            ));
        };
        let agent = self.privileged_access_agent(scope, &organisation_id);
        let project = project(scope.site).to_owned();
        let bucket_name = self.bucket_names.get(bucket).cloned().unwrap_or_default();
        let label = self.label(scope, who);
        let local = format!("bucket-{}-{}-on-request-{label}", bucket.name(), access.as_str());
        // Entitlement ids: lowercase letters, digits and hyphens, at most 63.
        let id = names::fit(
            &format!("{}-{local}", scope.owner.prefix()),
            4,
            63,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            Some('-'),
        );
        // Entitlements take predefined roles; the request is for the bucket and its objects.
        let role = match access {
            BucketAccess::List => "roles/storage.legacyBucketReader",
            BucketAccess::Read | BucketAccess::Append => "roles/storage.objectViewer",
            BucketAccess::Mutate => "roles/storage.objectAdmin",
        };
        let binding = Value::map([
            ("role", Value::str(role)),
            // The bucket and its objects, not buckets whose name merely starts the same
            // (`main` must not reach `main-tmp`).
            (
                "conditionExpression",
                Value::str(format!(
                    "resource.name == \"projects/_/buckets/{bucket_name}\" || resource.name.startsWith(\"projects/_/buckets/{bucket_name}/\")"
                )),
            ),
        ]);
        // One approval from the approvers' group. Privileged Access Manager never lets a
        // requester approve their own grant, even when they are in the approvers' group
        // (cloud.google.com/iam/docs/pam-approve-deny-grants: "You can't approve your own request").
        let approval = Value::map([(
            "manualApprovals",
            Value::map([
                ("requireApproverJustification", Value::Bool(true)),
                (
                    "steps",
                    Value::list([Value::map([
                        ("approvalsNeeded", Value::Number(1.0)),
                        (
                            "approvers",
                            Value::list([Value::map([("principals", Value::list([self.member(approvers)]))])]),
                        ),
                    ])]),
                ),
            ]),
        )]);
        let properties = Value::map([
            ("entitlementId", Value::str(id)),
            ("location", Value::str("global")),
            ("parent", Value::str(format!("projects/{project}"))),
            ("maxRequestDuration", Value::str(format!("{}s", max_days * SECONDS_PER_DAY))),
            ("eligibleUsers", Value::list([Value::map([("principals", Value::list([self.member(who)]))])])),
            (
                "privilegedAccess",
                Value::map([(
                    "gcpIamAccess",
                    Value::map([
                        ("resource", Value::str(format!("//cloudresourcemanager.googleapis.com/projects/{project}"))),
                        ("resourceType", Value::str("cloudresourcemanager.googleapis.com/Project")),
                        ("roleBindings", Value::list([binding])),
                    ]),
                )]),
            ),
            ("approvalWorkflow", approval),
            ("requesterJustificationConfig", Value::map([("unstructured", Value::map([]))])),
        ]);
        let name = self.add(scope, &local, "gcp:privilegedaccessmanager:entitlement", properties);
        if let Some(resource) = self.program.resources.get_mut(&name) {
            resource.options.depends_on.push(agent);
        }
        Ok(())
    }

    fn organisation_roles(&mut self, scope: &Scope) -> Outcome<()> {
        let Some(organisation_id) = self.organisation_id().map(str::to_owned) else {
            return Err(not_configured(
                "bucket roles with bucket metadata reads, and a Dataproc worker role without storage access".to_owned(),
                "organisation_id (custom roles are the organisation's)",
            ));
        };
        for role in CustomRole::ALL {
            let properties = Value::map([
                ("orgId", Value::str(&organisation_id)),
                ("roleId", Value::str(role.id())),
                ("title", Value::str(role.title())),
                ("description", Value::str("managed by cpg-infra")),
                ("stage", Value::str("GA")),
                ("permissions", Value::list(role.permissions().into_iter().map(Value::str))),
            ]);
            let local = format!("role-{}", role.id().to_ascii_lowercase());
            let name = self.add(scope, &local, "gcp:organizations:IAMCustomRole", properties);
            self.custom_roles.insert(role, name);
        }
        Ok(())
    }

    fn grant_external(
        &mut self,
        scope: &Scope,
        target: External,
        who: &Principal,
        access: ExternalAccess,
    ) -> Outcome<()> {
        let settings = &self.definitions.organisation.gcp;
        let what = format!("{} on the {}", access.as_str(), target.as_str().replace('-', " "));
        let local = format!("external-{}-{}-{}", target.as_str(), access.as_str(), self.label(scope, who));
        let member = self.member(who);
        let (type_token, properties) = match (target, access) {
            (External::AnalysisRunnerService | External::MetadataService, ExternalAccess::Invoke) => {
                let (service, setting) = match target {
                    External::MetadataService => (&settings.metadata_service, "metadata_service"),
                    _ => (&settings.analysis_runner_service, "analysis_runner_service"),
                };
                let Some(service) = service else { return Err(not_configured(what, setting)) };
                let properties = Value::map([
                    ("project", Value::str(&service.project)),
                    ("location", Value::str(&service.location)),
                    ("name", Value::str(&service.name)),
                    ("role", Value::str("roles/run.invoker")),
                    ("member", member),
                ]);
                ("gcp:cloudrunv2:ServiceIamMember", properties)
            }
            (External::AnalysisRunnerRegistry, ExternalAccess::Read) => {
                let Some(registry) = &settings.analysis_runner_registry else {
                    return Err(not_configured(what, "analysis_runner_registry"));
                };
                let properties = Value::map([
                    ("project", Value::str(&registry.project)),
                    ("location", Value::str(&registry.location)),
                    ("repository", Value::str(&registry.name)),
                    ("role", Value::str("roles/artifactregistry.reader")),
                    ("member", member),
                ]);
                ("gcp:artifactregistry:RepositoryIamMember", properties)
            }
            (External::GitTokenSecret, ExternalAccess::Read) => {
                let Some(secret) = &settings.git_token_secret else {
                    return Err(not_configured(what, "git_token_secret"));
                };
                let properties = Value::map([
                    ("project", Value::str(&secret.project)),
                    ("secretId", Value::str(&secret.name)),
                    ("role", Value::str("roles/secretmanager.secretAccessor")),
                    ("member", member),
                ]);
                ("gcp:secretmanager:SecretIamMember", properties)
            }
            (External::NotebooksProject, ExternalAccess::RunCompute) => {
                let Some(project) = &settings.notebooks_project else {
                    return Err(not_configured(what, "notebooks_project"));
                };
                let properties = Value::map([
                    ("project", Value::str(project)),
                    ("role", Value::str("roles/compute.admin")),
                    ("member", member),
                ]);
                ("gcp:projects:IAMMember", properties)
            }
            _ => return Err(Unsupported { what, reason: "the design has no such grant".to_owned() }),
        };
        self.add(scope, &local, type_token, properties);
        Ok(())
    }

    fn grant_project(&mut self, scope: &Scope, who: &Principal, access: ProjectAccess) -> Outcome<()> {
        let role = match access {
            ProjectAccess::ListBuckets => "roles/storage.bucketViewer",
            ProjectAccess::ViewCompute => "roles/compute.viewer",
            ProjectAccess::ViewLogs => "roles/logging.viewer",
            ProjectAccess::ViewMonitoring => "roles/monitoring.viewer",
            ProjectAccess::ViewIamRoles => "roles/iam.roleViewer",
            ProjectAccess::UseRequesterPays => "roles/serviceusage.serviceUsageConsumer",
            ProjectAccess::ReportBatchJobs => "roles/batch.agentReporter",
            ProjectAccess::EditBatchJobs => "roles/batch.jobsEditor",
            ProjectAccess::AdminClusters => "roles/dataproc.admin",
            ProjectAccess::ViewClusters => "roles/dataproc.viewer",
            ProjectAccess::RunClusters => match self.custom_roles.get(&CustomRole::DataprocWorker) {
                Some(_) => "",
                None => {
                    return Err(not_configured(
                        "a Dataproc worker role without storage access".to_owned(),
                        "organisation_id (its custom role is the organisation's)",
                    ))
                }
            },
        };
        let role = match (access, self.custom_roles.get(&CustomRole::DataprocWorker)) {
            (ProjectAccess::RunClusters, Some(resource)) => Value::output(resource, "name"),
            _ => Value::str(role),
        };
        let local = format!("project-{}-{}", access.as_str(), self.label(scope, who));
        let properties =
            Value::map([("project", Value::str(project(scope.site))), ("role", role), ("member", self.member(who))]);
        self.add(scope, &local, "gcp:projects:IAMMember", properties);
        Ok(())
    }

    fn machine_account(&mut self, scope: &Scope, name: &str) -> Outcome<AccountId> {
        let account_id = service_account_id(name);
        let within = format!("project `{}`", project(scope.site));
        self.claim(scope, NameKind::GcpServiceAccount, Some(within), &account_id, None);
        let properties = Value::map([
            ("accountId", Value::str(account_id)),
            ("displayName", Value::str(format!("{} {name}", scope.owner))),
            ("description", Value::str(format!("{} machine account, managed by cpg-infra", scope.component))),
            ("project", Value::str(project(scope.site))),
        ]);
        let resource = self.add(scope, &format!("account-{name}"), "gcp:serviceaccount:Account", properties);
        self.program.outputs.insert(format!("{resource}-email"), Value::output(&resource, "email"));
        let id = AccountId::new(scope.owner, name);
        self.accounts.insert(id.clone(), resource);
        Ok(id)
    }

    fn machine_account_key(&mut self, scope: &Scope, account: &AccountId) -> Outcome<Value> {
        let resource = self.accounts.get(account).cloned().unwrap_or_default();
        let properties = Value::map([("serviceAccountId", Value::output(&resource, "name"))]);
        let key = self.add(scope, &format!("account-{}-key", account.name()), "gcp:serviceaccount:Key", properties);
        Ok(Value::output(&key, "privateKey"))
    }

    fn grant_machine_account(
        &mut self,
        scope: &Scope,
        account: &AccountId,
        who: &Principal,
        access: AccountAccess,
    ) -> Outcome<()> {
        let resource = self.accounts.get(account).cloned().unwrap_or_default();
        let role = match access {
            AccountAccess::Use => "roles/iam.serviceAccountUser",
            AccountAccess::Impersonate => "roles/iam.serviceAccountTokenCreator",
            AccountAccess::ManageKeys => "roles/iam.serviceAccountKeyAdmin",
        };
        let local = format!("account-{}-{}-{}", account.name(), access.as_str(), self.label(scope, who));
        let properties = Value::map([
            ("serviceAccountId", Value::output(&resource, "name")),
            ("role", Value::str(role)),
            ("member", self.member(who)),
        ]);
        self.add(scope, &local, "gcp:serviceaccount:IAMMember", properties);
        Ok(())
    }

    fn secret(&mut self, scope: &Scope, name: &str) -> Outcome<SecretId> {
        let within = format!("project `{}`", project(scope.site));
        self.claim(scope, NameKind::GcpSecret, Some(within), name, None);
        let properties = Value::map([
            ("secretId", Value::str(name)),
            ("project", Value::str(project(scope.site))),
            ("replication", Value::map([("auto", Value::map([]))])),
            ("labels", labels(scope.owner)),
        ]);
        let resource = self.add(scope, &format!("secret-{name}"), "gcp:secretmanager:Secret", properties);
        let id = SecretId::new(scope.owner, name);
        self.secrets.insert(id.clone(), resource);
        Ok(id)
    }

    fn secret_version(&mut self, scope: &Scope, secret: &SecretId, value: &Value) -> Outcome<()> {
        let resource = self.secrets.get(secret).cloned().unwrap_or_default();
        let properties = Value::map([("secret", Value::output(&resource, "id")), ("secretData", value.clone())]);
        self.add(scope, &format!("secret-{}-version", secret.name()), "gcp:secretmanager:SecretVersion", properties);
        Ok(())
    }

    fn grant_secret(&mut self, scope: &Scope, secret: &SecretId, who: &Principal) -> Outcome<()> {
        let resource = self.secrets.get(secret).cloned().unwrap_or_default();
        let local = format!("secret-{}-read-{}", secret.name(), self.label(scope, who));
        let properties = Value::map([
            ("project", Value::str(project(scope.site))),
            ("secretId", Value::output(&resource, "secretId")),
            ("role", Value::str("roles/secretmanager.secretAccessor")),
            ("member", self.member(who)),
        ]);
        self.add(scope, &local, "gcp:secretmanager:SecretIamMember", properties);
        Ok(())
    }

    fn registry(&mut self, scope: &Scope, name: &str) -> Outcome<RegistryId> {
        let region = location(scope.site).to_ascii_lowercase();
        let project = project(scope.site).to_owned();
        let within = format!("project `{project}`, location `{region}`");
        self.claim(scope, NameKind::GcpRepository, Some(within), name, None);
        let properties = Value::map([
            ("repositoryId", Value::str(name)),
            ("format", Value::str("DOCKER")),
            ("location", Value::str(&region)),
            ("project", Value::str(&project)),
            ("description", Value::str(format!("{} container images, managed by cpg-infra", scope.owner))),
            ("labels", labels(scope.owner)),
        ]);
        let resource = self.add(scope, &format!("registry-{name}"), "gcp:artifactregistry:Repository", properties);
        self.program
            .outputs
            .insert(format!("{resource}-address"), Value::str(format!("{region}-docker.pkg.dev/{project}/{name}")));
        let id = RegistryId::new(scope.owner, name);
        self.registries.insert(id.clone(), (resource, region, project));
        Ok(id)
    }

    fn grant_registry(
        &mut self,
        scope: &Scope,
        registry: &RegistryId,
        who: &Principal,
        access: RegistryAccess,
    ) -> Outcome<()> {
        let (resource, region, project) = self.registries.get(registry).cloned().unwrap_or_default();
        let role = match access {
            RegistryAccess::Read => "roles/artifactregistry.reader",
            RegistryAccess::Write => "roles/artifactregistry.writer",
        };
        let local = format!("registry-{}-{}-{}", registry.name(), access.as_str(), self.label(scope, who));
        let properties = Value::map([
            ("project", Value::str(project)),
            ("location", Value::str(region)),
            ("repository", Value::output(&resource, "name")),
            ("role", Value::str(role)),
            ("member", self.member(who)),
        ]);
        self.add(scope, &local, "gcp:artifactregistry:RepositoryIamMember", properties);
        Ok(())
    }

    fn budget(&mut self, scope: &Scope, spec: &BudgetSpec) -> Outcome<()> {
        let project = project(scope.site).to_owned();
        let number = self.program.variable(
            &format!("gcp-project-{project}-number"),
            Value::Invoke {
                function: "gcp:organizations:getProject".to_owned(),
                arguments: [("projectId".to_owned(), Value::str(&project))].into(),
                return_field: Some("number".to_owned()),
            },
        );
        let billing = self.program.config(BILLING_ACCOUNT_CONFIG, "The billing account budgets are created under");
        let period = spec.period.as_str();
        let mut channels = Vec::new();
        for (i, email) in spec.notify.iter().enumerate() {
            // One channel per address, shared by the owner's budgets.
            let local = format!("budget-alerts-{i}");
            let existing = Self::resource_name(scope, &local);
            if self.program.resources.contains_key(&existing) {
                channels.push(Value::output(&existing, "name"));
                continue;
            }
            let channel = self.add(
                scope,
                &local,
                "gcp:monitoring:NotificationChannel",
                Value::map([
                    ("project", Value::str(&project)),
                    ("type", Value::str("email")),
                    ("displayName", Value::str(format!("{} budget alerts", scope.owner))),
                    ("labels", Value::map([("email_address", Value::str(email))])),
                ]),
            );
            channels.push(Value::output(&channel, "name"));
        }
        let units = spec.amount.trunc();
        let nanos = ((spec.amount - units) * 1e9).round();
        let mut specified = Value::map([("units", Value::str(format!("{}", units as i64)))]);
        if let Value::Map(map) = &mut specified {
            if let Some(currency) = &spec.currency {
                map.insert("currencyCode".to_owned(), Value::str(currency));
            }
            if nanos != 0.0 {
                map.insert("nanos".to_owned(), Value::Number(nanos));
            }
        }
        let when = match spec.period {
            BudgetPeriod::Monthly => ("calendarPeriod", Value::str("MONTH")),
            BudgetPeriod::Fixed { start } => (
                "customPeriod",
                Value::map([(
                    "startDate",
                    Value::map([
                        ("year", Value::Number(f64::from(start.year))),
                        ("month", Value::Number(f64::from(start.month))),
                        ("day", Value::Number(f64::from(start.day))),
                    ]),
                )]),
            ),
        };
        let thresholds = spec.alert_thresholds.iter().map(|t| Value::map([("thresholdPercent", Value::Number(*t))]));
        let properties = Value::map([
            ("billingAccount", Value::reference(billing)),
            ("displayName", Value::str(format!("{} {period}", scope.owner))),
            ("amount", Value::map([("specifiedAmount", specified)])),
            ("budgetFilter", Value::map([("projects", Value::list([Value::prefixed("projects/", number)])), when])),
            ("thresholdRules", Value::list(thresholds)),
            ("allUpdatesRule", Value::map([("monitoringNotificationChannels", Value::List(channels))])),
        ]);
        self.add(scope, &format!("budget-{period}"), "gcp:billing:Budget", properties);
        Ok(())
    }

    fn blob(&mut self, scope: &Scope, bucket: &BucketId, spec: &BlobSpec) -> Outcome<()> {
        let resource = self.buckets.get(bucket).cloned().unwrap_or_default();
        let properties = Value::map([
            ("bucket", Value::output(&resource, "name")),
            ("name", Value::str(&spec.path)),
            ("source", Value::StringAsset(Box::new(spec.content.clone()))),
            ("contentType", Value::str("text/plain")),
        ]);
        let name = self.add(scope, &format!("blob-{}", spec.name), "gcp:storage:BucketObject", properties);
        self.program.outputs.insert(format!("{name}-content"), spec.content.clone());
        Ok(())
    }

    fn bucket_address(&self, bucket: &BucketId) -> Value {
        let resource = self.buckets.get(bucket).cloned().unwrap_or_default();
        Value::prefixed("gs://", Ref::field(&resource, "name"))
    }
}
