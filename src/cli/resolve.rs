//! Everything that depends on the environment: the clock, env vars, Git repositories, and
//! turning `--root` / `--rev` into loaded definitions. The only module that reads env.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::args::GlobalArgs;
use super::InputError;
use crate::cache::{AzureBlobStore, CacheStore, GcsStore, LocalStore};
use crate::codeowners::CODEOWNERS_FILE;
use crate::definitions::{
    CacheDestination, Date, Definitions, Diagnostics, DirSource, GitSource, OverlaySource, ParseCache,
    ProviderSettings, Source,
};
use crate::directory::{AzureAuth, AzureConfig, GoogleAuth, GoogleConfig};
use crate::infra;
use crate::load::{load_expanded, load_expanded_with_cache, Expanded};
use crate::migrate::SecretReader;

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

/// Loads and expands the definitions under `--root`, at `revision`, and runs every check any
/// command runs (infrastructure included), so a command never accepts what another refuses.
pub fn load(global: &GlobalArgs, revision: &Revision) -> Result<Expanded> {
    let expanded = load_groups(global, revision)?;
    check_infra(global, revision, &expanded)?;
    Ok(expanded)
}

/// Every problem of the infrastructure design of `revision`'s definitions, as `build_infra`
/// finds them, without keeping the program (the commands that only check it).
pub fn check_infra(global: &GlobalArgs, revision: &Revision, expanded: &Expanded) -> Result<()> {
    infra::check(&expanded.definitions)
        .map(drop)
        .map_err(|errors| anyhow!(in_revision(global, revision, infra::diagnostics(&errors))))
}

/// The infrastructure design of the definitions loaded from `revision`, or every problem as
/// definitions diagnostics (exit status 3).
pub fn build_infra(global: &GlobalArgs, revision: &Revision, expanded: &Expanded) -> Result<infra::Build> {
    infra::build(&expanded.definitions)
        .map_err(|errors| anyhow!(in_revision(global, revision, infra::diagnostics(&errors))))
}

/// Diagnostics about the files of `revision`: for a Git revision each is located as
/// `rev:path:line:col`, so that none reads as a place in the working tree.
pub fn in_revision(global: &GlobalArgs, revision: &Revision, diagnostics: Diagnostics) -> Diagnostics {
    match revision {
        Revision::WorkingTree => diagnostics,
        Revision::Git(rev) => diagnostics.in_revision(&revision_name(global, rev)),
    }
}

/// A revision as the user wrote it, or a full commit id as its short form.
pub fn revision_name(global: &GlobalArgs, rev: &str) -> String {
    let full_id = matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit());
    if !full_id {
        return rev.to_owned();
    }
    let short = open_repository(&global.root).ok().and_then(|(repo, _)| {
        let object = repo.revparse_single(rev).ok()?;
        let short = object.short_id().ok()?;
        Some(String::from_utf8_lossy(&short).into_owned())
    });
    short.unwrap_or_else(|| rev.to_owned())
}

/// Loads the working tree with `changes` (path → new text) in place of its files, with every
/// check `load` runs: an edit is written only if this accepts it.
pub fn load_with_changes(global: &GlobalArgs, changes: &BTreeMap<String, String>) -> Result<Expanded> {
    let today = today(global)?;
    let base = DirSource::new(&global.root);
    let source = OverlaySource::new(&base, changes.clone());
    let expanded = load_expanded(&source, today).map_err(|e| match e {
        crate::definitions::LoadError::Invalid(diagnostics) => anyhow!(diagnostics),
        other => anyhow!(other),
    })?;
    check_infra(global, &Revision::WorkingTree, &expanded)?;
    Ok(expanded)
}

/// Loads and expands with the definitions' own checks only: for `groups diff`, which compares
/// revisions as they are, and for `infra`, which builds the design itself.
pub fn load_groups(global: &GlobalArgs, revision: &Revision) -> Result<Expanded> {
    load_sharing(global, revision, None)
}

