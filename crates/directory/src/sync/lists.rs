//! Syncing a write-only directory of member lists (Metamist): the directory cannot be read
//! back, so each project's desired list is compared with the list this tool last wrote, kept
//! in a state file (one JSON line per project, sorted: name, hash, content). Only projects
//! whose desired list differs from the one written (or that are missing, or whose stored entry
//! does not match its hash) are written, unless every project is to be written again
//! (`full_write`: drift made by hand is never seen otherwise). Removals count against the same
//! limits as a directory's. Planning and applying go one project at a time: the caller hands in
//! each project's desired list on demand, and the state file is read and rewritten as a stream.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::apply::{run_parallel, with_retries, Progress};
use super::plan::removal_refusals;
use super::{ApplyOptions, RemovalLimits};
use crate::apps::metamist::{MemberList, MetamistProject};
use crate::directory::{DirectoryError, ListDirectory, ProjectMember};

#[derive(Debug, Error)]
pub enum StateError {
    #[error("{0}: refusing to use a state file that is a symbolic link")]
    Symlink(PathBuf),
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
}

/// One project's entry in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    project: String,
    /// `list_hash` of `members`; an entry whose content does not match it is not trusted.
    hash: String,
    members: Vec<ProjectMember>,
}

/// A fingerprint of a member list (MD5 of its canonical JSON): equal lists, equal hashes.
pub fn list_hash(list: &MemberList) -> String {
    let canonical = serde_json::to_vec(list).unwrap_or_default();
    Md5::digest(&canonical).iter().map(|b| format!("{b:02x}")).collect()
}

fn to_members(list: &MemberList) -> Vec<ProjectMember> {
    list.iter()
        .map(|(member, roles)| ProjectMember { member: member.clone(), roles: roles.iter().cloned().collect() })
        .collect()
}

fn from_members(members: &[ProjectMember]) -> MemberList {
    let mut list = MemberList::new();
    for entry in members {
        list.entry(entry.member.clone()).or_default().extend(entry.roles.iter().cloned());
    }
    list
}

fn refuse_symlink(path: &Path) -> Result<(), StateError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(StateError::Symlink(path.to_owned())),
        _ => Ok(()),
    }
}

/// Reads the state file forward, one entry at a time, in project order.
pub struct StateReader {
    lines: Option<io::Lines<BufReader<fs::File>>>,
    /// The next entry not yet asked for.
    ahead: Option<(String, String)>,
    path: PathBuf,
}

impl StateReader {
    /// A missing file is an empty state.
    pub fn open(path: &Path) -> Result<StateReader, StateError> {
        refuse_symlink(path)?;
        let lines = match fs::File::open(path) {
            Ok(file) => Some(BufReader::new(file).lines()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(StateError::Io(path.to_owned(), error)),
        };
        Ok(StateReader { lines, ahead: None, path: path.to_owned() })
    }

    /// The next (project, raw line), skipping blank and unreadable lines.
    fn next_line(&mut self) -> Result<Option<(String, String)>, StateError> {
        if let Some(ahead) = self.ahead.take() {
            return Ok(Some(ahead));
        }
        let Some(lines) = self.lines.as_mut() else { return Ok(None) };
        for line in lines {
            let line = line.map_err(|e| StateError::Io(self.path.clone(), e))?;
            #[derive(Deserialize)]
            struct Name {
                project: String,
            }
            if let Ok(name) = serde_json::from_str::<Name>(&line) {
                return Ok(Some((name.project, line)));
            }
        }
        Ok(None)
    }

    /// The list last written for `project`, if the state has a trustworthy one. Projects must
    /// be asked for in sorted order; entries before `project` are passed over.
    pub fn take(&mut self, project: &str) -> Result<Option<MemberList>, StateError> {
        while let Some((name, line)) = self.next_line()? {
            match name.as_str().cmp(project) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Greater => {
                    self.ahead = Some((name, line));
                    return Ok(None);
                }
                std::cmp::Ordering::Equal => {
                    let Ok(entry) = serde_json::from_str::<StoredEntry>(&line) else { return Ok(None) };
                    let list = from_members(&entry.members);
                    return Ok((list_hash(&list) == entry.hash).then_some(list));
                }
            }
        }
        Ok(None)
    }
}

/// Why a project is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteReason {
    /// The directory does not list it: created, then written.
    Missing,
    /// No list was written yet (or the stored entry is not trusted).
    NeverWritten,
    /// The desired list differs from the one last written.
    Changed,
    /// Every project is written again.
    FullWrite,
}

