//! `groups sync --provider azure` reading through Graph's change feed (`/groups/delta`) with its
//! state file: a no-op in at most three calls, changes made by hand between runs seen and
//! reverted, an expired or unreadable state falling back to a full read, and `--full-read`.

mod common;

use cpg_infra::emulator::azure::{AzureEmulator, SeedUser};

use common::azure::{emulator, emulator_state, example, flattened_state, seed_people};
use common::google::TOKEN;
use common::{cpg_with_env, Run, SUCCESS};

/// Where the fixture's tob-wgs managed identities live (lowercased, as members are).
const TOB_WGS_IDENTITIES: &str = "/subscriptions/3c9f1e2a-6b4d-4f7e-8a1c-5d2e9b0f7a36/resourcegroups/egi-tob-wgs/providers/microsoft.managedidentity/userassignedidentities";

const NO_OP: &str = "plan: 0 group(s) to create, 0 member(s) to add, 0 to remove";

/// A copy of the frozen organisation with the Azure provider enabled.
fn azure_org() -> tempfile::TempDir {
    common::org_with_provider("azure")
}

struct Setup {
    emulator: AzureEmulator,
    org: tempfile::TempDir,
    endpoint: String,
}

impl Setup {
    fn new() -> Setup {
        let emulator = emulator(999);
        let (desired, aliases) = example();
        seed_people(&emulator, &desired, &aliases);
        let endpoint = emulator.base_url();
        Setup { emulator, org: azure_org(), endpoint }
    }

    fn sync(&self, extra: &[&str]) -> Run {
        let env = [("CPG_INFRA_AZURE_ENDPOINT", self.endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
        let args = [&["groups", "sync", "--provider", "azure", "--no-cache"][..], extra].concat();
        let run = cpg_with_env(self.org.path(), &args, &env);
        run.expect_code(SUCCESS);
        run
    }
}

#[test]
fn a_no_op_sync_reads_the_change_feed_in_at_most_three_calls() {
    let setup = Setup::new();
    let first = setup.sync(&["--confirm"]);
    assert!(first.stdout.contains("group(s) created"), "{first}");
    assert!(setup.org.path().join(".cpg-infra/azure-delta.json").is_file());
    let (desired, aliases) = example();
    assert_eq!(emulator_state(&setup.emulator, &aliases), flattened_state(&desired));
    // The managed identities are in the stored state by name, so no-op runs need not look them up.
    let state = std::fs::read_to_string(setup.org.path().join(".cpg-infra/azure-delta.json")).unwrap();
    assert!(state.contains(&format!("\"azure-identity:{TOB_WGS_IDENTITIES}/hail-test\"")), "{state}");

    setup.emulator.reset_calls();
    let dry = setup.sync(&[]);
    assert!(dry.stdout.contains(NO_OP), "{dry}");
    assert_eq!(setup.emulator.calls().get("$batch/servicePrincipals.list"), None);
    let calls = setup.emulator.calls();
    assert!(setup.emulator.total_calls() <= 3, "{calls:?}");
    assert_eq!(calls.get("groups.list"), None, "{calls:?}");
    assert_eq!(calls.get("groups.members.list"), None, "{calls:?}");

    setup.emulator.reset_calls();
    let confirmed = setup.sync(&["--confirm"]);
    assert!(confirmed.stdout.contains(NO_OP), "{confirmed}");
    assert!(setup.emulator.total_calls() <= 3, "{:?}", setup.emulator.calls());
    assert_eq!(emulator_state(&setup.emulator, &aliases), flattened_state(&desired), "the identities stay");
}

#[test]
fn changes_made_by_hand_between_runs_are_seen_and_reverted() {
    let setup = Setup::new();
    setup.emulator.insert_user(SeedUser {
        user_principal_name: "stranger@elsewhere.example.com".to_owned(),
        mail: None,
        display_name: "Stranger".to_owned(),
    });
    setup.sync(&["--confirm"]);
    let (desired, aliases) = example();
    let analysts = flattened_state(&desired)["tob-wgs-analysis@groups.example.org"].clone();
    let removed = analysts.iter().next().unwrap().clone();
    let principal = aliases.get(&removed).cloned().unwrap_or(removed.clone());
    setup.emulator.remove_member_directly("tob-wgs-analysis", &principal);
    setup.emulator.add_member_directly("tob-wgs-web-access", "stranger@elsewhere.example.com");

    setup.emulator.reset_calls();
    let run = setup.sync(&["--confirm"]);
    assert!(run.stdout.contains(&format!("+ add    {removed} to tob-wgs-analysis@groups.example.org")), "{run}");
    assert!(
        run.stdout.contains("- remove stranger@elsewhere.example.com from tob-wgs-web-access@groups.example.org"),
        "{run}"
    );
    assert_eq!(setup.emulator.calls().get("groups.members.list"), None, "a delta run lists no members");
    assert_eq!(emulator_state(&setup.emulator, &aliases), flattened_state(&desired));

    setup.emulator.reset_calls();
    let again = setup.sync(&[]);
    assert!(again.stdout.contains(NO_OP), "{again}");
    assert!(setup.emulator.total_calls() <= 3, "{:?}", setup.emulator.calls());
}

#[test]
fn an_expired_or_unreadable_state_and_full_read_read_everything() {
    let setup = Setup::new();
    setup.sync(&["--confirm"]);

    setup.emulator.expire_delta_links();
    setup.emulator.reset_calls();
    let run = setup.sync(&[]);
    assert!(run.stderr.contains("the stored delta link has expired; read everything again"), "{run}");
    assert!(run.stdout.contains(NO_OP), "{run}");
    // Reading the feed from scratch names the managed identities it meets: the six of tob-wgs
    // in one $batch.
    let calls = setup.emulator.calls();
    assert_eq!(calls.get("$batch/servicePrincipals.list"), Some(&6), "{calls:?}");
    setup.emulator.reset_calls();
    assert!(setup.sync(&[]).stdout.contains(NO_OP));
    assert!(setup.emulator.total_calls() <= 3, "the new link is used: {:?}", setup.emulator.calls());

    let state = setup.org.path().join(".cpg-infra/azure-delta.json");
    std::fs::write(&state, "{ not json").unwrap();
    let run = setup.sync(&[]);
    assert!(run.stderr.contains("not a delta state"), "{run}");
    assert!(run.stdout.contains(NO_OP), "{run}");

    setup.emulator.reset_calls();
    let run = setup.sync(&["--full-read"]);
    assert!(run.stdout.contains(NO_OP), "{run}");
    let calls = setup.emulator.calls();
    assert!(calls.get("groups.delta").is_some_and(|n| *n >= 1), "{calls:?}");
    // Every member is named again (a fresh run knows nobody), 20 to a batch.
    assert!(calls.get("$batch/users.get").is_some_and(|n| *n > 20), "{calls:?}");
}