/// `load_groups`, taking parsed files from `cache` when given (loads of revisions that share
/// files, as both sides of a diff do).
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
            let source = DirSource::new(&global.root);
            require_definitions(&source, &global.root.display().to_string())?;
            load_from(&source)
        }
        Revision::Git(rev) => {
            let (repo, prefix) = open_repository(&global.root)?;
            let source = GitSource::new(&repo, rev, &prefix).map_err(|e| InputError(e.to_string()))?;
            require_definitions(&source, &format!("revision `{rev}`"))?;
            load_from(&source)
        }
    };
    loaded.map_err(|e| match e {
        crate::definitions::LoadError::Invalid(diagnostics) => anyhow!(in_revision(global, revision, diagnostics)),
        other => anyhow!(other),
    })
}

/// One line instead of a "missing file" per file when `--root` (or a revision) is not a
/// definitions tree at all.
fn require_definitions(source: &dyn Source, what: &str) -> Result<()> {
    let has = |dir: &str| !matches!(source.list(dir), Ok(entries) if entries.is_empty());
    if has("groups") || has("datasets") {
        return Ok(());
    }
    Err(InputError(format!(
        "{what} has no groups/ or datasets/ directory: --root must name the folder that holds them"
    ))
    .into())
}

/// The definitions and hierarchy at `revision` for a diff; `None` for a revision from before
/// the definitions existed. Both sides of a diff share `cache`.
pub fn load_for_diff(global: &GlobalArgs, revision: &Revision, cache: &ParseCache) -> Result<Option<Expanded>> {
    if let Revision::Git(rev) = revision {
        let (repo, prefix) = open_repository(&global.root)?;
        let source = GitSource::new(&repo, rev, &prefix).map_err(|e| InputError(e.to_string()))?;
        if source.list("groups")?.is_empty() && source.list("datasets")?.is_empty() {
            return Ok(None);
        }
    }
    Ok(Some(load_sharing(global, revision, Some(cache))?))
}

/// The text of one definitions file at `revision`, or `None` when it does not exist.
pub fn read_file(global: &GlobalArgs, revision: &Revision, path: &str) -> Result<Option<String>> {
    match revision {
        Revision::WorkingTree => Ok(DirSource::new(&global.root).read(path)?),
        Revision::Git(rev) => {
            let (repo, prefix) = open_repository(&global.root)?;
            let source = GitSource::new(&repo, rev, &prefix).map_err(|e| InputError(e.to_string()))?;
            Ok(source.read(path)?)
        }
    }
}

/// The commit a line of a definitions file comes from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LineOrigin {
    pub commit: String,
    pub author: String,
    /// Who committed it: on a branch merged through a pull request, the person who merged.
    pub committer: String,
    pub date: Date,
    pub summary: String,
}

/// Where each of `lines` (1-based) of the definitions file `path` comes from, by `git blame`
/// along the first parents (so a merged pull request's lines are its merge commit's): at
/// `revision`, or for the working tree at HEAD plus its uncommitted changes (`None`: not
/// committed yet). `Ok(None)` when `--root` is not in a Git repository or it has no commits.
pub fn line_origins(
    global: &GlobalArgs,
    revision: &Revision,
    path: &str,
    lines: &[usize],
) -> Result<Option<BTreeMap<usize, Option<LineOrigin>>>> {
    let Ok((repo, prefix)) = open_repository(&global.root) else {
        return Ok(None);
    };
    let newest = match revision {
        Revision::Git(rev) => repo.revparse_single(rev).and_then(|o| o.peel_to_commit()),
        Revision::WorkingTree => repo.head().and_then(|head| head.peel_to_commit()),
    };
    let Ok(newest) = newest else {
        return Ok(None);
    };
    let full = if prefix.is_empty() { path.to_owned() } else { format!("{prefix}/{path}") };
    let mut options = git2::BlameOptions::new();
    options.newest_commit(newest.id()).first_parent(true);
    let mut origins = BTreeMap::new();
    // A file not in the newest commit has no committed lines.
    let committed = repo.blame_file(Path::new(&full), Some(&mut options)).ok();
    let working = match (&committed, revision) {
        (Some(blame), Revision::WorkingTree) => {
            let text = std::fs::read(global.root.join(path)).with_context(|| format!("reading {path}"))?;
            Some(blame.blame_buffer(&text)?)
        }
        _ => None,
    };
    let blame = working.as_ref().or(committed.as_ref());
    for &line in lines {
        let commit_id = blame.and_then(|blame| blame.get_line(line)).map(|hunk| hunk.final_commit_id());
        let origin = commit_id.and_then(|id| repo.find_commit(id).ok()).map(|commit| {
            let name = |signature: &git2::Signature| signature.name().unwrap_or("?").to_owned();
            let (author, committer) = (commit.author(), commit.committer());
            LineOrigin {
                commit: commit.id().to_string(),
                author: name(&author),
                committer: name(&committer),
                date: Date::from_days_since_epoch(committer.when().seconds().div_euclid(86_400)),
                summary: commit.summary().ok().flatten().unwrap_or_default().to_owned(),
            }
        });
        origins.insert(line, origin);
    }
    Ok(Some(origins))
}

