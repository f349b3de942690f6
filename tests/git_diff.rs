//! End-to-end tests of `groups diff` and `--rev`: temporary Git repositories built with git2,
//! each commit holding a copy of the example organisation, modified between commits.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_example_org, cpg, Run, FAILURE, INVALID_INPUT, SUCCESS};
use git2::{IndexAddOption, Oid, Repository, Signature, Time};
use serde_json::Value;

const KENJI: &str = "kenji.watanabe@example.org";
const TOB_WGS_MEMBERS: &str = "datasets/tob-wgs/members.toml";

/// Commits are made with a fixed author and date, so nothing depends on the environment.
fn signature() -> Signature<'static> {
    Signature::new("cpg-infra tests", "tests@example.org", &Time::new(1_764_115_200, 0)).expect("signature")
}

/// Replaces `from` by `to` in the file at `path`, insisting the text was there.
fn edit_file(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).expect("read definitions file");
    assert!(text.contains(from), "{} does not contain {from:?}", path.display());
    fs::write(path, text.replacen(from, to, 1)).expect("write definitions file");
}

/// The edit most tests commit: kenji (a platform admin with no tob-wgs role) becomes a tob-wgs
/// analyst, so he is a direct member of tob-wgs-analysis and gains tob-wgs-web-access
/// (which includes tob-wgs-analysis) through nesting.
fn add_kenji_to_tob_wgs_analysis(root: &Path) {
    edit_file(
        &root.join(TOB_WGS_MEMBERS),
        "analysis = [\n    \"group:data-science\",",
        "analysis = [\n    \"kenji\",\n    \"group:data-science\",",
    );
}

/// A commit whose definitions do not load: an unknown key in org.toml.
fn break_org_toml(root: &Path) {
    edit_file(&root.join("groups/org.toml"), "allowed_member_domains = [", "allowed_member_domain = [");
}

/// A non-bare repository in a temporary directory whose definitions live at `root`
/// (the working tree itself, or a subdirectory of it).
struct Fixture {
    _dir: tempfile::TempDir,
    repo: Repository,
    root: PathBuf,
}

impl Fixture {
    /// A new repository with the example organisation under `subdir` ("" for the top),
    /// committed once.
    fn new(subdir: &str) -> (Fixture, String) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let repo = Repository::init(dir.path()).expect("git init");
        let root = if subdir.is_empty() { dir.path().to_owned() } else { dir.path().join(subdir) };
        copy_example_org(&root);
        let fixture = Fixture { _dir: dir, repo, root };
        let first = fixture.commit("example organisation");
        (fixture, first)
    }

    /// Adds every file of the working tree to the index and commits it on HEAD; returns the SHA.
    fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().expect("index");
        index.add_all(["*"], IndexAddOption::DEFAULT, None).expect("git add");
        index.update_all(["*"], None).expect("git add -u");
        index.write().expect("write index");
        let tree = self.repo.find_tree(index.write_tree().expect("write tree")).expect("tree");
        let parent = self.repo.head().ok().map(|h| h.peel_to_commit().expect("HEAD commit"));
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let sig = signature();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).expect("commit").to_string()
    }

    fn run(&self, args: &[&str]) -> Run {
        cpg(&self.root, args)
    }

    fn commit_object(&self, sha: &str) -> git2::Commit<'_> {
        self.repo.find_commit(Oid::from_str(sha).expect("sha")).expect("commit")
    }
}

/// Two commits: the example organisation, then kenji added to tob-wgs analysis.
fn two_commits(subdir: &str) -> (Fixture, String, String) {
    let (fixture, first) = Fixture::new(subdir);
    add_kenji_to_tob_wgs_analysis(&fixture.root);
    let second = fixture.commit("kenji joins tob-wgs analysis");
    (fixture, first, second)
}

/// The text diff of the kenji commit: his direct membership and the access it brings.
fn assert_kenji_diff(run: &Run) {
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("  tob-wgs-analysis\n    + member {KENJI}\n")), "{run}");
    assert!(run.stdout.contains(&format!("{KENJI} gains tob-wgs-analysis (direct)")), "{run}");
    assert!(run.stdout.contains(&format!("{KENJI} gains tob-wgs-web-access via tob-wgs-analysis")), "{run}");
    assert!(!run.stdout.contains(" loses "), "{run}");
}

