//! `validate` and `groups …`: expand, why, diff and sync.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use super::args::{DiffArgs, DiffFormat, ExpandFormat, GlobalArgs, GroupsCommand, PlanFormat, ProviderName, SyncArgs};
use super::output::{emit, emit_line};
use super::resolve::{self, Revision};
use super::{progress, Exit, InputError};

/// Requests in flight at once when neither --concurrency nor the provider's settings say.
const DEFAULT_CONCURRENCY: usize = 8;
use crate::definitions::{GoogleGroupSettings, MembershipExpiry, Nesting, ParseCache};
use crate::diff::{diff_hierarchies, render_json, render_markdown, render_text};
use crate::directory::{
    AzureDirectory, DeltaState, Directory, DirectoryError, GoogleDirectory, HailConfig, HailDirectory, LocalDirectory,
};
use crate::hierarchy::{self, Hierarchy};
use crate::load::Expanded;
use crate::sync::{self, ApplyOptions, ApplyOutcome, PlanOptions, RemovalLimits, RetryPolicy};

/// Runs one `groups` subcommand.
pub fn run(global: &GlobalArgs, command: &GroupsCommand) -> Result<Exit> {
    match command {
        GroupsCommand::Expand { format } => expand(global, *format),
        GroupsCommand::Why { person, group, at: None } => why(global, person, group),
        GroupsCommand::Why { person, group, at: Some(at) } => {
            let (rev, today) = resolve::revision_at(global, at)?;
            let past = GlobalArgs { root: global.root.clone(), rev: Some(rev), today: today.or(global.today.clone()) };
            why(&past, person, group)
        }
        GroupsCommand::Diff(args) => diff(global, args),
        GroupsCommand::Sync(args) if args.provider == ProviderName::All => sync_all(global, args),
        GroupsCommand::Sync(args) if args.provider == ProviderName::Metamist => {
            let expanded = resolve::load(global, &resolve::default_revision(global))?;
            super::metamist::sync(global, args, &expanded)
        }
        GroupsCommand::Sync(args) => {
            let expanded = resolve::load(global, &resolve::default_revision(global))?;
            sync(global, args, &expanded)
        }
        GroupsCommand::Cache { confirm } => {
            let expanded = resolve::load(global, &resolve::default_revision(global))?;
            super::cache::refresh(global, &expanded, *confirm, false)
        }
        GroupsCommand::Add(args) => super::edit::add(global, args),
        GroupsCommand::Remove(args) => super::edit::remove(global, args),
        GroupsCommand::Expiring(args) => super::expiring::run(global, args),
        GroupsCommand::Remind(args) => super::remind::run(global, args),
        GroupsCommand::History(args) => super::history::run(global, args),
        GroupsCommand::CodifyDrift(args) => super::codify::run(global, args),
        GroupsCommand::DriftReport(args) => super::drift_report::run(global, args),
    }
}

/// `validate`: a one-line summary, or every error (printed by the caller).
pub fn validate(global: &GlobalArgs) -> Result<Exit> {
    let expanded = resolve::load(global, &resolve::default_revision(global))?;
    let definitions = &expanded.definitions;
    emit_line(&format!(
        "ok: {} people, {} datasets, {} groups, {} memberships",
        definitions.people.len(),
        definitions.datasets.len(),
        expanded.hierarchy.groups.len(),
        expanded.hierarchy.membership_count()
    ));
    Ok(Exit::Success)
}

fn expand(global: &GlobalArgs, format: ExpandFormat) -> Result<Exit> {
    let expanded = resolve::load(global, &resolve::default_revision(global))?;
    let output = match format {
        ExpandFormat::Text => hierarchy::render_text(&expanded.hierarchy),
        ExpandFormat::Json => hierarchy::render_json(&expanded.hierarchy),
    };
    emit(&output);
    Ok(Exit::Success)
}

