//! The Azure provider and the sync engine against the Graph emulator, over real HTTP with the
//! real client crate: convergence, call counts, batching, paging, drift, ownership, safety
//! limits, people that cannot be resolved, managed identities found by ARM id (and those not
//! deployed), nesting modes and credentials.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use cpg_infra::definitions::Nesting;
use cpg_infra::directory::{Directory, DirectoryError};
use cpg_infra::emulator::azure::{SeedGroup, SeedServicePrincipal, SeedUser};
use cpg_infra::emulator::FaultPlan;
use cpg_infra::sync::{self, ApplyOutcome};

use common::azure::{
    connect, connect_with, connect_with_people, emulator, emulator_state, example, flattened_state, identities, plan,
    plan_with, seed_people,
};
use common::google::{applied, apply, expected_state, hierarchy, people, sync_to, DOMAIN, FAST_RETRY, TOKEN};
use common::{copy_example_org, cpg_with_env, FAILURE, INVALID_INPUT, SUCCESS};

/// Where the fixture's tob-wgs managed identities live (lowercased, as members are).
const TOB_WGS_IDENTITIES: &str = "/subscriptions/3c9f1e2a-6b4d-4f7e-8a1c-5d2e9b0f7a36/resourcegroups/egi-tob-wgs/providers/microsoft.managedidentity/userassignedidentities";

fn no_aliases() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn first_sync_creates_security_groups_and_the_second_is_a_no_op_with_one_list_per_group() {
    let emulator = emulator(999);
    let (desired, aliases) = example();
    seed_people(&emulator, &desired, &aliases);
    let directory = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);

    let first = plan(&directory, &desired);
    let counts = first.counts();
    assert_eq!(counts.created, desired.groups.len());
    assert_eq!(counts.added, desired.membership_count());
    let report = applied(apply(&directory, &first));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(emulator_state(&emulator, &aliases), expected_state(&desired));
    for (nickname, group) in emulator.groups() {
        assert!(group.description.contains("managed-by: cpg-infra"), "{group:?}");
        assert!(group.security_enabled && !group.mail_enabled, "{group:?}");
        assert_eq!(group.display_name, nickname);
    }
    // Additions went in PATCHes of up to 20, never one request per member.
    let calls = emulator.calls();
    let patches = calls.get("groups.update").copied().unwrap_or(0);
    let most = desired.groups.values().map(|g| (g.members.len() + g.groups.len()).div_ceil(20) as u64).sum::<u64>();
    assert!(patches <= most, "{patches} PATCHes for {most} chunks: {calls:?}");
    assert_eq!(calls.get("groups.members.add"), None, "{calls:?}");

    // A fresh provider plans nothing with one group listing and one member listing per group,
    // and names the managed identities it meets with one look-up each, 20 to a $batch.
    let fresh = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);
    emulator.reset_calls();
    let second = plan(&fresh, &desired);
    assert!(second.is_empty(), "{second}");
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.list"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("groups.members.list"), Some(&(desired.groups.len() as u64)), "{calls:?}");
    let identities = common::azure::identities(&desired).len() as u64;
    assert_eq!(identities, 6, "tob-wgs has hail and cromwell on Azure");
    assert_eq!(calls.get("$batch/servicePrincipals.list"), Some(&identities), "{calls:?}");
    assert_eq!(calls.get("$batch"), Some(&identities.div_ceil(20)), "{calls:?}");
    assert_eq!(emulator.total_calls(), 1 + desired.groups.len() as u64 + identities.div_ceil(20), "{calls:?}");
    assert_eq!(fresh.api_calls(), Some(emulator.total_calls()));
}

