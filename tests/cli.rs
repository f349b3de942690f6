//! End-to-end tests of the `cpg-infra` binary on a temporary copy of the example organisation:
//! validate, groups expand / why, expiry, and groups sync against the local directory
//! (dry run, apply, idempotence, drift, unowned groups, safety limits, the lock, deletion).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{cpg, cpg_on, example_org, FAILURE, INVALID_INPUT, REFUSED, SUCCESS};
use serde_json::Value;

const EMPTY_PLAN: &str = "plan: 0 group(s) to create, 0 member(s) to add, 0 to remove, 0 to update";

/// The local directory's default state file under `root` (sync.state_file's default).
fn state_path(root: &Path) -> PathBuf {
    root.join(".cpg-infra/directory.json")
}

/// The file's device and inode: a write through a temporary file and a rename changes them.
fn file_identity(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path).expect("state file exists");
    (metadata.dev(), metadata.ino())
}

fn read_state(root: &Path) -> Value {
    let text = fs::read_to_string(state_path(root)).expect("state file exists");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("state file is not JSON: {e}\n{text}"))
}

fn write_state(root: &Path, state: &Value) {
    fs::write(state_path(root), serde_json::to_string_pretty(state).expect("serialise state")).expect("write state");
}

/// The members of one group in the state file, as strings.
fn state_members(state: &Value, email: &str) -> Vec<String> {
    state["groups"][email]["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no group {email} in the state"))
        .iter()
        .map(|m| m.as_str().expect("member is a string").to_owned())
        .collect()
}

/// Lines of a plan that are changes (`+ …` / `- …`).
fn change_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("+ ") || l.starts_with("- ") || l.starts_with("~ ")).collect()
}

fn expand_json(root: &Path, today: &str) -> Value {
    let run = cpg_on(root, today, &["groups", "expand", "--format", "json"]);
    run.expect_code(SUCCESS);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("expand output is not JSON: {e}"))
}

fn expanded_group<'a>(expanded: &'a Value, name: &str) -> &'a Value {
    expanded["groups"]
        .as_array()
        .expect("groups array")
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("group {name} missing from expand"))
}

/// Applies the definitions to an empty local directory and checks it succeeded.
fn confirmed_sync(root: &Path) {
    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    assert!(state_path(root).is_file());
}

/// Replaces `from` by `to` in one file under `root`, insisting the text was there.
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = fs::read_to_string(&path).expect("read definitions file");
    assert!(text.contains(from), "{file} does not contain {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).expect("write definitions file");
}

// --- validate -------------------------------------------------------------------------------

#[test]
fn validate_prints_one_ok_line() {
    let org = example_org();
    let run = cpg(org.path(), &["validate"]);
    run.expect_code(SUCCESS);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{run}");
    assert!(lines[0].starts_with("ok: "), "{run}");
    assert!(run.stderr.is_empty(), "{run}");
}

// --- groups expand ---------------------------------------------------------------------------

#[test]
fn expand_json_has_the_documented_shape_and_is_sorted() {
    let org = example_org();
    let expanded = expand_json(org.path(), common::TODAY);
    let object = expanded.as_object().expect("top level is an object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["groups"]);
    let groups = expanded["groups"].as_array().expect("groups is an array");
    assert!(!groups.is_empty());
    for group in groups {
        let fields = group.as_object().expect("group is an object");
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["email", "groups", "members", "name"], "{group}");
        let name = group["name"].as_str().expect("name is a string");
        assert_eq!(group["email"].as_str().expect("email is a string"), format!("{name}@groups.example.org"));
        for member in group["members"].as_array().expect("members is an array") {
            assert!(member.as_str().expect("member is a string").contains('@'));
        }
        for nested in group["groups"].as_array().expect("groups is an array") {
            let nested = nested.as_str().expect("nested group is a string");
            assert!(nested.ends_with("@groups.example.org"), "nested group {nested} of {name} is not a group email");
        }
    }
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "groups are not sorted by name");
    // Spot-check one group against the definitions.
    let web = expanded_group(&expanded, "tob-wgs-web-access");
    assert!(web["members"].as_array().unwrap().contains(&Value::from("david.nguyen@example.org")));
    assert!(web["groups"].as_array().unwrap().contains(&Value::from("tob-wgs-analysis@groups.example.org")));
}

