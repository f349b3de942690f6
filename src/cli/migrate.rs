//! `migrate import`: the old system's caches and live groups into the definitions.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::args::{DiffFormat, GlobalArgs, ImportArgs, MigratePlanArgs, ProviderName};
use super::output::{emit, emit_line};
use super::resolve::{self, Revision};
use super::{Exit, InputError};
use crate::directory::{AzureDirectory, Directory, DirectoryError, GoogleDirectory, LocalDirectory};
use crate::migrate::{self, Mapping, Observed, OldGroup, RoleSources};
use crate::sync::{with_retries, RetryPolicy};

/// Reads the sources the mapping names, plans the import, prints it, and (unless a dry run)
/// writes it; the edited definitions must validate, or every file is put back.
pub fn import(global: &GlobalArgs, args: &ImportArgs) -> Result<Exit> {
    let OldSide { expanded, mapping, directory, live: live_emails } = old_side(global, &args.mapping, args.provider)?;
    let definitions = &expanded.definitions;
    let retry = RetryPolicy::default();
    let reader = if mapping.caches.is_empty() { None } else { Some(resolve::secret_reader()?) };

    let mut sources: Vec<RoleSources> = Vec::new();
    let mut mapped = BTreeSet::new();
    for dataset in definitions.datasets.values() {
        let roles: BTreeSet<&str> =
            mapping.groups.iter().chain(&mapping.caches).map(|(_, role)| role.as_str()).collect();
        for role in roles.into_iter().filter(|role| definitions.dataset_has_role(dataset, role)) {
            let mut source = RoleSources {
                dataset: dataset.name.clone(),
                role: role.to_owned(),
                cache_name: None,
                group_name: None,
                observed: Observed::default(),
            };
            for (pattern, _) in mapping.groups.iter().filter(|(_, r)| r == role) {
                let email = definitions.group_email(&Mapping::name(pattern, &dataset.name));
                mapped.insert(email.clone());
                source.group_name = Some(email.clone());
                if live_emails.contains(&email) {
                    let (members, _) = with_retries(&retry, || directory.list_members(&email));
                    let members = members.map_err(read_error)?;
                    let emails = members.into_iter().map(|m| m.email);
                    source.observed.live.get_or_insert_with(BTreeSet::new).extend(emails);
                }
            }
            if let Some(reader) = &reader {
                for (pattern, _) in mapping.caches.iter().filter(|(_, r)| r == role) {
                    let secret = Mapping::name(pattern, &dataset.name);
                    let project =
                        mapping.secrets_project.clone().or_else(|| dataset.gcp.as_ref().map(|g| g.project.clone()));
                    source.cache_name = Some(secret.clone());
                    let Some(project) = project else { continue };
                    let (emails, _) = with_retries(&retry, || reader.read_emails(&project, &secret));
                    if let Some(emails) = emails.map_err(read_error)? {
                        source.observed.cache.get_or_insert_with(BTreeSet::new).extend(emails);
                    }
                }
            }
            sources.push(source);
        }
    }
    let unmapped: Vec<String> = live_emails.difference(&mapped).cloned().collect();
    let plan = migrate::plan_import(definitions, &expanded.hierarchy, &sources, &unmapped);
    emit(&match args.format {
        DiffFormat::Text => migrate::render_text(&plan),
        DiffFormat::Markdown => migrate::render_markdown(&plan),
        DiffFormat::Json => migrate::render_json(&plan),
    });
    if args.dry_run || plan.is_empty() {
        return Ok(Exit::Success);
    }
    write_checked(global, &plan)?;
    Ok(Exit::Success)
}

/// `migrate plan`: who would lose access when the old groups give way to the new hierarchy.
pub fn plan(global: &GlobalArgs, args: &MigratePlanArgs) -> Result<Exit> {
    let OldSide { expanded, mapping, directory, live } = old_side(global, &args.mapping, args.provider)?;
    let definitions = &expanded.definitions;
    let retry = RetryPolicy::default();
    let mut old_groups = Vec::new();
    for dataset in definitions.datasets.values() {
        for (pattern, role) in mapping.groups.iter().filter(|(_, role)| definitions.dataset_has_role(dataset, role)) {
            let email = definitions.group_email(&Mapping::name(pattern, &dataset.name));
            if !live.contains(&email) {
                continue;
            }
            let (members, _) = with_retries(&retry, || directory.list_members(&email));
            let members = members.map_err(read_error)?.into_iter().map(|m| m.email).collect();
            old_groups.push(OldGroup { email, dataset: dataset.name.clone(), role: role.clone(), members });
        }
    }
    let gaps = migrate::access_gaps(definitions, &expanded.hierarchy, &old_groups);
    emit(&match args.format {
        DiffFormat::Text => migrate::render_gaps_text(&gaps, old_groups.len()),
        DiffFormat::Markdown => migrate::render_gaps_markdown(&gaps, old_groups.len()),
        DiffFormat::Json => migrate::render_gaps_json(&gaps),
    });
    Ok(if gaps.is_empty() { Exit::Success } else { Exit::Failure })
}