#[test]
fn additions_go_twenty_to_a_patch_and_removals_twenty_to_a_batch() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("big", people("p", 45), &[])]);
    seed_people(&emulator, &desired, &no_aliases());
    let directory = connect(&emulator, TOKEN);
    let report = sync_to(&directory, &desired);
    assert_eq!(report.added, 45);
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.update"), Some(&3), "45 additions = 3 PATCHes: {calls:?}");
    assert_eq!(emulator.groups()["big"].members.len(), 45);

    let smaller = hierarchy(&[("big", people("p", 45).into_iter().take(4).collect(), &[])]);
    let removal = plan(&directory, &smaller);
    assert_eq!(removal.counts().removed, 41);
    emulator.reset_calls();
    let options = sync::ApplyOptions { concurrency: 8, retry: FAST_RETRY, allow_mass_removal: true };
    let ApplyOutcome::Applied(report) = sync::apply(&directory, &removal, &options, &sync::NoProgress) else {
        panic!("refused")
    };
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.removed, 41);
    let calls = emulator.calls();
    assert_eq!(calls.get("$batch"), Some(&3), "41 removals = 3 batches: {calls:?}");
    assert_eq!(calls.get("$batch/groups.members.remove"), Some(&41), "{calls:?}");
    assert_eq!(emulator.groups()["big"].members.len(), 4);
}

#[test]
fn listings_follow_next_links() {
    let emulator = emulator(3);
    let mut groups: Vec<(&str, Vec<String>, &[&str])> = vec![("big", people("p", 70), &[])];
    for name in ["g1", "g2", "g3", "g4", "g5", "g6"] {
        groups.push((name, people(name, 2), &["big"]));
    }
    let desired = hierarchy(&groups);
    seed_people(&emulator, &desired, &no_aliases());
    sync_to(&connect(&emulator, TOKEN), &desired);
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&desired));

    let fresh = connect(&emulator, TOKEN);
    emulator.reset_calls();
    assert!(plan(&fresh, &desired).is_empty());
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.list"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("groups.members.list"), Some(&(24 + 6)), "{calls:?}");
}

#[test]
fn drift_is_reverted() {
    let emulator = emulator(999);
    let (desired, aliases) = example();
    seed_people(&emulator, &desired, &aliases);
    emulator.insert_user(SeedUser {
        user_principal_name: "stranger@elsewhere.example.com".to_owned(),
        mail: None,
        display_name: "Stranger".to_owned(),
    });
    sync_to(&connect_with_people(&emulator, TOKEN, aliases.clone(), &desired), &desired);

    let web = &desired.groups["tob-wgs-web-access"];
    let removed_by_hand = web.members.iter().next().expect("a member").clone();
    let principal = aliases.get(&removed_by_hand).unwrap_or(&removed_by_hand);
    emulator.add_member_directly("tob-wgs-analysis", "stranger@elsewhere.example.com");
    emulator.remove_member_directly("tob-wgs-web-access", principal);

    let fresh = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);
    let drift = plan(&fresh, &desired);
    let lines: Vec<String> = drift.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            format!("+ add    {removed_by_hand} to tob-wgs-web-access@{DOMAIN}"),
            format!("- remove stranger@elsewhere.example.com from tob-wgs-analysis@{DOMAIN}")
        ]
    );
    let report = applied(apply(&fresh, &drift));
    assert_eq!((report.added, report.removed, report.failed.len()), (1, 1, 0));
    assert_eq!(emulator_state(&emulator, &aliases), expected_state(&desired));
    assert!(plan(&connect_with_people(&emulator, TOKEN, aliases, &desired), &desired).is_empty());
}

