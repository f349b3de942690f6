//! `codeowners`: writes (or with `--check`, compares) `.github/CODEOWNERS`.

use anyhow::{Context, Result};

use super::args::{CodeownersArgs, GlobalArgs};
use super::policy::load_policy;
use super::resolve::{self, Revision};
use super::{Exit, InputError};
use crate::codeowners::{render, CodeownersInput, CODEOWNERS_FILE};
use crate::load::Expanded;

/// Writes the file, or with `--check` exits 1 when the one on disk differs.
pub fn run(global: &GlobalArgs, args: &CodeownersArgs) -> Result<Exit> {
    if let (Some(rev), false) = (&global.rev, args.check) {
        return Err(InputError(format!("--rev {rev}: codeowners writes the working tree; use --check")).into());
    }
    let revision = resolve::default_revision(global);
    let expanded = resolve::load(global, &revision)?;
    let expected = generate(global, &revision, &expanded)?;
    let committed = resolve::read_codeowners(global, &revision)?;
    if args.check {
        return Ok(match committed {
            Some(text) if text == expected => {
                super::output::emit_line(&format!("ok: {CODEOWNERS_FILE} is up to date"));
                Exit::Success
            }
            Some(_) => {
                eprintln!("{CODEOWNERS_FILE} is out of date; run `cpg-infra codeowners` and commit it");
                Exit::Failure
            }
            None => {
                eprintln!("{CODEOWNERS_FILE} is missing; run `cpg-infra codeowners` and commit it");
                Exit::Failure
            }
        });
    }
    let file = resolve::codeowners_place(global)?.file;
    if committed.as_deref() == Some(expected.as_str()) {
        eprintln!("{} is up to date", file.display());
        return Ok(Exit::Success);
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    crate::write_safely::write_file(&file, expected.as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    eprintln!("wrote {}", file.display());
    Ok(Exit::Success)
}

/// The CODEOWNERS text the definitions at `revision` give (data managers as the policy names
/// their role).
pub fn generate(global: &GlobalArgs, revision: &Revision, expanded: &Expanded) -> Result<String> {
    let policy = load_policy(global, revision, expanded)?;
    let role = policy.as_ref().map_or("data-manager", |p| p.data_manager_role.as_str());
    let prefix = resolve::codeowners_place(global)?.prefix;
    Ok(render(&CodeownersInput {
        definitions: &expanded.definitions,
        hierarchy: &expanded.hierarchy,
        data_manager_role: role,
        prefix: &prefix,
    }))
}
