//! The infrastructure design as data: which buckets, machine accounts and registries each
//! component brings, and which role groups and access levels get which access.
//!
//! Written once for every cloud. Never names a cloud product and never calls one (the driver
//! walks these tables and calls the `Cloud` trait).

use super::cloud::{AccountAccess, BucketAccess, External, ExternalAccess, Lifecycle, ProjectAccess, RegistryAccess};
use crate::definitions::Definitions;
use AccountKind::{Full, Standard, Test};

/// Days a deleted or overwritten object can be restored (as a noncurrent version).
pub const NONCURRENT_DAYS: u32 = 30;
/// Days before an upload that was started and never finished is removed.
pub const ABORT_UPLOADS_DAYS: u32 = 7;
/// Days objects live in a tmp bucket.
pub const TMP_DAYS: u32 = 8;
/// Days before objects in the archive bucket move to the archive storage class.
pub const ARCHIVE_AFTER_DAYS: u32 = 30;

/// The organisation's members-cache bucket (`<name prefix>-members-group-cache`).
pub const MEMBERS_CACHE_BUCKET: &str = "members-group-cache";

/// The component label of the members cache and of keys exported to another cloud.
pub const MEMBERS_CACHE: &str = "members-cache";
pub const CROSS_CLOUD: &str = "cross-cloud";

/// What a machine account is for. Access-level accounts get their access only through the
/// access-level group they are a member of (`<dataset>-test`, `-standard`, `-full`); the others
/// are granted directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountKind {
    Test,
    Standard,
    Full,
    Notebooks,
    /// The dataset's upload account (the sequencing provider's).
    Upload,
}

impl AccountKind {
    /// The access-level role whose group the account joins, for access-level accounts.
    pub fn access_level_role(self) -> Option<&'static str> {
        match self {
            AccountKind::Test => Some("test"),
            AccountKind::Standard => Some("standard"),
            AccountKind::Full => Some("full"),
            AccountKind::Notebooks | AccountKind::Upload => None,
        }
    }
}

/// One bucket of a dataset.
#[derive(Debug)]
pub struct BucketDesign {
    pub name: &'static str,
    pub component: &'static str,
    pub lifecycle: &'static [Lifecycle],
    /// Whoever reads pays for the egress (released data is read by outsiders).
    pub requester_pays: bool,
    /// Role groups and their access (a grant applies when the dataset has the role).
    pub groups: &'static [(&'static str, BucketAccess)],
    /// The organisation's services (`[services]` in groups/org.toml) and their access.
    pub services: &'static [(Service, BucketAccess)],
    /// The dataset's machine accounts granted directly (by design name), and their access.
    pub accounts: &'static [(&'static str, BucketAccess)],
}

/// An organisation-wide service account named in `groups/org.toml` (`[services]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    AnalysisRunner,
    MetadataServer,
    WebServer,
    /// The Cromwell server's account, which launches the dataset's Cromwell jobs.
    CromwellRunner,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::AnalysisRunner => "analysis-runner",
            Service::MetadataServer => "metadata-server",
            Service::WebServer => "web-server",
            Service::CromwellRunner => "cromwell-runner",
        }
    }
}

const KEEP: &[Lifecycle] = &[
    Lifecycle::Versioned { noncurrent_days: NONCURRENT_DAYS },
    Lifecycle::AbortUploadsAfter { days: ABORT_UPLOADS_DAYS },
];
const TMP: &[Lifecycle] =
    &[Lifecycle::DeleteAfter { days: TMP_DAYS }, Lifecycle::AbortUploadsAfter { days: ABORT_UPLOADS_DAYS }];
const ARCHIVE: &[Lifecycle] = &[
    Lifecycle::Versioned { noncurrent_days: NONCURRENT_DAYS },
    Lifecycle::AbortUploadsAfter { days: ABORT_UPLOADS_DAYS },
    Lifecycle::ArchiveAfter { days: ARCHIVE_AFTER_DAYS },
];

use BucketAccess::{Append, List, Mutate, Read};
use Service::{AnalysisRunner, WebServer};