#[test]
fn groups_without_the_marker_are_conflicts_and_untouched() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("g1", people("a", 2), &[]), ("g2", people("b", 2), &[])]);
    seed_people(&emulator, &desired, &no_aliases());
    emulator.insert_group(SeedGroup {
        display_name: "g1".to_owned(),
        mail_nickname: "g1".to_owned(),
        description: "made by hand".to_owned(),
        members: vec!["a000@example.org".to_owned()],
    });
    let directory = connect(&emulator, TOKEN);
    let plan = plan(&directory, &desired);
    assert_eq!(plan.conflicts.len(), 1, "{plan}");
    assert_eq!(plan.conflicts[0].group, format!("g1@{DOMAIN}"));
    applied(apply(&directory, &plan));
    let groups = emulator.groups();
    assert_eq!(groups["g1"].members, BTreeSet::from(["a000@example.org".to_owned()]));
    assert_eq!(groups["g1"].description, "made by hand");
    assert_eq!(groups["g2"].members.len(), 2);
    let not_owned = Err(DirectoryError::NotOwned(format!("g1@{DOMAIN}")));
    assert_eq!(directory.add_member(&format!("g1@{DOMAIN}"), "a001@example.org", None), not_owned);
    assert_eq!(directory.remove_member(&format!("g1@{DOMAIN}"), "a000@example.org"), not_owned);

    // --adopt takes it over: marker written, members brought in line.
    let read = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::from([format!("g1@{DOMAIN}")])).unwrap();
    let options = sync::PlanOptions { adopt: true, ..common::google::plan_options() };
    let adopt = sync::plan(&desired, &read.state, &options);
    assert_eq!(adopt.counts().created, 1, "{adopt}");
    let report = applied(apply(&directory, &adopt));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(emulator.groups()["g1"].description.contains("managed-by: cpg-infra"));
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&desired));
}

#[test]
fn a_plan_over_the_removal_limit_applies_nothing() {
    let emulator = emulator(999);
    let before = hierarchy(&[("g1", people("a", 10), &[]), ("g2", people("b", 4), &[])]);
    seed_people(&emulator, &before, &no_aliases());
    let directory = connect(&emulator, TOKEN);
    sync_to(&directory, &before);
    let snapshot = emulator_state(&emulator, &no_aliases());
    let after = hierarchy(&[("g1", people("a", 2), &[]), ("g2", vec![], &[])]);
    let plan = plan(&directory, &after);
    assert_eq!(plan.refusals.len(), 2, "{plan}");
    emulator.reset_calls();
    assert!(matches!(apply(&directory, &plan), ApplyOutcome::Refused(_)));
    assert_eq!(emulator.total_calls(), 0, "a refused plan sent requests");
    assert_eq!(emulator_state(&emulator, &no_aliases()), snapshot);
}

