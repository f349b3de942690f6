//! Infrastructure: datasets × clouds × components → calls on the `Cloud` trait → a Pulumi
//! YAML program.
//!
//! The design is written once (`design`), walked by the `driver`, and turned into resources by
//! each cloud (`gcp`, `azure`; `dry_run` records calls). Pulumi owns the cloud resources; the
//! group sync owns groups and memberships, which are only referenced here.
//! **Architecture invariant:** everything but `write` is pure: definitions in, a `Program` out.

mod access;
mod azure;
mod claims;
mod cloud;
mod design;
mod driver;
mod dry_run;
mod gcp;
mod imports;
mod names;
mod plan;
mod program;
mod split;
mod write;
mod yaml;

use std::collections::BTreeSet;

use thiserror::Error;

use crate::definitions::{Definitions, Diagnostic, Diagnostics, Location};

pub use access::{access_matrix, AccessGrant, AccessMatrix};
pub use azure::{managed_identity_id, members_cache_container, Azure, BUDGET_START_CONFIG};
pub use cloud::{
    AccountAccess, AccountId, BlobSpec, BucketAccess, BucketId, BucketSpec, BudgetPeriod, BudgetSpec, Cloud, External,
    ExternalAccess, Lifecycle, OnRequest, Outcome, Principal, ProjectAccess, RegistryAccess, RegistryId, Scope,
    SecretId, Unsupported,
};
pub use driver::{drive, Report};
pub use dry_run::{Call, DryRun};
pub use gcp::{members_cache_bucket, Gcp, BILLING_ACCOUNT_CONFIG};
pub use plan::{render_plan_json, render_plan_text};
pub use program::{ConfigEntry, Options, Origin, Owner, Piece, Program, Ref, Resource, Step, Value};
pub use split::{per_owner, single, Project, PULUMI_ORGANIZATION_CONFIG};
pub use write::{write_projects, WriteError, Written};
pub use yaml::render as render_yaml;

/// Why the design cannot be built from the definitions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Error)]
pub enum InfraError {
    #[error("dataset `{dataset}` lists components but has no [gcp] project or [azure] subscription")]
    NoCloud { dataset: String, location: Location },
    #[error("dataset `{dataset}` on {cloud}: {problem}")]
    Site { dataset: String, cloud: String, problem: String, location: Location },
    #[error("the organisation's {cloud} resources (the members cache) have no home: {reason}")]
    NoOrganisationHome { cloud: String, reason: String },
    #[error("{owner}: component `{component}` needs {what}, which {cloud} cannot provide: {reason}")]
    Unsupported { owner: String, cloud: String, component: String, what: String, reason: String, location: Location },
    #[error("dataset `{dataset}` {problem}")]
    Budget { dataset: String, problem: String, location: Location },
    #[error("dataset `{dataset}` imports `{name}`, which is not one of its resources{hint}")]
    UnknownImport { dataset: String, name: String, hint: String, location: Location },
    #[error("two resources are named `{name}`; rename the dataset whose name clashes")]
    DuplicateName { name: String },
    #[error(
        "datasets use a cloud, so [infra] name_prefix is needed: it goes in front of every name that must be unique across organisations (buckets, storage accounts, key vaults, registries)"
    )]
    NoNamePrefix,
    #[error("[infra] administrators names `{name}`, which is not a group of groups/org-groups.toml")]
    UnknownAdministrators { name: String, location: Location },
    #[error("dataset `{first}` and dataset `{second}` are both in GCP project `{project}`: what belongs to a project (its APIs, project-level grants) would be declared twice; give each dataset its own project")]
    SharedProject { first: String, second: String, project: String, location: Location },
    #[error("{owner} gives an invalid {what}: `{name}` {problem}")]
    InvalidName { owner: String, what: String, name: String, problem: String, location: Location },
    #[error("name prefix `{prefix}` makes {count} cloud name(s) invalid, e.g. {example}{}", room_hint(.room))]
    PrefixMakesNamesInvalid { prefix: String, count: usize, example: String, room: Option<usize>, location: Location },
    #[error("{first} and {second} would both create {names}")]
    NameCollision { first: String, second: String, names: String, location: Location },
    #[error("dataset `{dataset}` imports `{name}` ({type_token}) as `{id}`, {problem}")]
    ImportId { dataset: String, name: String, type_token: String, id: String, problem: String, location: Location },
}