fn why(global: &GlobalArgs, person: &str, group: &str) -> Result<Exit> {
    let expanded = resolve::load(global, &resolve::default_revision(global))?;
    let email = person_email(&expanded.definitions, person)?;
    // Groups are named without the organisation's prefix, as in the definitions.
    let prefixed = expanded.definitions.org_group_name(group);
    let Some(target) = expanded.hierarchy.find_group(&prefixed).or_else(|| expanded.hierarchy.find_group(group)) else {
        let known = expanded.hierarchy.groups.keys().map(String::as_str);
        return Err(InputError(crate::definitions::unknown("group", group, known, false)).into());
    };
    let paths = expanded.hierarchy.why(&email, &target.name);
    if paths.is_empty() {
        emit_line(&format!("{email} is not a member of {}", target.name));
        let today = resolve::today(global)?;
        for expired in
            hierarchy::expired_grants(&expanded.definitions, &expanded.hierarchy, &email, &target.name, today)
        {
            emit_line(&format!(
                "  {email} → {}: the grant expired after {} (at {})",
                expired.group, expired.expired, expired.location
            ));
        }
        return Ok(Exit::Failure);
    }
    emit_line(&format!("{email} is a member of {} through {} path(s):", target.name, paths.len()));
    for path in &paths {
        let granted = path
            .first()
            .and_then(|innermost| expanded.hierarchy.group(innermost))
            .map(|group| hierarchy::grant_locations(&expanded.definitions, group, &email))
            .unwrap_or_default();
        let at: Vec<String> = granted.iter().map(|location| location.to_string()).collect();
        let suffix = if at.is_empty() { String::new() } else { format!("  (granted at {})", at.join(", ")) };
        emit_line(&format!("  {email} → {}{suffix}", path.join(" → ")));
    }
    if paths.len() == hierarchy::MAX_WHY_PATHS {
        emit_line(&format!("  (only the first {} paths are shown)", hierarchy::MAX_WHY_PATHS));
    }
    Ok(Exit::Success)
}

fn diff(global: &GlobalArgs, args: &DiffArgs) -> Result<Exit> {
    let base = Revision::Git(args.base.clone().unwrap_or_else(|| "HEAD".to_owned()));
    let head = args.head.clone().map_or(Revision::WorkingTree, Revision::Git);
    let (base_rev, head_rev) = (base, head);
    let (base, head) = load_revisions(global, &base_rev, &head_rev)?;
    for note in design_notes(global, [(&base_rev, &base), (&head_rev, &head)]) {
        eprintln!("note: {note}");
    }
    let hierarchy = |side: &Option<Expanded>| side.as_ref().map(|e| e.hierarchy.clone()).unwrap_or_default();
    let settings = settings_changes(global, (&base_rev, &base), (&head_rev, &head))?;
    let diff = diff_hierarchies(&hierarchy(&base), &hierarchy(&head)).with_definition_changes(
        base.as_ref().map(|e| (&e.definitions, &e.hierarchy)),
        head.as_ref().map(|e| (&e.definitions, &e.hierarchy)),
        settings,
    );
    let resources = args.resources.then(|| {
        let matrix = |side: &Option<Expanded>| {
            side.as_ref().map(|e| crate::infra::access_matrix(&e.definitions)).unwrap_or_default()
        };
        let names = [&base, &head]
            .into_iter()
            .flatten()
            .flat_map(|e| e.definitions.people.values())
            .filter_map(|p| p.name.clone().map(|name| (p.email.clone(), name)))
            .collect();
        crate::diff::resource_changes(&diff, &matrix(&base), &matrix(&head), &names)
    });
    let output = match (args.format, &resources) {
        (DiffFormat::Text, None) => render_text(&diff),
        (DiffFormat::Text, Some(people)) => render_text(&diff) + &crate::diff::render_resources_text(people),
        (DiffFormat::Markdown, None) => render_markdown(&diff),
        (DiffFormat::Markdown, Some(people)) => {
            render_markdown(&diff) + &crate::diff::render_resources_markdown(people)
        }
        (DiffFormat::Json, None) => render_json(&diff),
        (DiffFormat::Json, Some(people)) => {
            serde_json::to_string_pretty(&serde_json::json!({ "diff": diff, "resources": people }))? + "\n"
        }
    };
    let disagreement = match &args.compare_with {
        Some(path) => Some(crate::diff::compare_access(&diff.access, &other_build_access(path)?)),
        None => None,
    };
    let output = match (&disagreement, args.format) {
        (None, _) => output,
        (Some(d), DiffFormat::Json) => {
            let mut value: serde_json::Value = serde_json::from_str(&output)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("disagreement".into(), serde_json::to_value(d)?);
            }
            serde_json::to_string_pretty(&value)? + "\n"
        }
        (Some(d), format) => crate::diff::render_disagreement(d, format == DiffFormat::Markdown) + &output,
    };
    emit(&output);
    let disagrees = disagreement.as_ref().is_some_and(|d| !d.is_empty());
    Ok(if args.exit_code && (!diff.is_empty() || disagrees) { Exit::Failure } else { Exit::Success })
}

