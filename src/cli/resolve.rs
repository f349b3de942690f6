//! Everything that depends on the environment: the clock, env vars, Git repositories, and
//! turning `--root` / `--rev` into loaded definitions. The only module that reads env.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::args::GlobalArgs;
use super::InputError;
use crate::definitions::{Date, Definitions, DirSource, GitSource, ParseCache, ProviderSettings, Source};
use crate::directory::{GoogleAuth, GoogleConfig};
use crate::hierarchy::Hierarchy;
use crate::load::{load_expanded, load_expanded_with_cache, Expanded};

/// The date expiry is judged against: `--today`, then `$CPG_INFRA_TODAY`, then the clock.
pub fn today(global: &GlobalArgs) -> Result<Date> {
    let text = global.today.clone().or_else(|| std::env::var("CPG_INFRA_TODAY").ok());
    if let Some(text) = text {
        return text.parse::<Date>().map_err(|e| InputError(e).into());
    }
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(Date::from_days_since_epoch((since_epoch.as_secs() / 86_400) as i64))
}

/// Where definitions are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    WorkingTree,
    Git(String),
}

/// Loads and expands the definitions under `--root`, at `revision`.
pub fn load(global: &GlobalArgs, revision: &Revision) -> Result<Expanded> {
    load_sharing(global, revision, None)
}

/// `load`, taking parsed files from `cache` when given (loads of revisions that share files).
fn load_sharing(global: &GlobalArgs, revision: &Revision, cache: Option<&ParseCache>) -> Result<Expanded> {
    let today = today(global)?;
    let load_from = |source: &dyn Source| match cache {
        Some(cache) => load_expanded_with_cache(source, today, cache),
        None => load_expanded(source, today),
    };
    let loaded = match revision {
        Revision::WorkingTree => {
            if !global.root.is_dir() {
                return Err(InputError(format!("{} is not a directory", global.root.display())).into());
            }
            load_from(&DirSource::new(&global.root))
        }
        Revision::Git(rev) => {
            let (repo, prefix) = open_repository(&global.root)?;
            let source = GitSource::new(&repo, rev, &prefix).map_err(|e| InputError(e.to_string()))?;
            load_from(&source)
        }
    };
    loaded.map_err(|e| match e {
        crate::definitions::LoadError::Invalid(diagnostics) => anyhow!(diagnostics),
        other => anyhow!(other),
    })
}

/// The hierarchy at `revision` for a diff. A revision from before the definitions existed
/// (no `groups/` and no `datasets/`) has no groups, so the first pull request that adds them
/// diffs against nothing instead of failing. Both sides of a diff share `cache`.
pub fn load_hierarchy_for_diff(global: &GlobalArgs, revision: &Revision, cache: &ParseCache) -> Result<Hierarchy> {
    if let Revision::Git(rev) = revision {
        let (repo, prefix) = open_repository(&global.root)?;
        let source = GitSource::new(&repo, rev, &prefix).map_err(|e| InputError(e.to_string()))?;
        if source.list("groups")?.is_empty() && source.list("datasets")?.is_empty() {
            return Ok(Hierarchy::default());
        }
    }
    Ok(load_sharing(global, revision, Some(cache))?.hierarchy)
}

/// The revision `--rev` names, or the working tree.
pub fn default_revision(global: &GlobalArgs) -> Revision {
    global.rev.clone().map_or(Revision::WorkingTree, Revision::Git)
}

/// Finds the repository containing `root` and the path of `root` inside it.
fn open_repository(root: &Path) -> Result<(git2::Repository, String)> {
    let repo = git2::Repository::discover(root)
        .map_err(|e| InputError(format!("{} is not in a Git repository: {}", root.display(), e.message())))?;
    let prefix = match repo.workdir() {
        None => String::new(),
        Some(workdir) => {
            let workdir = workdir.canonicalize().context("resolving the repository's working tree")?;
            let root: PathBuf = root.canonicalize().with_context(|| format!("resolving {}", root.display()))?;
            let relative = root.strip_prefix(&workdir).unwrap_or(Path::new(""));
            relative.to_string_lossy().replace('\\', "/")
        }
    };
    Ok((repo, prefix))
}

/// The state file of the local directory: `--state`, or `sync.state_file` under `--root`.
pub fn local_state_path(global: &GlobalArgs, explicit: Option<&Path>, configured: &str) -> PathBuf {
    explicit.map_or_else(|| global.root.join(configured), Path::to_path_buf)
}

/// The Google provider's settings: `[providers.google]` in groups/org.toml, overridden by
/// `CPG_INFRA_GOOGLE_CUSTOMER_ID` and `CPG_INFRA_GOOGLE_ENDPOINT`. Credentials: a token in
/// `CPG_INFRA_GOOGLE_ACCESS_TOKEN` (e.g. `gcloud auth print-access-token`), else the file in
/// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's application-default credentials file.
pub fn google_config(definitions: &Definitions) -> Result<(GoogleConfig, ProviderSettings)> {
    let organisation = &definitions.organisation;
    let Some(settings) = organisation.google.clone().filter(|s| s.enabled) else {
        return Err(InputError(
            "the google provider is not enabled: set [providers.google] enabled = true in groups/org.toml".into(),
        )
        .into());
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let customer_id = env("CPG_INFRA_GOOGLE_CUSTOMER_ID").or(settings.customer_id.clone()).ok_or_else(|| {
        InputError("no Google customer id: set [providers.google] customer_id or CPG_INFRA_GOOGLE_CUSTOMER_ID".into())
    })?;
    let endpoint = env("CPG_INFRA_GOOGLE_ENDPOINT").or(settings.endpoint.clone());
    let gcloud_default = env("HOME")
        .map(|home| PathBuf::from(home).join(".config/gcloud/application_default_credentials.json"))
        .filter(|path| path.is_file());
    let auth = if let Some(token) = env("CPG_INFRA_GOOGLE_ACCESS_TOKEN") {
        GoogleAuth::AccessToken(token)
    } else if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from).or(gcloud_default) {
        GoogleAuth::CredentialsFile(path)
    } else {
        return Err(InputError(
            "no Google credentials: set CPG_INFRA_GOOGLE_ACCESS_TOKEN (e.g. to `gcloud auth print-access-token`) or GOOGLE_APPLICATION_CREDENTIALS"
                .into(),
        )
        .into());
    };
    let config = GoogleConfig {
        customer_id,
        groups_domain: organisation.groups_domain.clone(),
        endpoint,
        auth,
        security_groups: settings.security_groups,
    };
    Ok((config, settings))
}