#[test]
fn expand_is_deterministic() {
    let org = example_org();
    for format in ["json", "text"] {
        let first = cpg(org.path(), &["groups", "expand", "--format", format]);
        let second = cpg(org.path(), &["groups", "expand", "--format", format]);
        first.expect_code(SUCCESS);
        second.expect_code(SUCCESS);
        assert!(!first.stdout.is_empty());
        assert_eq!(first.stdout, second.stdout, "{format} output differs between runs");
    }
}

// --- groups why ------------------------------------------------------------------------------

#[test]
fn why_a_data_manager_reaches_web_access_through_analysis() {
    let org = example_org();
    // ingrid is a data manager of tob-wgs (datasets/tob-wgs/members.toml).
    for person in ["ingrid", "ingrid.larsen@example.org"] {
        let run = cpg(org.path(), &["groups", "why", person, "tob-wgs-web-access"]);
        run.expect_code(SUCCESS);
        assert!(run.stdout.starts_with("ingrid.larsen@example.org is a member of tob-wgs-web-access"), "{run}");
        let paths: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("  ingrid.larsen@example.org → ")).collect();
        assert!(!paths.is_empty(), "{run}");
        assert!(paths.iter().any(|p| p.contains("→ tob-wgs-analysis →")), "no path through tob-wgs-analysis\n{run}");
        assert!(
            paths
                .iter()
                .all(|p| p.ends_with("→ tob-wgs-web-access") || p.contains("→ tob-wgs-web-access  (granted at ")),
            "{run}"
        );
        // The direct grant is located in the definitions.
        let direct = paths.iter().find(|p| p.contains("→ tob-wgs-data-manager →")).expect("a path from data-manager");
        assert!(direct.contains("(granted at datasets/tob-wgs/members.toml:"), "{run}");
    }
    // The group can be named by email too.
    cpg(org.path(), &["groups", "why", "ingrid", "tob-wgs-web-access@groups.example.org"]).expect_code(SUCCESS);
}

#[test]
fn why_a_person_without_access_exits_1() {
    let org = example_org();
    // ravi only has tob-wgs release-access, which grants no web access.
    for person in ["ravi", "ravi.iyer@example.org"] {
        let run = cpg(org.path(), &["groups", "why", person, "tob-wgs-web-access"]);
        run.expect_code(FAILURE);
        assert!(run.stdout.contains("ravi.iyer@example.org is not a member of tob-wgs-web-access"), "{run}");
    }
}

#[test]
fn why_names_an_expired_grant_and_when_it_ended() {
    let org = example_org();
    // olivia's analysis grant on tob-wgs ended on 2026-06-30 (datasets/tob-wgs/members.toml).
    let run = cpg(org.path(), &["groups", "why", "olivia", "tob-wgs-web-access"]);
    run.expect_code(FAILURE);
    assert!(run.stdout.contains("olivia.brown@example.org is not a member of tob-wgs-web-access"), "{run}");
    assert!(
        run.stdout
            .contains("→ tob-wgs-analysis: the grant expired after 2026-06-30 (at datasets/tob-wgs/members.toml:"),
        "{run}"
    );
    // ravi never had access: nothing expired.
    let run = cpg(org.path(), &["groups", "why", "ravi", "tob-wgs-web-access"]);
    assert!(!run.stdout.contains("expired"), "{run}");
}