/// Every dataset bucket, in creation order. Only `full` (and `test-full` on test buckets)
/// MUTATEs data; data managers READ main through main-read and MUTATE only upload buckets
/// (through the upload group, which includes them).
pub const BUCKETS: &[BucketDesign] = &[
    BucketDesign {
        name: "main",
        component: "storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("main-list", List), ("main-read", Read), ("main-create", Append), ("full", Mutate)],
        services: &[],
        accounts: &[],
    },
    BucketDesign {
        name: "main-tmp",
        component: "storage",
        lifecycle: TMP,
        requester_pays: false,
        groups: &[("main-read", Read), ("main-create", Append), ("full", Mutate)],
        services: &[],
        accounts: &[],
    },
    BucketDesign {
        name: "main-analysis",
        component: "storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("analysis", Read), ("main-read", Read), ("main-create", Append), ("full", Mutate)],
        services: &[],
        accounts: &[("notebooks", Read)],
    },
    BucketDesign {
        name: "main-web",
        component: "storage",
        lifecycle: KEEP,
        requester_pays: false,
        // APPEND includes reading: main-read (standard accounts, data managers) reads and
        // creates web reports.
        groups: &[("analysis", Read), ("main-read", Append), ("full", Mutate)],
        services: &[(WebServer, Read)],
        accounts: &[("notebooks", Read)],
    },
    BucketDesign {
        name: "archive",
        component: "storage",
        lifecycle: ARCHIVE,
        requester_pays: false,
        groups: &[("main-list", List), ("full", Mutate)],
        services: &[],
        accounts: &[],
    },
    BucketDesign {
        name: "test",
        component: "test-storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[("notebooks", Read)],
    },
    BucketDesign {
        name: "test-tmp",
        component: "test-storage",
        lifecycle: TMP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[("notebooks", Mutate)],
    },
    BucketDesign {
        name: "test-analysis",
        component: "test-storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[("notebooks", Read)],
    },
    BucketDesign {
        name: "test-web",
        component: "test-storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[(WebServer, Read)],
        accounts: &[],
    },
    BucketDesign {
        name: "test-upload",
        component: "test-storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[],
    },
    BucketDesign {
        name: "hail",
        component: "hail",
        lifecycle: TMP,
        requester_pays: false,
        // Hail's temporary data and compiled code: written by the hail accounts and the
        // analysis runner only, not by every account of an access level.
        groups: &[],
        services: &[(AnalysisRunner, Mutate)],
        accounts: &[("hail-test", Mutate), ("hail-standard", Mutate), ("hail-full", Mutate)],
    },
    BucketDesign {
        name: "upload",
        component: "upload",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("main-read", Read), ("analysis", Read), ("upload", Mutate), ("full", Mutate)],
        services: &[],
        accounts: &[("main-upload", Mutate)],
    },
    BucketDesign {
        name: "release",
        component: "release",
        lifecycle: KEEP,
        requester_pays: true,
        groups: &[("analysis", Read), ("release-access", Read), ("full", Mutate)],
        services: &[],
        accounts: &[],
    },
];

/// Who may use a machine account, besides nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountUser {
    /// A role group of the dataset (people who run workloads as the account, e.g. notebooks).
    Role(&'static str),
    /// The account itself (a VM that runs as the account it was started with).
    Itself,
    /// Another machine account of the dataset, by design name.
    Account(&'static str),
    /// An organisation service's account.
    Service(Service),
}

/// One machine account of a dataset.
#[derive(Debug)]
pub struct AccountDesign {
    pub name: &'static str,
    pub component: &'static str,
    pub kind: AccountKind,
    /// Who may use or impersonate the account: only identities that must. Never an
    /// access-level group, whose every account could then act as this one.
    pub users: &'static [(AccountUser, AccountAccess)],
    /// Role groups of the dataset the account is a member of besides its access-level group
    /// (memberships are the group sync's).
    pub member_of: &'static [&'static str],
    /// Whether a dataset on several clouds stores this account's key on its other clouds
    /// (read there by the account of the same name).
    pub export_key: bool,
    /// Whether the account's key is kept as a secret in its own cloud, for workloads that
    /// run as it from elsewhere (cromwell), and who reads it.
    pub stored_key: bool,
}

use AccountUser::{Itself, Role};

const CROMWELL_USERS: &[(AccountUser, AccountAccess)] =
    &[(Itself, AccountAccess::Use), (AccountUser::Service(Service::CromwellRunner), AccountAccess::Use)];

