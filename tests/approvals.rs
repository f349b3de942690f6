//! `policy approvals`: approval follows the access, not the file, and the reviews that count
//! are checked against the GitHub API (its emulator, with GitHub's response bodies and paging).

mod common;

use common::git::{GitOrg, COMMIT_TIME};
use common::{cpg_with_env, FAILURE, INVALID_INPUT, SUCCESS};
use cpg_infra::emulator::github::{GitHubEmulator, PullSeed};

const REPO: &str = "example/access";
const TOKEN: &str = "ghs_test";

/// The attack: perth-neuro's own folder gains `depends_on = ["tob-wgs"]`, which CODEOWNERS
/// gives to perth-neuro's data manager alone, yet it reaches tob-wgs's groups.
fn depends_on_change() -> (GitOrg, String, String) {
    let org = GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    org.switch_to_new_branch("widen");
    let path = org.path("datasets/perth-neuro/dataset.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "depends_on_readonly = [\"hgdp\"]",
            "depends_on_readonly = [\"hgdp\"]\ndepends_on = [\"tob-wgs\"]",
        ),
    )
    .unwrap();
    let head = org.commit_as("Dana Nguyen", "perth-neuro uses tob-wgs", COMMIT_TIME + 60);
    (org, base, head)
}

fn approvals(org: &GitOrg, args: &[&str], github: Option<&GitHubEmulator>) -> common::Run {
    let url = github.map(|g| g.base_url()).unwrap_or_default();
    let env: Vec<(&str, &str)> = match github {
        Some(_) => vec![("GITHUB_API_URL", url.as_str()), ("GH_TOKEN", TOKEN)],
        None => vec![],
    };
    let mut full = vec!["policy", "approvals"];
    full.extend_from_slice(args);
    cpg_with_env(org.root(), &full, &env)
}