#[test]
fn diff_between_two_commits() {
    let (fixture, first, second) = two_commits("");
    assert_kenji_diff(&fixture.run(&["groups", "diff", &first, &second]));

    let run = fixture.run(&["groups", "diff", &first, &second, "--exit-code"]);
    run.expect_code(FAILURE);
    assert!(run.stdout.contains(&format!("+ member {KENJI}")), "{run}");

    // Reversed, kenji loses what he gained.
    let run = fixture.run(&["groups", "diff", &second, &first]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("- member {KENJI}")), "{run}");
    assert!(run.stdout.contains(&format!("{KENJI} loses tob-wgs-web-access via tob-wgs-analysis")), "{run}");

    // Abbreviated SHAs are revisions too.
    assert_kenji_diff(&fixture.run(&["groups", "diff", &first[..10], &second[..10]]));

    for rev in [&first, &second] {
        let run = fixture.run(&["groups", "diff", rev, rev]);
        run.expect_code(SUCCESS);
        assert_eq!(run.stdout, "no changes\n", "{run}");
        fixture.run(&["groups", "diff", rev, rev, "--exit-code"]).expect_code(SUCCESS);
    }
}

#[test]
fn diff_defaults_to_head_against_the_working_tree() {
    let (fixture, first, _second) = two_commits("");
    let run = fixture.run(&["groups", "diff"]);
    run.expect_code(SUCCESS);
    assert_eq!(run.stdout, "no changes\n", "{run}");
    fixture.run(&["groups", "diff", "--exit-code"]).expect_code(SUCCESS);

    // An uncommitted edit.
    edit_file(
        &fixture.root.join("datasets/perth-neuro/members.toml"),
        r#"metadata-access = ["aroha"]"#,
        r#"metadata-access = ["aroha", "olivia"]"#,
    );
    let run = fixture.run(&["groups", "diff"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("  perth-neuro-metadata-access\n    + member olivia.brown@example.org\n"), "{run}");
    assert!(!run.stdout.contains(KENJI), "HEAD was not the base\n{run}");
    fixture.run(&["groups", "diff", "--exit-code"]).expect_code(FAILURE);

    // One revision: that revision against the working tree (both edits show).
    let run = fixture.run(&["groups", "diff", &first]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("+ member {KENJI}")), "{run}");
    assert!(run.stdout.contains("+ member olivia.brown@example.org"), "{run}");
}

#[test]
fn diff_accepts_branch_and_tag_names() {
    let (fixture, first, second) = two_commits("");
    let sig = signature();
    fixture.repo.branch("before-kenji", &fixture.commit_object(&first), false).expect("branch");
    fixture
        .repo
        .tag("v2", fixture.commit_object(&second).as_object(), &sig, "with kenji", false)
        .expect("annotated tag");
    fixture.repo.tag_lightweight("v1", fixture.commit_object(&first).as_object(), false).expect("lightweight tag");

    assert_kenji_diff(&fixture.run(&["groups", "diff", "before-kenji", "HEAD"]));
    assert_kenji_diff(&fixture.run(&["groups", "diff", "v1", "v2"]));
    assert_kenji_diff(&fixture.run(&["groups", "diff", "before-kenji", "v2"]));
    assert_kenji_diff(&fixture.run(&["groups", "diff", "refs/tags/v1", "HEAD"]));
    assert_kenji_diff(&fixture.run(&["groups", "diff", "HEAD~1", "HEAD"]));
    // A branch as the only argument: compared with the working tree (= HEAD here).
    assert_kenji_diff(&fixture.run(&["groups", "diff", "before-kenji"]));
    let run = fixture.run(&["groups", "diff", "v2", "HEAD"]);
    assert_eq!(run.stdout, "no changes\n", "{run}");
}