#[test]
fn one_rejected_member_in_a_chunk_fails_alone() {
    let emulator = emulator(999);
    let mut members = people("a", 12);
    members.push("bad@example.org".to_owned());
    let desired = hierarchy(&[("g1", members, &[]), ("g2", people("b", 3), &[])]);
    seed_people(&emulator, &desired, &no_aliases());
    emulator.set_faults(FaultPlan {
        reject_members: BTreeSet::from(["bad@example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let directory = connect(&emulator, TOKEN);
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(report.failed[0].0.to_string().contains("bad@example.org"), "{:?}", report.failed);
    assert_eq!(report.added, 15);
    assert_eq!(report.retries, 0, "a rejection is permanent and must not be retried");
    let groups = emulator.groups();
    assert_eq!(groups["g1"].members.len(), 12);
    assert_eq!(groups["g2"].members.len(), 3);
    // The refused PATCH fell back to one reference per member of that chunk only.
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.update"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("groups.members.add"), Some(&13), "{calls:?}");
}

#[test]
fn an_unresolvable_person_fails_only_their_memberships() {
    let emulator = emulator(999);
    let desired = hierarchy(&[("g1", people("a", 3), &[]), ("g2", people("b", 2), &[])]);
    seed_people(&emulator, &desired, &no_aliases());
    let mut with_ghost = desired.clone();
    for group in with_ghost.groups.values_mut() {
        group.members.insert("ghost@example.org".to_owned());
    }
    let directory = connect(&emulator, TOKEN);
    let report = applied(apply(&directory, &plan(&directory, &with_ghost)));
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    for (change, error) in &report.failed {
        assert!(change.to_string().contains("ghost@example.org"), "{change}");
        assert!(error.contains("no user in the tenant"), "{error}");
    }
    assert_eq!(report.added, 5);
    // Looked up once for the run, not once per group, and up to 20 to a $batch.
    let calls = emulator.calls();
    let lookups = calls.get("users.list").unwrap_or(&0) + calls.get("$batch/users.list").unwrap_or(&0);
    assert_eq!(lookups, 6, "5 people and the ghost, each once: {calls:?}");
    assert_eq!(calls.get("$batch"), Some(&1), "one batch of look-ups for the run: {calls:?}");
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&desired));
}

/// A dataset's managed identity as the sync names it: `azure-identity:` and its ARM id.
fn identity(subscription: &str, dataset: &str, name: &str) -> String {
    format!(
        "azure-identity:/subscriptions/{subscription}/resourcegroups/egi-{dataset}/providers/microsoft.managedidentity/userassignedidentities/{name}"
    )
}

/// Two datasets in two subscriptions whose `hail-test` identities share a display name, and
/// one of them with `hail-full` too.
fn two_datasets_with_identities() -> cpg_infra::hierarchy::Hierarchy {
    let desired = hierarchy(&[
        ("ds1-test", people("a", 2), &[]),
        ("ds1-full", people("b", 1), &[]),
        ("ds2-test", people("c", 2), &[]),
    ]);
    desired.with_members([
        ("ds1-test".to_owned(), identity("sub-1", "ds1", "hail-test")),
        ("ds1-full".to_owned(), identity("sub-1", "ds1", "hail-full")),
        ("ds2-test".to_owned(), identity("sub-2", "ds2", "hail-test")),
    ])
}

#[test]
fn managed_identities_join_their_access_level_groups_found_by_arm_id() {
    let emulator = emulator(999);
    let desired = two_datasets_with_identities();
    // A stranger's service principal with the same display name, which is no identity of ours.
    let stranger = emulator.insert_service_principal(SeedServicePrincipal {
        display_name: "hail-test".to_owned(),
        alternative_names: vec!["isExplicit=True".to_owned(), "/subscriptions/sub-9/resourceGroups/other/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hail-test".to_owned()],
    });
    assert!(!stranger.is_empty());
    seed_people(&emulator, &desired, &no_aliases());
    let ids = identities(&desired);
    assert_eq!(ids.len(), 3);

    let directory = connect_with(&emulator, TOKEN, no_aliases(), ids.clone());
    let first = plan(&directory, &desired);
    assert_eq!(first.counts().added, desired.membership_count());
    let report = applied(apply(&directory, &first));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.added, desired.membership_count());
    let state = emulator_state(&emulator, &no_aliases());
    assert_eq!(state, expected_state(&desired));
    assert!(state["ds1-test@groups.example.org"].contains(&identity("sub-1", "ds1", "hail-test")), "{state:?}");
    assert!(!state["ds1-test@groups.example.org"].contains(&identity("sub-2", "ds2", "hail-test")), "{state:?}");
    assert!(state["ds2-test@groups.example.org"].contains(&identity("sub-2", "ds2", "hail-test")), "{state:?}");
    // The identities were looked up by ARM id, together, once for the run.
    let calls = emulator.calls();
    assert_eq!(calls.get("$batch/servicePrincipals.list"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("servicePrincipals.list"), None, "{calls:?}");

    // A fresh provider plans nothing and writes nothing; naming the identities it lists costs
    // ceil(3/20) = 1 $batch.
    let fresh = connect_with(&emulator, TOKEN, no_aliases(), ids.clone());
    emulator.reset_calls();
    let second = plan(&fresh, &desired);
    assert!(second.is_empty(), "{second}");
    let report = applied(apply(&fresh, &second));
    assert_eq!(report.added + report.removed, 0);
    let calls = emulator.calls();
    assert_eq!(calls.get("$batch"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("$batch/servicePrincipals.list"), Some(&3), "{calls:?}");
    assert_eq!(emulator.total_calls(), 1 + desired.groups.len() as u64 + 1, "{calls:?}");
    for write in ["groups.update", "groups.members.add", "groups.members.remove", "$batch/groups.members.remove"] {
        assert_eq!(calls.get(write), None, "{write}: {calls:?}");
    }

    // A service principal that is not ours is reported as before (by its display name, never
    // as our identity of the same name) and removed as drift; ours stay.
    emulator.add_member_directly("ds2-test", "/subscriptions/sub-9/resourcegroups/other/providers/microsoft.managedidentity/userassignedidentities/hail-test");
    let fresh = connect_with(&emulator, TOKEN, no_aliases(), ids);
    let drift = plan(&fresh, &desired);
    assert_eq!(drift.counts().added, 0, "{drift}");
    assert_eq!(drift.counts().removed, 1, "{drift}");
    assert!(drift.to_string().contains("- remove hail-test from ds2-test@groups.example.org"), "{drift}");
    sync_to(&fresh, &desired);
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&desired));
}

#[test]
fn an_identity_the_provider_was_not_told_about_is_looked_up_on_its_own() {
    let emulator = emulator(999);
    let desired = two_datasets_with_identities();
    seed_people(&emulator, &desired, &no_aliases());
    let directory = connect(&emulator, TOKEN);
    let report = sync_to(&directory, &desired);
    assert_eq!(report.added, desired.membership_count());
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&desired));
    let calls = emulator.calls();
    assert_eq!(calls.get("servicePrincipals.list"), Some(&3), "one look-up per identity: {calls:?}");
    assert_eq!(calls.get("$batch/servicePrincipals.list"), None, "{calls:?}");
}

