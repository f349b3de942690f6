//! The infrastructure design as data: which buckets, machine accounts and registries each
//! component brings, and which role groups and access levels get which access.
//!
//! Written once for every cloud. Never names a cloud product and never calls one (the driver
//! walks these tables and calls the `Cloud` trait).

use super::cloud::{AccountAccess, BucketAccess, Lifecycle, RegistryAccess};

/// Days a deleted object can be restored.
pub const SOFT_DELETE_DAYS: u32 = 30;
/// Days objects live in a tmp bucket.
pub const TMP_DAYS: u32 = 8;
/// Days before objects in the archive bucket move to the archive storage class.
pub const ARCHIVE_AFTER_DAYS: u32 = 30;

/// The organisation's members-cache bucket (`<name prefix>-members-group-cache`).
pub const MEMBERS_CACHE_BUCKET: &str = "members-group-cache";

/// The component label of the members cache and of keys exported to another cloud.
pub const MEMBERS_CACHE: &str = "members-cache";
pub const CROSS_CLOUD: &str = "cross-cloud";

/// Who runs a machine account's workloads: an access level of the analysis runner, or the
/// dataset's notebooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountKind {
    Test,
    Standard,
    Full,
    Notebooks,
}

/// One bucket of a dataset.
#[derive(Debug)]
pub struct BucketDesign {
    pub name: &'static str,
    pub component: &'static str,
    pub lifecycle: &'static [Lifecycle],
    /// Role groups and their access (a grant applies when the dataset has the role).
    pub groups: &'static [(&'static str, BucketAccess)],
    /// Machine accounts of each kind and their access.
    pub accounts: &'static [(AccountKind, BucketAccess)],
}

const KEEP: &[Lifecycle] = &[Lifecycle::SoftDelete { days: SOFT_DELETE_DAYS }];
const TMP: &[Lifecycle] = &[Lifecycle::DeleteAfter { days: TMP_DAYS }];
const ARCHIVE: &[Lifecycle] =
    &[Lifecycle::SoftDelete { days: SOFT_DELETE_DAYS }, Lifecycle::ArchiveAfter { days: ARCHIVE_AFTER_DAYS }];

use AccountKind::{Full, Notebooks, Standard, Test};
use BucketAccess::{Append, List, Mutate, Read};

/// Every dataset bucket, in creation order.
pub const BUCKETS: &[BucketDesign] = &[
    BucketDesign {
        name: "main",
        component: "storage",
        lifecycle: KEEP,
        groups: &[
            ("main-list", List),
            ("main-read", Read),
            ("main-create", Append),
            ("data-manager", Mutate),
            ("full", Mutate),
        ],
        accounts: &[(Standard, Append), (Full, Mutate)],
    },
    BucketDesign {
        name: "main-tmp",
        component: "storage",
        lifecycle: TMP,
        groups: &[("tmp-main-read-access", Read), ("standard", Mutate), ("full", Mutate)],
        accounts: &[(Standard, Mutate), (Full, Mutate), (Notebooks, Mutate)],
    },
    BucketDesign {
        name: "main-analysis",
        component: "storage",
        lifecycle: KEEP,
        groups: &[("analysis", Read), ("standard", Mutate), ("full", Mutate)],
        accounts: &[(Standard, Mutate), (Full, Mutate), (Notebooks, Read)],
    },
    BucketDesign {
        name: "main-web",
        component: "storage",
        lifecycle: KEEP,
        groups: &[("web-access", Read), ("standard", Mutate), ("full", Mutate)],
        accounts: &[(Standard, Mutate), (Full, Mutate), (Notebooks, Read)],
    },
    BucketDesign {
        name: "archive",
        component: "storage",
        lifecycle: ARCHIVE,
        groups: &[("data-manager", Mutate), ("full", Mutate)],
        accounts: &[(Full, Mutate)],
    },
    BucketDesign {
        name: "test",
        component: "test-storage",
        lifecycle: KEEP,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        accounts: &[(Test, Mutate), (Standard, Mutate), (Full, Mutate), (Notebooks, Read)],
    },
    BucketDesign {
        name: "test-tmp",
        component: "test-storage",
        lifecycle: TMP,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        accounts: &[(Test, Mutate), (Standard, Mutate), (Full, Mutate), (Notebooks, Mutate)],
    },
    BucketDesign {
        name: "test-analysis",
        component: "test-storage",
        lifecycle: KEEP,
        groups: &[("test-read", Read), ("test-full", Mutate)],
        accounts: &[(Test, Mutate), (Standard, Mutate), (Full, Mutate), (Notebooks, Read)],
    },
    BucketDesign {
        name: "test-web",
        component: "test-storage",
        lifecycle: KEEP,
        groups: &[("web-access", Read), ("test-full", Mutate)],
        accounts: &[(Test, Mutate), (Standard, Mutate), (Full, Mutate)],
    },
    BucketDesign {
        name: "upload",
        component: "upload",
        lifecycle: KEEP,
        groups: &[("upload", Append), ("data-manager", Mutate)],
        accounts: &[(Full, Mutate)],
    },
    BucketDesign {
        name: "release",
        component: "release",
        lifecycle: KEEP,
        groups: &[("release-access", Read), ("data-manager", Mutate)],
        accounts: &[(Full, Mutate)],
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
}

/// Every dataset machine account, in creation order.
pub const ACCOUNTS: &[AccountDesign] = &[
    AccountDesign {
        name: "hail-test",
        component: "hail",
        kind: Test,
        users: &[("test", AccountAccess::Use)],
        export_key: true,
    },
    AccountDesign {
        name: "hail-standard",
        component: "hail",
        kind: Standard,
        users: &[("standard", AccountAccess::Use)],
        export_key: true,
    },
    AccountDesign {
        name: "hail-full",
        component: "hail",
        kind: Full,
        users: &[("full", AccountAccess::Use)],
        export_key: true,
    },
    AccountDesign {
        name: "cromwell-test",
        component: "cromwell",
        kind: Test,
        users: &[("test", AccountAccess::Impersonate)],
        export_key: false,
    },
    AccountDesign {
        name: "cromwell-standard",
        component: "cromwell",
        kind: Standard,
        users: &[("standard", AccountAccess::Impersonate)],
        export_key: false,
    },
    AccountDesign {
        name: "cromwell-full",
        component: "cromwell",
        kind: Full,
        users: &[("full", AccountAccess::Impersonate)],
        export_key: false,
    },
    AccountDesign {
        name: "notebooks",
        component: "notebooks",
        kind: Notebooks,
        users: &[("analysis", AccountAccess::Use)],
        export_key: false,
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
