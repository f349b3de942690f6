//! The infrastructure design as data: which buckets, machine accounts and registries each
//! component brings, and which role groups and access levels get which access.
//!
//! Written once for every cloud. Never names a cloud product and never calls one (the driver
//! walks these tables and calls the `Cloud` trait).

use super::cloud::{AccountAccess, BucketAccess, Lifecycle, ProjectAccess, RegistryAccess};
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
    /// Machine accounts granted directly (not access-level accounts), and their access.
    pub accounts: &'static [(AccountKind, BucketAccess)],
}

/// An organisation-wide service account named in `groups/org.toml` (`[services]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    AnalysisRunner,
    MetadataServer,
    WebServer,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::AnalysisRunner => "analysis-runner",
            Service::MetadataServer => "metadata-server",
            Service::WebServer => "web-server",
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

use AccountKind::{Notebooks, Upload};
use BucketAccess::{Append, List, Mutate, Read};
use Service::WebServer;

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
        accounts: &[(Notebooks, Append)],
    },
    BucketDesign {
        name: "main-analysis",
        component: "storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("analysis", Read), ("main-read", Read), ("main-create", Append), ("full", Mutate)],
        services: &[],
        accounts: &[(Notebooks, Read)],
    },
    BucketDesign {
        name: "main-web",
        component: "storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("analysis", Read), ("main-read", Append), ("full", Mutate)],
        services: &[(WebServer, Read)],
        accounts: &[(Notebooks, Read)],
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
        accounts: &[(Notebooks, Read)],
    },
    BucketDesign {
        name: "test-tmp",
        component: "test-storage",
        lifecycle: TMP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[(Notebooks, Mutate)],
    },
    BucketDesign {
        name: "test-analysis",
        component: "test-storage",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        services: &[],
        accounts: &[(Notebooks, Read)],
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
        // Hail's temporary data, written by batch jobs at the standard and full levels.
        groups: &[("standard", Mutate), ("full", Mutate)],
        services: &[],
        accounts: &[],
    },
    BucketDesign {
        name: "upload",
        component: "upload",
        lifecycle: KEEP,
        requester_pays: false,
        groups: &[("main-read", Read), ("analysis", Read), ("upload", Mutate), ("full", Mutate)],
        services: &[],
        accounts: &[(Upload, Mutate)],
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

/// One machine account of a dataset.
#[derive(Debug)]
pub struct AccountDesign {
    pub name: &'static str,
    pub component: &'static str,
    pub kind: AccountKind,
    /// Role groups that may use or impersonate the account.
    pub users: &'static [(&'static str, AccountAccess)],
    /// Whether a dataset on several clouds stores this account's key on its other clouds.
    pub export_key: bool,
    /// Whether the account's key is kept as a secret in its own cloud, for workloads that
    /// run as it from elsewhere (cromwell), and who reads it.
    pub stored_key: bool,
}

/// Every dataset machine account, in creation order.
pub const ACCOUNTS: &[AccountDesign] = &[
    AccountDesign {
        name: "hail-test",
        component: "hail",
        kind: Test,
        users: &[("test", AccountAccess::Use)],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "hail-standard",
        component: "hail",
        kind: Standard,
        users: &[("standard", AccountAccess::Use)],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "hail-full",
        component: "hail",
        kind: Full,
        users: &[("full", AccountAccess::Use)],
        export_key: true,
        stored_key: false,
    },
    AccountDesign {
        name: "cromwell-test",
        component: "cromwell",
        kind: Test,
        users: &[("test", AccountAccess::Impersonate)],
        export_key: false,
        stored_key: true,
    },
    AccountDesign {
        name: "cromwell-standard",
        component: "cromwell",
        kind: Standard,
        users: &[("standard", AccountAccess::Impersonate)],
        export_key: false,
        stored_key: true,
    },
    AccountDesign {
        name: "cromwell-full",
        component: "cromwell",
        kind: Full,
        users: &[("full", AccountAccess::Impersonate)],
        export_key: false,
        stored_key: true,
    },
    AccountDesign {
        name: "notebooks",
        component: "notebooks",
        kind: Notebooks,
        users: &[("analysis", AccountAccess::Use)],
        export_key: false,
        stored_key: false,
    },
    AccountDesign {
        name: "main-upload",
        component: "upload",
        kind: Upload,
        users: &[("data-manager", AccountAccess::ManageKeys)],
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

pub const REGISTRIES: &[RegistryDesign] = &[
    RegistryDesign {
        name: "images",
        component: "registry",
        groups: &[("images-reader", RegistryAccess::Read), ("images-writer", RegistryAccess::Write)],
    },
    RegistryDesign {
        name: "images-dev",
        component: "registry",
        groups: &[("images-dev-reader", RegistryAccess::Read), ("images-dev-writer", RegistryAccess::Write)],
    },
];

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

/// Access a role group may request for a while instead of holding it: (role, bucket, access,
/// at most this many days). Never a permanent grant.
pub const ON_REQUEST: &[(&str, &str, BucketAccess, u32)] = &[("tmp-main-read-access", "main", Read, 7)];

/// Access to a dataset's project (GCP) or resource group (Azure) as a whole.
pub const PROJECT_GRANTS: &[(&str, ProjectAccess)] = &[
    ("main-list", ProjectAccess::ListBuckets),
    ("analysis", ProjectAccess::ViewCompute),
    ("analysis", ProjectAccess::ViewLogs),
    ("analysis", ProjectAccess::ViewMonitoring),
    ("data-manager", ProjectAccess::ViewIamRoles),
];

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
