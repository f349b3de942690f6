//! The `Cloud` trait: the shared abstraction every cloud implements, in cloud-neutral terms.
//!
//! Owns the vocabulary of the infrastructure design (buckets with lifecycle rules, access
//! levels, machine accounts, secrets, registries, budgets, blobs) and the opaque handles that
//! tie calls together. Never names a cloud product; `gcp`, `azure` and `dry_run` translate.

use crate::definitions::{Dataset, Date};

use super::program::{Owner, Value};

/// One cloud: turns design calls into resources of its own program (or records them).
///
/// Every call says who the result belongs to and where it lives (`Scope`). A call the cloud
/// cannot provide returns `Unsupported`; the driver reports it, it is never silently skipped.
pub trait Cloud {
    /// Short name used in logical resource names and reports: `gcp`, `azure`.
    fn name(&self) -> &'static str;

    /// Whether the dataset is deployed on this cloud (it has settings for it).
    fn hosts(&self, dataset: &Dataset) -> bool;

    /// What is missing from the dataset's settings for this cloud, if anything.
    fn site_problem(&self, dataset: &Dataset) -> Option<String>;

    /// A storage bucket (an Azure blob container) with lifecycle rules.
    /// Whatever the site needs before a component's resources can exist there (on GCP, the
    /// component's APIs enabled in the project). Called once per dataset and component.
    fn prepare(&mut self, _scope: &Scope) -> Outcome<()> {
        Ok(())
    }

    fn bucket(&mut self, scope: &Scope, spec: &BucketSpec) -> Outcome<BucketId>;

    /// Whether buckets can bill their readers. A cloud that cannot still gets the bucket, with
    /// the same access, and the plan says who pays instead.
    fn requester_pays(&self) -> Outcome<()> {
        Ok(())
    }

    /// Gives a group or machine account access to a bucket.
    fn grant_bucket(&mut self, scope: &Scope, bucket: &BucketId, who: &Principal, access: BucketAccess) -> Outcome<()>;

    /// Lets `who` request access to a bucket for a while (a privileged access entitlement),
    /// each request approved by `request.approvers`, instead of holding it permanently.
    fn grant_bucket_on_request(&mut self, scope: &Scope, bucket: &BucketId, request: &OnRequest) -> Outcome<()>;

    /// What the organisation defines once for every dataset's grants (on GCP, custom roles that
    /// add bucket metadata reads to object access). Called with the organisation's scope.
    fn organisation_roles(&mut self, _scope: &Scope) -> Outcome<()> {
        Ok(())
    }

    /// Lets `who` use one of the organisation's existing resources (`[infra.gcp]`), which this
    /// program never manages.
    fn grant_external(
        &mut self,
        scope: &Scope,
        target: External,
        who: &Principal,
        access: ExternalAccess,
    ) -> Outcome<()>;

    /// Access to the dataset's project (GCP) or resource group (Azure) as a whole.
    fn grant_project(&mut self, scope: &Scope, who: &Principal, access: ProjectAccess) -> Outcome<()>;

    /// A machine account (service account, managed identity), named within its site.
    fn machine_account(&mut self, scope: &Scope, name: &str) -> Outcome<AccountId>;

    /// A key for a machine account, for use outside its cloud; returns the key's value.
    fn machine_account_key(&mut self, scope: &Scope, account: &AccountId) -> Outcome<Value>;

    /// Lets a group or machine account use or impersonate a machine account.
    fn grant_machine_account(
        &mut self,
        scope: &Scope,
        account: &AccountId,
        who: &Principal,
        access: AccountAccess,
    ) -> Outcome<()>;

    /// A secret (without a value until `secret_version`).
    fn secret(&mut self, scope: &Scope, name: &str) -> Outcome<SecretId>;

    /// Stores a value as the secret's current version.
    fn secret_version(&mut self, scope: &Scope, secret: &SecretId, value: &Value) -> Outcome<()>;

    /// Lets a group or machine account read a secret.
    fn grant_secret(&mut self, scope: &Scope, secret: &SecretId, who: &Principal) -> Outcome<()>;

    /// A container image registry.
    fn registry(&mut self, scope: &Scope, name: &str) -> Outcome<RegistryId>;

    /// Lets a group or machine account pull from (or push to) a registry.
    fn grant_registry(
        &mut self,
        scope: &Scope,
        registry: &RegistryId,
        who: &Principal,
        access: RegistryAccess,
    ) -> Outcome<()>;

