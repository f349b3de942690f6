//! Google group settings (the Groups Settings API) during `groups sync --provider google`,
//! against the emulator with the real client crate: applied once, read once per owned group
//! afterwards, drift patched back field by field, overrides, ownership, dry runs and faults.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cpg_infra::emulator::google::{GoogleEmulator, SeedGroup};
use cpg_infra::emulator::FaultPlan;

use common::google::{append_to, cli_sync, emulator, example_hierarchy, google_org};
use common::{FAILURE, SUCCESS};

const GET: &str = "groupsSettings.groups.get";
const PATCH: &str = "groupsSettings.groups.patch";

/// The organisation's defaults used here; every one differs from a new group's settings.
const ORG_SETTINGS: &str = r#"
[providers.google.group_settings]
who_can_view_membership = "all_managers_can_view"
who_can_join = "invited_can_join"
allow_external_members = true
"#;

/// The fixture organisation with Google enabled and `ORG_SETTINGS`.
fn org_with_settings() -> tempfile::TempDir {
    let org = google_org();
    append_to(org.path(), "groups/org.toml", ORG_SETTINGS);
    org
}

fn calls(emulator: &GoogleEmulator, method: &str) -> u64 {
    emulator.calls().get(method).copied().unwrap_or(0)
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut settings: BTreeMap<String, String> = [
        ("whoCanViewMembership", "ALL_MANAGERS_CAN_VIEW"),
        ("whoCanJoin", "INVITED_CAN_JOIN"),
        ("whoCanPostMessage", "ANYONE_CAN_POST"),
        ("allowExternalMembers", "true"),
        ("isArchived", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    settings.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    settings
}

#[test]
fn settings_are_applied_once_then_only_read_and_drift_is_patched_back_field_by_field() {
    let emulator = emulator(500);
    let org = org_with_settings();
    let groups = example_hierarchy().groups.len() as u64;

    let first = cli_sync(&emulator, org.path(), true);
    first.expect_code(SUCCESS);
    // Every group is new, so every group is read once after its creation and patched once.
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups, groups), "{first}");
    assert!(first.stdout.contains(&format!("settings: {groups} group(s) read, {groups} updated; 0 failed")), "{first}");
    for email in emulator.groups().keys() {
        assert_eq!(emulator.settings(email), expected(&[]), "{email}");
    }

    emulator.reset_calls();
    let second = cli_sync(&emulator, org.path(), true);
    second.expect_code(SUCCESS);
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups, 0), "{second}");
    assert!(second.stdout.contains(&format!("settings: {groups} group(s) read, 0 updated; 0 failed")), "{second}");

    // Changed by hand: one managed field and one the definitions leave alone.
    let web = "tob-wgs-web-access@groups.example.org";
    emulator.set_setting_directly(web, "whoCanJoin", "ANYONE_CAN_JOIN");
    emulator.set_setting_directly(web, "whoCanPostMessage", "ALL_OWNERS_CAN_POST");
    emulator.reset_calls();
    let dry = cli_sync(&emulator, org.path(), false);
    dry.expect_code(SUCCESS);
    assert!(
        dry.stdout.contains(&format!("~ settings {web}: whoCanJoin ANYONE_CAN_JOIN → INVITED_CAN_JOIN\n")),
        "{dry}"
    );
    assert!(dry.stdout.contains("1 to update"), "{dry}");
    assert!(dry.stderr.contains("dry run: nothing was changed"), "{dry}");
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups, 0), "{dry}");
    assert_eq!(emulator.settings(web)["whoCanJoin"], "ANYONE_CAN_JOIN");

    emulator.reset_calls();
    let fix = cli_sync(&emulator, org.path(), true);
    fix.expect_code(SUCCESS);
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups, 1), "{fix}");
    assert_eq!(fix.stdout.matches("~ settings ").count(), 1, "{fix}");
    assert_eq!(emulator.settings(web), expected(&[("whoCanPostMessage", "ALL_OWNERS_CAN_POST")]));
}

