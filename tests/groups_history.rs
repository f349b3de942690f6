//! `groups history`: every change of access over the Git history, from one walk.

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::{INVALID_INPUT, SUCCESS};

const DAY: i64 = 86_400;
const MEMBERS: &str = "datasets/tob-wgs/members.toml";

fn edit(org: &GitOrg, from: &str, to: &str) {
    let path = org.path(MEMBERS);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// Kenji is granted analysis on tob-wgs with a reason (a squash-merged pull request), his end
/// date moves, and it passes; Liam is removed later.
fn history() -> GitOrg {
    let org = GitOrg::new();
    edit(
        &org,
        "analysis = [\n",
        "analysis = [\n    # Batch 7 QC.\n    { member = \"kenji\", expires = 2026-03-31 },\n",
    );
    org.commit_as("Amara Okafor", "Access request #7: kenji as analysis on tob-wgs (#12)", COMMIT_TIME + DAY);
    edit(&org, "expires = 2026-03-31", "expires = 2026-06-30");
    org.commit_as("Amara Okafor", "Merge pull request #13 from org/renew", COMMIT_TIME + 2 * DAY);
    org
}

#[test]
fn a_persons_history_has_grants_moves_and_expiry_with_reasons_and_pull_requests() {
    let org = history();
    let run = org.run(&["groups", "history", "kenji", "--format", "json"]);
    run.expect_code(SUCCESS);
    let events: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let analysis: Vec<&serde_json::Value> = events.iter().filter(|e| e["group"] == "tob-wgs-analysis").collect();
    let whats: Vec<&str> = analysis.iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(whats, ["granted", "expiry-moved", "expired"], "{}", run.stdout);
    assert_eq!(analysis[0]["reason"], "Batch 7 QC.");
    assert_eq!(analysis[0]["pull_request"], 12);
    assert_eq!(analysis[0]["author"], "Amara Okafor");
    assert_eq!(analysis[0]["date"], "2025-11-27");
    assert_eq!(analysis[1]["detail"], "2026-03-31 → 2026-06-30");
    assert_eq!(analysis[1]["pull_request"], 13);
    assert_eq!(analysis[2]["date"], "2026-07-01");
    // Access through nesting shows too: tob-wgs-web-access includes the analysts.
    assert!(events.iter().any(|e| e["what"] == "gained" && e["group"] == "tob-wgs-web-access"), "{}", run.stdout);
    let text = org.run(&["groups", "history", "kenji", "--since", "2025-11-28"]);
    assert!(!text.stdout.contains(" granted "), "{text}");
    assert!(text.stdout.contains("expiry-moved kenji.watanabe@example.org tob-wgs-analysis"), "{text}");
}

#[test]
fn a_dataset_history_and_bad_filters() {
    let org = history();
    let run = org.run(&["groups", "history", "--dataset", "tob-wgs"]);
    run.expect_code(SUCCESS);
    assert!(
        run.stdout.contains("granted kenji.watanabe@example.org tob-wgs-analysis (until 2026-03-31) — Batch 7 QC."),
        "{run}"
    );
    // The first commit grants everyone their access.
    assert!(run.stdout.contains("granted amara.okafor@example.org tob-wgs-data-manager"), "{run}");
    assert!(!run.stdout.contains("acute-care-"), "{run}");
    org.run(&["groups", "history", "--dataset", "tob-wsg"]).expect_code(INVALID_INPUT);
    org.run(&["groups", "history", "nobody"]).expect_code(INVALID_INPUT);
    org.run(&["groups", "history"]).expect_code(INVALID_INPUT);
}

#[test]
fn why_at_a_past_day_uses_the_definitions_and_the_date_of_then() {
    let org = history();
    // On 2026-05-01 the renewed grant (to June) was in force; on 2026-07-15 it had ended.
    let run = org.run(&["groups", "why", "kenji", "tob-wgs-analysis", "--at", "2026-05-01"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("is a member of tob-wgs-analysis"), "{run}");
    let run = org.run(&["groups", "why", "kenji", "tob-wgs-analysis", "--at", "2026-07-15"]);
    run.expect_code(common::FAILURE);
    assert!(run.stdout.contains("the grant expired after 2026-06-30"), "{run}");
    // Before the request was merged he had no such access, whatever the day.
    let first = org.repo.revparse_single("HEAD~2").unwrap().id().to_string();
    org.run(&["groups", "why", "kenji", "tob-wgs-analysis", "--at", &first]).expect_code(common::FAILURE);
    org.run(&["groups", "why", "kenji", "tob-wgs-analysis", "--at", "2020-01-01"]).expect_code(INVALID_INPUT);
}

#[test]
fn the_audit_names_each_account_with_how_since_and_where_it_was_granted() {
    let org = history();
    let run = org.run(&["audit", "--dataset", "tob-wgs"]);
    run.expect_code(SUCCESS);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "dataset,role,member,account,how,since,commit,pull_request,expires");
    // The renewal last wrote Kenji's line: since then, in #13, until June.
    let kenji = lines.iter().find(|l| l.contains(",kenji,")).expect("kenji's row");
    assert!(kenji.starts_with("tob-wgs,analysis,kenji,kenji.watanabe@example.org,listed,2025-11-28,"), "{kenji}");
    assert!(kenji.ends_with(",#13,2026-06-30"), "{kenji}");
    assert!(run.stdout.contains("\"listed, through group:data-science\""), "group members by account\n{run}");
    assert!(run.stdout.contains(",machine account (infrastructure),"), "{run}");
    assert!(lines.iter().all(|l| l.starts_with("tob-wgs,") || l.starts_with("dataset,")), "{run}");
    let markdown = org.run(&["audit", "--format", "markdown"]).stdout;
    assert!(markdown.contains("## acute-care\n") && markdown.contains("## tob-wgs\n"), "{markdown}");
    org.run(&["audit", "--dataset", "tob-wsg"]).expect_code(INVALID_INPUT);
}
