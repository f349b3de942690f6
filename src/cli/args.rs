//! Command-line arguments: raw values only, no environment and no I/O.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cpg-infra",
    version,
    about = "Keeps an organisation's access groups in Git and pushes them to its directories"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Directory holding groups/ and datasets/.
    #[arg(long, global = true, default_value = ".")]
    pub root: PathBuf,
    /// Read the definitions from this Git revision instead of the working tree.
    #[arg(long, global = true)]
    pub rev: Option<String>,
    /// The date grant expiry is judged against (YYYY-MM-DD); default today, or $CPG_INFRA_TODAY.
    #[arg(long, global = true)]
    pub today: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the definitions and print a summary, or every error as path:line:col.
    Validate,
    /// Work with the expanded groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// The organisation's access rules (groups/policy.toml).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Write .github/CODEOWNERS: dataset folders to their data managers, groups/ to the admins.
    ///
    /// Owners are GitHub user names (`github` in people.toml); the administrators are the
    /// people of the sync's pinned groups.
    Codeowners(CodeownersArgs),
    /// Infrastructure: the Pulumi program for every dataset's buckets, accounts and grants.
    #[command(subcommand)]
    Infra(InfraCommand),
    /// Run an in-process fake of a directory API on 127.0.0.1 (for tests and trials).
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// Move from the old system: import its cached and live groups into the definitions.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// The report data governance asks for: per dataset, every member and machine account with
    /// role, how they hold it, since when and in which commit and pull request, and expiry.
    Audit(AuditArgs),
    /// Write a synthetic organisation (for benchmarks and trials at scale) into a directory.
    Synthetic(SyntheticArgs),
    /// Periodic recertification of each dataset's members, as a pull request its data
    /// managers approve (`review_every` in groups/policy.toml or a dataset's dataset.toml).
    #[command(subcommand)]
    Review(ReviewCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Per dataset, a local branch `review/<dataset>` with one commit updating its review record
    /// (datasets/<name>/review.toml), and the pull request's body listing every member.
    Open(ReviewOpenArgs),
    /// The reviews more than `review_grace` days late; with --repo, opens, updates or closes
    /// the one issue that lists them.
    Overdue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct ReviewOpenArgs {
    /// This dataset's review, due or not.
    #[arg(long, conflicts_with = "due", required_unless_present = "due")]
    pub dataset: Option<String>,
    /// Every dataset whose review is due.
    #[arg(long)]
    pub due: bool,
    /// Write each pull request body to DIR/<dataset>.md (with DIR/branches.txt listing the
    /// branches) instead of printing the bodies.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Reports that keep one GitHub issue current.
#[derive(Debug, Args)]
pub struct IssueArgs {
    #[arg(long, value_enum, default_value_t = ExpandFormat::Text)]
    pub format: ExpandFormat,
    /// Open, update or close the issue(s) in this repository (OWNER/NAME), through the GitHub
    /// REST API at $GITHUB_API_URL with the token in $GH_TOKEN or $GITHUB_TOKEN.
    #[arg(long)]
    pub repo: Option<String>,
}

#[derive(Debug, Args)]
pub struct CodeownersArgs {
    /// Write nothing; exit 1 when the file is missing or out of date.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check the definitions against groups/policy.toml: every violation as path:line:col (exit 3).
    Check(PolicyCheckArgs),
    /// Who must approve the changes from BASE to HEAD: the data managers of every dataset whose
    /// data or groups a change reaches, the administrators for organisation-wide changes.
    ///
    /// Owners are read at BASE, so a change cannot name its own approvers. With `--reviews`,
    /// the pull request's reviews are checked against the list (exit 1 while any is missing).
    Approvals(ApprovalsArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// Read groups/policy.toml from this revision instead (e.g. a pull request's base), so a
    /// change cannot relax the rules it is checked against.
    #[arg(long)]
    pub policy_rev: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// The revision the change starts from; owners are read here.
    pub base: String,
    /// The revision with the change.
    pub head: String,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Check this pull request's reviews (GitHub REST API at $GITHUB_API_URL, token in
    /// $GH_TOKEN or $GITHUB_TOKEN): only approvals of HEAD count, never its author's.
    #[arg(long, requires = "repo")]
    pub reviews: Option<u64>,
    /// The repository of `--reviews`, as OWNER/NAME.
    #[arg(long)]
    pub repo: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Read the old members caches (Secret Manager) and live groups, and add the people and
    /// grants they give to people.toml and members.toml (edited in place), with a report of
    /// where the sources disagree.
    Import(ImportArgs),
    /// Before switching: everyone an old group gives access to whom the new hierarchy would
    /// not, with the grant that restores it (exit 1 when anyone would lose access).
    Plan(MigratePlanArgs),
}

#[derive(Debug, Args)]
pub struct MigratePlanArgs {
    /// The mapping from old group names to roles (the same file `migrate import` reads).
    #[arg(long = "from")]
    pub mapping: PathBuf,
    #[arg(long, value_enum, default_value_t = ProviderName::Local)]
    pub provider: ProviderName,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The mapping from old group and cache names to roles (TOML; see docs/USAGE.md).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Where the old live groups are.
    #[arg(long, value_enum, default_value_t = ProviderName::Local)]
    pub provider: ProviderName,
    /// Report only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Print every group with its direct members and nested groups.
    Expand {
        #[arg(long, value_enum, default_value_t = ExpandFormat::Text)]
        format: ExpandFormat,
    },
    /// Show every path that makes a person a member of a group.
    Why {
        /// Person key or email.
        person: String,
        /// Group name or email.
        group: String,
        /// The paths in force at a past time: a day (YYYY-MM-DD: the last commit on or before it,
        /// along first parents, judged on that day) or a revision.
        #[arg(long)]
        at: Option<String>,
    },
    /// Compare the groups of two revisions (default: HEAD against the working tree).
    Diff(DiffArgs),
    /// Every change of access over the Git history (granted, expiry moved, removed, expired),
    /// each with its date, commit, author, pull request and the reason written beside it.
    History(HistoryArgs),
    /// Plan (and with --confirm, apply) the changes that make a directory match the definitions;
    /// then the same for the members cache.
    Sync(SyncArgs),
    /// Plan (and with --confirm, write) the members cache (`<group>-members.txt`) alone.
    Cache {
        /// Write the files; without it nothing is changed.
        #[arg(long)]
        confirm: bool,
    },
    /// Give a person a role on a dataset (edits datasets/<dataset>/members.toml in place).
    Add(AddArgs),
    /// Take a role on a dataset away from a person (edits datasets/<dataset>/members.toml).
    Remove(RemoveArgs),
    /// List grants that end soon, with the commit that added each (git blame).
    Expiring(ExpiringArgs),
    /// Per dataset, the grants ending within --within, each with the command that renews it;
    /// with --repo, one issue per dataset, opened, updated, or closed when nothing is due.
    Remind(RemindArgs),
    /// Write the members a sync would remove because they were added by hand in a directory
    /// into the definitions as grants (for a pull request that keeps them), from the plan of
    /// `groups sync --format json`.
    CodifyDrift(CodifyArgs),
    /// Who made each change a sync found made by hand, from the directory's own audit log
    /// (Google's Reports API, Microsoft Graph's directory audits), for the plan of
    /// `groups sync --format json`.
    DriftReport(DriftReportArgs),
}

#[derive(Debug, Args)]
pub struct DriftReportArgs {
    /// The plan: `groups sync --provider P --format json > plan.json` (the nightly job keeps
    /// one per provider as drift-<provider>.json).
    #[arg(long)]
    pub plan: PathBuf,
    /// The directory the plan is for, whose audit log is read: google or azure.
    #[arg(long, value_enum)]
    pub provider: ProviderName,
    /// How far back to look in the audit log from --today: days (`7d`) or weeks (`2w`).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub within: String,
    /// The plan has been applied (the report says what the sync did, not what it would do).
    #[arg(long)]
    pub applied: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
}

#[derive(Debug, Args)]
pub struct CodifyArgs {
    /// The plan: `groups sync --provider P --format json > plan.json` (the nightly job keeps
    /// one per provider as drift-<provider>.json).
    #[arg(long)]
    pub plan: PathBuf,
    /// Show the edits as a diff and the access they change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RemindArgs {
    /// How far ahead to look from --today: days (`14d`) or weeks (`2w`).
    #[arg(long, default_value = "14d", value_name = "DURATION")]
    pub within: String,
    #[command(flatten)]
    pub issues: IssueArgs,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// One dataset only.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long, value_enum, default_value_t = AuditFormat::Csv)]
    pub format: AuditFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Csv,
    Markdown,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Person key or email: the access they gained and lost, directly or through groups.
    #[arg(conflicts_with_all = ["group", "dataset"], required_unless_present_any = ["group", "dataset"])]
    pub person: Option<String>,
    /// A group: every change of its direct members.
    #[arg(long)]
    pub group: Option<String>,
    /// A dataset: every change of its groups' direct members.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only changes on or after this day (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value_t = ExpandFormat::Text)]
    pub format: ExpandFormat,
}

#[derive(Debug, Args)]
pub struct ExpiringArgs {
    /// How far ahead to look from --today: days (`14d`) or weeks (`2w`).
    #[arg(long, default_value = "14d", value_name = "DURATION")]
    pub within: String,
    #[arg(long, value_enum, default_value_t = ExpandFormat::Text)]
    pub format: ExpandFormat,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Person key or email (a new key with --email), `group:<name>`, or a machine account's email.
    pub person: String,
    /// The dataset, e.g. tob-wgs.
    #[arg(long)]
    pub dataset: String,
    /// The role, e.g. analysis.
    #[arg(long)]
    pub role: String,
    /// The last day of access (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub expires: Option<String>,
    /// Why access is granted, written as a comment above the entry.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The email of a person not yet in groups/people.toml: adds them there too.
    #[arg(long, value_name = "EMAIL")]
    pub email: Option<String>,
    /// Write the grant even when it breaks a rule of groups/policy.toml (printed as a warning);
    /// without it such a grant is refused and nothing is written.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Person key or email, `group:<name>`, or a machine account's email.
    pub person: String,
    #[arg(long)]
    pub dataset: String,
    #[arg(long)]
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpandFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Base revision (default HEAD).
    pub base: Option<String>,
    /// Head revision (default: the working tree).
    pub head: Option<String>,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Exit with 1 when there are differences, like `git diff --exit-code`.
    #[arg(long)]
    pub exit_code: bool,
    /// Also say what each access change means on cloud resources, per person (from the
    /// access matrix of `infra access`).
    #[arg(long)]
    pub resources: bool,
    /// A diff of the same revisions in JSON made by another build of the tool (a pull
    /// request's own): where the two disagree, say so first, with every access only one of
    /// them shows.
    #[arg(long)]
    pub compare_with: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderName {
    /// The JSON-file directory under --root.
    Local,
    /// Google Cloud Identity ([providers.google] in groups/org.toml).
    Google,
    /// Hail Batch billing projects ([providers.hail]).
    Hail,
    /// Metamist projects and their `-test` projects ([providers.metamist]).
    Metamist,
    /// Every enabled provider in turn: the directories (google, azure), then the applications
    /// whose members follow them (hail, metamist); each reports on its own, the worst exit wins.
    All,
    /// Azure AD / Entra ID through Microsoft Graph ([providers.azure] in groups/org.toml).
    Azure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Which directory to sync.
    #[arg(long, value_enum, default_value_t = ProviderName::Local)]
    pub provider: ProviderName,
    /// Apply the plan; without it nothing is changed.
    #[arg(long)]
    pub confirm: bool,
    /// Apply even when the plan removes more members than the safety limits allow.
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// Delete managed groups that are no longer defined.
    #[arg(long)]
    pub delete_groups: bool,
    /// Take over defined groups that exist without the cpg-infra marker (default: report them
    /// as conflicts and leave them alone).
    #[arg(long)]
    pub adopt: bool,
    /// The state file: the local directory's (default: sync.state_file under --root), what
    /// Azure's change feed last saw (default: .cpg-infra/azure-delta.json under --root), or the
    /// Metamist lists last written (default: [providers.metamist] state under --root).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Azure: read every group and member again instead of only what changed since the last run.
    /// Google and local: ignore --changed-since.
    #[arg(long)]
    pub full_read: bool,
    /// Google and local: read and plan only the groups whose definitions changed since REV
    /// (without REV: the revision the last complete sync recorded in
    /// .cpg-infra/<provider>-synced.json). A revision that is unknown or not an ancestor of the
    /// definitions' revision reads everything.
    #[arg(long, value_name = "REV", num_args = 0..=1, default_missing_value = "")]
    pub changed_since: Option<String>,
    /// Print every change of a large plan: above 1,000 changes the text plan sums them up per
    /// group (JSON always has every change).
    #[arg(long)]
    pub verbose: bool,
    /// Metamist: write every project's member list, not only those that changed since the last
    /// write (Metamist cannot be read back, so this is what repairs changes made by hand).
    #[arg(long)]
    pub full_write: bool,
    /// Requests in flight at once (default: the provider's `concurrency` setting, else 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Leave the members cache alone.
    #[arg(long)]
    pub no_cache: bool,
    /// End the transition: stop nesting the old groups of `[migration] transition` into their
    /// new groups (their nestings are removed like any other member).
    #[arg(long)]
    pub retire_old_groups: bool,
}

#[derive(Debug, Args)]
pub struct SyntheticArgs {
    /// Where to write groups/ and datasets/.
    pub out: PathBuf,
    /// How many datasets (each with its roles, members and machine accounts; people scale with them).
    #[arg(long, default_value_t = 500)]
    pub datasets: usize,
    /// Vary memberships with this seed (different seeds give a small diff).
    #[arg(long, default_value_t = 0)]
    pub variant: u64,
}

#[derive(Debug, Subcommand)]
pub enum InfraCommand {
    /// Print every resource per dataset and cloud (the dry run).
    Plan(InfraPlanArgs),
    /// Write the Pulumi YAML program(s).
    Render(InfraRenderArgs),
    /// Print who is granted what on each dataset's buckets, registries, secrets and project.
    Access {
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
    },
    /// Render, then run `pulumi preview` on every project: what `up` would change.
    Preview(InfraPreviewArgs),
    /// Render, then run `pulumi up --yes` on every project (with --confirm; without it, a preview).
    Up(InfraUpArgs),
}

#[derive(Debug, Args)]
pub struct InfraPreviewArgs {
    /// Directory to render the Pulumi project(s) into (default: .cpg-infra/pulumi, or
    /// .cpg-infra/pulumi-per-dataset, under --root).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// One project per dataset plus an organisation project, run organisation first.
    #[arg(long)]
    pub per_dataset: bool,
    /// The Pulumi stack to use in every project (default: the one selected in each).
    #[arg(long)]
    pub stack: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfraUpArgs {
    #[command(flatten)]
    pub project: InfraPreviewArgs,
    /// Apply the changes; without it `up` only previews them.
    #[arg(long)]
    pub confirm: bool,
}

#[derive(Debug, Args)]
pub struct InfraPlanArgs {
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct InfraRenderArgs {
    /// Directory to write the Pulumi project(s) into.
    #[arg(long)]
    pub out: PathBuf,
    /// One project per dataset plus an organisation project, linked by stack references.
    #[arg(long)]
    pub per_dataset: bool,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// A fake Cloud Identity v1 API, with the Groups Settings API beside it.
    Google {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// The customer id groups are listed under.
        #[arg(long, default_value = "C03example")]
        customer: String,
        /// A Workspace Enterprise / Cloud Identity Premium customer: memberships may expire.
        #[arg(long)]
        premium: bool,
        #[command(flatten)]
        faults: EmulatorFaultArgs,
    },
    /// A fake Hail Batch billing-projects API.
    Hail {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8091)]
        port: u16,
        /// The bearer token every request must carry.
        #[arg(long, default_value = "hail-token")]
        token: String,
    },
    /// A fake Metamist project API (projects and their member lists).
    Metamist {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8092)]
        port: u16,
        /// The bearer token every request must carry.
        #[arg(long, default_value = "metamist-token")]
        token: String,
    },
    /// A fake Microsoft Graph v1.0 (users, service principals, groups, members, $batch).
    Azure {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8090)]
        port: u16,
        /// A user to create, by user principal name (also its mail; repeatable).
        #[arg(long = "user", value_name = "UPN")]
        users: Vec<String>,
        /// A managed identity's service principal to create, by the identity's ARM id (an
        /// alternative name; its display name is the id's last segment; repeatable).
        #[arg(long = "identity", value_name = "ARM_ID")]
        identities: Vec<String>,
        #[command(flatten)]
        faults: EmulatorFaultArgs,
    },
}

/// Faults the emulators reproduce, to try a sync against a directory that misbehaves.
#[derive(Debug, Clone, Default, Args)]
pub struct EmulatorFaultArgs {
    /// A group created through the API is missing from this many following groups.list requests.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub group_listing_lag: u32,
    /// A group created through the API answers 404 to this many following direct reads.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub group_read_lag: u32,
    /// A membership created through the API is missing from this many following listings of its group.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub membership_listing_lag: u32,
    /// Azure: a group created through the API is missing from this many following change-feed rounds.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub delta_lag: u32,
    /// Refuse to create this group (Azure: its mailNickname; repeatable).
    #[arg(long = "reject-group", value_name = "EMAIL")]
    pub reject_groups: Vec<String>,
    /// Refuse to add this member to any group (repeatable).
    #[arg(long = "reject-member", value_name = "EMAIL")]
    pub reject_members: Vec<String>,
}
