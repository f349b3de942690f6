//! `groups add` and `groups remove`, end to end in a temporary Git repository: what they write
//! (every other byte of the commented members file kept), what they refuse (nothing written),
//! and the access diff a pull request made of them shows.

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::{manifest_dir, INVALID_INPUT, SUCCESS};

const TOB_WGS: &str = "datasets/tob-wgs/members.toml";
const PEOPLE: &str = "groups/people.toml";

/// Compares with `tests/data/edit/<name>`; `UPDATE_EXPECT=1` rewrites it.
fn check_snapshot(name: &str, actual: &str) {
    let path = manifest_dir().join("tests/data/edit").join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{} differs (UPDATE_EXPECT=1 rewrites it)", path.display());
}

#[test]
fn an_access_request_branch_diffs_against_main() {
    let org = GitOrg::new();
    org.switch_to_new_branch("access/kenji-tob-wgs");
    let run = org.run(&[
        "groups",
        "add",
        "kenji",
        "--dataset",
        "tob-wgs",
        "--role",
        "analysis",
        "--expires",
        "2027-01-31",
        "--reason",
        "covering the analysis of batch 7",
    ]);
    run.expect_code(SUCCESS);
    assert!(run.stderr.contains("wrote datasets/tob-wgs/members.toml"), "{run}");
    assert!(run.stdout.contains("+ member kenji.watanabe@example.org (until 2027-01-31)"), "{run}");
    org.commit_as("Kenji Watanabe", "kenji: tob-wgs analysis until 2027-01-31", COMMIT_TIME + 86_400);

    let run = org.run(&["groups", "diff", "main", "access/kenji-tob-wgs", "--format", "markdown"]);
    run.expect_code(SUCCESS);
    check_snapshot("kenji-tob-wgs-analysis.md", &run.stdout);
}