#[test]
fn groups_are_named_without_the_prefix() {
    let org = example_org();
    let path = org.path().join("groups/org.toml");
    let text = fs::read_to_string(&path).unwrap();
    let text = text.replacen("common_dataset = ", "group_prefix = \"cpg-\"\ncommon_dataset = ", 1);
    fs::write(&path, text).unwrap();
    // group: references and pinned_groups in the definitions stay as they are.
    cpg(org.path(), &["validate"]).expect_code(SUCCESS);
    let run = cpg(org.path(), &["groups", "why", "ingrid", "tob-wgs-web-access"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.starts_with("ingrid.larsen@example.org is a member of cpg-tob-wgs-web-access"), "{run}");
    let expand = cpg(org.path(), &["groups", "expand"]);
    assert!(expand.stdout.contains("cpg-platform-admins <cpg-platform-admins@groups.example.org>"), "{expand}");
    assert!(!expand.stdout.lines().any(|l| l.starts_with("tob-wgs-")), "every directory name has the prefix");
}

#[test]
fn why_an_unknown_person_or_group_exits_3() {
    let org = example_org();
    let run = cpg(org.path(), &["groups", "why", "nobody", "tob-wgs-web-access"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("unknown person `nobody`"), "{run}");
    let run = cpg(org.path(), &["groups", "why", "ingrid", "no-such-group"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("unknown group"), "{run}");
    // A typo gets the nearest group.
    let run = cpg(org.path(), &["groups", "why", "ingrid", "tob-wgs-analysys"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("did you mean `tob-wgs-analysis`?"), "{run}");
}

// --- expiry ----------------------------------------------------------------------------------

#[test]
fn expired_grants_are_dropped_on_the_given_date() {
    let org = example_org();
    let olivia = Value::from("olivia.brown@example.org");
    // olivia's tob-wgs analysis grant expired on 2026-06-30.
    let after = expand_json(org.path(), "2026-11-26");
    let analysis = &expanded_group(&after, "tob-wgs-analysis")["members"];
    assert!(!analysis.as_array().unwrap().contains(&olivia), "{analysis}");
    let before = expand_json(org.path(), "2026-01-01");
    let analysis = &expanded_group(&before, "tob-wgs-analysis")["members"];
    assert!(analysis.as_array().unwrap().contains(&olivia), "{analysis}");
}

// --- groups sync -----------------------------------------------------------------------------

#[test]
fn sync_dry_run_then_confirm_then_nothing_to_do() {
    let org = example_org();
    let root = org.path();
    let state = state_path(root);

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains("+ create group tob-wgs-analysis@groups.example.org"), "{dry}");
    assert!(dry.stdout.lines().any(|l| l.starts_with("plan: ")), "{dry}");
    assert!(!dry.stdout.contains(EMPTY_PLAN), "{dry}");
    assert!(dry.stderr.contains("dry run"), "{dry}");
    assert!(!state.exists(), "a dry run created the state file");
    assert!(!root.join(".cpg-infra").exists(), "a dry run wrote to disk");

    let applied = cpg(root, &["groups", "sync", "--confirm"]);
    applied.expect_code(SUCCESS);
    assert!(applied.stdout.contains("applied: "), "{applied}");
    let json = read_state(root);
    assert!(json["groups"]["tob-wgs-analysis@groups.example.org"].is_object());
    let written = file_identity(&state);

    let again = cpg(root, &["groups", "sync", "--confirm"]);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains(EMPTY_PLAN), "{again}");
    assert!(change_lines(&again.stdout).is_empty(), "{again}");
    // Still valid JSON, unchanged in content, and not rewritten: a flush replaces the file.
    assert_eq!(read_state(root), json);
    assert_eq!(file_identity(&state), written, "a sync with nothing to do rewrote the state file");

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains(EMPTY_PLAN), "{dry}");
}

#[test]
fn sync_keeps_expiry_dates_and_moves_them_in_place() {
    let org = example_org();
    let root = org.path();
    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    let release = "tob-wgs-release-access@groups.example.org";
    let ravi = "ravi.iyer@example.org";
    assert_eq!(read_state(root)["groups"][release]["expires"][ravi], "2027-03-31");

    let members = root.join("datasets/tob-wgs/members.toml");
    let text = fs::read_to_string(&members).unwrap();
    let moved = text.replace(r#"{ member = "ravi", expires = 2027-03-31 }"#, r#"{ member = "ravi" }"#);
    assert_ne!(text, moved);
    fs::write(&members, moved).unwrap();
    let run = cpg(root, &["groups", "sync", "--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(change_lines(&run.stdout), [format!("~ expiry {ravi} in {release}: 2027-03-31 → no end date")]);
    assert!(read_state(root)["groups"][release].get("expires").is_none(), "{}", read_state(root));
    let again = cpg(root, &["groups", "sync"]);
    assert!(again.expect_code(SUCCESS).stdout.contains(EMPTY_PLAN), "{again}");
}

#[test]
fn sync_with_an_explicit_state_file_and_json_plan() {
    let org = example_org();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("elsewhere/state.json");
    let state_arg = state.to_str().unwrap();

    let dry = cpg(org.path(), &["groups", "sync", "--state", state_arg, "--format", "json"]);
    dry.expect_code(SUCCESS);
    let plan: Value = serde_json::from_str(&dry.stdout).expect("plan is JSON");
    assert!(!plan["changes"].as_array().unwrap().is_empty(), "{dry}");
    assert!(!state.exists());

    cpg(org.path(), &["groups", "sync", "--state", state_arg, "--confirm"]).expect_code(SUCCESS);
    assert!(state.is_file());
    assert!(!state_path(org.path()).exists(), "--state was ignored");
    let again = cpg(org.path(), &["groups", "sync", "--state", state_arg, "--format", "json"]);
    let plan: Value = serde_json::from_str(&again.stdout).expect("plan is JSON");
    assert_eq!(plan["changes"], Value::Array(vec![]), "{again}");
}

#[test]
fn sync_repairs_drift_in_the_directory() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);

    let mut state = read_state(root);
    let release = "tob-wgs-release-access@groups.example.org";
    let analysis = "acute-care-analysis@groups.example.org";
    state["groups"][release]["members"].as_array_mut().unwrap().push(Value::from("stranger@elsewhere.example.com"));
    let members = state["groups"][analysis]["members"].as_array_mut().unwrap();
    let before = members.len();
    members.retain(|m| m != "sofia.martinez@example.org");
    assert_eq!(members.len(), before - 1, "sofia was not a member of {analysis}");
    write_state(root, &state);

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert_eq!(
        change_lines(&dry.stdout),
        [
            format!("+ add    sofia.martinez@example.org to {analysis}"),
            format!("- remove stranger@elsewhere.example.com from {release}"),
        ],
        "{dry}"
    );
    assert!(dry.stdout.contains("plan: 0 group(s) to create, 1 member(s) to add, 1 to remove"), "{dry}");

    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    let state = read_state(root);
    assert!(!state_members(&state, release).contains(&"stranger@elsewhere.example.com".into()));
    assert!(state_members(&state, analysis).contains(&"sofia.martinez@example.org".into()));

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains(EMPTY_PLAN), "{dry}");
}

#[test]
fn sync_leaves_unowned_groups_alone() {
    let org = example_org();
    let root = org.path();
    let unowned = "tob-wgs-analysis@groups.example.org";
    let original = serde_json::json!({
        "name": "tob-wgs-analysis",
        "description": "Made by hand in the admin console.",
        "members": ["someone.else@example.org"]
    });
    fs::create_dir_all(state_path(root).parent().unwrap()).unwrap();
    write_state(root, &serde_json::json!({ "groups": { unowned: original.clone() } }));

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    let conflicts: Vec<&str> = dry.stdout.lines().filter(|l| l.starts_with("! conflict")).collect();
    assert_eq!(conflicts.len(), 1, "{dry}");
    assert!(conflicts[0].contains(unowned), "{dry}");
    for line in change_lines(&dry.stdout) {
        // It may be added to other groups, but never created or changed itself.
        assert!(!line.ends_with(&format!(" {unowned}")), "{line}\n{dry}");
        assert!(!line.contains(&format!("group {unowned}")), "{line}\n{dry}");
    }

    let applied = cpg(root, &["groups", "sync", "--confirm"]);
    applied.expect_code(SUCCESS);
    assert!(applied.stdout.contains("! conflict"), "{applied}");
    let state = read_state(root);
    assert_eq!(state["groups"][unowned], original, "the unowned group was modified");
    // Everything else was created and managed.
    assert_eq!(state["groups"]["tob-wgs-web-access@groups.example.org"]["managed_by"], "cpg-infra");

    // And it stays a conflict, with nothing else left to do.
    let again = cpg(root, &["groups", "sync", "--confirm"]);
    again.expect_code(SUCCESS);
    assert!(again.stdout.contains(EMPTY_PLAN), "{again}");
    assert_eq!(read_state(root)["groups"][unowned], original);

    // --adopt takes it over: marker on, stranger out (the only member, so it needs consent),
    // defined members in.
    let adopt = cpg(root, &["groups", "sync", "--adopt", "--confirm"]);
    adopt.expect_code(REFUSED);
    assert!(adopt.stderr.contains("removes every member (1)"), "{adopt}");
    let adopt = cpg(root, &["groups", "sync", "--adopt", "--confirm", "--allow-mass-removal"]);
    adopt.expect_code(SUCCESS);
    assert!(adopt.stdout.contains(&format!("~ adopt  group {unowned}")), "{adopt}");
    assert!(adopt.stdout.contains("1 group(s) adopted"), "{adopt}");
    let state = read_state(root);
    assert_eq!(state["groups"][unowned]["managed_by"], "cpg-infra");
    assert!(!state_members(&state, unowned).iter().any(|m| m == "someone.else@example.org"));
    let settled = cpg(root, &["groups", "sync"]);
    assert!(settled.stdout.contains(EMPTY_PLAN), "{settled}");
    assert!(!settled.stdout.contains("! conflict"), "{settled}");
}

#[test]
fn removing_a_platform_admin_needs_consent() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    let before = fs::read(state_path(root)).unwrap();
    let groups = root.join("groups/org-groups.toml");
    let text = fs::read_to_string(&groups).unwrap();
    fs::write(&groups, text.replacen(r#"members = ["wei", "kenji"]"#, r#"members = ["wei"]"#, 1)).unwrap();

    let run = cpg(root, &["groups", "sync", "--confirm"]);
    run.expect_code(REFUSED);
    assert!(run.stderr.contains("pinned group platform-admins@groups.example.org"), "{run}");
    assert_eq!(fs::read(state_path(root)).unwrap(), before, "a refused plan changed the state");
    cpg(root, &["groups", "sync", "--confirm", "--allow-mass-removal"]).expect_code(SUCCESS);
}

#[test]
fn sync_refuses_mass_removal_without_the_flag() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    // acute-care-analysis lists sofia, hannah and the data-manager group: removing both
    // people takes away two thirds of its members.
    edit(root, "datasets/acute-care/members.toml", r#"analysis = ["sofia", "hannah"]"#, "analysis = []");
    let before = fs::read(state_path(root)).unwrap();

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(REFUSED);
    assert!(dry.stdout.contains("! refused"), "{dry}");
    assert!(dry.stderr.contains("needs --confirm --allow-mass-removal"), "{dry}");
    assert!(!dry.stderr.contains("run again with --confirm to apply"), "{dry}");

    let refused = cpg(root, &["groups", "sync", "--confirm"]);
    refused.expect_code(REFUSED);
    assert!(refused.stderr.contains("refused"), "{refused}");
    assert!(refused.stderr.contains("acute-care-analysis@groups.example.org"), "{refused}");
    assert_eq!(fs::read(state_path(root)).unwrap(), before, "a refused sync changed the state file");

    let allowed = cpg(root, &["groups", "sync", "--confirm", "--allow-mass-removal"]);
    allowed.expect_code(SUCCESS);
    let state = read_state(root);
    assert_eq!(
        state_members(&state, "acute-care-analysis@groups.example.org"),
        ["acute-care-data-manager@groups.example.org"]
    );
    cpg(root, &["groups", "sync"]).expect_code(SUCCESS);
}

#[test]
fn sync_refuses_to_empty_a_group() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    // hgdp-data-manager lists only mateus (no other role or dataset feeds it).
    edit(root, "datasets/hgdp/members.toml", r#"data-manager = ["mateus"]"#, "data-manager = []");
    let before = fs::read(state_path(root)).unwrap();
    let refused = cpg(root, &["groups", "sync", "--confirm"]);
    refused.expect_code(REFUSED);
    assert!(refused.stderr.contains("refused"), "{refused}");
    assert!(refused.stderr.contains("every member"), "{refused}");
    assert_eq!(fs::read(state_path(root)).unwrap(), before);
    cpg(root, &["groups", "sync", "--confirm", "--allow-mass-removal"]).expect_code(SUCCESS);
    let state = read_state(root);
    assert!(state_members(&state, "hgdp-data-manager@groups.example.org").is_empty());
}

#[test]
fn sync_fails_while_another_holds_the_lock() {
    let org = example_org();
    let root = org.path();
    let state = state_path(root);
    let held = cpg_infra::directory::LocalDirectory::open(&state).expect("take the lock");

    let run = cpg(root, &["groups", "sync", "--confirm"]);
    assert_ne!(run.code, SUCCESS, "{run}");
    assert!(run.stderr.contains("lock"), "{run}");
    assert!(!state.exists(), "a locked-out sync wrote the state");
    // A dry run only reads, so another sync's lock does not stop it.
    cpg(root, &["groups", "sync"]).expect_code(SUCCESS);

    drop(held);
    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
}

#[test]
fn sync_deletes_removed_datasets_groups_only_when_asked() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    let prefix = "acute-care-";
    let count = |state: &Value| state["groups"].as_object().unwrap().keys().filter(|k| k.starts_with(prefix)).count();
    let existing = count(&read_state(root));
    assert!(existing > 0);

    fs::remove_dir_all(root.join("datasets/acute-care")).unwrap();
    cpg(root, &["validate"]).expect_code(SUCCESS);

    // Left as they are, and said so, with what --delete-groups would do.
    let no_longer_defined = |stdout: &str| -> Vec<String> {
        stdout.lines().filter(|l| l.starts_with("! no longer defined: ")).map(str::to_owned).collect()
    };
    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    let said = no_longer_defined(&dry.stdout);
    assert_eq!(said.len(), existing, "{dry}");
    assert!(said.iter().all(|l| l.contains(prefix) && l.contains("; --delete-groups deletes it")), "{dry}");
    assert!(
        said.contains(&"! no longer defined: acute-care-analysis@groups.example.org, left as it is with its 3 member(s); --delete-groups deletes it (with --allow-mass-removal, as it has members)".to_owned()),
        "{dry}"
    );
    let json = cpg(root, &["groups", "sync", "--format", "json"]);
    json.expect_code(SUCCESS);
    let plan: Value = serde_json::from_str(&json.stdout).expect("the plan in JSON");
    let listed = plan["no_longer_defined"].as_array().expect("a list of groups no longer defined");
    assert_eq!(listed.len(), existing, "{json}");
    assert_eq!(listed[0]["group"], "acute-care-analysis@groups.example.org", "{json}");
    assert_eq!(listed[0]["members"], 3, "{json}");

    let plain = cpg(root, &["groups", "sync", "--confirm"]);
    plain.expect_code(SUCCESS);
    assert!(!plain.stdout.contains("delete group"), "{plain}");
    assert_eq!(no_longer_defined(&plain.stdout).len(), existing, "{plain}");
    assert_eq!(count(&read_state(root)), existing, "groups deleted without --delete-groups");

    // Deleting groups that still have members needs the same consent as removing them.
    let dry = cpg(root, &["groups", "sync", "--delete-groups"]);
    dry.expect_code(REFUSED);
    assert!(dry.stdout.contains("! refused: the plan deletes acute-care-analysis@groups.example.org"), "{dry}");
    let refused = cpg(root, &["groups", "sync", "--delete-groups", "--confirm"]);
    refused.expect_code(REFUSED);
    assert_eq!(count(&read_state(root)), existing, "a refused plan deleted groups");
    let deletions = dry.stdout.lines().filter(|l| l.starts_with("- delete group acute-care-")).count();
    assert_eq!(deletions, existing, "{dry}");
    assert!(no_longer_defined(&dry.stdout).is_empty(), "deleted, not left: {dry}");
    assert_eq!(count(&read_state(root)), existing, "a dry run deleted groups");

    let deleted = cpg(root, &["groups", "sync", "--delete-groups", "--confirm", "--allow-mass-removal"]);
    deleted.expect_code(SUCCESS);
    assert_eq!(count(&read_state(root)), 0, "{deleted}");
    // The other datasets' groups are still there.
    assert!(read_state(root)["groups"]["tob-wgs-analysis@groups.example.org"].is_object());

    let dry = cpg(root, &["groups", "sync", "--delete-groups"]);
    assert!(dry.stdout.contains(EMPTY_PLAN), "{dry}");
}

// --- e-mail case in a hand-edited directory ---------------------------------------------------
//
// Emails are case-insensitive, and the sync code lowercases what it reads from a directory
// (src/sync/live.rs, LocalDirectory::add_member / remove_member). These two tests edit the
// state by hand, as the drift test does, but with capitals.

#[test]
fn sync_removes_a_stranger_whose_email_has_capitals() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    let release = "tob-wgs-release-access@groups.example.org";
    let mut state = read_state(root);
    state["groups"][release]["members"].as_array_mut().unwrap().push(Value::from("Stranger@Elsewhere.example.com"));
    write_state(root, &state);

    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert_eq!(change_lines(&dry.stdout), [format!("- remove stranger@elsewhere.example.com from {release}")], "{dry}");
    let applied = cpg(root, &["groups", "sync", "--confirm"]);
    applied.expect_code(SUCCESS);
    assert!(applied.stdout.contains("1 removed, 0 group(s) deleted; 0 failed"), "{applied}");
    let members = state_members(&read_state(root), release);
    assert!(
        !members.iter().any(|m| m.eq_ignore_ascii_case("stranger@elsewhere.example.com")),
        "the sync reported the removal but the stranger is still a member: {members:?}\n{applied}"
    );
    let again = cpg(root, &["groups", "sync"]);
    assert!(again.stdout.contains(EMPTY_PLAN), "the sync does not converge\n{again}");
}