#[test]
fn diff_markdown_and_json_formats() {
    let (fixture, first, second) = two_commits("");

    let run = fixture.run(&["groups", "diff", &first, &second, "--format", "markdown"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("### Access changes"), "{run}");
    assert!(run.stdout.contains(KENJI), "{run}");
    assert!(run.stdout.contains("via `tob-wgs-analysis`"), "{run}");

    let run = fixture.run(&["groups", "diff", &first, &second, "--format", "json"]);
    run.expect_code(SUCCESS);
    let json: Value = serde_json::from_str(&run.stdout).expect("diff is JSON");
    for key in ["groups_added", "groups_removed", "groups_changed", "access"] {
        assert!(json[key].is_array(), "{key} missing\n{run}");
    }
    assert!(json["groups_added"].as_array().unwrap().is_empty());
    assert!(json["groups_removed"].as_array().unwrap().is_empty());
    let changed = json["groups_changed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tob-wgs-analysis")
        .unwrap_or_else(|| panic!("tob-wgs-analysis not changed\n{run}"));
    assert_eq!(changed["members_added"], serde_json::json!([KENJI]));
    assert!(json["access"].as_array().unwrap().iter().any(|a| {
        a["member"] == KENJI
            && a["group"] == "tob-wgs-web-access"
            && a["change"] == "gains"
            && a["via"] == "tob-wgs-analysis"
    }));

    // No changes in either format, with --exit-code 0.
    let run = fixture.run(&["groups", "diff", &first, &first, "--format", "json", "--exit-code"]);
    run.expect_code(SUCCESS);
    let json: Value = serde_json::from_str(&run.stdout).expect("diff is JSON");
    assert_eq!(json["access"], serde_json::json!([]));
    let run = fixture.run(&["groups", "diff", &first, &first, "--format", "markdown"]);
    assert!(run.stdout.contains("### Access changes"), "{run}");
    fixture.run(&["groups", "diff", &first, &second, "--format", "markdown", "--exit-code"]).expect_code(FAILURE);
}

#[test]
fn definitions_in_a_subdirectory_of_the_repository() {
    let (fixture, first, second) = two_commits("org");
    assert!(fixture.root.ends_with("org"));
    assert_kenji_diff(&fixture.run(&["groups", "diff", &first, &second]));

    // Working tree against HEAD, under the subdirectory.
    assert_eq!(fixture.run(&["groups", "diff"]).stdout, "no changes\n");
    edit_file(&fixture.root.join(TOB_WGS_MEMBERS), "    \"kenji\",\n", "");
    let run = fixture.run(&["groups", "diff"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains(&format!("- member {KENJI}")), "{run}");

    // --rev reads the subdirectory of that revision.
    let run = fixture.run(&["--rev", &first, "validate"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.starts_with("ok: 16 people, 5 datasets"), "{run}");
}

#[test]
fn relative_root_inside_a_subdirectory_of_the_repository() {
    // `--root .` from inside the definitions directory, which is a subdirectory of the repo.
    let (fixture, first, second) = two_commits("org");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpg-infra"))
        .current_dir(&fixture.root)
        .args(["--root", ".", "--today", common::TODAY])
        .args(["groups", "diff", &first, &second])
        .env_remove("CPG_INFRA_TODAY")
        .output()
        .expect("run cpg-infra");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(SUCCESS), "{stdout}");
    assert!(stdout.contains(&format!("+ member {KENJI}")), "{stdout}");
}

/// Writes the files under `dir` into `repo` as a tree, without an index or working tree.
fn tree_from_dir(repo: &Repository, dir: &Path) -> Oid {
    let mut builder = repo.treebuilder(None).expect("tree builder");
    for entry in fs::read_dir(dir).expect("read directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().into_string().expect("UTF-8 name");
        let path = entry.path();
        if path.is_dir() {
            let tree = tree_from_dir(repo, &path);
            builder.insert(&name, tree, 0o040000).expect("insert tree");
        } else {
            let blob = repo.blob(&fs::read(&path).expect("read file")).expect("blob");
            builder.insert(&name, blob, 0o100644).expect("insert blob");
        }
    }
    builder.write().expect("write tree")
}

/// Commits the tree of `dir` on HEAD of a (bare) repository; returns the SHA.
fn commit_dir(repo: &Repository, dir: &Path, message: &str) -> String {
    let tree = repo.find_tree(tree_from_dir(repo, dir)).expect("tree");
    let parent = repo.head().ok().map(|h| h.peel_to_commit().expect("HEAD commit"));
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    let sig = signature();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).expect("commit").to_string()
}

#[test]
fn diff_in_a_bare_repository() {
    let bare_dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(bare_dir.path()).expect("git init --bare");
    assert!(repo.is_bare());
    let scratch = tempfile::tempdir().unwrap();
    copy_example_org(scratch.path());
    let first = commit_dir(&repo, scratch.path(), "example organisation");
    add_kenji_to_tob_wgs_analysis(scratch.path());
    let second = commit_dir(&repo, scratch.path(), "kenji joins tob-wgs analysis");

    let run = cpg(bare_dir.path(), &["groups", "diff", &first, &second]);
    assert_kenji_diff(&run);
    let run = cpg(bare_dir.path(), &["groups", "diff", "HEAD~1", "HEAD", "--exit-code"]);
    run.expect_code(FAILURE);
    let run = cpg(bare_dir.path(), &["--rev", &first, "validate"]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.starts_with("ok: "), "{run}");
}

#[test]
fn diff_in_a_bare_clone() {
    let (fixture, first, second) = two_commits("");
    let clone_dir = tempfile::tempdir().unwrap();
    let source = fixture.repo.path().to_str().expect("UTF-8 path").to_owned();
    let clone = git2::build::RepoBuilder::new().bare(true).clone(&source, clone_dir.path()).expect("local bare clone");
    assert!(clone.is_bare());
    assert_kenji_diff(&cpg(clone_dir.path(), &["groups", "diff", &first, &second]));
}

#[test]
fn an_unknown_revision_is_invalid_input() {
    let (fixture, first, _second) = two_commits("");
    for args in [
        &["groups", "diff", "no-such-revision", "HEAD"][..],
        &["groups", "diff", &first, "no-such-revision"][..],
        &["groups", "diff", "no-such-revision"][..],
        &["--rev", "no-such-revision", "validate"][..],
        &["--rev", "no-such-revision", "groups", "expand"][..],
    ] {
        let run = fixture.run(args);
        run.expect_code(INVALID_INPUT);
        assert!(run.stderr.contains("no-such-revision"), "{args:?}\n{run}");
        assert!(run.stdout.is_empty(), "{args:?}\n{run}");
    }
}

#[test]
fn diff_outside_a_repository_is_invalid_input() {
    let org = common::example_org();
    if Repository::discover(org.path()).is_ok() {
        eprintln!("skipped: the temporary directory is inside a Git repository");
        return;
    }
    let run = cpg(org.path(), &["groups", "diff"]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("not in a Git repository"), "{run}");
}

/// `path:line:col: message` lines of a diagnostics report (`rev:path:line:col: message` for
/// the files of a revision).
fn diagnostic_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| {
            let Some((_, place)) = line.split_once(".toml:") else {
                return false;
            };
            let mut parts = place.splitn(3, ':');
            let (Some(line_no), Some(col), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            line_no.parse::<u32>().is_ok() && col.parse::<u32>().is_ok()
        })
        .collect()
}