/// Every dataset machine account, in creation order.
pub const ACCOUNTS: &[AccountDesign] = &[
    AccountDesign {
        name: "hail-test",
        component: "hail",
        kind: Test,
        users: &[],
        member_of: &[],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "hail-standard",
        component: "hail",
        kind: Standard,
        users: &[],
        member_of: &[],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "hail-full",
        component: "hail",
        kind: Full,
        users: &[],
        member_of: &[],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "cromwell-test",
        component: "cromwell",
        kind: Test,
        users: CROMWELL_USERS,
        member_of: &[],
        export_key: false,
        stored_key: true,
    },
    AccountDesign {
        name: "cromwell-standard",
        component: "cromwell",
        kind: Standard,
        users: CROMWELL_USERS,
        member_of: &[],
        export_key: false,
        stored_key: true,
    },
    AccountDesign {
        name: "cromwell-full",
        component: "cromwell",
        kind: Full,
        users: CROMWELL_USERS,
        member_of: &[],
        export_key: false,
        stored_key: true,
    },
    // Spark clusters run as these; the hail account of the same level starts them.
    AccountDesign {
        name: "dataproc-test",
        component: "spark",
        kind: Test,
        users: &[(AccountUser::Account("hail-test"), AccountAccess::Use)],
        member_of: &[],
        export_key: false,
        stored_key: false,
    },
    AccountDesign {
        name: "dataproc-standard",
        component: "spark",
        kind: Standard,
        users: &[(AccountUser::Account("hail-standard"), AccountAccess::Use)],
        member_of: &[],
        export_key: false,
        stored_key: false,
    },
    AccountDesign {
        name: "dataproc-full",
        component: "spark",
        kind: Full,
        users: &[(AccountUser::Account("hail-full"), AccountAccess::Use)],
        member_of: &[],
        export_key: false,
        stored_key: false,
    },
    AccountDesign {
        name: "notebooks",
        component: "notebooks",
        kind: AccountKind::Notebooks,
        users: &[(Role("analysis"), AccountAccess::Use)],
        // A notebook reads what its analysts read.
        member_of: &["analysis"],
        export_key: false,
        stored_key: false,
    },
    AccountDesign {
        name: "main-upload",
        component: "upload",
        kind: AccountKind::Upload,
        users: &[(Role("data-manager"), AccountAccess::ManageKeys)],
        member_of: &[],
        export_key: false,
        stored_key: false,
    },
];

/// One container registry of a dataset.
#[derive(Debug)]
pub struct RegistryDesign {
    pub name: &'static str,
    pub component: &'static str,
    pub groups: &'static [(&'static str, RegistryAccess)],
}

/// Production images are pushed by images-writer (the standard and full accounts, roles.toml),
/// development images by images-dev-writer (analysts, test and test-full).
pub const REGISTRIES: &[RegistryDesign] = &[
    RegistryDesign {
        name: "images",
        component: "registry",
        groups: &[
            ("images-reader", RegistryAccess::Read),
            ("test-full", RegistryAccess::Read),
            ("images-dev-reader", RegistryAccess::Read),
            ("images-writer", RegistryAccess::Write),
        ],
    },
    RegistryDesign {
        name: "images-dev",
        component: "registry",
        groups: &[
            ("images-dev-reader", RegistryAccess::Read),
            ("test-full", RegistryAccess::Read),
            ("images-dev-writer", RegistryAccess::Write),
        ],
    },
];

/// An organisation group the infrastructure derives from the datasets (the group sync creates
/// it like any other): one grant on a shared resource reaches every dataset's groups through
/// it, which keeps that resource's policy small however many datasets there are.
#[derive(Debug)]
pub struct WorkloadGroup {
    pub name: &'static str,
    pub description: &'static str,
    /// Only datasets with this component take part.
    pub component: Option<&'static str>,
    /// Role groups of each taking-part dataset nested in this group (those the dataset has).
    pub roles: &'static [&'static str],
    /// Machine accounts of each taking-part dataset that are members, by design name.
    pub accounts: &'static [&'static str],
    /// Whether the organisation has what the group is for.
    pub wanted: fn(&Definitions) -> bool,
}

pub const CONFIG_READERS_GROUP: &str = "config-readers";
pub const IMAGE_READERS_GROUP: &str = "analysis-runner-image-readers";
pub const GIT_TOKEN_READERS_GROUP: &str = "git-token-readers";
pub const METADATA_INVOKERS_GROUP: &str = "metadata-invokers";
pub const CROMWELL_ACCESS_GROUP: &str = "cromwell-access";