/// The definitions, the checked mapping, the directory holding the old groups, and the emails
/// of the groups there that are not cpg-infra's.
struct OldSide {
    expanded: crate::load::Expanded,
    mapping: Mapping,
    directory: Box<dyn Directory>,
    live: BTreeSet<String>,
}

fn old_side(global: &GlobalArgs, mapping_path: &std::path::Path, provider: ProviderName) -> Result<OldSide> {
    let expanded = resolve::load_groups(global, &Revision::WorkingTree)?;
    let label = mapping_path.display().to_string();
    let text = std::fs::read_to_string(mapping_path)
        .map_err(|e| InputError(format!("cannot read the mapping {label}: {e}")))?;
    let mapping = migrate::load_mapping(&label, &text, &expanded.definitions).map_err(|d| anyhow!(d))?;
    let directory = old_directory(global, provider, &expanded.definitions)?;
    let (groups, _) = with_retries(&RetryPolicy::default(), || directory.list_groups());
    let live = groups.map_err(read_error)?.into_iter().filter(|g| !g.owned).map(|g| g.email).collect();
    Ok(OldSide { expanded, mapping, directory, live })
}

/// The transition: each mapped old group that exists (and is not ours) becomes a member of its
/// new group, so nobody loses access while people move. Returns the hierarchy and how many.
pub fn nest_old_groups(
    global: &GlobalArgs,
    expanded: &crate::load::Expanded,
    mapping_path: &str,
    live: &crate::sync::LiveState,
    mut desired: crate::hierarchy::Hierarchy,
) -> Result<(crate::hierarchy::Hierarchy, usize)> {
    let definitions = &expanded.definitions;
    let path = global.root.join(mapping_path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| InputError(format!("cannot read the transition mapping {}: {e}", path.display())))?;
    let mapping = migrate::load_mapping(mapping_path, &text, definitions).map_err(|d| anyhow!(d))?;
    let mut nested = 0;
    for dataset in definitions.datasets.values() {
        for (pattern, role) in mapping.groups.iter().filter(|(_, role)| definitions.dataset_has_role(dataset, role)) {
            let old = definitions.group_email(&Mapping::name(pattern, &dataset.name));
            let exists_unowned = live.groups.get(&old).is_some_and(|g| !g.group.owned);
            let new_name = definitions.dataset_group_name(&dataset.name, role);
            if let (true, Some(group)) = (exists_unowned, desired.groups.get_mut(&new_name)) {
                nested += usize::from(group.external_groups.insert(old));
            }
        }
    }
    Ok((desired, nested))
}

/// Writes the plan; if the edited definitions do not validate, restores every file.
fn write_checked(global: &GlobalArgs, plan: &migrate::ImportPlan) -> Result<()> {
    let mut touched: Vec<PathBuf> = vec![global.root.join("groups/people.toml")];
    touched.extend(plan.grants.iter().map(|g| global.root.join(format!("datasets/{}/members.toml", g.dataset))));
    let before: Vec<(PathBuf, Option<Vec<u8>>)> = touched
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).ok();
            (p, b)
        })
        .collect();
    let written = migrate::write_plan(&global.root, plan).map_err(|e| anyhow!(e))?;
    if let Err(error) = resolve::load_groups(global, &Revision::WorkingTree) {
        for (path, bytes) in before {
            match bytes {
                Some(bytes) => std::fs::write(&path, bytes)?,
                None => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        return Err(error.context("the imported definitions do not validate; nothing was written"));
    }
    for path in written {
        emit_line(&format!("wrote {}", path.display()));
    }
    Ok(())
}

pub(super) fn old_directory(
    global: &GlobalArgs,
    provider: ProviderName,
    definitions: &crate::definitions::Definitions,
) -> Result<Box<dyn Directory>> {
    Ok(match provider {
        ProviderName::Local => {
            let path = resolve::local_state_path(global, None, &definitions.organisation.sync.state_file);
            Box::new(LocalDirectory::open_read_only(&path)?)
        }
        ProviderName::Google => {
            let (config, _) = resolve::google_config(definitions)?;
            Box::new(GoogleDirectory::connect(&config).map_err(|e| InputError(e.to_string()))?)
        }
        ProviderName::Azure => {
            let (config, _) = resolve::azure_config(definitions)?;
            Box::new(AzureDirectory::connect(&config).map_err(|e| InputError(e.to_string()))?)
        }
        ProviderName::Hail | ProviderName::Metamist | ProviderName::All => {
            return Err(InputError(
                "the old groups live in a group directory (local, google or azure), not in Hail Batch or Metamist"
                    .into(),
            )
            .into())
        }
    })
}

fn read_error(error: DirectoryError) -> anyhow::Error {
    match error {
        DirectoryError::Rejected(message) => InputError(message).into(),
        other => other.into(),
    }
}