/// Where `.github/CODEOWNERS` is: the top of the repository holding `--root` (and the path of
/// `--root` inside it, which the file's patterns start with), or `--root` outside Git.
pub struct CodeownersPlace {
    pub file: PathBuf,
    pub prefix: String,
}

pub fn codeowners_place(global: &GlobalArgs) -> Result<CodeownersPlace> {
    if let Ok((repo, prefix)) = open_repository(&global.root) {
        if let Some(workdir) = repo.workdir() {
            return Ok(CodeownersPlace { file: workdir.join(CODEOWNERS_FILE), prefix });
        }
    }
    Ok(CodeownersPlace { file: global.root.join(CODEOWNERS_FILE), prefix: String::new() })
}

/// The CODEOWNERS file as committed at `revision` (on disk for the working tree).
pub fn read_codeowners(global: &GlobalArgs, revision: &Revision) -> Result<Option<String>> {
    match revision {
        Revision::WorkingTree => {
            let file = codeowners_place(global)?.file;
            match std::fs::read_to_string(&file) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow!("reading {}: {e}", file.display())),
            }
        }
        Revision::Git(rev) => {
            let (repo, _) = open_repository(&global.root)?;
            let source = GitSource::new(&repo, rev, "").map_err(|e| InputError(e.to_string()))?;
            Ok(source.read(CODEOWNERS_FILE)?)
        }
    }
}

/// The revision `--rev` names, or the working tree.
pub fn default_revision(global: &GlobalArgs) -> Revision {
    global.rev.clone().map_or(Revision::WorkingTree, Revision::Git)
}

/// The commit the definitions were loaded from: `--rev`, else HEAD when the working tree
/// holds no uncommitted change to the definitions (`groups/`, `datasets/`, the transition
/// mapping). `Err` says why there is none to record.
pub fn loaded_commit(global: &GlobalArgs, transition_mapping: Option<&str>) -> std::result::Result<String, String> {
    let (repo, prefix) = open_repository(&global.root).map_err(|e| e.to_string())?;
    let rev = global.rev.as_deref().unwrap_or("HEAD");
    let commit = repo
        .revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(|e| format!("revision `{rev}`: {}", e.message()))?;
    if global.rev.is_none() {
        // Only the definitions' own files count: a workflow's reports, a login's credentials
        // file or the tool's state beside them are no part of the desired state.
        let under = |path: &str| if prefix.is_empty() { path.to_owned() } else { format!("{prefix}/{path}") };
        let mut options = git2::StatusOptions::new();
        options.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
        for path in ["groups", "datasets"].into_iter().chain(transition_mapping) {
            options.pathspec(under(path));
        }
        let statuses = repo.statuses(Some(&mut options)).map_err(|e| e.message().to_owned())?;
        if !statuses.is_empty() {
            return Err("the definitions under --root have uncommitted changes".to_owned());
        }
    }
    Ok(commit.id().to_string())
}