/// A diff needs only the group expansion, so a side that fails the checks `validate` runs
/// after it (the infrastructure design's) is still compared, an old base included: one line
/// per such side, naming it and its first problem. The two sides are checked in parallel.
fn design_notes(global: &GlobalArgs, sides: [(&Revision, &Option<Expanded>); 2]) -> Vec<String> {
    let note = |(revision, expanded): (&Revision, &Option<Expanded>)| {
        let errors = crate::infra::check(&expanded.as_ref()?.definitions).err()?;
        let problems = resolve::in_revision(global, revision, crate::infra::diagnostics(&errors));
        let first = problems.0.first()?;
        let name = match revision {
            Revision::WorkingTree => "the working tree".to_owned(),
            Revision::Git(rev) => resolve::revision_name(global, rev),
        };
        Some(format!(
            "{name} does not pass `cpg-infra validate`: {} problem(s) in its infrastructure design, the first: {first}; its groups are compared as they are",
            problems.len()
        ))
    };
    let [base, head] = sides;
    std::thread::scope(|scope| {
        let base = scope.spawn(|| note(base));
        let head = note(head);
        [base.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), head]
    })
    .into_iter()
    .flatten()
    .collect()
}

/// The access changes of another build's `groups diff --format json` (with or without
/// `--resources`). The file is untrusted: it is only compared, never acted on.
fn other_build_access(path: &std::path::Path) -> Result<Vec<crate::diff::AccessChange>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| InputError(format!("{}: not a diff in JSON: {e}", path.display())))?;
    let access = value.get("diff").unwrap_or(&value).get("access").cloned().unwrap_or_default();
    serde_json::from_value(access)
        .map_err(|e| InputError(format!("{}: not a diff in JSON: {e}", path.display())).into())
}

/// The settings files that decide access, compared key by key: org.toml, policy.toml and
/// the transition mapping either side names.
pub fn settings_changes(
    global: &GlobalArgs,
    base: (&Revision, &Option<Expanded>),
    head: (&Revision, &Option<Expanded>),
) -> Result<Vec<crate::diff::SettingChange>> {
    let mut files: BTreeSet<String> = ["groups/org.toml".to_owned(), crate::policy::POLICY_FILE.to_owned()].into();
    for side in [base.1, head.1].into_iter().flatten() {
        files.extend(side.definitions.organisation.transition_mapping.clone());
    }
    let mut changes = Vec::new();
    for file in &files {
        let before = resolve::read_file(global, base.0, file)?;
        let after = resolve::read_file(global, head.0, file)?;
        changes.extend(crate::diff::setting_changes(file, before.as_deref(), after.as_deref()));
    }
    Ok(changes)
}

/// The email a person key or email names; any other email is taken as written (lowercased).
pub fn person_email(definitions: &crate::definitions::Definitions, person: &str) -> Result<String> {
    match definitions.find_person(person) {
        Some(found) => Ok(found.email.clone()),
        None if person.contains('@') => Ok(person.to_ascii_lowercase()),
        None => Err(InputError(format!("unknown person `{person}`")).into()),
    }
}

/// Both sides of a diff, `None` for a revision from before the definitions existed. The two
/// load in parallel (each opens its own repository); a file both hold is parsed once, by
/// whichever side reaches it first.
pub fn load_revisions(
    global: &GlobalArgs,
    base: &Revision,
    head: &Revision,
) -> Result<(Option<Expanded>, Option<Expanded>)> {
    let cache = ParseCache::new();
    let (base, head) = std::thread::scope(|scope| {
        let base = scope.spawn(|| resolve::load_for_diff(global, base, &cache));
        let head = resolve::load_for_diff(global, head, &cache);
        (base.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), head)
    });
    Ok((base?, head?))
}