#[test]
fn a_dependency_needs_the_data_managers_of_the_dataset_it_reaches() {
    let (org, base, head) = depends_on_change();
    let run = approvals(&org, &[&base, &head, "--format", "json"], None);
    run.expect_code(SUCCESS);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let owners: Vec<(String, Vec<String>)> = json["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let who =
                format!("{}:{}", r["owners"]["kind"].as_str().unwrap(), r["owners"]["dataset"].as_str().unwrap_or(""));
            let approvers = r["approvers"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
            (who, approvers)
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("data-managers:perth-neuro".to_owned(), vec!["dnguyen".to_owned()]),
            ("data-managers:tob-wgs".to_owned(), vec!["amara-okafor".to_owned()]),
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn owners_are_read_at_the_base_so_a_change_cannot_approve_itself() {
    let org = GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    // Liam (no GitHub name at base) makes himself tob-wgs's data manager and adds his name.
    let people = org.path("groups/people.toml");
    let text = std::fs::read_to_string(&people).unwrap();
    let liam = text.find("[people.liam]").unwrap();
    let end = liam + text[liam..].find("\n\n").unwrap();
    std::fs::write(&people, format!("{}\ngithub = \"liam-x\"{}", &text[..end], &text[end..])).unwrap();
    let members = org.path("datasets/tob-wgs/members.toml");
    let text = std::fs::read_to_string(&members).unwrap();
    std::fs::write(
        &members,
        text.replace("data-manager = [\"amara\", \"ingrid\"]", "data-manager = [\"amara\", \"ingrid\", \"liam\"]"),
    )
    .unwrap();
    let head = org.commit_as("Liam", "me too", COMMIT_TIME + 60);
    let run = approvals(&org, &[&base, &head], None);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("the administrators (@kwatanabe, @wei-chen)"), "{run}");
    assert!(run.stdout.contains("the data managers of tob-wgs (@amara-okafor)"), "{run}");
    assert!(!run.stdout.contains("liam-x"), "{run}");
}

#[test]
fn a_new_dataset_is_approved_by_the_administrators() {
    let org = GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    common::copy_dir(&org.path("datasets/hgdp"), &org.path("datasets/hgdp-two"));
    let dataset = org.path("datasets/hgdp-two/dataset.toml");
    let text = std::fs::read_to_string(&dataset).unwrap();
    std::fs::write(&dataset, text.replace("example-hgdp", "example-hgdp-two")).unwrap();
    let head = org.commit_as("Someone", "a new dataset", COMMIT_TIME + 60);
    let run = approvals(&org, &[&base, &head], None);
    assert!(
        run.stdout
            .contains("the administrators (for the data managers of hgdp-two, none of whom has a GitHub user name)"),
        "{run}"
    );
}

fn emulator_with_pull(number: u64, author: &str, author_type: &str, head: &str, body: &str) -> GitHubEmulator {
    let github = GitHubEmulator::start(REPO, TOKEN).unwrap();
    github.insert_pull(
        number,
        PullSeed { author: author.into(), author_type: author_type.into(), head_sha: head.into(), body: body.into() },
    );
    github
}

#[test]
fn the_requester_of_a_form_made_pull_request_never_approves_their_own_access() {
    let (org, base, head) = depends_on_change();
    let github = emulator_with_pull(
        12,
        "github-actions[bot]",
        "Bot",
        &head,
        "Access request #7 from @amara-okafor.\n\nCloses #7\n",
    );
    github.insert_issue(7, "amara-okafor");
    github.add_review(12, "amara-okafor", "APPROVED", &head);
    github.add_review(12, "dnguyen", "APPROVED", &head);
    let run = approvals(&org, &[&base, &head, "--reviews", "12", "--repo", REPO], Some(&github));
    run.expect_code(FAILURE);
    assert!(run.stdout.contains("1 approval(s) missing"), "{run}");
    assert!(run.stdout.contains("missing: the data managers of tob-wgs"), "{run}");
    assert!(run.stdout.contains("approved by @dnguyen: the data managers of perth-neuro"), "{run}");
}

#[test]
fn stale_and_dismissed_approvals_do_not_count_and_a_fresh_one_does() {
    let (org, base, head) = depends_on_change();
    let github = emulator_with_pull(3, "zoe", "User", &head, "");
    github.add_review(3, "dnguyen", "APPROVED", &"1".repeat(40)); // before the last push
    github.add_review(3, "amara-okafor", "APPROVED", &head);
    github.add_review(3, "amara-okafor", "COMMENTED", &head);
    let args = [base.as_str(), head.as_str(), "--reviews", "3", "--repo", REPO];
    let run = approvals(&org, &args, Some(&github));
    run.expect_code(FAILURE);
    assert!(run.stdout.contains("missing: the data managers of perth-neuro"), "{run}");
    github.add_review(3, "dnguyen", "APPROVED", &head);
    approvals(&org, &args, Some(&github)).expect_code(SUCCESS);
    github.dismiss_reviews_of(3, "amara-okafor");
    let run = approvals(&org, &args, Some(&github));
    run.expect_code(FAILURE);
    assert!(run.stdout.contains("missing: the data managers of tob-wgs"), "{run}");
}

#[test]
fn every_page_of_reviews_is_read_and_server_errors_are_retried() {
    let (org, base, head) = depends_on_change();
    let github = emulator_with_pull(4, "zoe", "User", &head, "");
    for i in 0..120 {
        github.add_review(4, &format!("bystander-{i}"), "COMMENTED", &head);
    }
    github.add_review(4, "amara-okafor", "APPROVED", &head);
    github.add_review(4, "dnguyen", "APPROVED", &head);
    github.fault_each_request_once(true);
    let run = approvals(&org, &[&base, &head, "--reviews", "4", "--repo", REPO, "--format", "json"], Some(&github));
    run.expect_code(SUCCESS);
    let calls = github.calls();
    // Each distinct request once faulted (502) and once answered; two pages of reviews.
    assert_eq!(calls.get("reviews.list"), Some(&4), "{calls:?}");
    assert_eq!(calls.get("pulls.get"), Some(&2), "{calls:?}");
}

#[test]
fn reviews_of_another_head_or_with_a_bad_token_are_refused() {
    let (org, base, head) = depends_on_change();
    let github = emulator_with_pull(5, "zoe", "User", &"2".repeat(40), "");
    let run = approvals(&org, &[&base, &head, "--reviews", "5", "--repo", REPO], Some(&github));
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("its reviews are not for this change"), "{run}");
    let url = github.base_url();
    let run = cpg_with_env(
        org.root(),
        &["policy", "approvals", &base, &head, "--reviews", "5", "--repo", REPO],
        &[("GITHUB_API_URL", url.as_str()), ("GH_TOKEN", "wrong")],
    );
    assert_ne!(run.code, SUCCESS, "{run}");
    assert!(!run.stderr.contains("wrong"), "the token is never printed\n{run}");
    let run = approvals(&org, &[&base, &head, "--reviews", "5", "--repo", "not a repo"], Some(&github));
    run.expect_code(INVALID_INPUT);
}

/// In a pull request the rules come from the base: relaxing the policy in the same change that
/// breaks it does not pass.
#[test]
fn the_policy_is_read_from_the_base_revision() {
    let org = GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    let members = org.path("datasets/hgdp/members.toml");
    let text = std::fs::read_to_string(&members).unwrap();
    std::fs::write(&members, text.replace("data-manager = [\"mateus\"]", "data-manager = [\"mateus\", \"ingrid\"]"))
        .unwrap();
    let policy = org.path("groups/policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("max_data_manager_datasets = 2", "max_data_manager_datasets = 9")).unwrap();
    let head = org.commit_as("Ingrid", "a third dataset, and a looser rule", COMMIT_TIME + 60);
    org.run(&["--rev", &head, "policy", "check"]).expect_code(SUCCESS);
    let run = org.run(&["--rev", &head, "policy", "check", "--policy-rev", &base]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("`ingrid` is data-manager of 3 datasets"), "{run}");
    // And the change to the policy itself needs the administrators.
    let run = approvals(&org, &[&base, &head], None);
    assert!(run.stdout.contains("the administrators (@kwatanabe, @wei-chen); changes `groups/policy.toml`"), "{run}");
}