/// The commit `rev` names, when it is `head` or one of its ancestors: the base a sync of only
/// what changed may start from. `Err` says why it may not.
pub fn ancestor_commit(global: &GlobalArgs, rev: &str, head: &str) -> std::result::Result<String, String> {
    let (repo, _) = open_repository(&global.root).map_err(|e| e.to_string())?;
    let peel = |rev: &str| repo.revparse_single(rev).and_then(|object| object.peel_to_commit()).map(|c| c.id());
    let base = peel(rev).map_err(|_| format!("revision `{rev}` is unknown to the repository"))?;
    let head = peel(head).map_err(|e| e.message().to_owned())?;
    if base == head || repo.graph_descendant_of(head, base).unwrap_or(false) {
        Ok(base.to_string())
    } else {
        Err(format!("revision `{rev}` is not an ancestor of the definitions' revision"))
    }
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

/// The `pulumi` executable on PATH, or a configuration error saying how to install it.
pub fn pulumi_program() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("pulumi")).find(|candidate| is_executable(candidate)).ok_or_else(
        || {
            InputError(
                "the `pulumi` CLI is not on PATH; install it (https://www.pulumi.com/docs/install/) and run again"
                    .to_owned(),
            )
            .into()
        },
    )
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.with_extension("exe").is_file()
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
    let Some(settings) = organisation.google.clone().filter(|s| s.enabled) else { return Err(not_enabled("google")) };
    let customer_id =
        required("Google customer id", "google", "customer_id", "CPG_INFRA_GOOGLE_CUSTOMER_ID", &settings.customer_id)?;
    let endpoint = env("CPG_INFRA_GOOGLE_ENDPOINT").or(settings.endpoint.clone());
    let auth = google_auth()?;
    let config = GoogleConfig {
        customer_id,
        groups_domain: organisation.groups_domain.clone(),
        endpoint,
        auth,
        security_groups: settings.security_groups,
        requests: settings.requests,
    };
    Ok((config, settings))
}

/// The Azure provider's settings and credentials: `[providers.azure]` (tenant id, endpoint),
/// overridable by `CPG_INFRA_AZURE_TENANT_ID` and `CPG_INFRA_AZURE_ENDPOINT`.
pub fn azure_config(definitions: &Definitions) -> Result<(AzureConfig, ProviderSettings)> {
    let organisation = &definitions.organisation;
    let Some(settings) = organisation.azure.clone().filter(|s| s.enabled) else { return Err(not_enabled("azure")) };
    let tenant_id =
        required("Azure tenant id", "azure", "tenant_id", "CPG_INFRA_AZURE_TENANT_ID", &settings.tenant_id)?;
    let endpoint = env("CPG_INFRA_AZURE_ENDPOINT").or(settings.endpoint.clone());
    let authority = env("CPG_INFRA_AZURE_AUTHORITY");
    let people =
        definitions.people.values().filter_map(|p| p.azure.clone().map(|azure| (p.email.clone(), azure))).collect();
    // As rendered: Graph may match alternative names by case.
    let mut identities: Vec<String> =
        crate::infra::azure_identity_ids(definitions).into_iter().map(|(_, id)| id).collect();
    identities.sort();
    identities.dedup();
    let config = AzureConfig {
        tenant_id,
        groups_domain: organisation.groups_domain.clone(),
        endpoint,
        authority,
        auth: azure_auth()?,
        people,
        identities,
        requests: settings.requests,
    };
    Ok((config, settings))
}

/// The Actions job's OIDC token for Entra ID's token exchange (the audience a federated
/// credential expects), from the URL and request token GitHub gives a job with `id-token: write`.
fn github_oidc_token(url: &str, request_token: &str) -> Result<String> {
    let bad = |problem: String| InputError(format!("GitHub OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL): {problem}"));
    let scheme_end = url.find("://").map(|i| i + 3).ok_or_else(|| bad(format!("`{url}` is not a URL")))?;
    let path_start = url[scheme_end..].find('/').map_or(url.len(), |i| scheme_end + i);
    let (endpoint, path) = (&url[..path_start], url[path_start..].trim_start_matches('/'));
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{separator}audience=api%3A%2F%2FAzureADTokenExchange");
    let api = crate::http_api::ApiClient::connect(endpoint, &GoogleAuth::AccessToken(request_token.to_owned()))
        .map_err(|e| bad(e.to_string()))?;
    let (status, body) =
        api.send(hyper::Method::GET, &path, Vec::new(), "GitHub OIDC token").map_err(|e| bad(e.to_string()))?;
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match answer["value"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => Err(bad(format!("{status}: no token in the answer")).into()),
    }
}