/// `--provider all`: each enabled provider in dependency order, the members cache once at the
/// end. A provider that fails or is refused does not stop the others; the worst exit wins.
fn sync_all(global: &GlobalArgs, args: &SyncArgs) -> Result<Exit> {
    let expanded = resolve::load(global, &resolve::default_revision(global))?;
    let organisation = &expanded.definitions.organisation;
    let enabled = |settings: Option<bool>| settings.unwrap_or(false);
    let providers: Vec<ProviderName> = [
        (ProviderName::Google, enabled(organisation.google.as_ref().map(|p| p.enabled))),
        (ProviderName::Azure, enabled(organisation.azure.as_ref().map(|p| p.enabled))),
        (ProviderName::Hail, enabled(organisation.hail.as_ref().map(|p| p.enabled))),
        (ProviderName::Metamist, enabled(organisation.metamist.as_ref().map(|p| p.enabled))),
    ]
    .into_iter()
    .filter_map(|(provider, on)| on.then_some(provider))
    .collect();
    if providers.is_empty() {
        return Err(InputError(
            "no provider is enabled in groups/org.toml ([providers.google|azure|hail|metamist] enabled = true)".into(),
        )
        .into());
    }
    let mut worst = Exit::Success;
    for (index, provider) in providers.iter().enumerate() {
        let last = index + 1 == providers.len();
        let one = SyncArgs { provider: *provider, no_cache: args.no_cache || !last, ..args.clone() };
        eprintln!("== {provider:?}");
        let result = match provider {
            ProviderName::Metamist => super::metamist::sync(global, &one, &expanded),
            _ => sync(global, &one, &expanded),
        };
        let exit = match result {
            Ok(exit) => exit,
            Err(error) => {
                eprintln!("error: {provider:?}: {error:#}");
                Exit::Failure
            }
        };
        worst = worse(worst, exit);
    }
    Ok(worst)
}

