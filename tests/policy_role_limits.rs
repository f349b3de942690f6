//! Role limits that need the history: `max_duration` counts from the commit that last wrote
//! the grant's line (by `git blame`), not from today, so an old grant cannot pass by being old;
//! a renewal rewrites the line and is a new grant, reviewed like any other.

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::INVALID_INPUT;

#[test]
fn max_duration_counts_from_the_commit_that_granted() {
    let org = GitOrg::new();
    let policy = org.path("groups/policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        format!("{text}\n[roles.metadata-contribute]\nmax_duration = \"400d\"\nrequire_reason = true\n"),
    )
    .unwrap();
    let members = org.path("datasets/acute-care/members.toml");
    let text = std::fs::read_to_string(&members).unwrap();
    // Granted on 2025-11-26 (the commit's date): 400 days run to 2026-12-31.
    let granted = text.replace(
        "metadata-contribute = [\"aroha\"]",
        "# Curates the intake forms.\nmetadata-contribute = [{ member = \"aroha\", expires = 2027-01-31 }]",
    );
    std::fs::write(&members, granted).unwrap();
    org.commit_as("Priya Raman", "aroha contributes metadata", COMMIT_TIME);
    let run = org.run(&["policy", "check"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("runs until 2027-01-31, past 2026-12-31 (400 days from 2025-11-26)"), "{run}");
    assert!(
        !run.stderr.contains(
            "`aroha` (aroha.ngata@example.org) in role `metadata-contribute` of dataset `acute-care` needs a reason"
        ),
        "the comment above is the reason\n{run}"
    );
    // Fatima's tob-wgs grant has neither an end nor a reason.
    assert!(
        run.stderr.contains(
            "`fatima` (fatima.haddad@example.org) in role `metadata-contribute` of dataset `tob-wgs` needs a reason"
        ),
        "{run}"
    );
    let text = std::fs::read_to_string(&members).unwrap();
    std::fs::write(&members, text.replace("expires = 2027-01-31", "expires = 2026-12-31")).unwrap();
    org.commit_as("Priya Raman", "within the limit", COMMIT_TIME + 86_400);
    let run = org.run(&["policy", "check"]);
    assert!(!run.stderr.contains("`aroha`"), "{run}");
}
