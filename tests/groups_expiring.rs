//! `groups expiring`, end to end in a temporary Git repository on fixed dates: which grants end
//! within the window, and the commit each line came from (git blame along first parents, so a
//! grant merged through a pull request names the merge).

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::{INVALID_INPUT, SUCCESS, TODAY};
use git2::Signature;
use serde_json::Value;

/// kenji gets tob-wgs analysis until 2026-12-05 on a branch, merged into main by the admin.
fn org_with_merged_request() -> (GitOrg, String) {
    let org = GitOrg::new();
    let merge = merge_request(&org);
    (org, merge)
}

fn merge_request(org: &GitOrg) -> String {
    let main = org.repo.head().unwrap().peel_to_commit().unwrap();
    org.switch_to_new_branch("access/kenji");
    let args = ["groups", "add", "kenji", "--dataset", "tob-wgs", "--role", "analysis", "--expires", "2026-12-05"];
    org.run(&args).expect_code(SUCCESS);
    let request = org.commit_as("Kenji Watanabe", "kenji: tob-wgs analysis for batch 7", COMMIT_TIME + 86_400);
    let request = org.repo.find_commit(git2::Oid::from_str(&request).unwrap()).unwrap();
    let admin = Signature::new("Org Admin", "org.admin@example.org", &git2::Time::new(COMMIT_TIME + 172_800, 0))
        .expect("signature");
    let merge = org
        .repo
        .commit(
            Some("refs/heads/main"),
            &admin,
            &admin,
            "Merge pull request #7 from access/kenji",
            &request.tree().unwrap(),
            &[&main, &request],
        )
        .expect("merge commit");
    org.repo.set_head("refs/heads/main").expect("back on main");
    merge.to_string()
}

#[test]
fn nothing_ends_within_two_weeks_of_the_fixed_day() {
    let org = GitOrg::new();
    let run = org.run(&["groups", "expiring", "--within", "14d"]);
    run.expect_code(SUCCESS);
    assert_eq!(run.stdout, "no grants end from 2026-11-26 to 2026-12-10\n", "{run}");
}

#[test]
fn a_merged_request_names_its_merge() {
    let (org, merge) = org_with_merged_request();
    let run = org.run(&["groups", "expiring", "--within", "2w"]);
    run.expect_code(SUCCESS);
    let expected = format!(
        "1 grant(s) end from 2026-11-26 to 2026-12-10:\n  2026-12-05  kenji.watanabe@example.org in tob-wgs-analysis  \
         (datasets/tob-wgs/members.toml:14:5)\n    added in {} by Org Admin, committed by Org Admin on 2025-11-28: \
         Merge pull request #7 from access/kenji\n",
        &merge[..10]
    );
    assert_eq!(run.stdout, expected, "{run}");

    // The day before the window starts it is not listed; on its last day it still is.
    let run = org.run_on("2026-12-06", &["groups", "expiring", "--within", "14d"]);
    assert!(run.stdout.starts_with("no grants end"), "{run}");
    let run = org.run_on("2026-12-05", &["groups", "expiring", "--within", "0d"]);
    assert!(run.stdout.contains("kenji.watanabe@example.org in tob-wgs-analysis"), "{run}");

    let run = org.run(&["groups", "expiring", "--within", "14d", "--format", "json"]);
    run.expect_code(SUCCESS);
    let json: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(json["today"], TODAY);
    assert_eq!(json["until"], "2026-12-10");
    let grant = &json["grants"][0];
    assert_eq!(grant["member"], "kenji.watanabe@example.org");
    assert_eq!(grant["group"], "tob-wgs-analysis");
    assert_eq!(grant["expires"], "2026-12-05");
    assert_eq!(grant["location"], "datasets/tob-wgs/members.toml:14:5");
    assert_eq!(grant["added_by"]["commit"], merge.as_str());
    assert_eq!(grant["added_by"]["committer"], "Org Admin");
}

#[test]
fn grants_of_the_first_commit_and_uncommitted_ones() {
    let org = GitOrg::new();
    // ravi's two grants end on 2027-03-31.
    let run = org.run_on("2027-03-25", &["groups", "expiring", "--within", "1w"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.starts_with("2 grant(s) end from 2027-03-25 to 2027-04-01:\n"), "{run}");
    assert!(
        run.stdout.contains("2027-03-31  ravi.iyer@example.org in all-staff  (groups/org-groups.toml:31:5)"),
        "{run}"
    );
    assert!(run.stdout.contains("ravi.iyer@example.org in tob-wgs-release-access"), "{run}");
    assert_eq!(
        run.stdout.matches("by Org Admin, committed by Org Admin on 2025-11-26: example organisation").count(),
        2
    );

    let args = ["groups", "add", "wei", "--dataset", "hgdp", "--role", "analysis", "--expires", "2026-12-01"];
    org.run(&args).expect_code(SUCCESS);
    let run = org.run(&["groups", "expiring"]);
    assert!(run.stdout.contains("2026-12-01  wei.chen@example.org in hgdp-analysis"), "{run}");
    assert!(run.stdout.contains("    not committed yet\n"), "{run}");

    let run = org.run(&["groups", "expiring", "--within", "soon"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("use days or weeks, like 14d or 2w"), "{run}");
}