/// Of two outcomes, the one that needs more attention: invalid input, then refusal, then failure.
fn worse(a: Exit, b: Exit) -> Exit {
    let rank = |exit: Exit| match exit {
        Exit::Success => 0,
        Exit::Failure => 1,
        Exit::Refused => 2,
        Exit::InvalidInput => 3,
        Exit::Pulumi(_) => 1,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// One provider's sync, on definitions already loaded (once, however many providers run).
fn sync(global: &GlobalArgs, args: &SyncArgs, expanded: &Expanded) -> Result<Exit> {
    let settings = &expanded.definitions.organisation.sync;
    let Target { directory, nesting, concurrency, desired, delta_state } = target(global, args, expanded)?;
    let concurrency = args.concurrency.or(concurrency).unwrap_or(DEFAULT_CONCURRENCY);
    let retry = RetryPolicy::default();
    let adoptable: BTreeSet<String> = if args.adopt {
        expanded.hierarchy.groups.values().map(|g| g.email.clone()).collect()
    } else {
        BTreeSet::new()
    };
    // A change feed already reads only what changed; Google and the local directory are read
    // group by group, so only the groups whose definitions changed need reading.
    let scope = match &delta_state {
        None => super::changed_since::scope(global, args, expanded, &desired, nesting)?,
        Some(_) => None,
    };
    let mut feed = None;
    let read = match &delta_state {
        Some(path) => read_through_delta(directory.as_ref(), &retry, path, args.full_read).map(|(read, state)| {
            feed = state.map(|state| (path.clone(), state));
            read
        }),
        None => match &scope {
            Some(scope) => sync::read_live_groups(directory.as_ref(), &scope.groups, concurrency, &retry, &adoptable),
            None => {
                let progress = progress::on_stderr("read", "groups");
                sync::read_live_state_with_progress(
                    directory.as_ref(),
                    concurrency,
                    &retry,
                    &adoptable,
                    progress.as_ref(),
                )
            }
        },
    };
    let read = read.map_err(|error| {
        match error.directory_error() {
            // The directory refused to be read: credentials, customer id or permissions. Lag and
            // outages stay failures (exit 1): nothing the user wrote is wrong.
            DirectoryError::Rejected(_) => anyhow::Error::new(InputError(error.to_string())),
            _ => anyhow::Error::new(error),
        }
    })?;
    let options = PlanOptions {
        nesting,
        delete_groups: args.delete_groups,
        adopt: args.adopt,
        limits: RemovalLimits {
            max_removals: settings.max_removals,
            max_removal_percent: settings.max_removal_percent,
        },
    };
    let desired = match &expanded.definitions.organisation.transition_mapping {
        Some(mapping) if !args.retire_old_groups => {
            let (desired, nested) = super::migrate::nest_old_groups(global, expanded, mapping, &read.state, desired)?;
            eprintln!(
                "transition: {nested} old group(s) nested into their new groups; end it with --retire-old-groups"
            );
            desired
        }
        _ => desired,
    };
    let plan = match &scope {
        Some(scope) => sync::plan_groups(&desired, &read.state, &options, &scope.groups),
        None => sync::plan(&desired, &read.state, &options),
    };
    // Said only when asked for: what was read. The plan itself names the managed groups no
    // longer defined (in a changed-only read, those the change removed).
    let mut read_notes = Vec::new();
    if args.changed_since.is_some() && super::changed_since::reads_group_by_group(args.provider) {
        read_notes.push(match &scope {
            Some(scope) => scope.describe(),
            None => format!("full read: {} groups read", read.state.groups.len()),
        });
    }
    // Google group settings, for the groups that are ours; none configured, none read.
    let wanted_settings = match args.provider {
        ProviderName::Google => sync::desired_settings(&expanded.definitions, &desired),
        _ => BTreeMap::new(),
    };
    let owned: BTreeSet<String> =
        read.state.groups.iter().filter(|(_, g)| g.group.owned).map(|(email, _)| email.clone()).collect();
    let taken_over = groups_taken_over(plan.changes.iter());
    let settings_step = |owned: &BTreeSet<String>, new_groups: &BTreeSet<String>, confirm: bool| {
        group_settings(
            directory.as_ref(),
            &SettingsStep {
                desired: &wanted_settings,
                owned,
                new_groups,
                concurrency,
                retry: &retry,
                confirm,
                to_stderr: matches!(args.format, PlanFormat::Json),
            },
        )
    };
    match args.format {
        PlanFormat::Text => {
            emit_line(&directory.describe());
            read_notes.iter().for_each(|line| emit_line(line));
            if args.verbose || plan.changes.len() <= PLAN_LINES_IN_FULL {
                emit(&format!("{plan}"));
            } else {
                emit(&format!("{}", sync::PlanSummary { plan: &plan, groups_shown: SUMMARY_GROUPS }));
            }
        }
        PlanFormat::Json => {
            read_notes.iter().for_each(|line| eprintln!("{line}"));
            emit_line(&serde_json::to_string_pretty(&plan)?)
        }
    }
    if !args.confirm {
        if let Some((path, state)) = feed.take() {
            save_delta(directory.as_ref(), &retry, &path, state, false);
        }
        let refused = !plan.refusals.is_empty() && !args.allow_mass_removal;
        let settings = if refused { SettingsOutcome::default() } else { settings_step(&owned, &taken_over, false) };
        if refused {
            eprintln!(
                "dry run: nothing was changed; a safety limit refuses this plan: applying it needs --confirm --allow-mass-removal"
            );
        } else if !plan.is_empty() || settings.pending {
            eprintln!("dry run: nothing was changed; run again with --confirm to apply");
        }
        if refused {
            return Ok(Exit::Refused);
        }
        let exit = if settings.succeeded { Exit::Success } else { Exit::Failure };
        return refresh_cache(global, args, expanded, exit);
    }
    let apply_options = ApplyOptions { concurrency, retry, allow_mass_removal: args.allow_mass_removal };
    let outcome =
        sync::apply(directory.as_ref(), &plan, &apply_options, progress::on_stderr("applied", "changes").as_ref());
    for notice in directory.notices() {
        eprintln!("notice: {notice}");
    }
    if let Some((path, state)) = feed.take() {
        let applied = matches!(outcome, ApplyOutcome::Applied(_)) && !plan.is_empty();
        save_delta(directory.as_ref(), &retry, &path, state, applied);
    }
    match outcome {
        ApplyOutcome::Refused(reasons) => {
            for reason in reasons {
                eprintln!("refused: {reason}");
            }
            eprintln!("nothing was applied; re-run with --allow-mass-removal if these removals are intended");
            eprintln!("the members cache was left as it is");
            Ok(Exit::Refused)
        }
        ApplyOutcome::Applied(mut report) => {
            report.read_retries = read.retries;
            for (change, error) in &report.failed {
                eprintln!("failed: {change}: {error}");
            }
            if let Some(error) = &report.flush_error {
                eprintln!("failed to save: {error}");
            }
            // Once per member, however many groups it was to join.
            for (member, (reason, groups)) in &report.unknown_members {
                eprintln!("failed: {member}: {reason} (not added to {})", groups.join(", "));
            }
            emit_line(&report.summary());
            if let Some((reason, not_sent)) = &report.stopped {
                eprintln!("error: {reason}; stopped: {not_sent} change(s) not sent");
                return Ok(Exit::InvalidInput);
            }
            // Groups created or adopted in this run are ours now; those that failed are not.
            let failed = groups_taken_over(report.failed.iter().map(|(change, _)| change));
            let ours: BTreeSet<String> = owned.iter().chain(taken_over.difference(&failed)).cloned().collect();
            let settings = settings_step(&ours, &BTreeSet::new(), true);
            let exit = if report.succeeded() && settings.succeeded { Exit::Success } else { Exit::Failure };
            if exit == Exit::Success && super::changed_since::reads_group_by_group(args.provider) {
                record_synced_revision(global, args.provider, expanded);
            }
            refresh_cache(global, args, expanded, exit)
        }
    }
}

/// After a sync that applied completely: the commit its desired state came from, so the next
/// `--changed-since` reads only what changed after it. Not recorded (and said) when there is
/// no such commit, e.g. uncommitted definitions.
fn record_synced_revision(global: &GlobalArgs, provider: ProviderName, expanded: &Expanded) {
    let path = super::synced::path(global, super::changed_since::provider_key(provider));
    let mapping = expanded.definitions.organisation.transition_mapping.as_deref();
    let commit = match resolve::loaded_commit(global, mapping) {
        Ok(commit) => commit,
        Err(reason) => {
            if path.exists() {
                eprintln!("the synced revision in {} is left as it is: {reason}", path.display());
            }
            return;
        }
    };
    let date = match resolve::today(global) {
        Ok(date) => date.to_string(),
        Err(error) => return eprintln!("cannot record the synced revision: {error}"),
    };
    if let Err(error) = super::synced::record(&path, &super::synced::SyncedRevision { commit, date }) {
        eprintln!("cannot record the synced revision in {}: {error}", path.display());
    }
}

/// The groups these changes create or adopt.
fn groups_taken_over<'a>(changes: impl Iterator<Item = &'a sync::Change>) -> BTreeSet<String> {
    changes
        .filter_map(|change| match change {
            sync::Change::CreateGroup { email, .. } => Some(email.clone()),
            sync::Change::AdoptGroup { group, .. } => Some(group.clone()),
            _ => None,
        })
        .collect()
}

/// What the group-settings step is given.
struct SettingsStep<'a> {
    /// Email → settings, for the groups that have any.
    desired: &'a BTreeMap<String, GoogleGroupSettings>,
    /// Groups that are ours, whose settings are read.
    owned: &'a BTreeSet<String>,
    /// Groups the dry run would create or adopt: not readable yet, every setting is shown.
    new_groups: &'a BTreeSet<String>,
    concurrency: usize,
    retry: &'a RetryPolicy,
    /// Update the groups; otherwise only say what would change.
    confirm: bool,
    /// Print the changes on stderr (stdout holds the JSON plan).
    to_stderr: bool,
}