#[test]
fn sync_reads_the_members_of_a_group_whose_email_has_capitals() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    let analysis = "tob-wgs-analysis@groups.example.org";
    let mut state = read_state(root);
    let groups = state["groups"].as_object_mut().unwrap();
    let mut group = groups.remove(analysis).unwrap();
    group["members"].as_array_mut().unwrap().push(Value::from("stranger@elsewhere.example.com"));
    groups.insert("Tob-WGS-Analysis@groups.example.org".to_owned(), group);
    write_state(root, &state);

    // The group is the same group (emails are case-insensitive) and already holds every
    // desired member: the only change is the stranger's removal.
    let dry = cpg(root, &["groups", "sync"]);
    dry.expect_code(SUCCESS);
    assert_eq!(
        change_lines(&dry.stdout),
        [format!("- remove stranger@elsewhere.example.com from {analysis}")],
        "{dry}"
    );
    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    let again = cpg(root, &["groups", "sync"]);
    assert!(again.stdout.contains(EMPTY_PLAN), "the sync does not converge\n{again}");
}

// --- codify-drift ---------------------------------------------------------------------------

#[test]
fn codify_drift_keeps_people_added_by_hand_and_names_the_rest() {
    let org = example_org();
    let root = org.path();
    confirmed_sync(root);
    let release = "tob-wgs-release-access@groups.example.org";
    let mut state = read_state(root);
    assert!(!state_members(&state, release).contains(&"liam.obrien@example.org".into()));
    let members = state["groups"][release]["members"].as_array_mut().unwrap();
    members.push(Value::from("Liam.OBrien@example.org"));
    members.push(Value::from("stranger@elsewhere.example.com"));
    write_state(root, &state);
    let plan = cpg(root, &["groups", "sync", "--format", "json"]);
    plan.expect_code(SUCCESS);
    fs::write(root.join("drift.json"), &plan.stdout).unwrap();
    let members_file = root.join("datasets/tob-wgs/members.toml");
    let before = fs::read_to_string(&members_file).unwrap();

    let plan = root.join("drift.json");
    let plan = plan.to_str().unwrap();
    let dry = cpg(root, &["groups", "codify-drift", "--plan", plan, "--dry-run"]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains("+++ b/datasets/tob-wgs/members.toml"), "{dry}");
    assert!(dry.stdout.contains("+    \"liam\","), "{dry}");
    assert!(dry.stdout.contains("kept liam.obrien@example.org in tob-wgs-release-access"), "{dry}");
    assert!(
        dry.stdout.contains(
            "skipped stranger@elsewhere.example.com in tob-wgs-release-access@groups.example.org: not in groups/people.toml"
        ),
        "{dry}"
    );
    assert_eq!(fs::read_to_string(&members_file).unwrap(), before, "a dry run writes nothing");

    cpg(root, &["groups", "codify-drift", "--plan", plan]).expect_code(SUCCESS);
    let after = fs::read_to_string(&members_file).unwrap();
    assert!(after.contains("# kept from drift: added by hand in the directory"), "{after}");
    // Liam now stays; only the stranger is still drift.
    let again = cpg(root, &["groups", "sync"]);
    again.expect_code(SUCCESS);
    assert_eq!(change_lines(&again.stdout), [format!("- remove stranger@elsewhere.example.com from {release}")]);
}