/// Azure credentials: `CPG_INFRA_AZURE_ACCESS_TOKEN`, else an app registration's
/// `AZURE_CLIENT_ID` with `AZURE_CLIENT_SECRET`, else with GitHub's OIDC token for a federated
/// credential (fetched from `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`
/// in a GitHub job, or given in `AZURE_FEDERATED_TOKEN` or a file named by
/// `AZURE_FEDERATED_TOKEN_FILE`).
fn azure_auth() -> Result<AzureAuth> {
    if let Some(token) = env("CPG_INFRA_AZURE_ACCESS_TOKEN") {
        return Ok(AzureAuth::AccessToken { token, source: "CPG_INFRA_AZURE_ACCESS_TOKEN".to_owned() });
    }
    let client_id = env("AZURE_CLIENT_ID");
    if let (Some(client_id), Some(secret)) = (client_id.clone(), env("AZURE_CLIENT_SECRET")) {
        return Ok(AzureAuth::ClientSecret {
            client_id,
            secret,
            source: "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET".to_owned(),
        });
    }
    if let Some(client_id) = client_id {
        if let Some(assertion) = env("AZURE_FEDERATED_TOKEN") {
            let source = "AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN".to_owned();
            return Ok(AzureAuth::ClientAssertion { client_id, assertion, source });
        }
        if let (Some(url), Some(request_token)) =
            (env("ACTIONS_ID_TOKEN_REQUEST_URL"), env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
        {
            let assertion = github_oidc_token(&url, &request_token)?;
            let source = "AZURE_CLIENT_ID and GitHub's OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL)".to_owned();
            return Ok(AzureAuth::ClientAssertion { client_id, assertion, source });
        }
        if let Some(path) = env("AZURE_FEDERATED_TOKEN_FILE") {
            let assertion = std::fs::read_to_string(&path)
                .map_err(|e| InputError(format!("AZURE_FEDERATED_TOKEN_FILE {path}: {e}")))?
                .trim()
                .to_owned();
            let source = format!("AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE ({path})");
            return Ok(AzureAuth::ClientAssertion { client_id, assertion, source });
        }
    }
    Err(InputError(
        "no Azure credentials: set CPG_INFRA_AZURE_ACCESS_TOKEN (e.g. to `az account get-access-token --resource https://graph.microsoft.com --query accessToken -o tsv`), or AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN(_FILE)"
            .into(),
    )
    .into())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Google credentials: `CPG_INFRA_GOOGLE_ACCESS_TOKEN`, else `GOOGLE_APPLICATION_CREDENTIALS`,
/// else gcloud's application-default credentials file.
fn google_auth() -> Result<GoogleAuth> {
    let gcloud_default = env("HOME")
        .map(|home| PathBuf::from(home).join(".config/gcloud/application_default_credentials.json"))
        .filter(|path| path.is_file());
    if let Some(token) = env("CPG_INFRA_GOOGLE_ACCESS_TOKEN") {
        Ok(GoogleAuth::AccessToken(token))
    } else if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from).or(gcloud_default) {
        Ok(GoogleAuth::CredentialsFile(path))
    } else {
        Err(InputError(
            "no Google credentials: set CPG_INFRA_GOOGLE_ACCESS_TOKEN (e.g. to `gcloud auth print-access-token`) or GOOGLE_APPLICATION_CREDENTIALS"
                .into(),
        )
        .into())
    }
}

/// The error for a provider used without `[providers.<name>] enabled = true`.
fn not_enabled(name: &str) -> anyhow::Error {
    InputError(format!("the {name} provider is not enabled: set [providers.{name}] enabled = true in groups/org.toml"))
        .into()
}

/// A provider setting: the environment variable `env_name`, else `[providers.<provider>] <key>`.
fn required(what: &str, provider: &str, key: &str, env_name: &str, configured: &Option<String>) -> Result<String> {
    env(env_name)
        .or_else(|| configured.clone())
        .ok_or_else(|| InputError(format!("no {what}: set [providers.{provider}] {key} or {env_name}")).into())
}

/// Hail Batch: `[providers.hail]` (enabled, endpoint and auth_endpoint;
/// `CPG_INFRA_HAIL_ENDPOINT` and `CPG_INFRA_HAIL_AUTH_ENDPOINT` override) and the bearer token in
/// `CPG_INFRA_HAIL_TOKEN`. The settings come back with the auth endpoint resolved.
pub fn hail_config(definitions: &Definitions) -> Result<(String, String, crate::definitions::HailSettings)> {
    let Some(mut settings) = definitions.organisation.hail.clone().filter(|s| s.enabled) else {
        return Err(not_enabled("hail"));
    };
    let endpoint = required("Hail Batch endpoint", "hail", "endpoint", "CPG_INFRA_HAIL_ENDPOINT", &settings.endpoint)?;
    let auth = env("CPG_INFRA_HAIL_AUTH_ENDPOINT").or(settings.auth_endpoint.clone());
    settings.auth_endpoint = Some(auth.unwrap_or_else(|| default_auth_endpoint(&endpoint)));
    let token = env("CPG_INFRA_HAIL_TOKEN")
        .ok_or_else(|| InputError("no Hail Batch token: set CPG_INFRA_HAIL_TOKEN".into()))?;
    Ok((endpoint, token, settings))
}

/// Hail's auth service beside its batch service: `https://batch.<domain>/` →
/// `https://auth.<domain>/`; any other endpoint (one host for both) is used as it is.
fn default_auth_endpoint(batch: &str) -> String {
    match batch.split_once("://") {
        Some((scheme, rest)) if rest.starts_with("batch.") => format!("{scheme}://auth.{}", &rest["batch.".len()..]),
        _ => batch.to_owned(),
    }
}

/// Metamist: `[providers.metamist]` (enabled, endpoint; `CPG_INFRA_METAMIST_ENDPOINT`
/// overrides) and a bearer token: `CPG_INFRA_METAMIST_TOKEN`, else a Google identity token
/// for the endpoint (or `audience`) from the metadata server, as Metamist on Cloud Run takes.
pub fn metamist_config(definitions: &Definitions) -> Result<(String, String, crate::definitions::MetamistSettings)> {
    let Some(settings) = definitions.organisation.metamist.clone().filter(|s| s.enabled) else {
        return Err(not_enabled("metamist"));
    };
    let endpoint =
        required("Metamist endpoint", "metamist", "endpoint", "CPG_INFRA_METAMIST_ENDPOINT", &settings.endpoint)?;
    let token = match env("CPG_INFRA_METAMIST_TOKEN") {
        Some(token) => token,
        None => {
            let audience = settings.audience.clone().unwrap_or_else(|| endpoint.trim_end_matches('/').to_owned());
            let host = env("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".to_owned());
            crate::http_api::identity_token(&host, &audience).map_err(|e| {
                InputError(format!(
                    "no Metamist token: set CPG_INFRA_METAMIST_TOKEN, or run where the metadata server gives identity tokens ({e})"
                ))
            })?
        }
    };
    Ok((endpoint, token, settings))
}

/// The old members caches' reader: Secret Manager (endpoint override
/// `CPG_INFRA_SECRETMANAGER_ENDPOINT`) with the Google credentials.
pub fn secret_reader() -> Result<SecretReader> {
    let auth = google_auth()?;
    let endpoint = env("CPG_INFRA_SECRETMANAGER_ENDPOINT");
    SecretReader::connect(endpoint.as_deref(), &auth).map_err(|e| InputError(e.to_string()).into())
}

/// The members-cache destinations `[cache]` names: the local folder under `--root`, and the
/// organisation's GCS bucket (endpoint override `CPG_INFRA_GCS_ENDPOINT`, Google credentials).
pub fn cache_stores(global: &GlobalArgs, definitions: &Definitions) -> Result<Vec<Box<dyn CacheStore>>> {
    let settings = &definitions.organisation.cache;
    let mut stores: Vec<Box<dyn CacheStore>> = Vec::new();
    for destination in &settings.destinations {
        match destination {
            CacheDestination::Local => stores.push(Box::new(LocalStore::new(global.root.join(&settings.local_dir)))),
            CacheDestination::Gcs => {
                let auth = google_auth()?;
                let bucket = infra::members_cache_bucket(definitions);
                let endpoint = env("CPG_INFRA_GCS_ENDPOINT");
                let store =
                    GcsStore::connect(&bucket, endpoint.as_deref(), &auth).map_err(|e| InputError(e.to_string()))?;
                stores.push(Box::new(store));
            }
            CacheDestination::AzureBlob => {
                let token = env("CPG_INFRA_AZURE_STORAGE_TOKEN").ok_or_else(|| {
                    InputError("no Azure Storage token: set CPG_INFRA_AZURE_STORAGE_TOKEN (e.g. to `az account get-access-token --resource https://storage.azure.com/ --query accessToken -o tsv`)".into())
                })?;
                let (account, container) = infra::members_cache_container(definitions);
                let endpoint = env("CPG_INFRA_AZURE_BLOB_ENDPOINT");
                let store = AzureBlobStore::connect(&account, &container, endpoint.as_deref(), &token)
                    .map_err(|e| InputError(e.to_string()))?;
                stores.push(Box::new(store));
            }
        }
    }
    Ok(stores)
}

/// The paths (relative to the repository's top) that differ between two revisions, and the
/// path of `--root` inside the repository.
pub fn changed_files(global: &GlobalArgs, base: &str, head: &str) -> Result<(Vec<String>, String)> {
    let (repo, prefix) = open_repository(&global.root)?;
    let tree = |rev: &str| -> Result<git2::Tree> {
        let object = repo.revparse_single(rev).map_err(|e| InputError(format!("revision `{rev}`: {}", e.message())))?;
        Ok(object.peel_to_tree().map_err(|e| InputError(format!("revision `{rev}`: {}", e.message())))?)
    };
    let (old, new) = (tree(base)?, tree(head)?);
    let diff = repo.diff_tree_to_tree(Some(&old), Some(&new), None).context("comparing the revisions")?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(path) = file.path() {
                paths.insert(path.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok((paths.into_iter().collect(), prefix))
}

/// Where every grant line of the definitions (dataset members and role-level members) comes
/// from, one `git blame` per file: (file, line) → its commit. Lines not committed yet are absent.
pub fn grant_line_origins(
    global: &GlobalArgs,
    revision: &Revision,
    definitions: &Definitions,
) -> Result<BTreeMap<(String, usize), LineOrigin>> {
    let mut lines: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for grant in definitions.role_grants() {
        lines.entry(grant.location.path.to_string()).or_default().push(grant.location.line);
    }
    let mut origins = BTreeMap::new();
    for (path, lines) in lines {
        for (line, origin) in line_origins(global, revision, &path, &lines)?.unwrap_or_default() {
            if let Some(origin) = origin {
                origins.insert((path.clone(), line), origin);
            }
        }
    }
    Ok(origins)
}

/// One commit of the first-parent history (a merged pull request is its merge commit).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitInfo {
    pub commit: String,
    pub author: String,
    pub date: Date,
    pub summary: String,
}

/// The first-parent history of HEAD, oldest first.
pub fn first_parent_history(global: &GlobalArgs) -> Result<Vec<CommitInfo>> {
    let (repo, _) = open_repository(&global.root)?;
    let mut walk = repo.revwalk().context("walking the history")?;
    walk.push_head().map_err(|e| InputError(format!("the repository has no commits: {}", e.message())))?;
    walk.simplify_first_parent().context("walking the history")?;
    let mut commits = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id.context("walking the history")?).context("reading a commit")?;
        let committer = commit.committer();
        commits.push(CommitInfo {
            commit: commit.id().to_string(),
            author: commit.author().name().unwrap_or("?").to_owned(),
            date: Date::from_days_since_epoch(committer.when().seconds().div_euclid(86_400)),
            summary: commit.summary().ok().flatten().unwrap_or_default().to_owned(),
        });
    }
    commits.reverse();
    Ok(commits)
}

