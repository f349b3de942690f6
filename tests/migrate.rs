//! `migrate import` against the emulator: the old structure's live groups (Cloud Identity)
//! and its members caches (Secret Manager) become people and grants in the definitions,
//! edited in place; a second run changes nothing; the report names every discrepancy.

mod common;

use std::fs;
use std::path::Path;

use common::google::{emulator, google_org, CUSTOMER, TOKEN};
use common::{cpg_with_env, Run, SUCCESS};
use cpg_infra::emulator::google::{GoogleEmulator, SeedGroup};

const MAPPING: &str = r#"# Old names → roles of the new structure.
[groups]
"{dataset}-access" = "analysis"

[caches]
"{dataset}-access-members-cache" = "analysis"
"#;

fn seed_old_structure(emulator: &GoogleEmulator) {
    for email in ["tob-wgs-access@groups.example.org", "legacy-admins@groups.example.org"] {
        emulator.insert_group(SeedGroup {
            email: email.to_owned(),
            display_name: email.to_owned(),
            description: "made by hand in the console".to_owned(),
            ..SeedGroup::default()
        });
    }
    // amara already reaches tob-wgs analysis (data manager); ravi does not; zoe is unknown.
    for member in ["amara.okafor@example.org", "ravi.iyer@example.org", "zoe.new@partner.org"] {
        emulator.add_member_directly("tob-wgs-access@groups.example.org", member);
    }
    emulator.add_secret_version(
        "example-tob-wgs",
        "tob-wgs-access-members-cache",
        b"amara.okafor@example.org,Ravi.Iyer@example.org,cache.only@example.org",
    );
}

fn import(root: &Path, emulator: &GoogleEmulator, extra: &[&str]) -> Run {
    let mapping = root.join("migration.toml");
    fs::write(&mapping, MAPPING).unwrap();
    let mapping = mapping.to_string_lossy().into_owned();
    let mut args = vec!["migrate", "import", "--provider", "google", "--mapping", &mapping];
    args.extend_from_slice(extra);
    let base = emulator.base_url();
    cpg_with_env(
        root,
        &args,
        &[
            ("CPG_INFRA_GOOGLE_ENDPOINT", &base),
            ("CPG_INFRA_SECRETMANAGER_ENDPOINT", &base),
            ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN),
            ("CPG_INFRA_GOOGLE_CUSTOMER_ID", CUSTOMER),
        ],
    )
}

#[test]
fn the_old_groups_and_caches_become_definitions_once() {
    let org = google_org();
    let root = org.path();
    let emulator = emulator(200);
    seed_old_structure(&emulator);
    let people_path = root.join("groups/people.toml");
    let members_path = root.join("datasets/tob-wgs/members.toml");
    let (people_before, members_before) = (fs::read(&people_path).unwrap(), fs::read(&members_path).unwrap());

    // A dry run reports and writes nothing.
    let dry = import(root, &emulator, &["--dry-run"]);
    dry.expect_code(SUCCESS);
    assert_eq!(fs::read(&people_path).unwrap(), people_before);
    assert_eq!(fs::read(&members_path).unwrap(), members_before);
    for line in [
        "+ person zoe-new <zoe.new@partner.org> (review)",
        "+ person cache-only <cache.only@example.org> (review)",
        "+ tob-wgs analysis: ravi",
        "+ tob-wgs analysis: zoe-new",
        "+ tob-wgs analysis: cache-only",
        "tob-wgs analysis: cache.only@example.org is in the old cache but not in the live group",
        "tob-wgs analysis: zoe.new@partner.org is in the live group but not in the old cache",
        "legacy-admins@groups.example.org: no mapping entry covers this old group",
        "import: 2 person(s) to add, 3 grant(s) to add",
    ] {
        assert!(dry.stdout.contains(line), "missing `{line}`:\n{dry}");
    }
    assert!(!dry.stdout.contains("analysis: amara"), "amara already has the access:\n{dry}");

    let applied = import(root, &emulator, &[]);
    applied.expect_code(SUCCESS);
    // Everything that was there stays, byte for byte; the new person is marked for review.
    let people_after = fs::read_to_string(&people_path).unwrap();
    assert!(people_after.as_bytes().starts_with(&people_before), "people.toml was rewritten, not appended to");
    assert!(
        people_after.contains("review the key, add a name.\n[people.zoe-new]\nemail = \"zoe.new@partner.org\""),
        "{people_after}"
    );
    let members_after = fs::read_to_string(&members_path).unwrap();
    let kept = String::from_utf8(members_before).unwrap();
    for comment in kept.lines().filter(|l| l.trim_start().starts_with('#')) {
        assert!(members_after.contains(comment), "comment lost: {comment}\n{members_after}");
    }
    let why = cpg_with_env(root, &["groups", "why", "zoe.new@partner.org", "tob-wgs-analysis"], &[]);
    why.expect_code(SUCCESS);

    // The second run finds nothing to add and leaves the files as they are.
    let again = import(root, &emulator, &[]);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains("import: 0 person(s) to add, 0 grant(s) to add"), "{again}");
    assert_eq!(fs::read_to_string(&people_path).unwrap(), people_after);
    assert_eq!(fs::read_to_string(&members_path).unwrap(), members_after);
}