#[test]
fn an_identity_missing_from_the_tenant_fails_only_its_memberships() {
    let emulator = emulator(999);
    let deployed = two_datasets_with_identities();
    seed_people(&emulator, &deployed, &no_aliases());
    let ghost = identity("sub-3", "ds3", "cromwell-test");
    let desired =
        deployed.clone().with_members([("ds1-test".to_owned(), ghost.clone()), ("ds2-test".to_owned(), ghost.clone())]);
    let directory = connect_with(&emulator, TOKEN, no_aliases(), identities(&desired));
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    let arm_id = ghost.strip_prefix("azure-identity:").unwrap();
    for (change, error) in &report.failed {
        assert!(change.to_string().contains(&ghost), "{change}");
        assert!(error.contains(arm_id) && error.contains("no service principal"), "{error}");
    }
    assert_eq!(report.added, deployed.membership_count());
    assert_eq!(report.retries, 0, "an identity not deployed is not retried");
    assert_eq!(emulator_state(&emulator, &no_aliases()), expected_state(&deployed));
    // Four identities looked up once each for the run, in one $batch.
    let calls = emulator.calls();
    assert_eq!(calls.get("$batch/servicePrincipals.list"), Some(&4), "{calls:?}");
    assert_eq!(calls.get("servicePrincipals.list"), None, "{calls:?}");
}

#[test]
fn people_resolve_by_their_azure_principal_name() {
    let emulator = emulator(999);
    let (desired, aliases) = example();
    assert!(aliases.values().any(|upn| upn.contains("onmicrosoft.com")), "the fixture has an alias");
    seed_people(&emulator, &desired, &aliases);
    let directory = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);
    sync_to(&directory, &desired);
    let amara = "amara.okafor@examplegenomics.onmicrosoft.com";
    assert!(emulator.groups().values().any(|g| g.members.contains(amara)));
    assert!(plan(&connect_with_people(&emulator, TOKEN, aliases, &desired), &desired).is_empty());
}