/// `--at`: a day (the last first-parent commit on or before it, and that day as "today") or a
/// revision.
pub fn revision_at(global: &GlobalArgs, at: &str) -> Result<(String, Option<String>)> {
    let Ok(day) = at.parse::<Date>() else { return Ok((at.to_owned(), None)) };
    let history = first_parent_history(global)?;
    let commit = history.iter().rev().find(|c| c.date <= day).ok_or_else(|| {
        InputError(format!(
            "no commit on or before {day}: the history starts on {}",
            history.first().map_or_else(String::new, |c| c.date.to_string())
        ))
    })?;
    Ok((commit.commit.clone(), Some(day.to_string())))
}

/// The GitHub API client for `--reviews`: `$GITHUB_API_URL` (default GitHub's), the token in
/// `$GH_TOKEN` or `$GITHUB_TOKEN`.
pub fn github(repo: &str) -> Result<crate::github::GitHub> {
    let endpoint = std::env::var("GITHUB_API_URL").unwrap_or_else(|_| crate::github::PRODUCTION_ENDPOINT.to_owned());
    let token = ["GH_TOKEN", "GITHUB_TOKEN"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|t| !t.is_empty()))
        .ok_or_else(|| InputError("--reviews needs a GitHub token in $GH_TOKEN or $GITHUB_TOKEN".into()))?;
    crate::github::GitHub::connect(&endpoint, &token, repo).map_err(|e| InputError(e.to_string()).into())
}