/// What the group-settings step did.
struct SettingsOutcome {
    /// Some group's settings differ and were not updated (a dry run).
    pending: bool,
    /// Every read and update went through.
    succeeded: bool,
}

impl Default for SettingsOutcome {
    fn default() -> Self {
        SettingsOutcome { pending: false, succeeded: true }
    }
}

/// Group settings after the memberships: each owned group that has settings is read once, and
/// only the fields that differ are sent, in one update per group. Nothing when the directory
/// has no settings or none are configured.
fn group_settings(directory: &dyn Directory, step: &SettingsStep) -> SettingsOutcome {
    let Some(settings) = directory.group_settings().filter(|_| !step.desired.is_empty()) else {
        return SettingsOutcome::default();
    };
    let say = |line: &str| if step.to_stderr { eprintln!("{line}") } else { emit_line(line) };
    let groups: Vec<String> = step.desired.keys().filter(|email| step.owned.contains(*email)).cloned().collect();
    let read = sync::read_settings(settings, &groups, step.concurrency, step.retry);
    for (group, error) in &read.failed {
        eprintln!("failed: reading the settings of {group}: {error}");
    }
    let changes = sync::plan_settings(step.desired, &read.live, step.new_groups);
    for change in &changes {
        say(&change.to_string());
    }
    let mut outcome = SettingsOutcome { pending: false, succeeded: read.failed.is_empty() };
    if !step.confirm {
        outcome.pending = !changes.is_empty();
        say(&format!(
            "settings: {} group(s) read, {} to update; {} failed; {} retried",
            read.live.len(),
            changes.len(),
            read.failed.len(),
            read.retries
        ));
        return outcome;
    }
    let report = sync::apply_settings(settings, &changes, step.concurrency, step.retry);
    for (group, error) in &report.failed {
        eprintln!("failed: updating the settings of {group}: {error}");
    }
    outcome.succeeded &= report.failed.is_empty();
    say(&format!(
        "settings: {} group(s) read, {} updated; {} failed; {} retried",
        read.live.len(),
        report.updated,
        read.failed.len() + report.failed.len(),
        read.retries + report.retries
    ));
    outcome
}

