//! `infra plan`, `infra render`, `infra preview` and `infra up`: the definitions'
//! infrastructure as a plan to read, as Pulumi YAML projects, or deployed by the `pulumi` CLI.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::args::{DiffFormat, GlobalArgs, InfraCommand, InfraPlanArgs, InfraPreviewArgs, PlanFormat};
use super::output::{emit, emit_line};
use super::pulumi::PulumiRun;
use super::resolve;
use super::{Exit, InputError};
use crate::infra::{self, Build};
use crate::load::Expanded;
use crate::shell;

/// Runs one `infra` subcommand.
pub fn run(global: &GlobalArgs, command: &InfraCommand) -> Result<Exit> {
    let revision = resolve::default_revision(global);
    let expanded = resolve::load_groups(global, &revision)?;
    let build = resolve::build_infra(global, &revision, &expanded)?;
    match command {
        InfraCommand::Access { format } => access(&expanded, *format),
        InfraCommand::Plan(args) => plan(&build, args),
        InfraCommand::Render(args) => {
            render(&expanded, build, &args.out, args.per_dataset)?;
            Ok(Exit::Success)
        }
        InfraCommand::Preview(args) => deploy(global, &expanded, build, args, Deploy::Preview),
        InfraCommand::Up(args) => {
            let deploy_as = if args.confirm { Deploy::Up } else { Deploy::UpWithoutConfirm };
            deploy(global, &expanded, build, &args.project, deploy_as)
        }
    }
}

/// `infra access`: the access matrix of the design.
fn access(expanded: &Expanded, format: DiffFormat) -> Result<Exit> {
    let matrix = infra::access_matrix(&expanded.definitions);
    let output = match format {
        DiffFormat::Text => matrix.render_text(),
        DiffFormat::Markdown => matrix.render_markdown(),
        DiffFormat::Json => matrix.render_json(),
    };
    emit(&output);
    Ok(Exit::Success)
}

/// `infra plan`: the dry run; nothing is written.
fn plan(build: &Build, args: &InfraPlanArgs) -> Result<Exit> {
    let output = match args.format {
        PlanFormat::Text => infra::render_plan_text(&build.program, &build.notes),
        PlanFormat::Json => infra::render_plan_json(&build.program, &build.notes),
    };
    emit(&output);
    Ok(Exit::Success)
}

/// `infra render`: writes `Pulumi.yaml`, or one project per dataset plus the organisation's.
/// Returns the project directories in the order they deploy.
fn render(expanded: &Expanded, build: Build, out: &Path, per_dataset: bool) -> Result<Vec<PathBuf>> {
    let organisation = &expanded.definitions.organisation.name;
    let projects = if per_dataset {
        infra::per_owner(&build.program, organisation)
    } else {
        vec![infra::single(build.program, organisation)]
    };
    let written = infra::write_projects(out, &projects).map_err(|error| match error {
        infra::WriteError::OtherLayout { .. } => anyhow::Error::new(InputError(error.to_string())),
        other => anyhow::Error::new(other),
    })?;
    for (path, resources) in &written.files {
        emit_line(&format!("wrote {} ({resources} resources)", path.display()));
    }
    for note in &build.notes {
        emit_line(&format!("note: {note}"));
    }
    for path in &written.stale {
        eprintln!(
            "warning: {} is no longer produced; destroy its stack with `pulumi destroy`, then delete it",
            path.display()
        );
    }
    Ok(written.files.iter().filter_map(|(path, _)| path.parent().map(Path::to_path_buf)).collect())
}

/// What `deploy` was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deploy {
    Preview,
    /// `infra up` without `--confirm`: a preview that says how to apply it.
    UpWithoutConfirm,
    Up,
}

/// `infra preview` and `infra up`: renders, then runs pulumi in every project, organisation
/// first: `pulumi up --yes` only for a confirmed `up`, `pulumi preview` otherwise.
fn deploy(
    global: &GlobalArgs,
    expanded: &Expanded,
    build: Build,
    args: &InfraPreviewArgs,
    deploy_as: Deploy,
) -> Result<Exit> {
    // Before writing anything: without pulumi there is nothing to render for.
    let program = resolve::pulumi_program()?;
    let layout = if args.per_dataset { "pulumi-per-dataset" } else { "pulumi" };
    let out = args.out.clone().unwrap_or_else(|| global.root.join(".cpg-infra").join(layout));
    let dirs = render(expanded, build, &out, args.per_dataset)?;
    let mut pulumi_args: Vec<String> = match deploy_as {
        Deploy::Up => vec!["up".into(), "--yes".into()],
        Deploy::Preview | Deploy::UpWithoutConfirm => vec!["preview".into()],
    };
    if let Some(stack) = &args.stack {
        pulumi_args.extend(["--stack".to_owned(), stack.clone()]);
    }
    let exit = PulumiRun { program: &program, args: pulumi_args }.run_in(&dirs)?;
    if deploy_as == Deploy::UpWithoutConfirm && exit == Exit::Success {
        let confirm = confirm_command(global, args);
        emit_line(&format!("previewed only (no --confirm): nothing was changed; `{confirm}` applies it"));
    }
    Ok(exit)
}

/// `cpg-infra infra up --confirm` with every option this run was given, so that it applies
/// what was previewed: the same definitions, projects and stack.
fn confirm_command(global: &GlobalArgs, args: &InfraPreviewArgs) -> String {
    let mut words: Vec<String> = vec!["cpg-infra".into()];
    if global.root != Path::new(".") {
        words.extend(["--root".into(), shell::word(&global.root.to_string_lossy())]);
    }
    for (option, value) in [("--rev", &global.rev), ("--today", &global.today)] {
        if let Some(value) = value {
            words.extend([option.into(), shell::word(value)]);
        }
    }
    words.extend(["infra".into(), "up".into(), "--confirm".into()]);
    if args.per_dataset {
        words.push("--per-dataset".into());
    }
    if let Some(stack) = &args.stack {
        words.extend(["--stack".into(), shell::word(stack)]);
    }
    if let Some(out) = &args.out {
        words.extend(["--out".into(), shell::word(&out.to_string_lossy())]);
    }
    words.join(" ")
}