fn room_hint(room: &Option<usize>) -> String {
    match room {
        Some(room) => format!("; the names here leave room for a prefix of {room} characters"),
        None => String::new(),
    }
}

impl InfraError {
    /// The file (and place) the problem is about.
    pub fn location(&self) -> Location {
        match self {
            InfraError::NoCloud { location, .. }
            | InfraError::Site { location, .. }
            | InfraError::Unsupported { location, .. }
            | InfraError::Budget { location, .. }
            | InfraError::UnknownImport { location, .. }
            | InfraError::InvalidName { location, .. }
            | InfraError::PrefixMakesNamesInvalid { location, .. }
            | InfraError::NameCollision { location, .. }
            | InfraError::ImportId { location, .. }
            | InfraError::UnknownAdministrators { location, .. }
            | InfraError::SharedProject { location, .. } => location.clone(),
            InfraError::NoOrganisationHome { .. } | InfraError::DuplicateName { .. } | InfraError::NoNamePrefix => {
                Location::file("groups/org.toml")
            }
        }
    }
}

/// Every problem found, as definitions diagnostics (`path:line:col: message`), sorted.
pub fn diagnostics(errors: &[InfraError]) -> Diagnostics {
    let mut all: Vec<Diagnostic> =
        errors.iter().map(|e| Diagnostic { location: e.location(), message: e.to_string() }).collect();
    all.sort();
    all.dedup();
    Diagnostics(all)
}

/// The design on every cloud, as one program.
#[derive(Debug, Clone)]
pub struct Build {
    pub program: Program,
    /// Things worth knowing that are not errors.
    pub notes: Vec<String>,
}

/// Builds the whole program: drives GCP and Azure over every dataset, adopts `[imports]`.
/// Returns every problem at once.
pub fn build(definitions: &Definitions) -> Result<Build, Vec<InfraError>> {
    build_keeping(definitions, None)
}

/// Every problem `build` would find, without keeping what only rendering needs (resource
/// properties, except the imported resources'): what commands that only check the design run,
/// in a fraction of `build`'s memory.
pub fn check(definitions: &Definitions) -> Result<Vec<String>, Vec<InfraError>> {
    let imported: BTreeSet<String> = definitions
        .datasets
        .values()
        .flat_map(|dataset| dataset.imports.keys().map(move |key| format!("{}-{key}", dataset.name)))
        .collect();
    build_keeping(definitions, Some(imported)).map(|build| build.notes)
}

fn build_keeping(
    definitions: &Definitions,
    keep_properties_of: Option<BTreeSet<String>>,
) -> Result<Build, Vec<InfraError>> {
    let mut gcp = Gcp::new(definitions);
    let mut azure = Azure::new(definitions);
    gcp.program_mut().keep_properties_of = keep_properties_of.clone();
    azure.program_mut().keep_properties_of = keep_properties_of;
    let report = drive(definitions, &mut [&mut gcp, &mut azure]);
    let mut program = gcp.into_program();
    program.merge(azure.into_program());
    let mut errors = report.errors;
    errors.extend(adopt(&mut program, definitions));
    errors.extend(program.duplicates.iter().map(|name| InfraError::DuplicateName { name: name.clone() }));
    errors.extend(claims::check(&program.names, definitions.organisation.name_prefix.as_ref()));
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        return Err(errors);
    }
    Ok(Build { program, notes: report.notes })
}

/// The groups whose effective members the group sync writes to the members cache as
/// `<group>-members.txt`, for services that cannot ask the directory quickly.
pub fn cached_groups(definitions: &Definitions) -> Vec<String> {
    let mut groups = Vec::new();
    for dataset in definitions.datasets.values() {
        for (role, component) in design::CACHED_ROLES {
            let wanted = component.is_none_or(|c| dataset.components.contains(c));
            if wanted && definitions.dataset_has_role(dataset, role) {
                groups.push(definitions.dataset_group_name(&dataset.name, role));
            }
        }
    }
    groups
}

