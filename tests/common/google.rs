//! The Google provider against the in-process Cloud Identity emulator: starting it, connecting
//! the real provider to it, and planning and applying with fast retries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cpg_infra::definitions::{DirSource, Nesting};
use cpg_infra::directory::{Directory, GoogleAuth, GoogleConfig, GoogleDirectory};
use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator};
use cpg_infra::hierarchy::{Group, GroupKind, Hierarchy};
use cpg_infra::load::load_expanded;
use cpg_infra::sync::{
    self, ApplyOptions, ApplyOutcome, ApplyReport, NoProgress, Plan, PlanOptions, RemovalLimits, RetryPolicy,
};

use super::fixture_org_dir;

pub const TOKEN: &str = "test-token";
pub const CUSTOMER: &str = "C03example";
pub const DOMAIN: &str = "groups.example.org";

pub const FAST_RETRY: RetryPolicy =
    RetryPolicy { max_attempts: 8, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(20) };

pub fn emulator(max_page_size: usize) -> GoogleEmulator {
    let options = EmulatorOptions {
        port: 0,
        customer: CUSTOMER.to_owned(),
        token: Some(TOKEN.to_owned()),
        max_page_size,
        premium: true,
        ..EmulatorOptions::default()
    };
    GoogleEmulator::start(options).expect("start the emulator")
}

pub fn connect(emulator: &GoogleEmulator, token: &str) -> GoogleDirectory {
    connect_with(emulator, token, false)
}

pub fn connect_with(emulator: &GoogleEmulator, token: &str, security_groups: bool) -> GoogleDirectory {
    GoogleDirectory::connect(&GoogleConfig {
        customer_id: CUSTOMER.to_owned(),
        groups_domain: DOMAIN.to_owned(),
        endpoint: Some(emulator.base_url()),
        auth: GoogleAuth::AccessToken(token.to_owned()),
        security_groups,
        requests: super::unpaced(),
    })
    .expect("connect")
}

pub fn example_hierarchy() -> Hierarchy {
    let today = "2026-11-26".parse().unwrap();
    load_expanded(&DirSource::new(fixture_org_dir()), today).expect("example organisation").hierarchy
}

/// A hierarchy from `(name, people, nested group names)`.
pub fn hierarchy(groups: &[(&str, Vec<String>, &[&str])]) -> Hierarchy {
    let groups = groups
        .iter()
        .map(|(name, members, nested)| {
            let group = Group {
                name: name.to_string(),
                email: format!("{name}@{DOMAIN}"),
                description: format!("{name} for tests"),
                kind: GroupKind::Organisation,
                members: members.iter().cloned().collect(),
                groups: nested.iter().map(|g| g.to_string()).collect(),
                expires: BTreeMap::new(),
                pinned: false,
                external_groups: BTreeSet::new(),
            };
            (name.to_string(), group)
        })
        .collect();
    Hierarchy { groups }
}

pub fn people(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:03}@example.org")).collect()
}

pub fn plan_options() -> PlanOptions {
    PlanOptions {
        nesting: Nesting::Native,
        delete_groups: false,
        adopt: false,
        limits: RemovalLimits { max_removals: 100, max_removal_percent: 50 },
    }
}

pub fn plan(directory: &dyn Directory, desired: &Hierarchy) -> Plan {
    let read = sync::read_live_state(directory, 8, &FAST_RETRY, &BTreeSet::new()).expect("read live state");
    sync::plan(desired, &read.state, &plan_options())
}

pub fn apply(directory: &dyn Directory, plan: &Plan) -> ApplyOutcome {
    let options = ApplyOptions { concurrency: 8, retry: FAST_RETRY, allow_mass_removal: false };
    sync::apply(directory, plan, &options, &NoProgress)
}

pub fn applied(outcome: ApplyOutcome) -> ApplyReport {
    match outcome {
        ApplyOutcome::Applied(report) => report,
        ApplyOutcome::Refused(reasons) => panic!("refused: {reasons:?}"),
    }
}

/// Plans and applies once, and checks that nothing failed.
pub fn sync_to(directory: &dyn Directory, desired: &Hierarchy) -> ApplyReport {
    let report = applied(apply(directory, &plan(directory, desired)));
    assert!(report.failed.is_empty(), "failures: {:?}", report.failed);
    report
}

/// What the emulator should hold for `desired` with native nesting: email → member emails.
pub fn expected_state(desired: &Hierarchy) -> BTreeMap<String, BTreeSet<String>> {
    desired
        .groups
        .values()
        .map(|g| {
            let nested = g.groups.iter().map(|child| desired.groups[child].email.clone());
            (g.email.clone(), g.members.iter().cloned().chain(nested).collect())
        })
        .collect()
}

pub fn emulator_state(emulator: &GoogleEmulator) -> BTreeMap<String, BTreeSet<String>> {
    emulator.groups().into_iter().map(|(email, group)| (email, group.members.keys().cloned().collect())).collect()
}

/// A temporary copy of the example organisation with the Google provider enabled.
pub fn google_org() -> tempfile::TempDir {
    super::org_with_provider("google")
}

/// Runs `groups sync --provider google` (with `--confirm` when asked) on `org` against the emulator.
pub fn cli_sync(emulator: &GoogleEmulator, org: &std::path::Path, confirm: bool) -> super::Run {
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN)];
    let mut args = vec!["groups", "sync", "--provider", "google"];
    if confirm {
        args.push("--confirm");
    }
    super::cpg_with_env(org, &args, &env)
}

/// Appends `text` to the definitions file `relative` (e.g. `groups/org.toml`) under `org`.
pub fn append_to(org: &std::path::Path, relative: &str, text: &str) {
    let path = org.join(relative);
    let before = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    std::fs::write(&path, format!("{before}\n{text}")).unwrap();
}