/// Reads through the directory's change feed from the state in `path` (unless `full_read`, or
/// the file is missing or unreadable, which starts over and says so). Returns the feed's new
/// state too, which the caller stores once it has applied its changes.
fn read_through_delta(
    directory: &dyn Directory,
    retry: &RetryPolicy,
    path: &std::path::Path,
    full_read: bool,
) -> Result<(sync::LiveRead, Option<DeltaState>), sync::ReadError> {
    let since = if full_read {
        None
    } else {
        match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(state) => Some(state),
                Err(error) => {
                    eprintln!("{}: not a delta state ({error}); reading everything", path.display());
                    None
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("no delta state at {}; reading everything", path.display());
                None
            }
            Err(error) => {
                eprintln!("{}: {error}; reading everything", path.display());
                None
            }
        }
    };
    let delta = match sync::read_live_state_delta(directory, retry, since.as_ref()) {
        Some(delta) => delta?,
        None => return Ok((sync::read_live_state(directory, 1, retry, &BTreeSet::new())?, None)),
    };
    if delta.restarted {
        eprintln!("the stored delta link has expired; read everything again");
    }
    Ok((delta.read, Some(delta.state)))
}

/// Stores where the change feed stands after this run: one more round from `state` takes in
/// the changes just applied (whose objects the directory already knows), so the next run only
/// reads what others change. If that round fails, `state` is stored and the next run catches up.
fn save_delta(
    directory: &dyn Directory,
    retry: &RetryPolicy,
    path: &std::path::Path,
    state: DeltaState,
    applied: bool,
) {
    let state = match applied.then(|| sync::read_live_state_delta(directory, retry, Some(&state))).flatten() {
        Some(Ok(after)) => after.state,
        _ => state,
    };
    let saved = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
        crate::write_safely::write_file(path, serde_json::to_string(&state).unwrap_or_default().as_bytes())
    });
    if let Err(error) = saved {
        eprintln!("cannot save the delta state {}: {error}; the next run reads everything", path.display());
    }
}

/// The members-cache step after the groups: same dry run or confirmation; the worse exit wins.
pub(super) fn refresh_cache(global: &GlobalArgs, args: &SyncArgs, expanded: &Expanded, groups: Exit) -> Result<Exit> {
    if args.no_cache {
        return Ok(groups);
    }
    let to_stderr = matches!(args.format, PlanFormat::Json);
    let cache = super::cache::refresh(global, expanded, args.confirm, to_stderr)?;
    Ok(if groups == Exit::Success { cache } else { groups })
}

/// The directory a sync talks to, and what it should hold there.
struct Target {
    directory: Box<dyn Directory>,
    nesting: Nesting,
    /// The provider's configured concurrency, if any.
    concurrency: Option<usize>,
    /// The hierarchy with member emails as this directory knows them.
    desired: Hierarchy,
    /// Where the directory's change feed state is kept, for directories that have one.
    delta_state: Option<std::path::PathBuf>,
}

/// What the local directory or Google should hold for these definitions (other providers
/// shape their own).
pub(super) fn desired_in_directory(provider: ProviderName, expanded: &Expanded) -> Hierarchy {
    let definitions = &expanded.definitions;
    let Some(google) = definitions.organisation.google.as_ref().filter(|_| provider == ProviderName::Google) else {
        return expanded.hierarchy.clone();
    };
    // People may use a different account in Google than their primary email.
    let desired = expanded.hierarchy.with_member_aliases(&definitions.google_accounts());
    // Without Cloud Identity expiry, no expiryDetail is sent: the expansion as of today
    // already leaves expired grants out, so this sync removes them.
    match google.membership_expiry {
        MembershipExpiry::Native => desired,
        MembershipExpiry::EnforcedBySync => desired.without_expiry(),
    }
}