/// Memberships the infrastructure adds to the group hierarchy: each access-level machine
/// account (hail, cromwell, dataproc per test / standard / full) joins its dataset's access-level
/// group, which is what gives it access (to its own dataset and, through dependencies, to the
/// common one); accounts join the further role groups the design names (the notebook account
/// its dataset's analysis group), the organisation's services theirs (the metadata server each
/// main-list), and accounts the workload groups take (hail accounts in cromwell-access).
/// GCP only: Azure identities have no email; `azure_identity_memberships` names them for
/// the Azure directory, which looks them up when it syncs. Returns (group name, member email) pairs.
pub fn machine_account_memberships(definitions: &Definitions) -> Vec<(String, String)> {
    let mut memberships = Vec::new();
    let workload_groups: Vec<&design::WorkloadGroup> =
        design::WORKLOAD_GROUPS.iter().filter(|g| (g.wanted)(definitions)).collect();
    for dataset in definitions.datasets.values() {
        for design in design::ACCOUNTS.iter().filter(|a| dataset.components.contains(a.component)) {
            let Some(email) = gcp::service_account_email(dataset, design.name) else { continue };
            let roles = design.kind.access_level_role().into_iter().chain(design.member_of.iter().copied());
            for role in roles.filter(|role| definitions.dataset_has_role(dataset, role)) {
                memberships.push((definitions.dataset_group_name(&dataset.name, role), email.clone()));
            }
            for group in &workload_groups {
                let takes_part = group.component.is_none_or(|c| dataset.components.contains(c));
                if takes_part && group.accounts.contains(&design.name) {
                    memberships.push((definitions.org_group_name(group.name), email.clone()));
                }
            }
        }
        for (component, service, role) in design::SERVICE_MEMBERSHIPS {
            let Some(email) = definitions.organisation.services.get(service.as_str()) else { continue };
            if dataset.components.contains(*component) && definitions.dataset_has_role(dataset, role) {
                memberships.push((definitions.dataset_group_name(&dataset.name, role), email.clone()));
            }
        }
    }
    memberships
}

/// The organisation groups the design derives from the datasets (`design::WORKLOAD_GROUPS`),
/// with the datasets' role groups nested in them; their machine-account members come with
/// `machine_account_memberships`. The group sync creates them like any other group.
pub fn workload_groups(definitions: &Definitions) -> Vec<crate::hierarchy::Group> {
    let mut groups = Vec::new();
    for design in design::WORKLOAD_GROUPS.iter().filter(|g| (g.wanted)(definitions)) {
        let name = definitions.org_group_name(design.name);
        let mut nested = BTreeSet::new();
        for dataset in definitions.datasets.values() {
            if design.component.is_some_and(|c| !dataset.components.contains(c)) {
                continue;
            }
            for role in design.roles.iter().filter(|role| definitions.dataset_has_role(dataset, role)) {
                nested.insert(definitions.dataset_group_name(&dataset.name, role));
            }
        }
        groups.push(crate::hierarchy::Group {
            email: definitions.group_email(&name),
            name,
            description: design.description.to_owned(),
            kind: crate::hierarchy::GroupKind::Organisation,
            members: BTreeSet::new(),
            groups: nested,
            expires: Default::default(),
            pinned: false,
            external_groups: BTreeSet::new(),
        });
    }
    groups
}

/// How a group member that is an Azure managed identity is named: this prefix and the
/// identity's ARM id, lowercased like every member.
pub const AZURE_IDENTITY_PREFIX: &str = "azure-identity:";

/// The Azure counterpart of `machine_account_memberships`: each access-level machine account
/// of a dataset on Azure is a user-assigned managed identity, which joins its dataset's
/// access-level group as `azure-identity:<ARM id>` (lowercased). The Azure directory finds the
/// identity's service principal by that id. Returns (group name, member) pairs.
pub fn azure_identity_memberships(definitions: &Definitions) -> Vec<(String, String)> {
    azure_identity_ids(definitions)
        .into_iter()
        .map(|(group, id)| (group, format!("{AZURE_IDENTITY_PREFIX}{}", id.to_ascii_lowercase())))
        .collect()
}

/// The ARM ids behind `azure_identity_memberships`, as the program renders them (mixed case,
/// as Azure stores them): (group name, ARM id) pairs.
pub fn azure_identity_ids(definitions: &Definitions) -> Vec<(String, String)> {
    let azure = Azure::new(definitions);
    let mut memberships = Vec::new();
    for dataset in definitions.datasets.values() {
        // The datasets the driver builds on Azure.
        if !azure.hosts(dataset) || azure.site_problem(dataset).is_some() {
            continue;
        }
        let hosted = |a: &&design::AccountDesign| {
            dataset.components.contains(a.component) && azure::component_problem(a.component).is_none()
        };
        for design in design::ACCOUNTS.iter().filter(hosted) {
            let Some(role) = design.kind.access_level_role() else { continue };
            if !definitions.dataset_has_role(dataset, role) {
                continue;
            }
            let id = managed_identity_id(definitions, dataset, design.name);
            memberships.push((definitions.dataset_group_name(&dataset.name, role), id));
        }
    }
    memberships
}