#[test]
fn add_then_remove_keeps_every_other_byte() {
    let org = GitOrg::new();
    let original = org.read(TOB_WGS);

    // A multi-line list: one entry and its comment appended before the `]`.
    let run = org.run(&["groups", "add", "kenji", "--dataset", "tob-wgs", "--role", "analysis", "--reason", "batch 7"]);
    run.expect_code(SUCCESS);
    let expected = original.replacen("2026-06-30 },\n]", "2026-06-30 },\n    # batch 7\n    \"kenji\",\n]", 1);
    assert_eq!(org.read(TOB_WGS), expected);
    org.run(&["groups", "remove", "kenji", "--dataset", "tob-wgs", "--role", "analysis"]).expect_code(SUCCESS);
    assert_eq!(org.read(TOB_WGS), original);

    // A one-line list, then a role the file did not list yet.
    org.run(&["groups", "add", "wei", "--dataset", "tob-wgs", "--role", "data-manager"]).expect_code(SUCCESS);
    assert_eq!(
        org.read(TOB_WGS),
        original.replacen(r#"data-manager = ["amara", "ingrid"]"#, r#"data-manager = ["amara", "ingrid", "wei"]"#, 1)
    );
    org.run(&["groups", "remove", "wei", "--dataset", "tob-wgs", "--role", "data-manager"]).expect_code(SUCCESS);
    assert_eq!(org.read(TOB_WGS), original);

    // Removing a commented entry takes its comment with it; the rest stays.
    org.run(&["groups", "remove", "ravi", "--dataset", "tob-wgs", "--role", "release-access"]).expect_code(SUCCESS);
    let without_ravi = original.replacen(
        "\n    # A visiting collaborator, until the end of the visit.\n    { member = \"ravi\", expires = 2027-03-31 },",
        "",
        1,
    );
    assert_eq!(org.read(TOB_WGS), without_ravi);
}

#[test]
fn a_new_person_is_added_to_people_too() {
    let org = GitOrg::new();
    let people = org.read(PEOPLE);
    let run = org.run(&[
        "groups",
        "add",
        "noah",
        "--email",
        "noah.tanaka@example.org",
        "--dataset",
        "hgdp",
        "--role",
        "analysis",
        "--expires",
        "2027-05-31",
    ]);
    run.expect_code(SUCCESS);
    assert_eq!(org.read(PEOPLE), format!("{people}\n[people.noah]\nemail = \"noah.tanaka@example.org\"\n"));
    assert!(org
        .read("datasets/hgdp/members.toml")
        .contains("\nanalysis = [{ member = \"noah\", expires = 2027-05-31 }]\n"));
    assert!(run.stdout.contains("noah.tanaka@example.org gains hgdp-analysis (direct)"), "{run}");
}

#[test]
fn unknown_names_are_refused_and_nothing_is_written() {
    let org = GitOrg::new();
    let before = (org.read(TOB_WGS), org.read(PEOPLE));
    let cases: [(&[&str], &str); 6] = [
        (&["kenj", "--dataset", "tob-wgs", "--role", "analysis"], "unknown person `kenj`; did you mean `kenji`?"),
        (&["kenji", "--dataset", "tob-wg", "--role", "analysis"], "unknown dataset `tob-wg`; did you mean `tob-wgs`?"),
        (&["kenji", "--dataset", "tob-wgs", "--role", "analyis"], "unknown role `analyis`; did you mean `analysis`?"),
        (&["kenji", "--dataset", "hgdp", "--role", "upload"], "role `upload` needs component `upload`"),
        (&["amara", "--dataset", "tob-wgs", "--role", "data-manager"], "`amara` already has role `data-manager`"),
        (&["kenji", "--dataset", "tob-wgs", "--role", "analysis", "--expires", "2026-01-01"], "is in the past"),
    ];
    for (args, message) in cases {
        let mut command = vec!["groups", "add"];
        command.extend_from_slice(args);
        let run = org.run(&command);
        run.expect_code(INVALID_INPUT);
        assert!(run.stderr.contains(message), "{message}\n{run}");
        assert!(run.stdout.is_empty(), "{run}");
    }
    let run = org.run(&["groups", "remove", "kenji", "--dataset", "tob-wgs", "--role", "analysis"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("`kenji` does not have role `analysis`"), "{run}");

    // An edit that would not validate (an email from a domain that is not allowed) is not written.
    let run = org.run(&["groups", "add", "someone@elsewhere.com", "--dataset", "tob-wgs", "--role", "analysis"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("datasets/tob-wgs/members.toml:"), "{run}");
    assert!(run.stderr.contains("is not in allowed_member_domains"), "{run}");
    assert_eq!((org.read(TOB_WGS), org.read(PEOPLE)), before);
}

/// Every role list of every members file of the frozen organisation: adding an entry (plain,
/// with a date, with a reason) changes nothing outside that list, and removing it again gives
/// back the very same bytes.
#[test]
fn add_and_remove_round_trip_on_every_list() {
    use cpg_infra::edit::{add_grant, remove_grant, NewGrant};
    let datasets = common::fixture_org_dir().join("datasets");
    let mut lists = 0;
    for dataset in std::fs::read_dir(&datasets).expect("datasets") {
        let path = dataset.expect("entry").path().join("members.toml");
        let original = std::fs::read_to_string(&path).expect("members.toml");
        let roles: Vec<String> =
            original.lines().filter_map(|line| line.split_once(" = [").map(|(role, _)| role.to_owned())).collect();
        for role in roles {
            let variants = [
                NewGrant { role: &role, member: "zed", expires: None, reason: None },
                NewGrant { role: &role, member: "zed", expires: Some("2027-01-31".parse().unwrap()), reason: None },
                NewGrant { role: &role, member: "zed", expires: None, reason: Some("a reason") },
            ];
            for grant in variants {
                let added = add_grant("m", &original, &grant).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_ne!(added, original);
                // Everything before the role's list and after its `]` is untouched.
                let start = original.find(&format!("\n{role} = [")).map_or(0, |i| i + 1);
                let end = start + original[start..].find(']').expect("list end") + 1;
                let same_start = original.bytes().zip(added.bytes()).take_while(|(a, b)| a == b).count();
                let same_end = original.bytes().rev().zip(added.bytes().rev()).take_while(|(a, b)| a == b).count();
                assert!(same_start >= start, "{} {role}: changed before the list\n{added}", path.display());
                assert!(original.len() - same_end <= end, "{} {role}: changed after the list\n{added}", path.display());
                let removed = remove_grant("m", &added, &role, "zed").unwrap();
                // A comment cannot go in a one-line list, so a reason puts its entries on lines
                // of their own, and they stay so; every other edit is undone byte for byte.
                let one_line = !original[start..end].contains('\n');
                if !(one_line && grant.reason.is_some()) {
                    assert_eq!(removed, original, "{} {role} {grant:?}", path.display());
                }
            }
            lists += 1;
        }
    }
    assert!(lists >= 20, "only {lists} lists");
}

/// A person the file lists by email is the same person as their key: a new date replaces that
/// entry in place, and remove by key finds it.
#[test]
fn a_person_listed_by_email_is_found_by_key() {
    let org = GitOrg::new();
    let path = org.path(TOB_WGS);
    let by_email =
        org.read(TOB_WGS).replacen(r#"web-access = ["david"]"#, r#"web-access = ["david.nguyen@example.org"]"#, 1);
    std::fs::write(&path, &by_email).expect("write");

    let run = org.run(&["groups", "add", "david", "--dataset", "tob-wgs", "--role", "web-access"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("`david.nguyen@example.org` already has role `web-access`"), "{run}");

    let run =
        org.run(&["groups", "add", "david", "--dataset", "tob-wgs", "--role", "web-access", "--expires", "2027-01-01"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("~ member david.nguyen@example.org no end date → until 2027-01-01"), "{run}");
    let dated = r#"web-access = [{ member = "david.nguyen@example.org", expires = 2027-01-01 }]"#;
    assert_eq!(org.read(TOB_WGS), by_email.replacen(r#"web-access = ["david.nguyen@example.org"]"#, dated, 1));

    org.run(&["groups", "remove", "david", "--dataset", "tob-wgs", "--role", "web-access"]).expect_code(SUCCESS);
    assert_eq!(
        org.read(TOB_WGS),
        by_email.replacen(r#"web-access = ["david.nguyen@example.org"]"#, "web-access = []", 1)
    );
}

/// A grant that breaks the policy is refused before anything is written, unless `--force`.
#[test]
fn a_grant_that_breaks_the_policy_is_refused_unless_forced() {
    let org = common::example_org();
    let members = org.path().join("datasets/hgdp/members.toml");
    let before = std::fs::read_to_string(&members).unwrap();
    let args = ["groups", "add", "ingrid", "--dataset", "hgdp", "--role", "data-manager"];
    let run = common::cpg(org.path(), &args);
    run.expect_code(common::INVALID_INPUT);
    assert!(run.stderr.contains("`ingrid` is data-manager of 3 datasets"), "{run}");
    assert_eq!(std::fs::read_to_string(&members).unwrap(), before, "nothing written");
    let mut forced = args.to_vec();
    forced.push("--force");
    let run = common::cpg(org.path(), &forced);
    run.expect_code(common::SUCCESS);
    assert!(run.stderr.contains("warning: the grant breaks groups/policy.toml"), "{run}");
    assert!(std::fs::read_to_string(&members).unwrap().contains("ingrid"));
}