    /// A budget with alert thresholds.
    fn budget(&mut self, scope: &Scope, spec: &BudgetSpec) -> Outcome<()>;

    /// A file in a bucket, e.g. a members-cache file.
    /// Writes a small object; its content is also a stack output (`<resource>-content`).
    fn blob(&mut self, scope: &Scope, bucket: &BucketId, spec: &BlobSpec) -> Outcome<()>;

    /// How tools address a bucket made by this cloud (`gs://…`, `https://….blob.core.windows.net/…`).
    fn bucket_address(&self, bucket: &BucketId) -> Value {
        Value::str(bucket.as_str())
    }
}

/// The result of a design call.
pub type Outcome<T> = Result<T, Unsupported>;

/// A design call a cloud cannot provide.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unsupported {
    /// What was asked for, e.g. "a fixed budget".
    pub what: String,
    /// Why this cloud cannot provide it.
    pub reason: String,
}

/// Who a call is for, where the result lives, and which component asked for it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub owner: &'a Owner,
    /// The dataset whose cloud settings (project, subscription, region) are used.
    pub site: &'a Dataset,
    pub component: &'a str,
}

/// A bucket's place in the design.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpec {
    /// The design name, e.g. `main`, `main-tmp`, `members-group-cache`.
    pub name: String,
    pub lifecycle: Vec<Lifecycle>,
    /// Readers pay for reading (released data).
    pub requester_pays: bool,
}

/// What happens to objects over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Overwritten and deleted objects are kept as noncurrent versions for this many days.
    Versioned { noncurrent_days: u32 },
    /// Uploads started and never finished are removed after this many days.
    AbortUploadsAfter { days: u32 },
    /// Objects are deleted this many days after they were written (tmp buckets).
    DeleteAfter { days: u32 },
    /// Objects move to the archive storage class this many days after they were written.
    ArchiveAfter { days: u32 },
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Lifecycle::Versioned { noncurrent_days } => {
                write!(f, "versioned, old versions kept {noncurrent_days} days")
            }
            Lifecycle::AbortUploadsAfter { days } => write!(f, "abort unfinished uploads after {days} days"),
            Lifecycle::DeleteAfter { days } => write!(f, "delete after {days} days"),
            Lifecycle::ArchiveAfter { days } => write!(f, "archive after {days} days"),
        }
    }
}

/// Access to a bucket's objects, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BucketAccess {
    /// List object names, read nothing.
    List,
    /// Read objects.
    Read,
    /// Create objects, never overwrite or delete.
    Append,
    /// Read, write and delete objects.
    Mutate,
}

impl BucketAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            BucketAccess::List => "list",
            BucketAccess::Read => "read",
            BucketAccess::Append => "append",
            BucketAccess::Mutate => "mutate",
        }
    }
}

/// Access to a machine account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountAccess {
    /// Run workloads as the account (attach it).
    Use,
    /// Obtain the account's credentials on demand.
    Impersonate,
    /// Create and delete the account's keys (for accounts used outside the cloud).
    ManageKeys,
}

impl AccountAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountAccess::Use => "use",
            AccountAccess::Impersonate => "impersonate",
            AccountAccess::ManageKeys => "manage-keys",
        }
    }
}

/// What a principal may see of a dataset's project as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProjectAccess {
    /// See which buckets exist.
    ListBuckets,
    /// See compute resources (VMs, clusters, batch jobs).
    ViewCompute,
    ViewLogs,
    ViewMonitoring,
    /// See which roles exist and who holds them.
    ViewIamRoles,
    /// Bill the project for reading requester-pays buckets.
    UseRequesterPays,
    /// Report the state of batch jobs running as the account (a batch VM's agent).
    ReportBatchJobs,
    /// Create and manage batch jobs.
    EditBatchJobs,
    /// Create and delete compute clusters (Dataproc).
    AdminClusters,
    /// Run a cluster's work, without the storage access a predefined worker role carries.
    RunClusters,
    /// See clusters and their jobs.
    ViewClusters,
}

impl ProjectAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectAccess::ListBuckets => "list-buckets",
            ProjectAccess::ViewCompute => "view-compute",
            ProjectAccess::ViewLogs => "view-logs",
            ProjectAccess::ViewMonitoring => "view-monitoring",
            ProjectAccess::ViewIamRoles => "view-iam-roles",
            ProjectAccess::UseRequesterPays => "use-requester-pays",
            ProjectAccess::ReportBatchJobs => "report-batch-jobs",
            ProjectAccess::EditBatchJobs => "edit-batch-jobs",
            ProjectAccess::AdminClusters => "admin-clusters",
            ProjectAccess::RunClusters => "run-clusters",
            ProjectAccess::ViewClusters => "view-clusters",
        }
    }
}