#[test]
fn a_group_or_role_override_wins_over_the_organisation_default() {
    let emulator = emulator(500);
    let org = org_with_settings();
    append_to(
        org.path(),
        "groups/org-groups.toml",
        "[groups.platform-admins.google_settings]\nwho_can_join = \"all_in_domain_can_join\"\nis_archived = true\n",
    );
    append_to(
        org.path(),
        "groups/roles.toml",
        "[roles.data-manager.google_settings]\nwho_can_post_message = \"all_managers_can_post\"\n",
    );
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);

    let settings = |email: &str| emulator.settings(email);
    assert_eq!(
        settings("platform-admins@groups.example.org"),
        expected(&[("whoCanJoin", "ALL_IN_DOMAIN_CAN_JOIN"), ("isArchived", "true")])
    );
    let managers: Vec<String> =
        emulator.groups().into_keys().filter(|email| email.ends_with("-data-manager@groups.example.org")).collect();
    assert!(managers.len() > 1, "{managers:?}");
    for email in managers {
        assert_eq!(settings(&email), expected(&[("whoCanPostMessage", "ALL_MANAGERS_CAN_POST")]), "{email}");
    }
    assert_eq!(settings("tob-wgs-analysis@groups.example.org"), expected(&[]));

    emulator.reset_calls();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    assert_eq!(calls(&emulator, PATCH), 0);
}

#[test]
fn groups_that_are_not_ours_are_never_read_or_patched() {
    let emulator = emulator(500);
    let theirs = "tob-wgs-analysis@groups.example.org";
    emulator.insert_group(SeedGroup {
        email: theirs.to_owned(),
        display_name: "tob-wgs-analysis".to_owned(),
        description: "made by hand".to_owned(),
        labels: BTreeMap::new(),
        members: vec![],
    });
    let before = emulator.settings(theirs);
    let org = org_with_settings();
    let groups = example_hierarchy().groups.len() as u64;

    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("! conflict: {theirs}")), "{run}");
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups - 1, groups - 1), "{run}");
    assert_eq!(emulator.settings(theirs), before);
    assert!(!run.stdout.contains(&format!("~ settings {theirs}")), "{run}");

    emulator.reset_calls();
    let dry = cli_sync(&emulator, org.path(), false);
    dry.expect_code(SUCCESS);
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups - 1, 0), "{dry}");
}

#[test]
fn without_settings_no_settings_call_is_made() {
    let emulator = emulator(500);
    let org = google_org();
    cli_sync(&emulator, org.path(), false).expect_code(SUCCESS);
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    let again = cli_sync(&emulator, org.path(), true);
    again.expect_code(SUCCESS);
    assert!(!again.stdout.contains("settings:"), "{again}");
    let methods: BTreeSet<String> = emulator.calls().into_keys().collect();
    assert!(methods.iter().all(|m| !m.starts_with("groupsSettings.")), "{methods:?}");
}

#[test]
fn a_dry_run_before_the_first_sync_shows_the_settings_of_new_groups_without_a_call() {
    let emulator = emulator(500);
    let org = org_with_settings();
    let dry = cli_sync(&emulator, org.path(), false);
    dry.expect_code(SUCCESS);
    let analysis = "tob-wgs-analysis@groups.example.org";
    assert!(
        dry.stdout.contains(&format!(
            "~ settings {analysis} (once the group is ours): allowExternalMembers → true, whoCanJoin → INVITED_CAN_JOIN, whoCanViewMembership → ALL_MANAGERS_CAN_VIEW\n"
        )),
        "{dry}"
    );
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (0, 0), "{dry}");
    assert!(emulator.groups().is_empty());
}

#[test]
fn seeded_throttling_and_outages_converge() {
    let emulator = emulator(500);
    let org = org_with_settings();
    let groups = example_hierarchy().groups.len() as u64;
    emulator.set_faults(FaultPlan {
        seed: 11,
        rate_429: 0.3,
        retry_after: Duration::from_secs(0),
        rate_503: 0.2,
        rate_500: 0.1,
        max_faults_per_request: Some(2),
        methods: Some(BTreeSet::from([GET.to_owned(), PATCH.to_owned()])),
        ..FaultPlan::default()
    });
    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(SUCCESS);
    let (gets, patches) = (calls(&emulator, GET), calls(&emulator, PATCH));
    assert!(gets > groups && patches > groups, "no fault was injected: {gets} GET, {patches} PATCH\n{run}");
    let retried = gets + patches - 2 * groups;
    assert!(run.stdout.contains(&format!("{groups} updated; 0 failed; {retried} retried")), "{run}");
    for email in emulator.groups().keys() {
        assert_eq!(emulator.settings(email), expected(&[]), "{email}");
    }

    emulator.set_faults(FaultPlan::default());
    emulator.reset_calls();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    assert_eq!((calls(&emulator, GET), calls(&emulator, PATCH)), (groups, 0));
}