#[test]
fn flatten_writes_transitive_people_and_native_writes_groups() {
    let desired = hierarchy(&[
        ("leaf", people("l", 2), &[]),
        ("middle", people("m", 1), &["leaf"]),
        ("top", people("t", 1), &["middle"]),
    ]);

    let flat = emulator(999);
    seed_people(&flat, &desired, &no_aliases());
    let directory = connect(&flat, TOKEN);
    let report = applied(apply(&directory, &plan_with(&directory, &desired, Nesting::Flatten)));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(emulator_state(&flat, &no_aliases()), flattened_state(&desired));
    assert_eq!(flat.groups()["top"].members.len(), 4, "top lists its four people and no group");
    assert!(plan_with(&connect(&flat, TOKEN), &desired, Nesting::Flatten).is_empty());

    let native = emulator(999);
    seed_people(&native, &desired, &no_aliases());
    let directory = connect(&native, TOKEN);
    sync_to(&directory, &desired);
    assert_eq!(emulator_state(&native, &no_aliases()), expected_state(&desired));
    assert!(native.groups()["top"].members.contains("middle"));
    assert!(plan(&connect(&native, TOKEN), &desired).is_empty());
}

#[test]
fn bad_credentials_give_a_clear_error_naming_the_source() {
    let emulator = emulator(999);
    let directory = connect(&emulator, "wrong-token");
    let error = sync::read_live_state(&directory, 8, &FAST_RETRY, &BTreeSet::new()).expect_err("401");
    assert!(error.to_string().contains("authentication failed"), "{error}");
    assert!(error.to_string().contains("the test token"), "{error}");
}

/// A copy of the frozen organisation with the Azure provider enabled.
fn azure_org() -> tempfile::TempDir {
    common::org_with_provider("azure")
}

#[test]
fn the_cli_syncs_to_azure_and_exit_codes_say_what_happened() {
    let emulator = emulator(999);
    let (desired, aliases) = example();
    seed_people(&emulator, &desired, &aliases);
    let org = azure_org();
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
    let args = ["groups", "sync", "--provider", "azure", "--no-cache"];

    let dry = cpg_with_env(org.path(), &args, &env);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains("+ create group tob-wgs-analysis@groups.example.org"), "{dry}");
    assert!(!dry.stdout.contains("(until"), "Graph keeps no expiry: {dry}");
    // The hail and cromwell accounts infra makes on GCP have no Entra ID identity: their Azure
    // managed identities join the access-level groups instead.
    assert!(!dry.stdout.contains("hail-standard@example-tob-wgs.iam"), "{dry}");
    let identity = format!("azure-identity:{TOB_WGS_IDENTITIES}/hail-standard");
    assert!(dry.stdout.contains(&format!("+ add    {identity} to tob-wgs-standard@groups.example.org")), "{dry}");
    assert!(!dry.stderr.contains("machine identities"), "no note about a gap: {dry}");
    assert!(emulator.groups().is_empty(), "a dry run changed the directory");

    let confirm = [&args[..], &["--confirm"]].concat();
    let run = cpg_with_env(org.path(), &confirm, &env);
    run.expect_code(SUCCESS);
    // The example organisation flattens for Azure.
    assert_eq!(emulator_state(&emulator, &aliases), flattened_state(&desired));
    let standard = &emulator_state(&emulator, &aliases)["tob-wgs-standard@groups.example.org"];
    assert!(standard.contains(&identity), "{standard:?}");
    assert!(run.stdout.contains(&format!("+ add    {identity} to tob-wgs-standard@groups.example.org")), "{run}");
    let again = cpg_with_env(org.path(), &confirm, &env);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains("plan: 0 group(s) to create, 0 member(s) to add, 0 to remove"), "{again}");

    // A rejected member makes the exit code 1.
    let victim = desired.effective_members("tob-wgs-analysis").into_iter().next().unwrap().to_owned();
    let principal = aliases.get(&victim).unwrap_or(&victim).to_lowercase();
    emulator.remove_member_directly("tob-wgs-analysis", &principal);
    emulator.set_faults(FaultPlan { reject_members: BTreeSet::from([principal]), ..FaultPlan::default() });
    let failed = cpg_with_env(org.path(), &confirm, &env);
    failed.expect_code(FAILURE);
    assert!(failed.stderr.contains(&format!("failed: + add    {victim}")), "{failed}");

    // Wrong credentials are a configuration error naming where they came from.
    let bad = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", "wrong")];
    let run = cpg_with_env(org.path(), &args, &bad);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("authentication failed"), "{run}");
    assert!(run.stderr.contains("CPG_INFRA_AZURE_ACCESS_TOKEN"), "{run}");

    // Plain HTTP to anything but loopback is refused before any request.
    let remote = [("CPG_INFRA_AZURE_ENDPOINT", "http://203.0.113.9"), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
    let run = cpg_with_env(org.path(), &args, &remote);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("only on loopback"), "{run}");

    let none = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str())];
    let run = cpg_with_env(org.path(), &args, &none);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("no Azure credentials"), "{run}");
}