#[test]
fn a_mapping_to_an_unknown_role_is_located_and_nothing_is_read() {
    let org = google_org();
    let root = org.path();
    let emulator = emulator(200);
    let mapping = root.join("migration.toml");
    fs::write(&mapping, "[groups]\n\"{dataset}-access\" = \"analyst\"\n").unwrap();
    let run = cpg_with_env(root, &["migrate", "import", "--mapping", &mapping.to_string_lossy()], &[]);
    run.expect_code(common::INVALID_INPUT);
    assert!(run.stderr.contains("migration.toml:2:22: unknown role `analyst`; did you mean `analysis`?"), "{run}");
    assert_eq!(emulator.total_calls(), 0);
}

fn migration_plan(root: &Path, emulator: &GoogleEmulator) -> Run {
    let mapping = root.join("migration.toml");
    fs::write(&mapping, MAPPING).unwrap();
    let mapping = mapping.to_string_lossy().into_owned();
    let base = emulator.base_url();
    cpg_with_env(
        root,
        &["migrate", "plan", "--provider", "google", "--from", &mapping],
        &[
            ("CPG_INFRA_GOOGLE_ENDPOINT", &base),
            ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN),
            ("CPG_INFRA_GOOGLE_CUSTOMER_ID", CUSTOMER),
        ],
    )
}

#[test]
fn the_migration_plan_flags_who_would_lose_access_until_the_import_restores_it() {
    let org = google_org();
    let root = org.path();
    let emulator = emulator(200);
    seed_old_structure(&emulator);
    let before = migration_plan(root, &emulator);
    before.expect_code(common::FAILURE);
    assert!(
        before.stdout.contains(
            "! ravi.iyer@example.org loses tob-wgs-analysis (has it through tob-wgs-access@groups.example.org); restore with datasets/tob-wgs/members.toml: analysis = [\"ravi\"]"
        ),
        "{before}"
    );
    assert!(before.stdout.contains("! zoe.new@partner.org loses tob-wgs-analysis"), "{before}");
    assert!(!before.stdout.contains("amara"), "amara keeps her access: {before}");
    assert!(before.stdout.contains("1 old group(s) checked, 2 member(s) would lose access"), "{before}");

    import(root, &emulator, &[]).expect_code(SUCCESS);
    let after = migration_plan(root, &emulator);
    after.expect_code(SUCCESS);
    assert!(after.stdout.contains("0 member(s) would lose access"), "{after}");
}

