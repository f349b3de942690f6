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
    /// Infrastructure: the Pulumi program for every dataset's buckets, accounts and grants.
    #[command(subcommand)]
    Infra(InfraCommand),
    /// Run an in-process fake of a directory API on 127.0.0.1 (for tests and trials).
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// Write a synthetic organisation (for benchmarks) into a directory.
    #[command(hide = true)]
    Synthetic(SyntheticArgs),
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
    },
    /// Compare the groups of two revisions (default: HEAD against the working tree).
    Diff(DiffArgs),
    /// Plan (and with --confirm, apply) the changes that make a directory match the definitions.
    Sync(SyncArgs),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderName {
    /// The JSON-file directory under --root.
    Local,
    /// Google Cloud Identity ([providers.google] in groups/org.toml).
    Google,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
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
    /// The local directory's state file (default: sync.state_file under --root).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Requests in flight at once (default: the provider's `concurrency` setting, else 8).
    #[arg(long)]
    pub concurrency: Option<usize>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Args)]
pub struct SyntheticArgs {
    /// Where to write groups/ and datasets/.
    pub out: PathBuf,
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
    /// A fake Cloud Identity v1 API.
    Google {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// The customer id groups are listed under.
        #[arg(long, default_value = "C03example")]
        customer: String,
    },
}