/// The short form of a commit id, as Git abbreviates it in this repository.
fn short_id(fixture: &Fixture, sha: &str) -> String {
    let object = fixture.repo.find_object(Oid::from_str(sha).expect("sha"), None).expect("object");
    object.short_id().expect("short id").as_str().expect("ASCII").to_owned()
}

#[test]
fn a_revision_with_invalid_definitions_gives_diagnostics() {
    for subdir in ["", "org"] {
        let (fixture, first, _second) = two_commits(subdir);
        break_org_toml(&fixture.root);
        let bad = fixture.commit("typo in org.toml");
        let short = short_id(&fixture, &bad);
        // Restore the working tree so only the revision is broken.
        edit_file(&fixture.root.join("groups/org.toml"), "allowed_member_domain = [", "allowed_member_domains = [");
        fixture.run(&["validate"]).expect_code(SUCCESS);

        // Each diagnostic names the revision as it was given, a commit id in its short form.
        for (args, revision) in [
            (&["groups", "diff", &first, &bad][..], short.as_str()),
            (&["groups", "diff", &bad, &first][..], &short),
            (&["groups", "diff", &bad[..10], &first][..], &bad[..10]),
            (&["groups", "diff"][..], "HEAD"),
            (&["--rev", &bad, "validate"][..], &short),
            (&["--rev", "HEAD", "validate"][..], "HEAD"),
        ] {
            let run = fixture.run(args);
            run.expect_code(INVALID_INPUT);
            let lines = diagnostic_lines(&run.stderr);
            assert_eq!(lines.len(), 1, "{subdir:?} {args:?}\n{run}");
            assert!(lines[0].starts_with(&format!("{revision}:groups/org.toml:")), "{subdir:?} {args:?}\n{run}");
            assert!(lines[0].contains("allowed_member_domain"), "{run}");
            assert!(run.stderr.contains("error: 1 problem(s)"), "{run}");
        }
    }
}