#[test]
fn updates_that_keep_failing_are_reported_and_exit_1() {
    let emulator = emulator(500);
    let org = org_with_settings();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    let web = "tob-wgs-web-access@groups.example.org";
    let admins = "platform-admins@groups.example.org";
    emulator.set_setting_directly(web, "isArchived", "true");
    emulator.set_setting_directly(web, "whoCanJoin", "ANYONE_CAN_JOIN");
    emulator.set_setting_directly(admins, "allowExternalMembers", "false");
    // Every update is throttled; reads go through.
    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(0),
        methods: Some(BTreeSet::from([PATCH.to_owned()])),
        ..FaultPlan::default()
    });
    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(FAILURE);
    for group in [web, admins] {
        assert!(run.stderr.contains(&format!("failed: updating the settings of {group}: ")), "{run}");
    }
    assert!(run.stderr.contains("throttled by the directory"), "{run}");
    assert!(run.stdout.contains("0 updated; 2 failed"), "{run}");
    // isArchived is not configured here: it stays as it was set by hand.
    assert_eq!(emulator.settings(web)["isArchived"], "true");

    emulator.set_faults(FaultPlan::default());
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    assert_eq!(emulator.settings(web), expected(&[("isArchived", "true")]));
    assert_eq!(emulator.settings(admins), expected(&[]));
}

#[test]
fn a_token_without_the_settings_scope_is_one_error_naming_the_scope() {
    let options = cpg_infra::emulator::google::EmulatorOptions {
        customer: common::google::CUSTOMER.to_owned(),
        token: Some(common::google::TOKEN.to_owned()),
        max_page_size: 500,
        premium: true,
        settings_scope: false,
        ..Default::default()
    };
    let emulator = GoogleEmulator::start(options).unwrap();
    let org = org_with_settings();
    cli_sync(&emulator, org.path(), true).expect_code(FAILURE);
    emulator.reset_calls();
    let run = cli_sync(&emulator, org.path(), true);
    run.expect_code(FAILURE);
    assert_eq!(run.stderr.matches("failed: reading the settings").count(), 1, "{run}");
    assert!(run.stderr.contains("https://www.googleapis.com/auth/apps.groups.settings"), "{run}");
    assert_eq!(calls(&emulator, GET), 1, "one read found the scope missing: {:?}", emulator.calls());
    assert_eq!(calls(&emulator, PATCH), 0);
}

#[test]
fn none_can_post_is_taken_only_with_archive_only() {
    let emulator = emulator(500);
    let org = google_org();
    cli_sync(&emulator, org.path(), true).expect_code(SUCCESS);
    let team = "platform-admins@groups.example.org";
    let directory = common::google::connect(&emulator, common::google::TOKEN);
    // The provider learns which groups are its own from a listing.
    cpg_infra::directory::Directory::list_groups(&directory).unwrap();
    let settings = cpg_infra::directory::Directory::group_settings(&directory).unwrap();
    let fields = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let refused = settings.update_settings(team, &fields(&[("whoCanPostMessage", "NONE_CAN_POST")]));
    assert!(refused.is_err_and(|e| e.to_string().contains("archiveOnly")));
    assert_eq!(emulator.settings(team)["whoCanPostMessage"], "ANYONE_CAN_POST", "a refused PATCH changes nothing");
    settings.update_settings(team, &fields(&[("archiveOnly", "true")])).unwrap();
    assert_eq!(emulator.settings(team)["whoCanPostMessage"], "NONE_CAN_POST", "archiving stops posting");
    settings.update_settings(team, &fields(&[("archiveOnly", "false")])).unwrap();
    assert_eq!(emulator.settings(team)["whoCanPostMessage"], "ALL_MANAGERS_CAN_POST");
}