pub const WORKLOAD_GROUPS: &[WorkloadGroup] = &[
    WorkloadGroup {
        name: CONFIG_READERS_GROUP,
        description: "Reads the config bucket: every dataset's analysts and access levels.",
        component: None,
        roles: &["analysis", "test", "standard", "full"],
        accounts: &[],
        wanted: |d| d.datasets.values().any(|s| s.gcp.is_some() || s.azure.is_some()),
    },
    WorkloadGroup {
        name: IMAGE_READERS_GROUP,
        description: "Pulls the analysis runner's driver images: every dataset's analysts and access levels.",
        component: None,
        roles: &["analysis", "test", "standard", "full"],
        accounts: &[],
        wanted: |d| d.organisation.gcp.analysis_runner_registry.is_some(),
    },
    WorkloadGroup {
        name: GIT_TOKEN_READERS_GROUP,
        description: "Reads the token jobs clone the analysis repository with: every dataset's access levels.",
        component: None,
        roles: &["test", "standard", "full"],
        accounts: &[],
        wanted: |d| d.organisation.gcp.git_token_secret.is_some(),
    },
    WorkloadGroup {
        name: METADATA_INVOKERS_GROUP,
        description: "Calls the metadata server: analysts and metadata groups of datasets with Metamist.",
        component: Some("metamist"),
        roles: &["analysis", "metadata-access", "metadata-contribute", "metadata-write"],
        accounts: &[],
        wanted: |d| d.organisation.gcp.metadata_service.is_some(),
    },
    WorkloadGroup {
        name: CROMWELL_ACCESS_GROUP,
        description: "Submits workflows to the Cromwell server: the hail accounts of datasets with Cromwell.",
        component: Some("cromwell"),
        roles: &[],
        accounts: &["hail-test", "hail-standard", "hail-full"],
        wanted: |d| d.organisation.services.contains_key(Service::CromwellRunner.as_str()),
    },
];

/// Organisation services that join each dataset's role group, with the component that needs it.
pub const SERVICE_MEMBERSHIPS: &[(&str, Service, &str)] = &[("metamist", Service::MetadataServer, "main-list")];

/// Grants on the organisation's existing resources (`[infra.gcp]`), made once by the
/// organisation to a workload group.
pub const ORGANISATION_EXTERNAL_GRANTS: &[(External, ExternalAccess, &str)] = &[
    (External::MetadataService, ExternalAccess::Invoke, METADATA_INVOKERS_GROUP),
    (External::AnalysisRunnerRegistry, ExternalAccess::Read, IMAGE_READERS_GROUP),
    (External::GitTokenSecret, ExternalAccess::Read, GIT_TOKEN_READERS_GROUP),
];

/// Grants on the organisation's existing resources made per dataset: (component, resource,
/// access, role group). Machine accounts in `EXTERNAL_ACCOUNT_GRANTS`.
pub const EXTERNAL_GRANTS: &[(&str, External, ExternalAccess, &str)] =
    &[("analysis-runner", External::AnalysisRunnerService, ExternalAccess::Invoke, "analysis")];

/// (account, resource, access): e.g. the notebook account runs VMs in the notebooks project.
pub const EXTERNAL_ACCOUNT_GRANTS: &[(&str, External, ExternalAccess)] =
    &[("notebooks", External::NotebooksProject, ExternalAccess::RunCompute)];

/// Role groups whose members are cached as `<group>-members.txt`, and the component that needs
/// the cache (`None`: every dataset).
pub const CACHED_ROLES: &[(&str, Option<&str>)] = &[
    ("analysis", None),
    ("web-access", None),
    ("metadata-access", Some("metamist")),
    ("metadata-contribute", Some("metamist")),
    ("metadata-write", Some("metamist")),
];

/// The organisation's config bucket: what other tools read (each dataset's storage config).
pub const CONFIG_BUCKET: &str = "config";
/// The component label of the config bucket and the storage configs.
pub const CONFIG: &str = "config";
pub const CONFIG_READERS: &[(Service, BucketAccess)] =
    &[(Service::AnalysisRunner, Read), (Service::MetadataServer, Read), (Service::WebServer, Read)];

/// Each dataset's `storage.toml`: per access level, the address of each bucket kind. The
/// standard and full levels use the main buckets, the test level the test buckets.
pub const STORAGE_CONFIG: &[(&str, &[(&str, &str)])] = &[
    (
        "test",
        &[
            ("default", "test"),
            ("analysis", "test-analysis"),
            ("tmp", "test-tmp"),
            ("web", "test-web"),
            ("upload", "test-upload"),
        ],
    ),
    (
        "standard",
        &[
            ("default", "main"),
            ("analysis", "main-analysis"),
            ("tmp", "main-tmp"),
            ("web", "main-web"),
            ("upload", "upload"),
            ("hail", "hail"),
        ],
    ),
    (
        "full",
        &[
            ("default", "main"),
            ("analysis", "main-analysis"),
            ("tmp", "main-tmp"),
            ("web", "main-web"),
            ("upload", "upload"),
            ("archive", "archive"),
            ("release", "release"),
            ("hail", "hail"),
        ],
    ),
];

/// Who reads a stored machine-account key besides the dataset's hail account of the same
/// access level.
pub const STORED_KEY_SERVICES: &[Service] = &[Service::AnalysisRunner];

