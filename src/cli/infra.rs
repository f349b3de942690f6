//! `infra plan` and `infra render`: the definitions' infrastructure as a plan to read or as
//! Pulumi YAML projects to deploy.

use anyhow::Result;

use super::args::{DiffFormat, GlobalArgs, InfraCommand, InfraPlanArgs, InfraRenderArgs, PlanFormat};
use super::output::{emit, emit_line};
use super::resolve;
use super::{Exit, InputError};
use crate::infra::{self, Build};
use crate::load::Expanded;

/// Runs one `infra` subcommand.
pub fn run(global: &GlobalArgs, command: &InfraCommand) -> Result<Exit> {
    let expanded = resolve::load_groups(global, &resolve::default_revision(global))?;
    let build = resolve::build_infra(&expanded)?;
    match command {
        InfraCommand::Access { format } => access(&expanded, *format),
        InfraCommand::Plan(args) => plan(&build, args),
        InfraCommand::Render(args) => render(&expanded, build, args),
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
fn render(expanded: &Expanded, build: Build, args: &InfraRenderArgs) -> Result<Exit> {
    let organisation = &expanded.definitions.organisation.name;
    let projects = if args.per_dataset {
        infra::per_owner(&build.program, organisation)
    } else {
        vec![infra::single(build.program, organisation)]
    };
    let written = infra::write_projects(&args.out, &projects).map_err(|error| match error {
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
    Ok(Exit::Success)
}