/// Text plans up to this many changes print every change; larger ones are summed up per group
/// (a first sync of 2,000 datasets would otherwise print about 900,000 lines).
pub(super) const PLAN_LINES_IN_FULL: usize = 1_000;
/// Groups a summed-up plan names, those with the most changes first.
const SUMMARY_GROUPS: usize = 50;

/// Where Azure's change-feed state is kept, under --root.
const AZURE_DELTA_STATE: &str = ".cpg-infra/azure-delta.json";

fn target(global: &GlobalArgs, args: &SyncArgs, expanded: &Expanded) -> Result<Target> {
    let definitions = &expanded.definitions;
    match args.provider {
        ProviderName::Local => {
            let path =
                resolve::local_state_path(global, args.state.as_deref(), &definitions.organisation.sync.state_file);
            // A dry run only reads: it takes no lock and creates no file.
            let directory =
                if args.confirm { LocalDirectory::open(&path) } else { LocalDirectory::open_read_only(&path) };
            Ok(Target {
                directory: Box::new(directory?),
                nesting: Nesting::Native,
                concurrency: None,
                desired: expanded.hierarchy.clone(),
                delta_state: None,
            })
        }
        ProviderName::Google => {
            let (config, provider) = resolve::google_config(definitions)?;
            let directory = GoogleDirectory::connect(&config).map_err(|e| InputError(e.to_string()))?;
            if provider.membership_expiry == MembershipExpiry::EnforcedBySync {
                eprintln!(
                    "membership expiry is enforced by the sync (membership_expiry = \"enforced-by-sync\"): expired grants are removed when it runs"
                );
            }
            let desired = desired_in_directory(ProviderName::Google, expanded);
            Ok(Target {
                directory: Box::new(directory),
                nesting: provider.nesting,
                concurrency: provider.concurrency,
                desired,
                delta_state: None,
            })
        }
        ProviderName::Azure => {
            let (config, provider) = resolve::azure_config(definitions)?;
            // A sign-in endpoint that does not answer is an outage (exit 1), not bad input.
            let directory = AzureDirectory::connect(&config).map_err(|e| match e {
                DirectoryError::Unavailable(message) => anyhow::anyhow!(message),
                other => anyhow::Error::new(InputError(other.to_string())),
            })?;
            let machine_accounts = crate::infra::machine_account_memberships(definitions);
            let identities = crate::infra::azure_identity_memberships(definitions);
            Ok(Target {
                directory: Box::new(directory),
                nesting: provider.nesting,
                concurrency: provider.concurrency,
                // Graph keeps no expiry with a membership; people are matched by email. The GCP
                // machine accounts of the access-level groups have no Entra ID identity: their
                // Azure managed identities join instead, found by ARM id.
                desired: expanded.hierarchy.without_expiry().without_members(machine_accounts).with_members(identities),
                delta_state: Some(resolve::local_state_path(global, args.state.as_deref(), AZURE_DELTA_STATE)),
            })
        }
        // `sync_all` runs each provider on its own.
        ProviderName::All => Err(InputError("--provider all is run provider by provider".into()).into()),
        ProviderName::Hail => {
            let (endpoint, token, settings) = resolve::hail_config(definitions)?;
            let desired = crate::apps::hail::desired(definitions, &expanded.hierarchy, &settings);
            // One line per person, however many datasets they analyse.
            for (email, datasets) in &desired.without_username {
                eprintln!(
                    "skipped: {email} has no hail_batch username in people.toml (analyses {})",
                    datasets.join(", ")
                );
            }
            let config = HailConfig {
                auth_endpoint: settings.auth_endpoint.clone().unwrap_or_else(|| endpoint.clone()),
                endpoint,
                token,
                ours: desired.projects.groups.keys().cloned().collect(),
                machine_users: desired.machine_users,
                requests: settings.requests,
            };
            let directory = HailDirectory::connect(&config).map_err(|e| InputError(e.to_string()))?;
            Ok(Target {
                directory: Box::new(directory),
                nesting: Nesting::Native,
                concurrency: None,
                desired: desired.projects,
                delta_state: None,
            })
        }
        // A write-only directory of member lists: `cli::metamist`.
        ProviderName::Metamist => Err(InputError("Metamist is synced by its own path".into()).into()),
    }
}