/// One project to write, with what changes against the list last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListWrite {
    pub project: String,
    pub dataset: String,
    /// The dataset's `-test` project.
    pub test: bool,
    pub create: bool,
    pub reason: WriteReason,
    /// (member, role) gained and lost against the list last written, while the plan's line
    /// budget lasts (`ListPlanOptions::lines`); the counts are always whole.
    pub added: Vec<(String, String)>,
    pub removed: Vec<(String, String)>,
    pub added_count: usize,
    pub removed_count: usize,
}

/// What a sync of member lists will do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListPlan {
    pub writes: Vec<ListWrite>,
    /// Projects whose desired list is the one last written.
    pub unchanged: usize,
    /// Why applying is refused (removal limits), if it is.
    pub refusals: Vec<String>,
}

impl ListPlan {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl fmt::Display for ListPlan {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut summed_up = false;
        for write in &self.writes {
            if write.create {
                writeln!(f, "create project {} (dataset {})", write.project, write.dataset)?;
            }
            let why = match write.reason {
                WriteReason::Missing | WriteReason::NeverWritten => "no list written yet",
                WriteReason::Changed => "changed since the last write",
                WriteReason::FullWrite => "--full-write",
            };
            writeln!(f, "write the member list of {} ({why})", write.project)?;
            for (member, role) in &write.added {
                writeln!(f, "  + {member} {role}")?;
            }
            for (member, role) in &write.removed {
                writeln!(f, "  - {member} {role}")?;
            }
            let (added, removed) = (write.added_count - write.added.len(), write.removed_count - write.removed.len());
            if added + removed > 0 {
                summed_up = true;
                writeln!(f, "  … {added} more (member, role) added, {removed} more removed")?;
            }
        }
        if summed_up {
            writeln!(f, "the plan is too long to list every member: --verbose prints each")?;
        }
        writeln!(f, "{} project(s) to write, {} unchanged", self.writes.len(), self.unchanged)?;
        for refusal in &self.refusals {
            writeln!(f, "refused: {refusal}")?;
        }
        Ok(())
    }
}

/// The first of `pairs` that the line budget still allows (all of them without one).
fn within_budget(budget: &mut Option<usize>, mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    if let Some(left) = budget {
        pairs.truncate(*left);
        *left -= pairs.len();
        pairs.shrink_to_fit();
    }
    pairs
}

/// What `plan_lists` needs besides the projects.
pub struct ListPlanOptions {
    pub full_write: bool,
    pub limits: RemovalLimits,
    /// Most (member, role) lines the plan keeps, all projects together; `None`: every line.
    /// The rest are counted only, so a first sync of a large organisation holds one project's
    /// pairs at a time instead of every membership.
    pub lines: Option<usize>,
}

/// (member, role) pairs of `list`.
fn pairs(list: &MemberList) -> BTreeSet<(String, String)> {
    list.iter().flat_map(|(member, roles)| roles.iter().map(move |role| (member.clone(), role.clone()))).collect()
}

/// Compares each project's desired list (from `desired`, asked one project at a time, in
/// order) with the list last written and the directory's listing. Pure but for the state
/// reader, which only moves forward.
pub fn plan_lists(
    projects: &[MetamistProject],
    desired: &dyn Fn(&MetamistProject) -> MemberList,
    listed: &BTreeSet<String>,
    state: &mut StateReader,
    options: &ListPlanOptions,
) -> Result<ListPlan, StateError> {
    let mut plan = ListPlan::default();
    let mut budget = options.lines;
    let mut removals_per_group: Vec<(String, (usize, usize))> = Vec::new();
    let mut removals = 0;
    for project in projects {
        let wanted = desired(project);
        let written = state.take(&project.name)?;
        let create = !listed.contains(&project.name);
        let reason = match &written {
            _ if create => WriteReason::Missing,
            None => WriteReason::NeverWritten,
            Some(list) if *list != wanted => WriteReason::Changed,
            Some(_) if options.full_write => WriteReason::FullWrite,
            Some(_) => {
                plan.unchanged += 1;
                continue;
            }
        };
        // A project to create starts empty, whatever was written to it before.
        let written = if create { None } else { written };
        let (want, had) = (pairs(&wanted), written.as_ref().map(pairs).unwrap_or_default());
        let removed: Vec<(String, String)> = had.difference(&want).cloned().collect();
        // Removal limits per role, against the list last written (the only one known).
        if let Some(list) = &written {
            for role in crate::definitions::METAMIST_ROLES {
                let current = list.values().filter(|roles| roles.contains(role)).count();
                let gone = removed.iter().filter(|(_, r)| r == role).count();
                if gone > 0 {
                    removals_per_group.push((format!("{}/{role}", project.name), (gone, current)));
                }
            }
        }
        removals += removed.len();
        let added: Vec<(String, String)> = want.difference(&had).cloned().collect();
        let (added_count, removed_count) = (added.len(), removed.len());
        let removed = within_budget(&mut budget, removed);
        let added = within_budget(&mut budget, added);
        plan.writes.push(ListWrite {
            project: project.name.clone(),
            dataset: project.dataset.clone(),
            test: project.test,
            create,
            reason,
            added,
            removed,
            added_count,
            removed_count,
        });
    }
    let per_group = removals_per_group.iter().map(|(group, counts)| (group.as_str(), *counts)).collect();
    plan.refusals = removal_refusals(&per_group, removals, &options.limits);
    Ok(plan)
}