/// Access to a container registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RegistryAccess {
    Read,
    Write,
}

impl RegistryAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryAccess::Read => "read",
            RegistryAccess::Write => "write",
        }
    }
}

/// A request for time-limited access: who may ask, what for, and who approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnRequest<'a> {
    pub who: Principal<'a>,
    pub access: BucketAccess,
    pub max_days: u32,
    /// Approve each request; the cloud never lets a requester approve their own.
    pub approvers: Principal<'a>,
}

/// One of the organisation's existing resources that workloads use (`[infra.gcp]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum External {
    AnalysisRunnerService,
    MetadataService,
    AnalysisRunnerRegistry,
    GitTokenSecret,
    NotebooksProject,
}

impl External {
    pub fn as_str(self) -> &'static str {
        match self {
            External::AnalysisRunnerService => "analysis-runner-service",
            External::MetadataService => "metadata-service",
            External::AnalysisRunnerRegistry => "analysis-runner-registry",
            External::GitTokenSecret => "git-token-secret",
            External::NotebooksProject => "notebooks-project",
        }
    }
}

/// Access to an external resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExternalAccess {
    /// Call a service.
    Invoke,
    /// Read a secret or pull images.
    Read,
    /// Run and manage VMs in a project.
    RunCompute,
}

impl ExternalAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            ExternalAccess::Invoke => "invoke",
            ExternalAccess::Read => "read",
            ExternalAccess::RunCompute => "run-compute",
        }
    }
}

/// Who is granted access. Groups are referenced, never created: the group sync owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    Group {
        name: &'a str,
        email: &'a str,
    },
    Account(&'a AccountId),
    /// An organisation service's existing account (`[services]` in groups/org.toml), by email.
    Service {
        name: &'a str,
        email: &'a str,
    },
}

/// A budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSpec {
    pub period: BudgetPeriod,
    pub amount: f64,
    pub currency: Option<String>,
    /// Fractions of the amount at which to alert, e.g. 0.5, 0.9, 1.0.
    pub alert_thresholds: Vec<f64>,
    /// Emails that receive the alerts.
    pub notify: Vec<String>,
}

/// How a budget's spending is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetPeriod {
    /// Resets every calendar month.
    Monthly,
    /// One amount for all spending since `start`.
    Fixed { start: Date },
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPeriod::Monthly => "monthly",
            BudgetPeriod::Fixed { .. } => "fixed",
        }
    }
}

/// A file to store.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobSpec {
    /// The design name, unique within the owner, e.g. `members-cache-analysis`.
    pub name: String,
    /// The object name in the bucket, e.g. `tob-wgs-analysis-members.txt`.
    pub path: String,
    /// Text, possibly with references to other resources' outputs (bucket names).
    pub content: Value,
}

/// Handles tie design calls together: `<owner>/<design name>`, valid with the cloud that made
/// them (each cloud keeps its own table from handle to resources).
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(owner: &Owner, name: &str) -> $name {
                $name(format!("{owner}/{name}"))
            }

            /// The design name, without the owner.
            pub fn name(&self) -> &str {
                self.0.split_once('/').map_or(self.0.as_str(), |(_, name)| name)
            }

            /// `<owner>/<name>`.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

handle!(
    /// A bucket made by a `Cloud`.
    BucketId
);
handle!(
    /// A machine account made by a `Cloud`.
    AccountId
);
handle!(
    /// A secret made by a `Cloud`.
    SecretId
);
handle!(
    /// A container registry made by a `Cloud`.
    RegistryId
);

impl Principal<'_> {
    /// A short label for logical names: `group-<role>` for the owner's own role groups (the
    /// group name without `<group prefix><owner>-`), `group-<name>` for others,
    /// `account-<name>` for machine accounts.
    pub fn label(&self, group_prefix: &str, owner: &Owner) -> String {
        match self {
            Principal::Group { name, .. } => {
                let own = format!("{group_prefix}{}-", owner.prefix());
                format!("group-{}", name.strip_prefix(&own).unwrap_or(name))
            }
            Principal::Account(account) => format!("account-{}", account.name()),
            Principal::Service { name, .. } => format!("service-{name}"),
        }
    }
}