/// Marks each resource named in a dataset's `[imports]` for adoption (`options: import`).
/// Keys are logical names without the dataset prefix, e.g. `gcp-bucket-main`.
fn adopt(program: &mut Program, definitions: &Definitions) -> Vec<InfraError> {
    let mut errors = Vec::new();
    for dataset in definitions.datasets.values() {
        let owner = Owner::Dataset(dataset.name.clone());
        let prefix = format!("{}-", dataset.name);
        for (key, id) in &dataset.imports {
            let name = format!("{prefix}{key}");
            match program.resources.get_mut(&name) {
                Some(resource) if resource.origin.owner == owner => {
                    if let Some(problem) = imports::id_problem(resource, &id.name) {
                        errors.push(InfraError::ImportId {
                            dataset: dataset.name.clone(),
                            name: key.clone(),
                            type_token: resource.type_token.clone(),
                            id: id.name.clone(),
                            problem,
                            location: id.location.clone(),
                        });
                    }
                    resource.options.import = Some(id.name.clone());
                }
                _ => {
                    let known: Vec<&str> = program
                        .resources
                        .iter()
                        .filter(|(_, r)| r.origin.owner == owner)
                        .filter_map(|(n, _)| n.strip_prefix(&prefix))
                        .collect();
                    let clouds: BTreeSet<&str> = program
                        .resources
                        .values()
                        .filter(|r| r.origin.owner == owner)
                        .map(|r| r.origin.cloud.as_str())
                        .collect();
                    let cloud = key.split('-').next().unwrap_or("");
                    let hint = match closest(key, &known) {
                        _ if !clouds.contains(cloud) => format!("; it has no resources on `{cloud}`"),
                        Some(best) => format!("; did you mean `{best}`?"),
                        None => "; `cpg-infra infra plan` lists them".to_owned(),
                    };
                    errors.push(InfraError::UnknownImport {
                        dataset: dataset.name.clone(),
                        name: key.clone(),
                        hint,
                        location: id.location.clone(),
                    });
                }
            }
        }
    }
    errors
}

/// The candidate nearest to `wanted` by edit distance, if it is close.
fn closest<'c>(wanted: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let (distance, best) = candidates.iter().map(|c| (edit_distance(wanted, c), *c)).min()?;
    (distance <= wanted.len() / 3 + 1).then_some(best)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Definitions {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/org");
        let today = "2026-11-26".parse().expect("a date");
        crate::load::load_expanded(&crate::definitions::DirSource::new(root), today).expect("the fixture").definitions
    }

    #[test]
    fn azure_identities_join_the_access_level_groups_of_datasets_on_azure() {
        let definitions = fixture();
        let memberships = azure_identity_memberships(&definitions);
        let rg = "/subscriptions/3c9f1e2a-6b4d-4f7e-8a1c-5d2e9b0f7a36/resourcegroups/egi-tob-wgs/providers/microsoft.managedidentity/userassignedidentities";
        let expected: Vec<(String, String)> = [
            ("tob-wgs-test", "hail-test"),
            ("tob-wgs-standard", "hail-standard"),
            ("tob-wgs-full", "hail-full"),
            ("tob-wgs-test", "cromwell-test"),
            ("tob-wgs-standard", "cromwell-standard"),
            ("tob-wgs-full", "cromwell-full"),
        ]
        .iter()
        .map(|(group, name)| (group.to_string(), format!("azure-identity:{rg}/{name}")))
        .collect();
        assert_eq!(memberships, expected);
        // A dataset that leaves Azure loses its identities.
        let mut gcp_only = definitions.clone();
        gcp_only.datasets.get_mut("tob-wgs").expect("tob-wgs").azure = None;
        assert!(azure_identity_memberships(&gcp_only).is_empty());
        // Every member is lowercased and names the identity `machine_account` makes.
        let id = managed_identity_id(&definitions, &definitions.datasets["tob-wgs"], "hail-test");
        assert!(id.contains(
            "/resourceGroups/egi-tob-wgs/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hail-test"
        ));
    }

    #[test]
    fn close_names_are_suggested() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("gcp-bucket-mian", &["gcp-bucket-main", "gcp-bucket-test"]), Some("gcp-bucket-main"));
        assert_eq!(closest("something-else", &["gcp-bucket-main"]), None);
    }
}