/// What applying a list plan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListReport {
    pub created: usize,
    pub written: usize,
    /// Projects that failed after retries, with the last error; their entries leave the state,
    /// so the next run writes them again whatever their lists.
    pub failed: Vec<(String, String)>,
    pub retries: usize,
    pub api_calls: Option<u64>,
    pub seconds: f64,
    /// The projects written, for the state.
    #[serde(skip)]
    pub written_projects: BTreeSet<String>,
}

impl ListReport {
    /// The projects whose write failed, for the state.
    pub fn failed_projects(&self) -> BTreeSet<String> {
        self.failed.iter().map(|(project, _)| project.clone()).collect()
    }

    pub fn summary(&self) -> String {
        let calls = self.api_calls.map(|c| format!("; {c} API call(s)")).unwrap_or_default();
        format!(
            "applied: {} project(s) created, {} member list(s) written; {} failed; {} retried{calls}; {:.2}s",
            self.created,
            self.written,
            self.failed.len(),
            self.retries,
            self.seconds
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListOutcome {
    /// Nothing was applied: the plan trips a safety limit.
    Refused(Vec<String>),
    Applied(ListReport),
}

/// Creates the missing projects and writes each planned project's list (asked from `desired`
/// again, one project at a time), in parallel, with the sync's retries; `progress` hears of
/// each project as it is done.
pub fn apply_lists(
    directory: &dyn ListDirectory,
    plan: &ListPlan,
    desired: &(dyn Fn(&MetamistProject) -> MemberList + Sync),
    options: &ApplyOptions,
    progress: &dyn Progress,
) -> ListOutcome {
    if !plan.refusals.is_empty() && !options.allow_mass_removal {
        return ListOutcome::Refused(plan.refusals.clone());
    }
    progress.start(plan.writes.len());
    let started = Instant::now();
    let retries = AtomicUsize::new(0);
    let results = run_parallel(&plan.writes, options.concurrency, |write| {
        let written = write_project(directory, write, desired, options, &retries);
        progress.advance();
        written
    });
    progress.finish();
    let mut report = ListReport::default();
    for (write, result) in plan.writes.iter().zip(results) {
        match result {
            Ok(()) => {
                report.created += usize::from(write.create);
                report.written += 1;
                report.written_projects.insert(write.project.clone());
            }
            Err(error) => report.failed.push((write.project.clone(), error.to_string())),
        }
    }
    report.retries = retries.into_inner();
    report.api_calls = directory.api_calls();
    report.seconds = started.elapsed().as_secs_f64();
    ListOutcome::Applied(report)
}

/// One planned write: the project created first if it is missing, then its whole list; each
/// call retried, the attempts beyond the first added to `retries`.
fn write_project(
    directory: &dyn ListDirectory,
    write: &ListWrite,
    desired: &(dyn Fn(&MetamistProject) -> MemberList + Sync),
    options: &ApplyOptions,
    retries: &AtomicUsize,
) -> Result<(), DirectoryError> {
    if write.create {
        let (created, attempts) =
            with_retries(&options.retry, || directory.create_project(&write.project, &write.dataset));
        retries.fetch_add(attempts - 1, Ordering::Relaxed);
        created?;
    }
    let project = MetamistProject { name: write.project.clone(), dataset: write.dataset.clone(), test: write.test };
    let list = desired(&project);
    let (written, attempts) = with_retries(&options.retry, || directory.write_members(&write.project, &list));
    retries.fetch_add(attempts - 1, Ordering::Relaxed);
    written
}

/// Rewrites the state file with the lists just written (asked from `desired` again) in place
/// of their old entries, drops the entries of `failed` projects (a failed write may have landed
/// in part, so the old entry no longer says what Metamist holds: without one the next run
/// writes the project whatever its list), and keeps every other entry as it was. Streamed,
/// then renamed into place.
pub fn save_state(
    path: &Path,
    projects: &[MetamistProject],
    written: &BTreeSet<String>,
    failed: &BTreeSet<String>,
    desired: &dyn Fn(&MetamistProject) -> MemberList,
) -> Result<(), StateError> {
    if written.is_empty() && failed.is_empty() {
        return Ok(());
    }
    refuse_symlink(path)?;
    let io_error = |e| StateError::Io(path.to_owned(), e);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_error)?;
    }
    let temporary = path.with_extension("jsonl.tmp");
    let _ = fs::remove_file(&temporary);
    let file = fs::OpenOptions::new().write(true).create_new(true).open(&temporary).map_err(io_error)?;
    let mut out = BufWriter::new(file);
    let mut old = StateReader::open(path)?;
    let mut new = projects.iter().filter(|p| written.contains(&p.name)).peekable();
    let mut pending_old = old.next_line()?;
    loop {
        let take_new = match (new.peek(), &pending_old) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(project), Some((name, _))) => project.name.as_str() <= name.as_str(),
        };
        if take_new {
            let Some(project) = new.next() else { break };
            if pending_old.as_ref().is_some_and(|(name, _)| *name == project.name) {
                pending_old = old.next_line()?;
            }
            let list = desired(project);
            let entry =
                StoredEntry { project: project.name.clone(), hash: list_hash(&list), members: to_members(&list) };
            let line = serde_json::to_string(&entry).map_err(|e| io_error(io::Error::other(e)))?;
            writeln!(out, "{line}").map_err(io_error)?;
        } else if let Some((name, line)) = pending_old.take() {
            if !failed.contains(&name) {
                writeln!(out, "{line}").map_err(io_error)?;
            }
            pending_old = old.next_line()?;
        }
    }
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)?;
    fs::rename(&temporary, path).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, &[&str])]) -> MemberList {
        entries.iter().map(|(m, roles)| ((*m).to_owned(), roles.iter().map(|r| (*r).to_owned()).collect())).collect()
    }

    fn project(name: &str) -> MetamistProject {
        MetamistProject {
            name: name.to_owned(),
            dataset: name.trim_end_matches("-test").to_owned(),
            test: name.ends_with("-test"),
        }
    }

    const LIMITS: RemovalLimits = RemovalLimits { max_removals: 100, max_removal_percent: 50 };

    #[test]
    fn a_line_budget_keeps_the_first_lines_and_counts_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let projects: Vec<MetamistProject> = ["a", "b"].map(project).into();
        let members =
            |_: &MetamistProject| list(&[("x@example.org", &["reader", "writer"]), ("y@example.org", &["reader"])]);
        let listed: BTreeSet<String> = ["a", "b"].map(str::to_owned).into();
        let options = ListPlanOptions { full_write: false, limits: LIMITS, lines: Some(4) };
        let plan = plan_lists(&projects, &members, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        let kept: Vec<usize> = plan.writes.iter().map(|w| w.added.len()).collect();
        assert_eq!(kept, [3, 1], "four lines in all, the first project's first");
        assert!(plan.writes.iter().all(|w| w.added_count == 3), "the counts are whole");
        let text = plan.to_string();
        assert!(text.contains("  … 2 more (member, role) added, 0 more removed"), "{text}");
        assert!(text.contains("--verbose prints each"), "{text}");
        let all = ListPlanOptions { lines: None, ..options };
        let plan = plan_lists(&projects, &members, &listed, &mut StateReader::open(&path).unwrap(), &all).unwrap();
        assert!(plan.writes.iter().all(|w| w.added.len() == 3));
        assert!(!plan.to_string().contains("more (member, role)"));
    }

    #[test]
    fn only_changed_projects_are_written_and_the_state_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let projects: Vec<MetamistProject> = ["a", "a-test", "b"].map(project).into();
        let first = |p: &MetamistProject| list(&[("x@example.org", &["reader"]), (p.name.as_str(), &["writer"])]);
        let listed: BTreeSet<String> = ["a", "a-test", "b"].map(str::to_owned).into();
        let options = ListPlanOptions { full_write: false, limits: LIMITS, lines: None };
        let plan = plan_lists(&projects, &first, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!(plan.writes.len(), 3);
        assert!(plan.writes.iter().all(|w| w.reason == WriteReason::NeverWritten));
        save_state(
            &path,
            &projects,
            &plan.writes.iter().map(|w| w.project.clone()).collect(),
            &BTreeSet::new(),
            &first,
        )
        .unwrap();

        let again = plan_lists(&projects, &first, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!((again.writes.len(), again.unchanged), (0, 3));

        // b changes: only b is written, and the state keeps a and a-test as they were.
        let second = |p: &MetamistProject| {
            let mut l = first(p);
            if p.name == "b" {
                l.entry("y@example.org".to_owned()).or_default().insert("contributor".to_owned());
            }
            l
        };
        let plan = plan_lists(&projects, &second, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!(plan.writes.len(), 1);
        assert_eq!(plan.writes[0].added, vec![("y@example.org".to_owned(), "contributor".to_owned())]);
        save_state(&path, &projects, &BTreeSet::from(["b".to_owned()]), &BTreeSet::new(), &second).unwrap();
        let after = plan_lists(&projects, &second, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!((after.writes.len(), after.unchanged), (0, 3));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);

        let full = ListPlanOptions { full_write: true, limits: LIMITS, lines: None };
        let all = plan_lists(&projects, &second, &listed, &mut StateReader::open(&path).unwrap(), &full).unwrap();
        assert!(all.writes.iter().all(|w| w.reason == WriteReason::FullWrite && w.added.is_empty()));
        assert_eq!(all.writes.len(), 3);
    }

    #[test]
    fn a_failed_write_forgets_the_project_so_a_revert_is_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let projects = vec![project("a"), project("b")];
        let listed: BTreeSet<String> = ["a", "b"].map(str::to_owned).into();
        let options = ListPlanOptions { full_write: false, limits: LIMITS, lines: None };
        let old = |_: &MetamistProject| list(&[("x@example.org", &["reader"])]);
        let both = BTreeSet::from(["a".to_owned(), "b".to_owned()]);
        save_state(&path, &projects, &both, &BTreeSet::new(), &old).unwrap();
        // The write of a's new list fails (it may have landed in part); b is untouched.
        save_state(&path, &projects, &BTreeSet::new(), &BTreeSet::from(["a".to_owned()]), &old).unwrap();
        // The definitions go back to the old list: a is written again all the same.
        let plan = plan_lists(&projects, &old, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        let written: Vec<_> = plan.writes.iter().map(|w| (w.project.as_str(), w.reason)).collect();
        assert_eq!(written, [("a", WriteReason::NeverWritten)]);
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn a_tampered_entry_is_not_trusted_and_a_missing_project_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let projects = vec![project("a")];
        let wanted = |_: &MetamistProject| list(&[("x@example.org", &["reader"])]);
        save_state(&path, &projects, &BTreeSet::from(["a".to_owned()]), &BTreeSet::new(), &wanted).unwrap();
        let text = fs::read_to_string(&path).unwrap().replace("reader", "writer");
        fs::write(&path, text).unwrap();
        let options = ListPlanOptions { full_write: false, limits: LIMITS, lines: None };
        let listed = BTreeSet::from(["a".to_owned()]);
        let plan = plan_lists(&projects, &wanted, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!(plan.writes[0].reason, WriteReason::NeverWritten);
        let plan =
            plan_lists(&projects, &wanted, &BTreeSet::new(), &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert!(plan.writes[0].create);
    }

    #[test]
    fn removals_past_the_limits_refuse_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let projects = vec![project("a")];
        let many = |_: &MetamistProject| {
            list(&[("x@example.org", &["reader"]), ("y@example.org", &["reader"]), ("z@example.org", &["reader"])])
        };
        save_state(&path, &projects, &BTreeSet::from(["a".to_owned()]), &BTreeSet::new(), &many).unwrap();
        let few = |_: &MetamistProject| list(&[("x@example.org", &["reader"])]);
        let options = ListPlanOptions { full_write: false, limits: LIMITS, lines: None };
        let listed = BTreeSet::from(["a".to_owned()]);
        let plan = plan_lists(&projects, &few, &listed, &mut StateReader::open(&path).unwrap(), &options).unwrap();
        assert_eq!(plan.refusals.len(), 1, "{plan}");
        assert!(plan.refusals[0].contains("a/reader"), "{plan}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "").unwrap();
        let path = dir.path().join("state.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(StateReader::open(&path), Err(StateError::Symlink(_))));
        let wanted = |_: &MetamistProject| MemberList::new();
        let result = save_state(&path, &[project("a")], &BTreeSet::from(["a".to_owned()]), &BTreeSet::new(), &wanted);
        assert!(matches!(result, Err(StateError::Symlink(_))));
        assert_eq!(fs::read_to_string(&target).unwrap(), "");
    }
}
