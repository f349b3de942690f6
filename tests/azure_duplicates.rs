//! Creating Azure security groups exactly once. Graph lets security groups share a
//! mailNickname, so a create repeated after its answer was lost, or a sync that trusts a change
//! feed which does not show new groups yet, would make a second group: each case leaves
//! exactly one group per nickname, and two owned groups with one nickname are an error.

mod common;

use std::collections::BTreeMap;

use cpg_infra::directory::OWNER_MARKER;
use cpg_infra::emulator::azure::{AzureEmulator, SeedGroup};
use cpg_infra::emulator::FaultPlan;

use common::azure::{connect_with_people, emulator, emulator_state, example, flattened_state, seed_people};
use common::google::{expected_state, sync_to, TOKEN};
use common::{cpg_with_env, Run, INVALID_INPUT, SUCCESS};

/// Every group of the example organisation exactly once.
fn assert_one_group_per_nickname(emulator: &AzureEmulator, groups: usize) {
    let counts = emulator.nickname_counts();
    assert_eq!(counts.len(), groups, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

fn lose_creates(count: u32, reset: bool) -> FaultPlan {
    FaultPlan {
        lose_answers: [("groups.create".to_owned(), count)].into_iter().collect(),
        lose_by_reset: reset,
        ..FaultPlan::default()
    }
}

#[test]
fn a_create_whose_answer_was_lost_is_not_repeated() {
    for reset in [false, true] {
        let emulator = emulator(999);
        let (desired, aliases) = example();
        seed_people(&emulator, &desired, &aliases);
        emulator.set_faults(lose_creates(5, reset));
        let directory = connect_with_people(&emulator, TOKEN, aliases.clone(), &desired);
        let report = sync_to(&directory, &desired);
        assert_eq!(report.created, desired.groups.len());
        assert!(report.retries >= 5, "five lost answers were retried: {report:?}");
        assert_one_group_per_nickname(&emulator, desired.groups.len());
        assert_eq!(emulator_state(&emulator, &aliases), expected_state(&desired));
        // One POST per group: a retry found the group by its nickname instead of posting again.
        let calls = emulator.calls();
        assert_eq!(calls.get("groups.create"), Some(&(desired.groups.len() as u64)), "{calls:?}");
        // One look-up before each create and one before each of the five retries, one listing.
        let lookups = desired.groups.len() as u64 + 5 + 1;
        assert_eq!(calls.get("groups.list"), Some(&lookups), "{calls:?}");
    }
}

struct Cli {
    emulator: AzureEmulator,
    org: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let emulator = emulator(999);
        let (desired, aliases) = example();
        seed_people(&emulator, &desired, &aliases);
        Cli { emulator, org: common::org_with_provider("azure") }
    }

    fn sync(&self, extra: &[&str]) -> Run {
        let endpoint = self.emulator.base_url();
        let env = [("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_ACCESS_TOKEN", TOKEN)];
        let args = [&["groups", "sync", "--provider", "azure", "--no-cache"][..], extra].concat();
        cpg_with_env(self.org.path(), &args, &env)
    }
}

#[test]
fn a_sync_right_after_the_first_while_the_feed_lags_creates_nothing_again() {
    let cli = Cli::new();
    let (desired, aliases) = example();
    // New groups stay out of the change feed for the rest of this test.
    cli.emulator.set_faults(FaultPlan { delta_lag: 100, ..FaultPlan::default() });
    let first = cli.sync(&["--confirm"]);
    first.expect_code(SUCCESS);
    assert!(first.stderr.contains("no delta state at"), "a missing state reads everything: {first}");
    assert_one_group_per_nickname(&cli.emulator, desired.groups.len());
    let calls = cli.emulator.calls();
    eprintln!("first sync: {calls:?}");
    assert_eq!(calls.get("groups.create"), Some(&(desired.groups.len() as u64)), "{calls:?}");
    // People are looked up 20 to a $batch, never one request each.
    assert_eq!(calls.get("users.list"), None, "{calls:?}");
    let people: std::collections::BTreeSet<&String> = desired
        .groups
        .values()
        .flat_map(|g| g.members.iter())
        .filter(|m| !m.starts_with(cpg_infra::infra::AZURE_IDENTITY_PREFIX))
        .collect();
    let lookups = people.len() as u64;
    assert_eq!(calls.get("$batch/users.list"), Some(&lookups), "each person once: {calls:?}");
    // Those batches, and one for the managed identities.
    assert_eq!(calls.get("$batch"), Some(&(lookups.div_ceil(20) + 1)), "{calls:?}");

    cli.emulator.reset_calls();
    let second = cli.sync(&["--confirm"]);
    second.expect_code(SUCCESS);
    assert!(second.stdout.contains("plan: 0 group(s) to create, 0 member(s) to add, 0 to remove"), "{second}");
    assert_one_group_per_nickname(&cli.emulator, desired.groups.len());
    let calls = cli.emulator.calls();
    eprintln!("second sync: {calls:?}");
    assert_eq!(calls.get("groups.create"), None, "{calls:?}");
    assert_eq!(emulator_state(&cli.emulator, &aliases), flattened_state(&desired));
}

#[test]
fn a_lost_create_answer_in_the_cli_leaves_one_group_per_nickname() {
    let cli = Cli::new();
    let (desired, aliases) = example();
    cli.emulator.set_faults(lose_creates(3, true));
    cli.sync(&["--confirm"]).expect_code(SUCCESS);
    assert_one_group_per_nickname(&cli.emulator, desired.groups.len());
    assert_eq!(emulator_state(&cli.emulator, &aliases), flattened_state(&desired));
    let calls = cli.emulator.calls();
    eprintln!("sync with three lost creates: {calls:?}");
    assert_eq!(calls.get("groups.create"), Some(&(desired.groups.len() as u64)), "{calls:?}");
}

#[test]
fn two_owned_groups_with_one_nickname_are_an_error_naming_both() {
    let cli = Cli::new();
    let twin = |description: &str| {
        cli.emulator.insert_group(SeedGroup {
            display_name: "tob-wgs-analysis".to_owned(),
            mail_nickname: "tob-wgs-analysis".to_owned(),
            description: description.to_owned(),
            members: Vec::new(),
        })
    };
    let (first, second) = (twin(&format!("[{OWNER_MARKER}]")), twin(&format!("[{OWNER_MARKER}]")));
    let before: BTreeMap<String, usize> = cli.emulator.nickname_counts();
    for extra in [&[][..], &["--confirm"][..], &["--full-read"][..]] {
        let run = cli.sync(extra);
        run.expect_code(INVALID_INPUT);
        for id in [&first, &second] {
            assert!(run.stderr.contains(id.as_str()), "{run}");
        }
        assert!(run.stderr.contains("az ad group delete"), "{run}");
    }
    assert_eq!(cli.emulator.nickname_counts(), before, "nothing was created");
}