/// The transition: an old group nested into its new group keeps its members' access while
/// they move; retiring it removes only the nesting.
#[test]
fn old_groups_stay_nested_in_their_new_groups_until_retired() {
    let org = common::example_org();
    let root = org.path();
    common::cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    let state_path = root.join(".cpg-infra/directory.json");
    let mut state: serde_json::Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    state["groups"]["tob-wgs-access@groups.example.org"] =
        serde_json::json!({"name": "tob-wgs-access", "description": "old", "members": ["zoe.new@partner.org"]});
    fs::write(&state_path, state.to_string()).unwrap();
    fs::write(root.join("migration.toml"), MAPPING).unwrap();
    let org_toml = root.join("groups/org.toml");
    let text = fs::read_to_string(&org_toml).unwrap();
    fs::write(&org_toml, format!("{text}\n[migration]\ntransition = \"migration.toml\"\n")).unwrap();

    let nested = common::cpg(root, &["groups", "sync", "--confirm"]);
    nested.expect_code(SUCCESS);
    assert!(nested.stderr.contains("transition: 1 old group(s) nested"), "{nested}");
    let members = |root: &Path| -> Vec<String> {
        let state: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(root.join(".cpg-infra/directory.json")).unwrap()).unwrap();
        state["groups"]["tob-wgs-analysis@groups.example.org"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(members(root).contains(&"tob-wgs-access@groups.example.org".to_owned()));
    // Stable: the nesting is not planned again.
    let again = common::cpg(root, &["groups", "sync"]);
    assert!(again.stdout.contains("0 member(s) to add, 0 to remove"), "{again}");

    let retired = common::cpg(root, &["groups", "sync", "--confirm", "--retire-old-groups"]);
    retired.expect_code(SUCCESS);
    assert!(!members(root).contains(&"tob-wgs-access@groups.example.org".to_owned()));
    let state: serde_json::Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(
        state["groups"]["tob-wgs-access@groups.example.org"]["members"],
        serde_json::json!(["zoe.new@partner.org"])
    );
}

#[test]
fn a_malformed_cache_payload_is_an_error_naming_the_secret() {
    let org = google_org();
    let root = org.path();
    let emulator = emulator(200);
    seed_old_structure(&emulator);
    emulator.add_secret_version(
        "example-tob-wgs",
        "tob-wgs-access-members-cache",
        b"[\"amara.okafor@example.org\", 7]",
    );
    let people = fs::read(root.join("groups/people.toml")).unwrap();
    let run = import(root, &emulator, &[]);
    run.expect_code(common::INVALID_INPUT);
    assert!(
        run.stderr.contains("secret projects/example-tob-wgs/secrets/tob-wgs-access-members-cache: the payload starts like a JSON list but is not a list of strings"),
        "{run}"
    );
    assert_eq!(fs::read(root.join("groups/people.toml")).unwrap(), people, "nothing was written");
}

/// After the import, syncing the new structure into the same directory only creates and fills
/// the new groups: nobody's access is removed, and the old groups are left as they are.
#[test]
fn after_the_import_a_sync_adds_the_new_structure_and_removes_nobody() {
    let org = google_org();
    let root = org.path();
    let emulator = emulator(200);
    seed_old_structure(&emulator);
    import(root, &emulator, &[]).expect_code(SUCCESS);
    let base = emulator.base_url();
    let env = [
        ("CPG_INFRA_GOOGLE_ENDPOINT", base.as_str()),
        ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN),
        ("CPG_INFRA_GOOGLE_CUSTOMER_ID", CUSTOMER),
    ];
    let plan = cpg_with_env(root, &["groups", "sync", "--provider", "google", "--no-cache"], &env);
    plan.expect_code(SUCCESS);
    assert!(plan.stdout.contains(" 0 to remove"), "{plan}");
    assert!(!plan.stdout.lines().any(|l| l.starts_with("- ")), "no removal is planned:\n{plan}");
    cpg_with_env(root, &["groups", "sync", "--provider", "google", "--no-cache", "--confirm"], &env)
        .expect_code(SUCCESS);
    let old = &emulator.groups()["tob-wgs-access@groups.example.org"];
    assert_eq!(old.members.len(), 3, "the old group is untouched");
    let analysis = &emulator.groups()["tob-wgs-analysis@groups.example.org"];
    assert!(analysis.members.contains_key("zoe.new@partner.org"), "the imported person has the new group");
}