/// The members-cache bucket: versioned, and read only by the organisation's services.
pub const MEMBERS_CACHE_LIFECYCLE: &[Lifecycle] = KEEP;
pub const MEMBERS_CACHE_READERS: &[(Service, BucketAccess)] =
    &[(Service::AnalysisRunner, Read), (Service::MetadataServer, Read), (Service::WebServer, Read)];

/// Access a role group may request for a while instead of holding it, each request approved by
/// the approver role's group (never by the requester): (role, bucket, access, at most this many
/// days, approvers). Opt-in: only a dataset whose definitions name someone in the role's group
/// (or whose dependants do) gets it. Never a permanent grant.
pub const ON_REQUEST: &[(&str, &str, BucketAccess, u32, &str)] =
    &[("tmp-main-read-access", "main", Read, 7, "data-manager")];

/// The administrators' emergency write (`[infra] administrators`): requested for at most this
/// many days and approved by another administrator; instead of holding `full`.
pub const EMERGENCY_WRITE: (&str, BucketAccess, u32) = ("main", Mutate, 1);

/// Access to a dataset's project (GCP) or resource group (Azure) as a whole:
/// (component the dataset needs, or every dataset; role; access).
pub const PROJECT_GRANTS: &[(Option<&str>, &str, ProjectAccess)] = &[
    (None, "main-list", ProjectAccess::ListBuckets),
    (None, "analysis", ProjectAccess::ViewCompute),
    (None, "analysis", ProjectAccess::ViewLogs),
    (None, "analysis", ProjectAccess::ViewMonitoring),
    (None, "data-manager", ProjectAccess::ViewIamRoles),
    // Reading requester-pays buckets (release) bills the reader's project usage.
    (None, "analysis", ProjectAccess::UseRequesterPays),
    (None, "test", ProjectAccess::UseRequesterPays),
    (None, "standard", ProjectAccess::UseRequesterPays),
    (None, "full", ProjectAccess::UseRequesterPays),
    (Some("spark"), "analysis", ProjectAccess::ViewClusters),
];

/// Project access of the dataset's machine accounts: (component, account, access).
pub const ACCOUNT_PROJECT_GRANTS: &[(&str, &str, ProjectAccess)] = &[
    ("cromwell", "cromwell-test", ProjectAccess::ReportBatchJobs),
    ("cromwell", "cromwell-standard", ProjectAccess::ReportBatchJobs),
    ("cromwell", "cromwell-full", ProjectAccess::ReportBatchJobs),
    ("spark", "hail-test", ProjectAccess::AdminClusters),
    ("spark", "hail-standard", ProjectAccess::AdminClusters),
    ("spark", "hail-full", ProjectAccess::AdminClusters),
    ("spark", "hail-test", ProjectAccess::RunClusters),
    ("spark", "hail-standard", ProjectAccess::RunClusters),
    ("spark", "hail-full", ProjectAccess::RunClusters),
    ("spark", "dataproc-test", ProjectAccess::RunClusters),
    ("spark", "dataproc-standard", ProjectAccess::RunClusters),
    ("spark", "dataproc-full", ProjectAccess::RunClusters),
];

/// Project access of the organisation's services in a dataset's project: (component, service, access).
pub const SERVICE_PROJECT_GRANTS: &[(&str, Service, ProjectAccess)] =
    &[("cromwell", Service::CromwellRunner, ProjectAccess::EditBatchJobs)];

/// Buckets of the common dataset that more groups read: test-level accounts and analysts of
/// every dataset reach the reference data through the common dataset's test-read.
pub const COMMON_BUCKET_GRANTS: &[(&str, &str, BucketAccess)] = &[("main", "test-read", Read)];

/// The role whose group receives budget alerts.
pub const BUDGET_CONTACT_ROLE: &str = "data-manager";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::KNOWN_COMPONENTS;

    #[test]
    fn the_design_names_known_components_and_unique_things() {
        let components = BUCKETS
            .iter()
            .map(|b| b.component)
            .chain(ACCOUNTS.iter().map(|a| a.component))
            .chain(WORKLOAD_GROUPS.iter().filter_map(|g| g.component))
            .chain(REGISTRIES.iter().map(|r| r.component))
            .chain(CACHED_ROLES.iter().filter_map(|(_, c)| *c));
        for component in components {
            assert!(KNOWN_COMPONENTS.contains(&component), "{component}");
        }
        let mut names: Vec<&str> = BUCKETS.iter().map(|b| b.name).collect();
        names.push(MEMBERS_CACHE_BUCKET);
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "bucket names are unique");
    }
}
