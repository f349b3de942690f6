//! The Azure provider against the in-process Graph emulator: starting it with the people of a
//! hierarchy as users, connecting the real provider to it, and reading its state back as emails.

use std::collections::{BTreeMap, BTreeSet};

use cpg_infra::definitions::{DirSource, Nesting};
use cpg_infra::directory::{AzureAuth, AzureConfig, AzureDirectory, Directory};
use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedServicePrincipal, SeedUser};
use cpg_infra::hierarchy::Hierarchy;
use cpg_infra::infra::AZURE_IDENTITY_PREFIX;
use cpg_infra::load::load_expanded;
use cpg_infra::sync::{self, Plan, PlanOptions, RemovalLimits};

use super::fixture_org_dir;
use super::google::{DOMAIN, FAST_RETRY, TOKEN};

pub const TENANT: &str = "7b3e5c1a-2f4d-4e8b-9a6c-0d1e2f3a4b5c";

pub fn emulator(max_page_size: usize) -> AzureEmulator {
    let options =
        AzureEmulatorOptions { token: Some(TOKEN.to_owned()), max_page_size, ..AzureEmulatorOptions::default() };
    AzureEmulator::start(options).expect("start the emulator")
}

/// Makes a user for every person in `desired` (principal name = their email, or their alias),
/// and a service principal for every managed identity (`azure-identity:<ARM id>`).
pub fn seed_people(emulator: &AzureEmulator, desired: &Hierarchy, aliases: &BTreeMap<String, String>) {
    let members: BTreeSet<&String> = desired.groups.values().flat_map(|g| g.members.iter()).collect();
    let (identities, people): (Vec<&String>, Vec<&String>) =
        members.into_iter().partition(|m| m.starts_with(AZURE_IDENTITY_PREFIX));
    for identity in identities {
        seed_identity(emulator, identity.strip_prefix(AZURE_IDENTITY_PREFIX).unwrap());
    }
    for email in people {
        let upn = aliases.get(email).cloned().unwrap_or_else(|| email.clone());
        let mail = (upn == *email).then(|| email.clone());
        emulator.insert_user(SeedUser { user_principal_name: upn, mail, display_name: email.clone() });
    }
}

/// A managed identity's service principal as Entra ID makes it: named after the identity
/// (names repeat across resource groups), with its ARM id (as Azure writes it) among its
/// alternative names. Returns its object id.
pub fn seed_identity(emulator: &AzureEmulator, arm_id: &str) -> String {
    let display_name = arm_id.rsplit('/').next().unwrap().to_owned();
    let arm_id = rendered(arm_id);
    emulator.insert_service_principal(SeedServicePrincipal {
        display_name,
        alternative_names: vec!["isExplicit=True".to_owned(), arm_id],
    })
}

/// A lowercased ARM id as Azure writes it (and the infrastructure program renders it).
pub fn rendered(arm_id: &str) -> String {
    arm_id.replace("/resourcegroups/", "/resourceGroups/").replace(
        "/microsoft.managedidentity/userassignedidentities/",
        "/Microsoft.ManagedIdentity/userAssignedIdentities/",
    )
}

/// The ARM ids of the managed identities `desired` names, as the CLI configures them (as rendered).
pub fn identities(desired: &Hierarchy) -> Vec<String> {
    let ids: BTreeSet<String> = desired
        .groups
        .values()
        .flat_map(|g| g.members.iter())
        .filter_map(|m| m.strip_prefix(AZURE_IDENTITY_PREFIX).map(rendered))
        .collect();
    ids.into_iter().collect()
}

pub fn connect(emulator: &AzureEmulator, token: &str) -> AzureDirectory {
    connect_with(emulator, token, BTreeMap::new(), Vec::new())
}

/// Connects as the CLI does for `desired`: with the people's `azure` aliases and the managed
/// identities it names.
pub fn connect_with_people(
    emulator: &AzureEmulator,
    token: &str,
    people: BTreeMap<String, String>,
    desired: &Hierarchy,
) -> AzureDirectory {
    connect_with(emulator, token, people, identities(desired))
}

pub fn connect_with(
    emulator: &AzureEmulator,
    token: &str,
    people: BTreeMap<String, String>,
    identities: Vec<String>,
) -> AzureDirectory {
    AzureDirectory::connect(&AzureConfig {
        tenant_id: TENANT.to_owned(),
        groups_domain: DOMAIN.to_owned(),
        endpoint: Some(emulator.base_url()),
        authority: None,
        auth: AzureAuth::AccessToken { token: token.to_owned(), source: "the test token".to_owned() },
        people,
        identities,
        requests: super::unpaced(),
    })
    .expect("connect")
}

/// The frozen organisation's hierarchy as the Azure directory wants it: without expiry (Graph
/// keeps none), without the GCP machine accounts (no Entra ID identity) and with the managed
/// identities in their stead; and its people's `azure` aliases.
pub fn example() -> (Hierarchy, BTreeMap<String, String>) {
    let today = "2026-11-26".parse().unwrap();
    let expanded = load_expanded(&DirSource::new(fixture_org_dir()), today).expect("example organisation");
    let aliases = expanded
        .definitions
        .people
        .values()
        .filter_map(|p| p.azure.clone().map(|azure| (p.email.clone(), azure)))
        .collect();
    let machine_accounts = cpg_infra::infra::machine_account_memberships(&expanded.definitions);
    let identities = cpg_infra::infra::azure_identity_memberships(&expanded.definitions);
    (expanded.hierarchy.without_expiry().without_members(machine_accounts).with_members(identities), aliases)
}

pub fn plan_with(directory: &dyn Directory, desired: &Hierarchy, nesting: Nesting) -> Plan {
    let read = sync::read_live_state(directory, 8, &FAST_RETRY, &BTreeSet::new()).expect("read live state");
    let options = PlanOptions {
        nesting,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: 100, max_removal_percent: 50 },
    };
    sync::plan(desired, &read.state, &options)
}

pub fn plan(directory: &dyn Directory, desired: &Hierarchy) -> Plan {
    plan_with(directory, desired, Nesting::Native)
}

/// What the emulator holds: group email → member emails (people by the email the hierarchy
/// uses; `aliases` maps principal names back; managed identities as `azure-identity:<ARM id>`),
/// groups by their email.
pub fn emulator_state(
    emulator: &AzureEmulator,
    aliases: &BTreeMap<String, String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let back: BTreeMap<String, String> =
        aliases.iter().map(|(email, upn)| (upn.to_lowercase(), email.clone())).collect();
    let nicknames: BTreeSet<String> = emulator.groups().keys().cloned().collect();
    emulator
        .groups()
        .into_iter()
        .map(|(nickname, group)| {
            let members = group
                .members
                .into_iter()
                .map(|member| {
                    if nicknames.contains(&member) {
                        format!("{member}@{DOMAIN}")
                    } else if member.starts_with("/subscriptions/") {
                        format!("{AZURE_IDENTITY_PREFIX}{member}")
                    } else {
                        back.get(&member).cloned().unwrap_or(member)
                    }
                })
                .collect();
            (format!("{nickname}@{DOMAIN}"), members)
        })
        .collect()
}

/// What the emulator should hold for `desired` with flattened nesting: every group lists its
/// transitive people.
pub fn flattened_state(desired: &Hierarchy) -> BTreeMap<String, BTreeSet<String>> {
    desired
        .groups
        .iter()
        .map(|(name, g)| (g.email.clone(), desired.effective_members(name).into_iter().map(str::to_owned).collect()))
        .collect()
}