/// Problems the infrastructure design finds, after the definitions' own checks, name the
/// revision too; the working tree's files are named as they are.
#[test]
fn design_problems_of_a_revision_name_it() {
    let (fixture, _) = Fixture::new("");
    let org_toml = fixture.root.join("groups/org.toml");
    edit_file(&org_toml, "name_prefix = \"egi\"", "name_prefix = \"goog\"");
    let bad = fixture.commit("a name prefix Google refuses");
    fixture
        .repo
        .tag_lightweight("bad", &fixture.repo.find_object(Oid::from_str(&bad).unwrap(), None).unwrap(), false)
        .unwrap();

    let tagged = fixture.run(&["--rev", "bad", "validate"]);
    tagged.expect_code(INVALID_INPUT);
    let lines = diagnostic_lines(&tagged.stderr);
    assert!(!lines.is_empty() && lines.iter().all(|l| l.starts_with("bad:")), "{tagged}");
    assert!(lines.iter().any(|l| l.starts_with("bad:groups/org.toml:42:15: name prefix `goog` makes")), "{tagged}");
    assert!(lines.iter().any(|l| l.starts_with("bad:datasets/tob-wgs/dataset.toml:")), "{tagged}");
    let tree = fixture.run(&["validate"]);
    tree.expect_code(INVALID_INPUT);
    let stripped: Vec<&str> = lines.iter().map(|l| l.strip_prefix("bad:").unwrap()).collect();
    assert_eq!(diagnostic_lines(&tree.stderr), stripped, "{tree}");
}

/// A base that fails only the infrastructure design's checks (which `validate` runs, the group
/// expansion does not need) is still compared, so a pull request against an old base still gets
/// its diff; a note says which revision and what its first problem is.
#[test]
fn a_base_that_fails_only_the_design_checks_is_diffed_with_a_note() {
    let (fixture, _) = Fixture::new("");
    let org_toml = fixture.root.join("groups/org.toml");
    edit_file(&org_toml, "administrators = \"platform-admins\"", "administrators = \"platform-admin\"");
    let old = fixture.commit("administrators names a group that does not exist");
    fixture.run(&["--rev", &old, "validate"]).expect_code(INVALID_INPUT);
    edit_file(&org_toml, "administrators = \"platform-admin\"", "administrators = \"platform-admins\"");
    add_kenji_to_tob_wgs_analysis(&fixture.root);
    let new = fixture.commit("kenji joins tob-wgs analysis");
    let short = short_id(&fixture, &old);

    for format in ["text", "markdown", "json"] {
        let run = fixture.run(&["groups", "diff", &old, &new, "--format", format]);
        run.expect_code(SUCCESS);
        assert!(run.stdout.contains(KENJI), "{format}: {run}");
        let notes: Vec<&str> = run.stderr.lines().filter(|line| line.starts_with("note: ")).collect();
        assert_eq!(notes.len(), 1, "{format}: {run}");
        assert!(notes[0].contains(&format!("{short} ")), "the note names the revision: {run}");
        assert!(
            notes[0].contains(&format!("{short}:groups/org.toml:45:18: [infra] administrators names `platform-admin`")),
            "the note gives the first problem: {run}"
        );
    }
    assert_kenji_diff(&fixture.run(&["groups", "diff", &old, &new]));
    // The other way round, the head is the revision with the problem.
    let run = fixture.run(&["groups", "diff", &new, &old]);
    run.expect_code(SUCCESS);
    assert!(run.stderr.contains(&format!("note: {short} ")), "{run}");
    // A side that passes every check gets no note.
    let run = fixture.run(&["groups", "diff", &new, "HEAD"]);
    assert!(!run.stderr.contains("note:"), "{run}");
}