#[test]
fn the_cli_fails_only_the_memberships_of_an_identity_not_deployed() {
    let emulator = emulator(999);
    let (desired, aliases) = example();
    let missing = format!("azure-identity:{TOB_WGS_IDENTITIES}/cromwell-full");
    let mut deployed = desired.clone();
    for group in deployed.groups.values_mut() {
        group.members.remove(&missing);
    }
    assert!(deployed != desired, "the fixture has the identity");
    seed_people(&emulator, &deployed, &aliases);
    let org = azure_org();
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
    let args = ["groups", "sync", "--provider", "azure", "--no-cache", "--confirm"];
    let run = cpg_with_env(org.path(), &args, &env);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains(&format!("failed: + add    {missing} to tob-wgs-full@groups.example.org")), "{run}");
    let arm_id = missing.strip_prefix("azure-identity:").unwrap();
    assert!(
        run.stderr.contains(&format!("no service principal in the tenant has the alternative name {arm_id}")),
        "{run}"
    );
    // Everything else is applied, the other identities included.
    assert_eq!(emulator_state(&emulator, &aliases), flattened_state(&deployed));
}

#[test]
fn the_azure_provider_must_be_enabled() {
    let org = tempfile::tempdir().unwrap();
    copy_example_org(org.path());
    let run = cpg_with_env(org.path(), &["groups", "sync", "--provider", "azure"], &[]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("not enabled"), "{run}");
}

/// In a GitHub job, the federated credential's assertion is fetched from the job's OIDC
/// endpoint with its request token and Entra ID's token-exchange audience.
#[test]
fn a_github_job_fetches_its_oidc_token_for_the_federated_credential() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a request");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let body = r#"{"value":"the-job-oidc-token"}"#;
        let mut stream = stream;
        write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
            .expect("answer");
        head
    });
    let org = azure_org();
    let emulator = emulator(100);
    let endpoint = emulator.base_url();
    let url = format!("http://{address}/token?api-version=2.0");
    let env = [
        ("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()),
        ("AZURE_CLIENT_ID", "00000000-0000-4000-8000-00000000c11e"),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token"),
    ];
    let run = cpg_with_env(org.path(), &["groups", "sync", "--provider", "azure"], &env);
    let head = server.join().expect("the OIDC endpoint was asked");
    assert!(head[0].starts_with("GET /token?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange "), "{head:?}");
    assert!(head.iter().any(|h| h.eq_ignore_ascii_case("authorization: Bearer job-request-token")), "{head:?}");
    // The assertion is then exchanged at Entra ID's token endpoint, which a test cannot reach:
    // an outage (exit 1), never mistaken for a rejected credential.
    assert_eq!(run.code, FAILURE, "{run}");
    assert!(run.stderr.contains("/oauth2/v2.0/token"), "{run}");
}