#[test]
fn codify_drift_refuses_a_file_that_is_not_a_plan() {
    let org = example_org();
    let root = org.path();
    fs::write(root.join("drift.json"), "{\"groups\": []}").unwrap();
    let before = fs::read_to_string(root.join("datasets/tob-wgs/members.toml")).unwrap();
    let plan = root.join("drift.json");
    let run = cpg(root, &["groups", "codify-drift", "--plan", plan.to_str().unwrap()]);
    run.expect_code(INVALID_INPUT);
    assert!(
        run.stderr.contains("drift.json: not a plan from `groups sync --format json` (no `changes` list)"),
        "{run}"
    );
    assert_eq!(fs::read_to_string(root.join("datasets/tob-wgs/members.toml")).unwrap(), before);
}

// --- large plans ------------------------------------------------------------------------------

#[test]
fn a_large_plan_is_summed_up_per_group_unless_every_line_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("org");
    cpg(dir.path(), &["synthetic", root.to_str().unwrap(), "--datasets", "12"]).expect_code(SUCCESS);
    let summary = cpg(&root, &["groups", "sync", "--no-cache"]);
    summary.expect_code(SUCCESS);
    let total = summary.stdout.lines().last().unwrap().to_owned();
    assert!(total.starts_with("plan: "), "{summary}");
    assert!(!summary.stdout.contains("+ add    "), "no change line of its own: {summary}");
    let lines: Vec<&str> = summary.stdout.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(lines.len(), 50, "the 50 groups with the most changes: {summary}");
    assert!(lines[0].contains(": created, ") && lines[0].contains(" member(s) added"), "{}", lines[0]);
    let said = summary.stdout.lines().find(|l| l.contains("summed up per group; --verbose prints every change"));
    let said = said.unwrap_or_else(|| panic!("{summary}"));
    let changes: usize = said.split(' ').next().unwrap().parse().unwrap();
    assert!(changes > 1_000, "{said}");
    assert!(summary.stdout.contains("more group(s) with changes"), "{summary}");

    let verbose = cpg(&root, &["groups", "sync", "--no-cache", "--verbose"]);
    verbose.expect_code(SUCCESS);
    assert_eq!(change_lines(&verbose.stdout).len(), changes, "every change, one line each");
    assert_eq!(verbose.stdout.lines().last().unwrap(), total, "the same plan");
    let json = cpg(&root, &["groups", "sync", "--no-cache", "--format", "json"]);
    let plan: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(plan["changes"].as_array().unwrap().len(), changes, "JSON keeps every change");
}
