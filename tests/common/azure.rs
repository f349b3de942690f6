//! The Azure provider against the in-process Graph emulator: starting it with the people of a
//! hierarchy as users, connecting the real provider to it, and reading its state back as emails.

use std::collections::{BTreeMap, BTreeSet};

use cpg_infra::definitions::{DirSource, Nesting};
use cpg_infra::directory::{AzureAuth, AzureConfig, AzureDirectory, Directory};
use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedUser};
use cpg_infra::hierarchy::Hierarchy;
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

/// Makes a user for every person in `desired` (principal name = their email, or their alias).
pub fn seed_people(emulator: &AzureEmulator, desired: &Hierarchy, aliases: &BTreeMap<String, String>) {
    let people: BTreeSet<&String> = desired.groups.values().flat_map(|g| g.members.iter()).collect();
    for email in people {
        let upn = aliases.get(email).cloned().unwrap_or_else(|| email.clone());
        let mail = (upn == *email).then(|| email.clone());
        emulator.insert_user(SeedUser { user_principal_name: upn, mail, display_name: email.clone() });
    }
}

pub fn connect(emulator: &AzureEmulator, token: &str) -> AzureDirectory {
    connect_with_people(emulator, token, BTreeMap::new())
}

pub fn connect_with_people(emulator: &AzureEmulator, token: &str, people: BTreeMap<String, String>) -> AzureDirectory {
    AzureDirectory::connect(&AzureConfig {
        tenant_id: TENANT.to_owned(),
        groups_domain: DOMAIN.to_owned(),
        endpoint: Some(emulator.base_url()),
        auth: AzureAuth::AccessToken { token: token.to_owned(), source: "the test token".to_owned() },
        people,
    })
    .expect("connect")
}

/// The frozen organisation's hierarchy as the Azure directory wants it: without expiry (Graph
/// keeps none) and without the GCP machine accounts (no Entra ID identity); and its people's
/// `azure` aliases.
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
    (expanded.hierarchy.without_expiry().without_members(machine_accounts), aliases)
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
/// uses; `aliases` maps principal names back), groups by their email.
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