#[test]
fn rev_validates_that_revision() {
    let (fixture, first) = Fixture::new("");
    edit_file(
        &fixture.root.join("groups/people.toml"),
        "[people.ravi]",
        "[people.zoe]\nemail = \"zoe.smith@example.org\"\nname = \"Zoe Smith\"\n\n[people.ravi]",
    );
    fixture.commit("zoe joins");
    // An uncommitted third person in the working tree.
    edit_file(
        &fixture.root.join("groups/people.toml"),
        "[people.ravi]",
        "[people.yuki]\nemail = \"yuki.sato@example.org\"\nname = \"Yuki Sato\"\n\n[people.ravi]",
    );

    let people = |args: &[&str]| {
        let run = fixture.run(args);
        run.expect_code(SUCCESS);
        assert!(run.stdout.starts_with("ok: "), "{run}");
        run.stdout.split(' ').nth(1).unwrap().to_owned()
    };
    assert_eq!(people(&["validate"]), "18");
    assert_eq!(people(&["--rev", "HEAD", "validate"]), "17");
    assert_eq!(people(&["--rev", &first, "validate"]), "16");
    assert_eq!(people(&["--rev", "HEAD~1", "validate"]), "16");

    // A broken working tree does not matter when a revision is given.
    break_org_toml(&fixture.root);
    fixture.run(&["validate"]).expect_code(INVALID_INPUT);
    assert_eq!(people(&["--rev", &first, "validate"]), "16");
}

#[test]
fn diff_from_a_revision_before_the_definitions_existed() {
    let bare_dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(bare_dir.path()).expect("git init --bare");
    let scratch = tempfile::tempdir().unwrap();
    fs::write(scratch.path().join("README.md"), "before the definitions\n").unwrap();
    let empty = commit_dir(&repo, scratch.path(), "start");
    copy_example_org(scratch.path());
    let added = commit_dir(&repo, scratch.path(), "example organisation");

    let run = cpg(bare_dir.path(), &["groups", "diff", &empty, &added]);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("+ tob-wgs-analysis <tob-wgs-analysis@groups.example.org>"), "{run}");
    assert!(!run.stdout.contains("groups removed"), "{run}");
    // Removing everything again reads as every group removed.
    let run = cpg(bare_dir.path(), &["groups", "diff", &added, &empty]);
    assert!(run.stdout.contains("- tob-wgs-analysis <tob-wgs-analysis@groups.example.org>"), "{run}");
}

/// The working tree and a revision agree on what is a definitions file: a symbolic link (which
/// Git stores as a link, not as its target) and a file that is not UTF-8 are the same located
/// errors in both.
#[test]
fn working_tree_and_revision_refuse_the_same_unusual_files() {
    let (fixture, _) = Fixture::new("");
    std::os::unix::fs::symlink("tob-wgs", fixture.root.join("datasets/tob-wgs-link")).expect("symlink");
    let people = fixture.root.join("groups/people.toml");
    let mut bytes = fs::read(&people).expect("people.toml");
    bytes.extend_from_slice(b"\n# caf\xe9\n");
    fs::write(&people, bytes).expect("write people.toml");
    fixture.commit("a link and a Latin-1 comment");

    let tree = fixture.run(&["validate"]);
    let revision = fixture.run(&["--rev", "HEAD", "validate"]);
    tree.expect_code(INVALID_INPUT);
    revision.expect_code(INVALID_INPUT);
    let unprefixed: String =
        revision.stderr.lines().map(|line| line.strip_prefix("HEAD:").unwrap_or(line).to_owned() + "\n").collect();
    assert_eq!(tree.stderr, unprefixed, "working tree:\n{tree}\nrevision:\n{revision}");
    assert!(tree.stderr.contains("datasets/tob-wgs-link:1:1: is a symbolic link"), "{tree}");
    assert!(tree.stderr.contains("groups/people.toml:"), "{tree}");
    assert!(tree.stderr.contains("is not valid UTF-8 (byte 0xe9)"), "{tree}");
}