/// A review branch made by `commit_review_record`.
pub struct ReviewCommit {
    pub branch: String,
    pub commit: String,
    /// The commit whose members the review lists (HEAD when it was made).
    pub reviewed_revision: String,
}

/// Commits a new `datasets/<dataset>/review.toml` on top of HEAD as branch `review/<dataset>`
/// (replacing an earlier local one), without touching the working tree or the index.
pub fn commit_review_record(global: &GlobalArgs, dataset: &str, today: Date) -> Result<ReviewCommit> {
    let (repo, prefix) = open_repository(&global.root)?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| InputError(format!("the repository has no commits: {}", e.message())))?;
    let signature = repo
        .signature()
        .or_else(|_| git2::Signature::now("cpg-infra", "cpg-infra@localhost"))
        .context("making the commit's signature")?;
    let prepared_by = signature.name().unwrap_or("cpg-infra").replace(['"', '\\', '\n'], " ");
    let record = format!(
        "# Written by `cpg-infra review open`; the merge of its pull request is the review.\n\
         reviewed_on = {today}\nrevision = \"{}\"\nprepared_by = \"{prepared_by}\"\n",
        head.id()
    );
    let relative = crate::definitions::review_record_path(dataset);
    let path = if prefix.is_empty() { relative.clone() } else { format!("{prefix}/{relative}") };
    let mut index = git2::Index::new().context("making an index")?;
    index.read_tree(&head.tree()?).context("reading HEAD's tree")?;
    let entry = git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: record.len() as u32,
        id: repo.blob(record.as_bytes()).context("writing the review record")?,
        flags: 0,
        flags_extended: 0,
        path: path.clone().into_bytes(),
    };
    index.add(&entry).context("adding the review record")?;
    let tree = repo.find_tree(index.write_tree_to(&repo)?)?;
    let branch = format!("review/{dataset}");
    let message = format!("Access review of {dataset} ({today})\n\nUpdates {relative}.");
    let commit =
        repo.commit(None, &signature, &signature, &message, &tree, &[&head]).context("committing the review")?;
    repo.reference(&format!("refs/heads/{branch}"), commit, true, &format!("cpg-infra review open {dataset}"))
        .context("writing the review branch")?;
    Ok(ReviewCommit { branch, commit: commit.to_string(), reviewed_revision: head.id().to_string() })
}
