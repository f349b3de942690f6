//! The Google provider against Cloud Identity as it answers for real: 403 "permission denied
//! (or it may not exist)" for accounts and groups it does not have, membership expiry only on
//! premium editions (else added without it, said once, or left to the sync by
//! `membership_expiry = "enforced-by-sync"`), and a 403 for the whole customer as the only
//! credentials error.

mod common;

use std::collections::BTreeSet;

use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator};
use cpg_infra::emulator::FaultPlan;

use common::google::{
    applied, apply, connect, emulator, emulator_state, google_org, hierarchy, people, plan, CUSTOMER, TOKEN,
};
use common::{cpg_with_env, cpg_with_env_on, Run, INVALID_INPUT, SUCCESS};

/// A customer on an edition without membership expiry.
fn standard_edition() -> GoogleEmulator {
    let options = EmulatorOptions {
        customer: CUSTOMER.to_owned(),
        token: Some(TOKEN.to_owned()),
        max_page_size: 500,
        premium: false,
        ..EmulatorOptions::default()
    };
    GoogleEmulator::start(options).expect("start the emulator")
}

fn sync(emulator: &GoogleEmulator, org: &tempfile::TempDir, today: &str, extra: &[&str]) -> Run {
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let args = [&["groups", "sync", "--provider", "google", "--no-cache"][..], extra].concat();
    cpg_with_env_on(org.path(), today, &args, &env)
}

const RELEASE: &str = "tob-wgs-release-access@groups.example.org";
const RAVI: &str = "ravi.iyer.lab@gmail.com";

#[test]
fn an_account_that_does_not_exist_fails_only_its_memberships() {
    let emulator = emulator(500);
    emulator.set_faults(FaultPlan {
        unknown_members: BTreeSet::from(["ghost@example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let directory = connect(&emulator, TOKEN);
    let mut members = people("a", 3);
    members.push("ghost@example.org".to_owned());
    let desired = hierarchy(&[("g1", members.clone(), &[]), ("g2", members, &[])]);
    emulator.reset_calls();
    let report = applied(apply(&directory, &plan(&directory, &desired)));
    assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
    for (change, error) in &report.failed {
        assert!(change.to_string().contains("ghost@example.org"), "{change}");
        assert!(error.contains("403") && error.contains("the account may not exist"), "{error}");
    }
    assert_eq!(report.added, 6);
    assert_eq!(report.retries, 0, "a missing account is not retried");
    let state = emulator_state(&emulator);
    assert_eq!(state["g1@groups.example.org"].len(), 3);
    // Each refused addition cost one groups.get to tell the member from the group.
    let calls = emulator.calls();
    assert_eq!(calls.get("groups.get"), Some(&2), "{calls:?}");
}

#[test]
fn without_premium_expiry_memberships_are_added_without_it_and_said_once() {
    let emulator = standard_edition();
    let org = google_org();
    let run = sync(&emulator, &org, common::TODAY, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(run.stderr.matches("notice: membership expiry").count(), 1, "{run}");
    assert!(run.stderr.contains("enforced-by-sync"), "{run}");
    let ravi = &emulator.groups()[RELEASE].members[RAVI];
    assert_eq!(ravi.expire_time, None, "{ravi:?}");
    eprintln!("calls: {:?}", emulator.calls());
}

#[test]
fn enforced_by_sync_sends_no_expiry_and_removes_expired_grants() {
    let emulator = standard_edition();
    let org = google_org();
    let path = org.path().join("groups/org.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text =
        text.replacen("[providers.google]\n", "[providers.google]\nmembership_expiry = \"enforced-by-sync\"\n", 1);
    std::fs::write(&path, text).unwrap();

    let run = sync(&emulator, &org, common::TODAY, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert!(run.stderr.contains("membership expiry is enforced by the sync"), "{run}");
    assert!(!run.stderr.contains("notice: membership expiry"), "no expiry was sent, none refused: {run}");
    assert_eq!(emulator.groups()[RELEASE].members[RAVI].expire_time, None);

    // The day after Ravi's last day (2027-03-31), the sync removes him itself.
    let later = sync(&emulator, &org, "2027-04-01", &["--confirm"]);
    later.expect_code(SUCCESS);
    assert!(!emulator.groups()[RELEASE].members.contains_key(RAVI), "{later}");
    assert!(later.stdout.contains(&format!("- remove {RAVI} from {RELEASE}")), "{later}");
}

#[test]
fn an_unknown_membership_expiry_mode_is_a_located_error() {
    let org = google_org();
    let path = org.path().join("groups/org.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replacen("[providers.google]\n", "[providers.google]\nmembership_expiry = \"google\"\n", 1),
    )
    .unwrap();
    let run = common::cpg(org.path(), &["validate"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("groups/org.toml:"), "{run}");
    assert!(run.stderr.contains("unknown membership_expiry `google`; use `native` or `enforced-by-sync`"), "{run}");
}

#[test]
fn a_customer_that_answers_403_is_a_credentials_error() {
    let emulator = emulator(500);
    let org = google_org();
    let endpoint = emulator.base_url();
    let env = [
        ("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()),
        ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN),
        ("CPG_INFRA_GOOGLE_CUSTOMER_ID", "C99other"),
    ];
    let run = cpg_with_env(org.path(), &["groups", "sync", "--provider", "google"], &env);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("groups.list customers/C99other: permission denied (403)"), "{run}");
}