#[test]
fn a_moved_expiry_date_and_a_new_time_limited_grant_are_differences() {
    let (fixture, first) = Fixture::new("");
    let members = fixture.root.join(TOB_WGS_MEMBERS);
    edit_file(&members, r#"{ member = "ravi", expires = 2027-03-31 }"#, r#"{ member = "ravi", expires = 2027-09-30 }"#);
    edit_file(
        &members,
        "analysis = [\n    \"group:data-science\",",
        "analysis = [\n    { member = \"kenji\", expires = 2027-01-31 },\n    \"group:data-science\",",
    );
    let second = fixture.commit("ravi until September, kenji until January");
    let release = "tob-wgs-release-access";

    let text = fixture.run(&["groups", "diff", &first, &second]);
    text.expect_code(SUCCESS);
    assert!(text.stdout.contains(&format!("+ member {KENJI} (until 2027-01-31)")), "{text}");
    assert!(
        text.stdout.contains(&format!(
            "  {release}\n    ~ member ravi.iyer@example.org until 2027-03-31 → until 2027-09-30\n"
        )),
        "{text}"
    );
    assert!(text.stdout.contains("1 expiry date(s) changed"), "{text}");

    let markdown = fixture.run(&["groups", "diff", &first, &second, "--format", "markdown"]);
    assert!(
        markdown
            .stdout
            .contains(&format!("| `{release}` | 📅 | ravi.iyer@example.org (until 2027-03-31 → until 2027-09-30) |")),
        "{markdown}"
    );
    assert!(markdown.stdout.contains(&format!("| ➕ | {KENJI} (until 2027-01-31) |")), "{markdown}");

    let json = fixture.run(&["groups", "diff", &first, &second, "--format", "json"]);
    let json: Value = serde_json::from_str(&json.stdout).expect("JSON diff");
    let changed = json["groups_changed"].as_array().expect("groups_changed");
    let group = |name: &str| changed.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} in {json}"));
    assert_eq!(
        group(release)["expiry_changed"],
        serde_json::json!([{ "member": "ravi.iyer@example.org", "before": "2027-03-31", "after": "2027-09-30" }])
    );
    assert_eq!(group("tob-wgs-analysis")["added_until"], serde_json::json!({ KENJI: "2027-01-31" }));

    // Only the date moves: still a difference for --exit-code.
    edit_file(&members, r#"{ member = "ravi", expires = 2027-09-30 }"#, r#"{ member = "ravi", expires = 2027-10-31 }"#);
    let third = fixture.commit("ravi until October");
    let moved = fixture.run(&["groups", "diff", &second, &third, "--exit-code"]);
    moved.expect_code(FAILURE);
    assert!(
        moved.stdout.contains("0 membership(s) added, 0 removed, 1 expiry date(s) changed; 0 access change(s)"),
        "{moved}"
    );
    fixture.run(&["groups", "diff", &third, &third, "--exit-code"]).expect_code(SUCCESS);
}

/// `--resources`: each access change said on cloud resources, per person with their name.
#[test]
fn the_diff_says_what_access_changes_mean_on_cloud_resources() {
    let (fixture, first) = Fixture::new("");
    edit_file(
        &fixture.root.join(TOB_WGS_MEMBERS),
        "web-access = [\"david\"]",
        "web-access = [\"david\"]\nmain-list = [\"wei\"]",
    );
    let second = fixture.commit("wei lists tob-wgs main");
    let text = fixture.run(&["groups", "diff", &first, &second, "--resources"]);
    text.expect_code(SUCCESS);
    assert!(text.stdout.contains("resource access:\n  Wei Chen <wei.chen@example.org>\n"), "{text}");
    assert!(text.stdout.contains("    gains LIST on tob-wgs bucket main (through tob-wgs-main-list)\n"), "{text}");
    assert!(!text.stdout.contains("READ on tob-wgs bucket main "), "listing is not reading: {text}");
    let markdown = fixture.run(&["groups", "diff", &first, &second, "--resources", "--format", "markdown"]);
    // Names are escaped in Markdown: `<` renders as itself and cannot open an HTML comment.
    assert!(
        markdown.stdout.contains("### Resource access\n\n- **Wei Chen &lt;wei.chen@example.org&gt;**\n"),
        "{markdown}"
    );
    let json = fixture.run(&["groups", "diff", &first, &second, "--resources", "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["resources"][0]["member"], "wei.chen@example.org");
    assert_eq!(value["resources"][0]["changes"][0]["change"], "gains");
    // The reverse is a loss, looked up in the base revision.
    let back = fixture.run(&["groups", "diff", &second, &first, "--resources"]);
    assert!(back.stdout.contains("    loses LIST on tob-wgs bucket main (through tob-wgs-main-list)\n"), "{back}");
}

/// A moved account and a changed setting change who can do what without a line in any
/// group: both show in every format, as access per account, and count for `--exit-code`.
#[test]
fn moved_accounts_and_changed_settings_are_visible_widenings() {
    let org = common::git::GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    edit_file(
        &org.path("groups/people.toml"),
        "azure = \"amara.okafor@examplegenomics.onmicrosoft.com\"",
        "azure = \"amara.okafor@examplegenomics.onmicrosoft.com\"\ngoogle = \"amara.personal@gmail.com\"",
    );
    edit_file(&org.path("groups/org.toml"), "max_removals = 100\n", "max_removals = 9999\n");
    let head = org.commit_as("Someone", "move an account", common::git::COMMIT_TIME + 60);
    let run = org.run(&["groups", "diff", &base, &head, "--exit-code"]);
    run.expect_code(FAILURE);
    assert!(
        run.stdout.contains("amara.okafor@example.org google account: (not set) → amara.personal@gmail.com"),
        "{run}"
    );
    assert!(run.stdout.contains("groups/org.toml sync.max_removals: 100 → 9999"), "{run}");
    assert!(
        run.stdout.contains(
            "amara.personal@gmail.com gains tob-wgs-data-manager via google account of amara.okafor@example.org"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("amara.okafor@example.org loses tob-wgs-data-manager via google account of"), "{run}");
    let json: Value =
        serde_json::from_str(&org.run(&["groups", "diff", &base, &head, "--format", "json"]).stdout).unwrap();
    assert_eq!(json["accounts"][0]["after"], "amara.personal@gmail.com");
    assert_eq!(json["settings"][0]["key"], "sync.max_removals");
    let markdown = org.run(&["groups", "diff", &base, &head, "--format", "markdown", "--resources"]).stdout;
    assert!(
        markdown.contains("#### Accounts (1)") && markdown.contains("#### Settings that decide access (1)"),
        "{markdown}"
    );
    assert!(markdown.contains("amara.personal@gmail.com"), "resource access per account\n{markdown}");
}

/// The trusted build compares its diff with the pull request's own build's: where the code
/// change alone moves access, the output says so first and lists it.
#[test]
fn a_diff_from_another_build_that_disagrees_is_called_out_first() {
    let org = common::git::GitOrg::new();
    let base = org.repo.head().unwrap().peel_to_commit().unwrap().id().to_string();
    add_kenji_to_tob_wgs_analysis(org.root());
    let head = org.commit_as("Someone", "kenji analyses tob-wgs", common::git::COMMIT_TIME + 60);
    let own = org.run(&["groups", "diff", &base, &head, "--format", "json"]);
    let same = org.path("same.json");
    fs::write(&same, &own.stdout).unwrap();
    let agreeing = org.run(&["groups", "diff", &base, &head, "--compare-with", same.to_str().unwrap()]);
    agreeing.expect_code(SUCCESS);
    assert!(!agreeing.stdout.contains("warning:"), "{agreeing}");
    // The pull request's code would also make kenji a data manager of tob-wgs.
    let mut other: Value = serde_json::from_str(&own.stdout).unwrap();
    other["access"].as_array_mut().unwrap().push(serde_json::json!({
        "member": KENJI, "group": "tob-wgs-data-manager", "change": "gains", "via": null
    }));
    let other_path = org.path("other.json");
    fs::write(&other_path, other.to_string()).unwrap();
    let run = org.run(&["groups", "diff", &base, &head, "--compare-with", other_path.to_str().unwrap(), "--exit-code"]);
    run.expect_code(FAILURE);
    assert!(run.stdout.starts_with("warning: The pull request's own build"), "{run}");
    assert!(
        run.stdout.contains(&format!("Only with the pull request's code:\n  {KENJI} gains `tob-wgs-data-manager`")),
        "{run}"
    );
    fs::write(&other_path, "not json").unwrap();
    org.run(&["groups", "diff", &base, &head, "--compare-with", other_path.to_str().unwrap()])
        .expect_code(INVALID_INPUT);
}
