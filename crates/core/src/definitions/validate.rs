//! Loading: parse every file, then check it and convert it into domain types.
//!
//! Every problem becomes a diagnostic; loading goes on after an error so one run shows all of
//! them, and returns definitions only when there were none.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::diagnostic::{Diagnostics, Location, SourceFile};
use super::files::{self, MemberEntry};
use super::names::{
    domain_allowed, github_handle_problem, group_name_problem, is_valid_email, key_problem, KNOWN_COMPONENTS,
    MAX_GROUP_NAME_LEN,
};
use super::parse_cache::ParseCache;
use super::source::{Entry, EntryKind, Source, SourceError};
use super::wording;
use super::*;

pub(super) fn load(source: &dyn Source, cache: Option<&ParseCache>) -> Result<Definitions, LoadError> {
    let mut loader = Loader {
        source,
        cache,
        diagnostics: Diagnostics::default(),
        incomplete: Incomplete::default(),
        too_long_for_prefix: None,
    };
    let raw = loader.read_all()?;
    let definitions = loader.convert(raw);
    let diagnostics = loader.diagnostics.finish();
    match definitions {
        Some(definitions) if diagnostics.is_empty() => Ok(definitions),
        _ => Err(LoadError::Invalid(diagnostics)),
    }
}

/// Every parsed file, before checks.
struct RawFiles {
    org: Option<(SourceFile, files::OrgFile)>,
    people: Option<(SourceFile, files::PeopleFile)>,
    roles: Option<(SourceFile, files::RolesFile)>,
    groups: Vec<(SourceFile, files::GroupsFile)>,
    datasets: Vec<RawDataset>,
}

struct RawDataset {
    name: String,
    location: Location,
    dataset: Option<(SourceFile, files::DatasetFile)>,
    members: Option<(SourceFile, files::MembersFile)>,
    review: Option<(SourceFile, files::ReviewFile)>,
}

struct Loader<'a> {
    source: &'a dyn Source,
    cache: Option<&'a ParseCache>,
    diagnostics: Diagnostics,
    incomplete: Incomplete,
    /// The longest group name that is valid on its own but not with the group prefix.
    too_long_for_prefix: Option<String>,
}

/// Inputs that could not be read. References into them are not reported as unknown: the
/// parse error already says what is wrong, and "unknown person" for every person of a broken
/// people file would bury it.
#[derive(Debug, Default)]
struct Incomplete {
    people: bool,
    roles: bool,
    groups: bool,
    datasets: BTreeSet<String>,
}

impl Incomplete {
    fn any_group_names(&self) -> bool {
        self.roles || self.groups || !self.datasets.is_empty()
    }
}

const ORG_FILE: &str = "groups/org.toml";
const PEOPLE_FILE: &str = "groups/people.toml";
const ROLES_FILE: &str = "groups/roles.toml";
/// Read by `policy`, not here; listed so it is not taken for an organisation-groups file.
const POLICY_FILE: &str = "groups/policy.toml";

impl Loader<'_> {
    fn read_all(&mut self) -> Result<RawFiles, SourceError> {
        let org = self.parse::<files::OrgFile>(ORG_FILE, true)?;
        let people = self.parse::<files::PeopleFile>(PEOPLE_FILE, true)?;
        self.incomplete.people = people.is_none();
        let roles = self.parse::<files::RolesFile>(ROLES_FILE, true)?;
        self.incomplete.roles = roles.is_none();
        let mut groups = Vec::new();
        for entry in self.list("groups")? {
            let path = format!("groups/{}", entry.name);
            if [ORG_FILE, PEOPLE_FILE, ROLES_FILE, POLICY_FILE].contains(&path.as_str()) {
                continue;
            }
            if !(entry.is_file() && entry.name.ends_with(".toml")) {
                self.unexpected_entry(&path, &entry.kind, "groups/ holds organisation .toml files");
                continue;
            }
            match self.parse::<files::GroupsFile>(&path, true)? {
                Some(parsed) => groups.push(parsed),
                None => self.incomplete.groups = true,
            }
        }
        let mut datasets = Vec::new();
        for entry in self.list("datasets")? {
            if !entry.is_dir() {
                let path = format!("datasets/{}", entry.name);
                self.unexpected_entry(&path, &entry.kind, "datasets/ holds one directory per dataset");
                self.incomplete.datasets.insert(entry.name);
                continue;
            }
            let dataset_path = format!("datasets/{}/dataset.toml", entry.name);
            let members_path = format!("datasets/{}/members.toml", entry.name);
            self.check_dataset_files(&entry.name)?;
            let dataset = self.parse(&dataset_path, true)?;
            if dataset.is_none() {
                self.incomplete.datasets.insert(entry.name.clone());
            }
            datasets.push(RawDataset {
                location: Location::file(&dataset_path),
                dataset,
                members: self.parse(&members_path, false)?,
                review: self.parse(&super::review_record_path(&entry.name), false)?,
                name: entry.name,
            });
        }
        Ok(RawFiles { org, people, roles, groups, datasets })
    }

    /// The entries of `dir` that are not documentation or hidden (`.gitkeep`, editor files);
    /// a directory that cannot be listed is reported and treated as empty.
    fn list(&mut self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let entries = self.recover(self.source.list(dir))?.unwrap_or_default();
        Ok(entries.into_iter().filter(|e| !e.name.starts_with('.') && !is_documentation(e)).collect())
    }

    /// Reports an entry that cannot be what its directory holds: nothing is skipped in silence.
    fn unexpected_entry(&mut self, path: &str, kind: &EntryKind, holds: &str) {
        let message = match kind {
            EntryKind::Unusable(problem) => problem.clone(),
            EntryKind::Dir => format!("is a directory; {holds}"),
            EntryKind::File => format!("unexpected file; {holds}"),
        };
        self.error(Location::file(path), message);
    }

    /// A misspelt file name would silently drop a dataset's members, so anything but the two
    /// known files in a dataset directory is an error.
    fn check_dataset_files(&mut self, dataset: &str) -> Result<(), SourceError> {
        for file in self.list(&format!("datasets/{dataset}"))? {
            let known = ["dataset.toml", "members.toml", "review.toml"].contains(&file.name.as_str());
            if !known || !file.is_file() {
                let path = format!("datasets/{dataset}/{}", file.name);
                self.unexpected_entry(
                    &path,
                    &file.kind,
                    "a dataset directory holds dataset.toml, members.toml and review.toml",
                );
            }
        }
        Ok(())
    }

    /// Turns a problem with one path into its diagnostic (`None`); other failures stay errors.
    fn recover<T>(&mut self, result: Result<T, SourceError>) -> Result<Option<T>, SourceError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(SourceError::Unreadable { path, line, column, problem }) => {
                let location = Location { path: path.as_str().into(), line, column };
                self.error(location, problem);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }

    /// Parses one file; a missing required file, an unreadable file or a syntax error becomes a
    /// diagnostic.
    fn parse<T: DeserializeOwned + Clone + Send + Sync + 'static>(
        &mut self,
        path: &str,
        required: bool,
    ) -> Result<Option<(SourceFile, T)>, SourceError> {
        let read = self.source.read(path);
        let Some(text) = self.recover(read)? else {
            return Ok(None);
        };
        let Some(text) = text else {
            if required {
                self.diagnostics.push(Location::file(path), "missing file");
            }
            return Ok(None);
        };
        let file = SourceFile::new(path, text);
        let hidden = wording::hidden_characters(&file.text);
        if !hidden.is_empty() {
            for problem in hidden {
                self.error(file.location(problem.span), problem.message);
            }
            return Ok(None);
        }
        let parsed = match self.cache {
            Some(cache) => cache.parse::<T>(&file.text),
            None => toml::from_str::<T>(&file.text),
        };
        match parsed {
            Ok(value) => Ok(Some((file, value))),
            Err(error) => {
                let worded = wording::parse_error(&file, &error);
                self.error(file.location(worded.span), worded.message);
                Ok(None)
            }
        }
    }

    fn error(&mut self, location: Location, message: impl Into<String>) {
        self.diagnostics.push(location, message);
    }

    fn convert(&mut self, raw: RawFiles) -> Option<Definitions> {
        let organisation = self.convert_org(raw.org.as_ref()?);
        let people = raw.people.as_ref().map(|p| self.convert_people(p)).unwrap_or_default();
        let (roles, dependency_grants) = match &raw.roles {
            Some(roles) => self.convert_roles(roles),
            None => Default::default(),
        };
        let mut definitions = Definitions {
            organisation,
            people,
            roles,
            dependency_grants,
            groups: BTreeMap::new(),
            datasets: BTreeMap::new(),
        };
        for dataset in &raw.datasets {
            if let Some(converted) = self.convert_dataset(&definitions, dataset) {
                definitions.datasets.insert(converted.name.clone(), converted);
            }
        }
        let common_location = raw
            .org
            .as_ref()
            .and_then(|(file, org)| org.organisation.common_dataset.as_ref().map(|c| file.location(c.span())));
        self.check_dataset_references(&definitions, common_location);
        let group_names = self.all_group_names(&definitions, &raw.groups);
        self.report_prefix(&definitions, &raw);
        if let Some((file, org)) = &raw.org {
            let pinned = org.sync.iter().flat_map(|s| &s.pinned_groups);
            let prefixed = |g: &Spanned<String>| definitions.org_group_name(g.get_ref());
            for group in pinned.filter(|g| !group_names.contains(&prefixed(g))) {
                if !self.incomplete.any_group_names() {
                    self.error(
                        file.location(group.span()),
                        format!("unknown group `{}` in pinned_groups", group.get_ref()),
                    );
                }
            }
        }
        if let Some((file, org)) = &raw.org {
            self.check_metamist_roles(file, org, &definitions, &group_names);
        }
        let resolver = MemberResolver {
            people: &definitions.people,
            people_by_email: definitions.people.values().map(|p| (p.email.as_str(), p.key.as_str())).collect(),
            group_names: &group_names,
            group_prefix: &definitions.organisation.group_prefix,
            groups_domain: &definitions.organisation.groups_domain,
            allowed_domains: &definitions.organisation.allowed_member_domains,
            lenient_people: self.incomplete.people,
            lenient_groups: self.incomplete.any_group_names(),
        };
        // Member lists are resolved last: they may name any group of the whole organisation.
        let mut groups = BTreeMap::new();
        for (file, groups_file) in &raw.groups {
            for (name, table) in &groups_file.groups {
                let members = self.resolve_grants(&resolver, file, &table.members);
                let google_settings =
                    table.google_settings.as_ref().map(|t| self.google_settings(file, t)).unwrap_or_default();
                let group = OrgGroup {
                    name: name.get_ref().clone(),
                    description: table.description.clone(),
                    members,
                    google_settings,
                    location: file.location(name.span()),
                };
                groups.entry(group.name.clone()).or_insert(group);
            }
        }
        if let Some((file, roles_file)) = &raw.roles {
            for (name, table) in &roles_file.roles {
                let members = self.resolve_grants(&resolver, file, &table.members);
                if let Some(role) = definitions.roles.get_mut(name.get_ref()) {
                    role.members = members;
                }
            }
        }
        for dataset in &raw.datasets {
            let Some((file, members_file)) = &dataset.members else {
                continue;
            };
            let Some(converted) = definitions.datasets.get(&dataset.name) else {
                continue;
            };
            let mut members = BTreeMap::new();
            for (role, entries) in &members_file.0 {
                let grants = self.resolve_grants(&resolver, file, entries);
                let location = file.location(role.span());
                if !definitions.roles.contains_key(role.get_ref()) {
                    if !self.incomplete.roles {
                        let known = definitions.roles.keys().map(String::as_str);
                        self.error(location, wording::unknown("role", role.get_ref(), known, true));
                    }
                } else if !definitions.dataset_has_role(converted, role.get_ref()) {
                    let component = definitions.roles[role.get_ref()].requires_component.clone();
                    self.error(
                        location,
                        format!(
                            "role `{}` needs component `{}`, which dataset `{}` does not list",
                            role.get_ref(),
                            component.unwrap_or_default(),
                            dataset.name
                        ),
                    );
                } else {
                    members.insert(role.get_ref().clone(), grants);
                }
            }
            if let Some(converted) = definitions.datasets.get_mut(&dataset.name) {
                converted.members = members;
            }
        }
        definitions.groups = groups;
        Some(definitions)
    }

    fn convert_org(&mut self, (file, org): &(SourceFile, files::OrgFile)) -> Organisation {
        let table = &org.organisation;
        for domain in [&table.domain, &table.groups_domain] {
            if !is_valid_email(&format!("x@{}", domain.get_ref())) {
                self.error(file.location(domain.span()), format!("invalid domain `{}`", domain.get_ref()));
            }
        }
        let prefix = table.group_prefix.as_ref();
        if let Some(prefix) = prefix.filter(|p| key_problem("prefix", p.get_ref()).is_some()) {
            self.error(
                file.location(prefix.span()),
                format!("group prefix `{}` may only use lowercase letters, digits, `-`, `_` and `.`", prefix.get_ref()),
            );
        }
        let defaults = SyncSettings::default();
        let prefix_text = prefix.map(|p| p.get_ref().as_str()).unwrap_or_default();
        let sync_table = org.sync.as_ref();
        let percent = sync_table.and_then(|s| s.max_removal_percent.as_ref());
        if let Some(percent) = percent.filter(|p| !(0..=100).contains(p.get_ref())) {
            let message =
                format!("max_removal_percent must be a whole number from 0 to 100, not {}", percent.get_ref());
            self.error(file.location(percent.span()), message);
        }
        let state_file = sync_table.and_then(|s| s.state_file.as_ref());
        if let Some(state_file) = state_file {
            if let Some(problem) = path_outside_root(state_file.get_ref()) {
                self.error(
                    file.location(state_file.span()),
                    format!("state_file `{}` {problem}", state_file.get_ref()),
                );
            }
        }
        let sync = sync_table.map_or(defaults.clone(), |s| SyncSettings {
            max_removals: s.max_removals.unwrap_or(defaults.max_removals),
            max_removal_percent: percent
                .map_or(defaults.max_removal_percent, |p| p.get_ref().clamp(&0, &100).to_owned() as u8),
            state_file: state_file.map_or(defaults.state_file.clone(), |f| f.get_ref().clone()),
            pinned_groups: s.pinned_groups.iter().map(|g| format!("{}{}", prefix_text, g.get_ref())).collect(),
        });
        let name_prefix = org.infra.as_ref().and_then(|i| i.name_prefix.as_ref()).map(|p| reference(file, p));
        if let Some(prefix) = name_prefix.as_ref().filter(|p| !is_name_prefix(&p.name)) {
            self.error(
                prefix.location.clone(),
                format!(
                    "name prefix `{}` may only use lowercase letters and digits, starting with a letter",
                    prefix.name
                ),
            );
        }
        let providers = org.providers.as_ref();
        let google = providers
            .and_then(|p| p.google.as_ref())
            .map(|p| self.convert_provider(file, p, "google", Nesting::Native));
        let azure =
            providers.and_then(|p| p.azure.as_ref()).map(|p| self.convert_provider(file, p, "azure", Nesting::Flatten));
        let hail = providers.and_then(|p| p.hail.as_ref()).map(|h| HailSettings {
            requests: self.request_rate(file, &h.requests_per_second, &h.request_burst, RequestRate::HAIL),
            enabled: h.enabled,
            endpoint: h.endpoint.clone(),
            auth_endpoint: h.auth_endpoint.clone(),
            aggregator: h.aggregator.clone(),
            account_usernames: h.account_usernames.clone().unwrap_or_else(|| "{dataset}-{level}".to_owned()),
        });
        let metamist = providers.and_then(|p| p.metamist.as_ref()).map(|m| MetamistSettings {
            requests: self.request_rate(file, &m.requests_per_second, &m.request_burst, RequestRate::METAMIST),
            enabled: m.enabled.as_ref().is_some_and(|e| *e.get_ref()),
            endpoint: m.endpoint.clone(),
            audience: m.audience.clone(),
            account: m.account.as_ref().map(|a| a.get_ref().to_ascii_lowercase()),
            state_file: m.state.as_ref().map_or_else(|| METAMIST_DEFAULT_STATE.to_owned(), |s| s.get_ref().clone()),
            main: metamist_roles(m.main.as_ref(), false),
            test: metamist_roles(m.test.as_ref(), true),
        });
        let services = org.services.as_ref().map(|t| self.convert_services(file, t)).unwrap_or_default();
        let administrators = org.infra.as_ref().and_then(|i| i.administrators.as_ref()).map(|a| reference(file, a));
        let gcp = org
            .infra
            .as_ref()
            .and_then(|i| i.gcp.as_ref())
            .map(|g| self.convert_infra_gcp(file, g))
            .unwrap_or_default();
        let cache = org.cache.as_ref().map(|t| self.convert_cache(file, t)).unwrap_or_default();
        let transition = org.migration.as_ref().and_then(|m| m.transition.as_ref());
        let transition_mapping = match transition {
            Some(path) => match path_outside_root(path.get_ref()) {
                Some(problem) => {
                    self.error(file.location(path.span()), format!("transition `{}` {problem}", path.get_ref()));
                    None
                }
                None => Some(path.get_ref().clone()),
            },
            None => None,
        };
        Organisation {
            services,
            administrators,
            gcp,
            cache,
            transition_mapping,
            name: table.name.clone(),
            domain: table.domain.get_ref().to_ascii_lowercase(),
            groups_domain: table.groups_domain.get_ref().to_ascii_lowercase(),
            group_prefix: prefix.map(|p| p.get_ref().clone()).unwrap_or_default(),
            common_dataset: table.common_dataset.as_ref().map(|c| c.get_ref().clone()),
            allowed_member_domains: table
                .allowed_member_domains
                .iter()
                .map(|d| d.get_ref().to_ascii_lowercase())
                .collect(),
            sync,
            name_prefix,
            google,
            azure,
            hail,
            metamist,
        }
    }

    /// Every dataset role `[providers.metamist.main|test]` names must be in roles.toml.
    fn check_metamist_roles(
        &mut self,
        file: &SourceFile,
        org: &files::OrgFile,
        definitions: &Definitions,
        group_names: &BTreeSet<String>,
    ) {
        if self.incomplete.roles {
            return;
        }
        let Some(metamist) = org.providers.as_ref().and_then(|p| p.metamist.as_ref()) else { return };
        if let Some(enabled) = metamist.enabled.as_ref().filter(|e| *e.get_ref()) {
            if metamist.account.is_none() {
                self.error(
                    file.location(enabled.span()),
                    "[providers.metamist] needs `account`, the account the sync signs in to Metamist as: each write replaces a project's whole member list, and the account keeps project_member_admin only if the list names it".to_owned(),
                );
            }
        }
        if let Some(account) = metamist.account.as_ref().filter(|a| !is_valid_email(a.get_ref())) {
            self.error(
                file.location(account.span()),
                format!("account `{}` is not an email address", account.get_ref()),
            );
        }
        if let Some(state) = &metamist.state {
            if let Some(problem) = path_outside_root(state.get_ref()) {
                self.error(file.location(state.span()), format!("state `{}` {problem}", state.get_ref()));
            }
        }
        for (project, table) in [("main", &metamist.main), ("test", &metamist.test)] {
            let listed = metamist_role_lists(table.as_ref());
            for (_, roles) in &listed {
                for entry in roles.iter() {
                    // `group:<name>` names an organisation group; anything else a dataset role.
                    if let Some(group) = entry.get_ref().strip_prefix("group:") {
                        if !group_names.contains(&definitions.org_group_name(group))
                            && !self.incomplete.any_group_names()
                        {
                            let prefix = &definitions.organisation.group_prefix;
                            let known = group_names.iter().map(|g| g.strip_prefix(prefix.as_str()).unwrap_or(g));
                            self.error(file.location(entry.span()), wording::unknown("group", group, known, true));
                        }
                    } else if !definitions.roles.contains_key(entry.get_ref()) {
                        let known = definitions.roles.keys().map(String::as_str);
                        self.error(file.location(entry.span()), wording::unknown("role", entry.get_ref(), known, true));
                    }
                }
            }
            // A default that names a role this organisation lacks would grant nothing in silence.
            let Some(enabled) = metamist.enabled.as_ref().filter(|e| *e.get_ref()) else { continue };
            let defaults = MetamistSettings::default_roles(project == "test");
            for (role, from) in defaults.iter().filter(|(role, _)| !listed.iter().any(|(r, _)| r == role)) {
                let missing: Vec<&str> =
                    from.iter().map(String::as_str).filter(|r| !definitions.roles.contains_key(*r)).collect();
                if !missing.is_empty() {
                    self.error(
                        file.location(enabled.span()),
                        format!(
                            "Metamist's {role} role of the {project} project defaults to {}, but roles.toml does not define {}: list the roles for `{role}` under [providers.metamist.{project}]",
                            joined(from.iter().map(String::as_str), "and"),
                            joined(missing.iter().copied(), "or"),
                        ),
                    );
                }
            }
        }
    }

    /// `[infra.gcp]`: each resource path checked against its shape, located at the value.
    fn convert_infra_gcp(&mut self, file: &SourceFile, table: &files::InfraGcpTable) -> GcpOrganisation {
        let mut path = |value: &Option<Spanned<String>>, kind: &str, located: bool| {
            let value = value.as_ref()?;
            let parsed = resource_path(value.get_ref(), kind, located);
            if parsed.is_none() {
                let shape = if located {
                    format!("projects/<project>/locations/<location>/{kind}/<name>")
                } else {
                    format!("projects/<project>/{kind}/<name>")
                };
                self.error(file.location(value.span()), format!("`{}` is not of the form `{shape}`", value.get_ref()));
            }
            parsed
        };
        let analysis_runner_service = path(&table.analysis_runner_service, "services", true);
        let metadata_service = path(&table.metadata_service, "services", true);
        let analysis_runner_registry = path(&table.analysis_runner_registry, "repositories", true);
        let git_token_secret = path(&table.git_token_secret, "secrets", false);
        let organisation_id = table.organisation_id.as_ref().and_then(|id| {
            let digits = !id.get_ref().is_empty() && id.get_ref().chars().all(|c| c.is_ascii_digit());
            if !digits {
                self.error(
                    file.location(id.span()),
                    format!("organisation_id `{}` is not a Google Cloud organisation id (digits only)", id.get_ref()),
                );
            }
            digits.then(|| id.get_ref().clone())
        });
        GcpOrganisation {
            organisation_id,
            analysis_runner_service,
            metadata_service,
            analysis_runner_registry,
            git_token_secret,
            notebooks_project: table.notebooks_project.as_ref().map(|p| p.get_ref().clone()),
        }
    }

    fn convert_services(&mut self, file: &SourceFile, table: &files::ServicesTable) -> BTreeMap<String, String> {
        let named = [
            ("analysis-runner", &table.analysis_runner),
            ("metadata-server", &table.metadata_server),
            ("web-server", &table.web_server),
            ("cromwell-runner", &table.cromwell_runner),
        ];
        let mut services = BTreeMap::new();
        for (name, email) in named {
            let Some(email) = email else { continue };
            if !is_valid_email(email.get_ref()) {
                self.error(file.location(email.span()), wording::invalid_email(email.get_ref()));
                continue;
            }
            services.insert(name.to_owned(), email.get_ref().to_ascii_lowercase());
        }
        services
    }

    fn convert_cache(&mut self, file: &SourceFile, table: &files::CacheTable) -> CacheSettings {
        let mut settings = CacheSettings::default();
        if let Some(destinations) = &table.destinations {
            settings.destinations.clear();
            for destination in destinations {
                match destination.get_ref().as_str() {
                    "local" => settings.destinations.push(CacheDestination::Local),
                    "gcs" => settings.destinations.push(CacheDestination::Gcs),
                    "azure-blob" => settings.destinations.push(CacheDestination::AzureBlob),
                    other => self.error(
                        file.location(destination.span()),
                        format!("unknown cache destination `{other}`; use `local`, `gcs` or `azure-blob`"),
                    ),
                }
            }
        }
        if let Some(dir) = &table.local_dir {
            match path_outside_root(dir.get_ref()) {
                Some(problem) => {
                    self.error(file.location(dir.span()), format!("local_dir `{}` {problem}", dir.get_ref()))
                }
                None => settings.local_dir = dir.get_ref().clone(),
            }
        }
        settings
    }

    fn convert_provider(
        &mut self,
        file: &SourceFile,
        table: &files::ProviderTable,
        provider: &str,
        default: Nesting,
    ) -> ProviderSettings {
        let nesting = match table.nesting.as_ref().map(|n| (n.get_ref().as_str(), n.span())) {
            None => default,
            Some(("native", _)) => Nesting::Native,
            Some(("flatten", _)) => Nesting::Flatten,
            Some((other, span)) => {
                self.error(file.location(span), format!("unknown nesting `{other}`; use `native` or `flatten`"));
                default
            }
        };
        let group_settings = match &table.group_settings {
            None => GoogleGroupSettings::default(),
            Some(settings) if provider == "google" => self.google_settings(file, settings.get_ref()),
            Some(settings) => {
                let message = format!("group_settings are Google group settings; [providers.{provider}] has none");
                self.error(file.location(settings.span()), message);
                GoogleGroupSettings::default()
            }
        };
        let membership_expiry = match table.membership_expiry.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None => MembershipExpiry::Native,
            Some(("native", _)) if provider == "google" => MembershipExpiry::Native,
            Some(("enforced-by-sync", _)) if provider == "google" => MembershipExpiry::EnforcedBySync,
            Some((_, span)) if provider != "google" => {
                let message = format!("membership_expiry is a Google setting; [providers.{provider}] has none");
                self.error(file.location(span), message);
                MembershipExpiry::Native
            }
            Some((other, span)) => {
                let message = format!("unknown membership_expiry `{other}`; use `native` or `enforced-by-sync`");
                self.error(file.location(span), message);
                MembershipExpiry::Native
            }
        };
        let default_rate = if provider == "google" { RequestRate::GOOGLE } else { RequestRate::AZURE };
        ProviderSettings {
            requests: self.request_rate(file, &table.requests_per_second, &table.request_burst, default_rate),
            membership_expiry,
            group_settings,
            enabled: table.enabled,
            nesting,
            customer_id: table.customer_id.clone(),
            tenant_id: table.tenant_id.clone(),
            endpoint: table.endpoint.clone(),
            concurrency: table.concurrency,
            security_groups: table.security_groups,
        }
    }

    /// A provider's `requests_per_second` and `request_burst` over its default; a rate that is
    /// not a positive finite number, or a burst that is not a positive whole number, is an
    /// error at the value (and the default stands). A rate without a burst gets one second's
    /// worth.
    fn request_rate(
        &mut self,
        file: &SourceFile,
        per_second: &Option<Spanned<f64>>,
        burst: &Option<Spanned<i64>>,
        default: RequestRate,
    ) -> RequestRate {
        let rate = match per_second {
            None => Some(default.requests_per_second()),
            Some(value) if value.get_ref().is_finite() && *value.get_ref() > 0.0 => Some(*value.get_ref()),
            Some(value) => {
                let message = format!(
                    "requests_per_second must be a positive number of requests a second, not {}",
                    value.get_ref()
                );
                self.error(file.location(value.span()), message);
                None
            }
        };
        let burst = match burst {
            None => None,
            Some(value) => match u32::try_from(*value.get_ref()) {
                Ok(burst) if burst > 0 => Some(burst),
                _ => {
                    let message =
                        format!("request_burst must be a positive whole number of requests, not {}", value.get_ref());
                    self.error(file.location(value.span()), message);
                    return default;
                }
            },
        };
        let Some(rate) = rate else { return default };
        let rate = match (burst, per_second) {
            (Some(burst), _) => RequestRate::new(rate, burst),
            (None, Some(_)) => RequestRate::per_second(rate),
            (None, None) => Some(default),
        };
        rate.unwrap_or(default)
    }

    /// Google group settings as the API writes them; a value the API does not take is an
    /// error at the value, naming the ones it takes.
    fn google_settings(&mut self, file: &SourceFile, table: &files::GoogleSettingsTable) -> GoogleGroupSettings {
        let mut settings = GoogleGroupSettings::default();
        for spec in GOOGLE_GROUP_SETTINGS {
            let (choice, flag) = match spec.key {
                "who_can_view_membership" => (table.who_can_view_membership.as_ref(), None),
                "who_can_join" => (table.who_can_join.as_ref(), None),
                "who_can_post_message" => (table.who_can_post_message.as_ref(), None),
                "allow_external_members" => (None, table.allow_external_members),
                "is_archived" => (None, table.is_archived),
                "archive_only" => (None, table.archive_only),
                _ => (None, None),
            };
            if let Some(flag) = flag {
                settings.fields.insert(spec.field.to_owned(), flag.to_string());
            }
            let Some(value) = choice else { continue };
            let written = value.get_ref();
            let allowed: Vec<String> = spec.choices.iter().map(|c| c.to_ascii_lowercase()).collect();
            if allowed.contains(written) {
                settings.fields.insert(spec.field.to_owned(), written.to_ascii_uppercase());
                continue;
            }
            let lowercase = written.to_ascii_lowercase();
            let message = if allowed.contains(&lowercase) {
                format!("write {} values in lowercase: `{lowercase}`, not `{written}`", spec.key)
            } else {
                let kind = format!("{} value", spec.key);
                wording::unknown(&kind, written, allowed.iter().map(String::as_str), true)
            };
            self.error(file.location(value.span()), message);
        }
        // The API refuses NONE_CAN_POST unless the group is archive-only (groupssettings
        // `whoCanPostMessage`).
        if let Some(post) = table.who_can_post_message.as_ref().filter(|p| p.get_ref() == "none_can_post") {
            if table.archive_only != Some(true) {
                let message = "who_can_post_message = \"none_can_post\" needs archive_only = true beside it (Google refuses it otherwise)";
                self.error(file.location(post.span()), message.to_owned());
            }
        }
        settings
    }

    fn convert_people(&mut self, (file, people): &(SourceFile, files::PeopleFile)) -> BTreeMap<String, Person> {
        let mut by_email: HashMap<String, (String, Location)> = HashMap::new();
        let mut converted = BTreeMap::new();
        for (key, table) in &people.people {
            let key_location = file.location(key.span());
            if let Some(problem) = key_problem("person", key.get_ref()) {
                self.error(key_location.clone(), problem);
            }
            let email_location = file.location(table.email.span());
            let email = table.email.get_ref().to_ascii_lowercase();
            if !is_valid_email(&email) {
                self.error(email_location.clone(), wording::invalid_email(table.email.get_ref()));
            }
            if let Some((other, first)) = by_email.get(&email) {
                self.error(
                    email_location.clone(),
                    format!("email `{email}` of `{}` is already used by `{other}` at {first}", key.get_ref()),
                );
            } else {
                by_email.insert(email.clone(), (key.get_ref().clone(), email_location));
            }
            if let Some(google) = &table.google {
                if !is_valid_email(google.get_ref()) {
                    self.error(file.location(google.span()), wording::invalid_email(google.get_ref()));
                }
            }
            if let Some(github) = &table.github {
                if let Some(problem) = github_handle_problem(github.get_ref()) {
                    self.error(file.location(github.span()), problem);
                }
            }
            let person = Person {
                key: key.get_ref().clone(),
                email,
                name: table.name.clone(),
                google: table.google.as_ref().map(|g| g.get_ref().to_ascii_lowercase()),
                azure: table.azure.clone(),
                github: table.github.as_ref().map(|g| g.get_ref().trim_start_matches('@').to_owned()),
                hail_batch: table.hail_batch.clone(),
            };
            converted.insert(person.key.clone(), person);
        }
        converted
    }

    fn convert_roles(
        &mut self,
        (file, roles): &(SourceFile, files::RolesFile),
    ) -> (BTreeMap<String, Role>, DependencyGrants) {
        let mut converted = BTreeMap::new();
        for (name, table) in &roles.roles {
            let location = file.location(name.span());
            if let Some(problem) = key_problem("role", name.get_ref()) {
                self.error(location.clone(), problem);
            }
            if let Some(component) = &table.requires_component {
                self.check_component(file, component);
            }
            let includes = table.includes.iter().map(|i| reference(file, i)).collect();
            let google_settings =
                table.google_settings.as_ref().map(|t| self.google_settings(file, t)).unwrap_or_default();
            let role = Role {
                google_settings,
                name: name.get_ref().clone(),
                description: table.description.clone(),
                includes,
                members: Vec::new(),
                requires_component: table.requires_component.as_ref().map(|c| c.get_ref().clone()),
                location,
            };
            converted.insert(role.name.clone(), role);
        }
        for role in converted.values() {
            for include in &role.includes {
                if !converted.contains_key(&include.name) {
                    let known = converted.keys().map(String::as_str);
                    self.error(include.location.clone(), wording::unknown("role", &include.name, known, true));
                }
            }
        }
        self.check_role_cycles(&converted);
        let mut grants = DependencyGrants::default();
        if let Some(dependencies) = &roles.dependencies {
            let known = |role: &Spanned<String>, loader: &mut Self| {
                let ok = converted.contains_key(role.get_ref());
                if !ok {
                    let known = converted.keys().map(String::as_str);
                    loader.error(file.location(role.span()), wording::unknown("role", role.get_ref(), known, true));
                }
                ok
            };
            for role in &dependencies.shared_roles {
                if known(role, self) {
                    grants.shared_roles.push(role.get_ref().clone());
                }
            }
            for (dependency_role, ours) in &dependencies.readonly {
                let ours: Vec<String> = ours.iter().filter(|r| known(r, self)).map(|r| r.get_ref().clone()).collect();
                if known(dependency_role, self) {
                    grants.readonly.insert(dependency_role.get_ref().clone(), ours);
                }
            }
        }
        (converted, grants)
    }

    fn check_component(&mut self, file: &SourceFile, component: &Spanned<String>) {
        if !KNOWN_COMPONENTS.contains(&component.get_ref().as_str()) {
            self.error(
                file.location(component.span()),
                format!("unknown component `{}`; known: {}", component.get_ref(), KNOWN_COMPONENTS.join(", ")),
            );
        }
    }

    /// Reports each cycle of role `includes` once, at the include that closes it.
    fn check_role_cycles(&mut self, roles: &BTreeMap<String, Role>) {
        let edges: BTreeMap<&str, Vec<(&str, &Location)>> = roles
            .values()
            .map(|r| (r.name.as_str(), r.includes.iter().map(|i| (i.name.as_str(), &i.location)).collect()))
            .collect();
        for cycle in crate::graph::find_cycles(&edges) {
            let path = cycle.names.join(" → ");
            self.error(cycle.closing_edge.clone(), format!("role includes form a cycle: {path}"));
        }
    }

    fn convert_dataset(&mut self, definitions: &Definitions, raw: &RawDataset) -> Option<Dataset> {
        let name_problem = key_problem("dataset", &raw.name);
        if let Some(problem) = &name_problem {
            self.error(raw.location.clone(), problem.clone());
        }
        let (file, table) = raw.dataset.as_ref()?;
        for component in &table.components {
            self.check_component(file, component);
        }
        let mut components: BTreeSet<String> = table.components.iter().map(|c| c.get_ref().clone()).collect();
        // Hail Query on Dataproc runs as the hail accounts: like the old system, which enabled
        // every component by default, a dataset with the hail accounts gets `spark` too.
        if components.contains("hail") {
            components.insert("spark".to_owned());
        }
        // One error per dataset at most: a bad name makes every one of its groups bad.
        let roles = definitions.roles.values().filter(|role| definitions.dataset_has_role_given(&components, role));
        for role in roles {
            if name_problem.is_some() {
                break;
            }
            let unprefixed = format!("{}-{}", raw.name, role.name);
            if let Some(problem) = self.group_name_problem(definitions, &unprefixed) {
                self.error(raw.location.clone(), format!("dataset `{}` gives an invalid group: {problem}", raw.name));
                break;
            }
        }
        // Located at the key: that is what a wrong import gets wrong.
        let imports = table
            .imports
            .iter()
            .map(|(k, v)| {
                (k.get_ref().clone(), Reference { name: v.get_ref().clone(), location: file.location(k.span()) })
            })
            .collect();
        Some(Dataset {
            name: raw.name.clone(),
            description: table.description.clone(),
            components,
            depends_on: table.depends_on.iter().map(|d| reference(file, d)).collect(),
            depends_on_readonly: table.depends_on_readonly.iter().map(|d| reference(file, d)).collect(),
            gcp: table.gcp.as_ref().map(|g| GcpSettings {
                project: g.project.get_ref().clone(),
                region: g.region.clone(),
                project_location: file.location(g.project.span()),
                autoclass: g.autoclass,
                create_in: g.create_in.as_ref().and_then(|parent| self.project_parent(file, parent)),
            }),
            azure: table.azure.as_ref().map(|a| AzureSettings {
                subscription: a.subscription.get_ref().clone(),
                region: a.region.clone(),
                billing_currency: a.billing_currency.clone(),
            }),
            budgets: table.budget.as_ref().map(|b| self.budgets(file, table, b)).unwrap_or_default(),
            imports,
            members: BTreeMap::new(),
            review_every: table.review_every.as_ref().and_then(|every| self.review_interval(file, every)),
            last_review: raw.review.as_ref().and_then(|(file, record)| self.review_record(file, record)),
            location: raw.location.clone(),
        })
    }

    /// `review_every`: a positive number of days or weeks.
    fn review_interval(&mut self, file: &SourceFile, every: &Spanned<String>) -> Option<(i64, Location)> {
        let location = file.location(every.span());
        match super::parse_day_count(every.get_ref()) {
            Some(days) if days > 0 => Some((days, location)),
            _ => {
                let message = format!(
                    "review_every `{}` is not a duration: use days or weeks, like \"180d\" or \"26w\"",
                    every.get_ref()
                );
                self.error(location, message);
                None
            }
        }
    }

    /// `review.toml`: a date, a full commit id and who prepared it.
    fn review_record(&mut self, file: &SourceFile, record: &files::ReviewFile) -> Option<ReviewRecord> {
        let reviewed_on = self.date(file, &record.reviewed_on, "reviewed_on");
        let revision = record.revision.get_ref();
        let is_commit = revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit());
        if !is_commit {
            let message = format!("revision must be a full commit id (40 hex digits), not `{revision}`");
            self.error(file.location(record.revision.span()), message);
        }
        if record.prepared_by.get_ref().trim().is_empty() {
            self.error(file.location(record.prepared_by.span()), "prepared_by must name who prepared the review");
        }
        Some(ReviewRecord {
            reviewed_on: reviewed_on?,
            revision: revision.clone(),
            prepared_by: record.prepared_by.get_ref().clone(),
            location: file.location(record.reviewed_on.span()),
        })
        .filter(|_| is_commit)
    }

    /// Dependencies name existing datasets and form no cycle (the implicit dependency on the
    /// common dataset included).
    fn check_dataset_references(&mut self, definitions: &Definitions, common_location: Option<Location>) {
        let known = |name: &str, loader: &Self| {
            definitions.datasets.contains_key(name) || loader.incomplete.datasets.contains(name)
        };
        let common = definitions.organisation.common_dataset.as_ref().zip(common_location.as_ref());
        if let Some((common, location)) = common {
            if !known(common, self) {
                self.error(location.clone(), format!("common dataset `{common}` does not exist"));
            }
        }
        let mut graph: BTreeMap<&str, Vec<(&str, &Location)>> = BTreeMap::new();
        for dataset in definitions.datasets.values() {
            let edges = graph.entry(&dataset.name).or_default();
            for dependency in dataset.depends_on.iter().chain(&dataset.depends_on_readonly) {
                if dependency.name == dataset.name {
                    self.error(dependency.location.clone(), format!("dataset `{}` depends on itself", dataset.name));
                } else if !known(&dependency.name, self) {
                    self.error(dependency.location.clone(), format!("unknown dataset `{}`", dependency.name));
                } else {
                    edges.push((&dependency.name, &dependency.location));
                }
            }
            for readonly in &dataset.depends_on_readonly {
                if dataset.depends_on.iter().any(|d| d.name == readonly.name) {
                    self.error(
                        readonly.location.clone(),
                        format!("dataset `{}` is in both depends_on and depends_on_readonly", readonly.name),
                    );
                }
            }
            if let Some((common, location)) = common {
                if *common != dataset.name {
                    edges.push((common, location));
                }
            }
        }
        for cycle in crate::graph::find_cycles(&graph) {
            let path = cycle.names.join(" → ");
            self.error(cycle.closing_edge.clone(), format!("datasets depend on each other in a cycle: {path}"));
        }
    }

    /// Every group name in the organisation; reports organisation groups defined twice or
    /// colliding with a dataset's role group.
    fn all_group_names(
        &mut self,
        definitions: &Definitions,
        group_files: &[(SourceFile, files::GroupsFile)],
    ) -> BTreeSet<String> {
        let mut dataset_groups: BTreeMap<String, (String, String)> = BTreeMap::new();
        for dataset in definitions.datasets.values() {
            for role in definitions.roles.keys() {
                if definitions.dataset_has_role(dataset, role) {
                    let full = definitions.dataset_group_name(&dataset.name, role);
                    // Two datasets whose derived names meet (`a-test` + `full`, `a` +
                    // `test-full`) would silently share one group in every directory.
                    if let Some((other, other_role)) = dataset_groups.get(&full) {
                        let first = &definitions.datasets[other].location;
                        self.error(
                            dataset.location.clone(),
                            format!(
                                "group `{full}` would be both the `{role}` group of dataset `{}` and the \
                                 `{other_role}` group of dataset `{other}` ({first}); rename one of the datasets",
                                dataset.name
                            ),
                        );
                        continue;
                    }
                    dataset_groups.insert(full, (dataset.name.clone(), role.clone()));
                }
            }
        }
        self.app_project_collisions(definitions);
        let mut names: BTreeSet<String> = dataset_groups.keys().cloned().collect();
        let mut defined: BTreeMap<String, Location> = BTreeMap::new();
        for (file, groups_file) in group_files {
            for name in groups_file.groups.keys() {
                let location = file.location(name.span());
                if let Some(problem) = key_problem("group", name.get_ref()) {
                    self.error(location.clone(), problem);
                    continue;
                }
                let full = definitions.org_group_name(name.get_ref());
                if let Some(problem) = self.group_name_problem(definitions, name.get_ref()) {
                    self.error(location.clone(), problem);
                }
                if let Some(first) = defined.get(name.get_ref()) {
                    self.error(location, format!("group `{}` is already defined at {first}", name.get_ref()));
                    continue;
                }
                if let Some((dataset, role)) = dataset_groups.get(&full) {
                    self.error(
                        location.clone(),
                        format!("group `{full}` collides with the `{role}` group of dataset `{dataset}`"),
                    );
                }
                defined.insert(name.get_ref().clone(), location);
                names.insert(full);
            }
        }
        names
    }

    /// Metamist names two projects per dataset, `<dataset>` and `<dataset>-test`: a dataset
    /// named like another's test project would share it.
    fn app_project_collisions(&mut self, definitions: &Definitions) {
        let mut projects: BTreeMap<String, &str> = BTreeMap::new();
        for dataset in definitions.datasets.values().filter(|d| d.components.contains("metamist")) {
            for project in [dataset.name.clone(), format!("{}-test", dataset.name)] {
                if let Some(other) = projects.insert(project.clone(), &dataset.name) {
                    let (first, second) = (&definitions.datasets[other], dataset);
                    self.error(
                        second.location.clone(),
                        format!(
                            "Metamist project `{project}` would belong to both dataset `{}` and dataset `{}` ({}); \
                             rename one of the datasets",
                            second.name, first.name, first.location
                        ),
                    );
                }
            }
        }
    }

    /// Why the group `unprefixed` (with the organisation's prefix) cannot exist. A name that is
    /// fine without the prefix is the prefix's fault: it is noted for one error at the setting.
    fn group_name_problem(&mut self, definitions: &Definitions, unprefixed: &str) -> Option<String> {
        let problem = group_name_problem(&definitions.org_group_name(unprefixed))?;
        if group_name_problem(unprefixed).is_none() {
            let longest = self.too_long_for_prefix.get_or_insert_with(String::new);
            if unprefixed.len() > longest.len() {
                *longest = unprefixed.to_owned();
            }
            return None;
        }
        Some(problem)
    }

    /// The one error for a group prefix that makes names invalid, at the setting.
    fn report_prefix(&mut self, definitions: &Definitions, raw: &RawFiles) {
        let Some(longest) = self.too_long_for_prefix.take() else {
            return;
        };
        let Some((file, org)) = &raw.org else {
            return;
        };
        let Some(prefix) = &org.organisation.group_prefix else {
            return;
        };
        let full = definitions.org_group_name(&longest);
        let room = MAX_GROUP_NAME_LEN.saturating_sub(longest.len());
        let problem = group_name_problem(&full).unwrap_or_default();
        self.error(
            file.location(prefix.span()),
            format!(
                "group prefix `{}` makes group names invalid: {problem}; the longest name here, `{longest}`, leaves room for a prefix of {room} characters",
                prefix.get_ref()
            ),
        );
    }

    /// The budget of each cloud. `[budget]` amounts serve a dataset on one cloud; a dataset on
    /// several declares `[budget.gcp]` and `[budget.azure]`, because one amount would be
    /// spent in full on each cloud.
    fn budgets(
        &mut self,
        file: &SourceFile,
        dataset: &files::DatasetFile,
        table: &files::BudgetTable,
    ) -> BTreeMap<String, Budget> {
        let thresholds = |loader: &mut Self, list: &[Spanned<f64>]| -> Vec<f64> {
            list.iter().filter_map(|t| loader.positive(file, t, "alert threshold")).collect()
        };
        let shared_thresholds = thresholds(self, &table.alert_thresholds);
        let clouds: Vec<&str> = [("gcp", dataset.gcp.is_some()), ("azure", dataset.azure.is_some())]
            .iter()
            .filter(|c| c.1)
            .map(|c| c.0)
            .collect();
        let mut budgets = BTreeMap::new();
        let top_amount = table.monthly.as_ref().or(table.fixed.as_ref());
        let per_cloud = [("gcp", &table.gcp), ("azure", &table.azure)];
        if let Some(amount) = top_amount {
            if per_cloud.iter().any(|(_, t)| t.is_some()) {
                let message = "set budget amounts in [budget] or per cloud in [budget.gcp] / [budget.azure], not both";
                self.error(file.location(amount.span()), message);
            } else if clouds.len() > 1 {
                let message = format!(
                    "this dataset is on {}: one [budget] amount would be spent in full on each; declare [budget.gcp] and [budget.azure]",
                    clouds.join(" and ")
                );
                self.error(file.location(amount.span()), message);
            } else if let Some(cloud) = clouds.first() {
                let budget = Budget {
                    monthly: table.monthly.as_ref().and_then(|amount| self.positive(file, amount, "monthly")),
                    fixed: table.fixed.as_ref().and_then(|amount| self.positive(file, amount, "fixed")),
                    fixed_start: table.fixed_start.as_ref().and_then(|start| self.date(file, start, "fixed_start")),
                    currency: table.currency.clone(),
                    alert_thresholds: shared_thresholds.clone(),
                };
                budgets.insert((*cloud).to_owned(), budget);
            }
        }
        for (cloud, per) in per_cloud {
            let Some(per) = per else { continue };
            if !clouds.contains(&cloud) {
                self.error(file.location(per.span()), format!("[budget.{cloud}] for a dataset that is not on {cloud}"));
                continue;
            }
            let per = per.get_ref();
            let budget = Budget {
                monthly: per.monthly.as_ref().and_then(|amount| self.positive(file, amount, "monthly")),
                fixed: per.fixed.as_ref().and_then(|amount| self.positive(file, amount, "fixed")),
                fixed_start: per.fixed_start.as_ref().and_then(|start| self.date(file, start, "fixed_start")),
                currency: per.currency.clone().or(table.currency.clone()),
                alert_thresholds: match &per.alert_thresholds {
                    Some(list) => thresholds(self, list),
                    None => shared_thresholds.clone(),
                },
            };
            budgets.insert(cloud.to_owned(), budget);
        }
        budgets
    }

    /// `folders/<digits>` or `organizations/<digits>`, or an error at its location.
    fn project_parent(&mut self, file: &SourceFile, parent: &Spanned<String>) -> Option<String> {
        let text = parent.get_ref();
        let id = text.strip_prefix("folders/").or_else(|| text.strip_prefix("organizations/"));
        if id.is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())) {
            return Some(text.clone());
        }
        let message = format!("create_in must be `folders/<number>` or `organizations/<number>`, not `{text}`");
        self.error(file.location(parent.span()), message);
        None
    }

    /// A finite number above zero, or an error at its location (`nan`, `inf` and negative
    /// amounts are valid TOML but no budget).
    fn positive(&mut self, file: &SourceFile, value: &Spanned<f64>, what: &str) -> Option<f64> {
        let number = *value.get_ref();
        if number.is_finite() && number > 0.0 {
            return Some(number);
        }
        self.error(file.location(value.span()), format!("{what} must be a number above 0, not {number}"));
        None
    }

    /// A TOML date (no time), or an error at its location.
    fn date(&mut self, file: &SourceFile, value: &Spanned<toml::value::Datetime>, key: &str) -> Option<Date> {
        match (value.get_ref().date, value.get_ref().time) {
            (Some(d), None) => Some(Date { year: d.year, month: d.month, day: d.day }),
            _ => {
                let message = format!("{key} must be a date like 2027-01-31, not `{}`", value.get_ref());
                self.error(file.location(value.span()), message);
                None
            }
        }
    }

    fn resolve_grants(
        &mut self,
        resolver: &MemberResolver,
        file: &SourceFile,
        entries: &[Spanned<MemberEntry>],
    ) -> Vec<Grant> {
        let mut grants = Vec::with_capacity(entries.len());
        let mut seen = BTreeSet::new();
        for entry in entries {
            let location = file.location(entry.span());
            let entry = entry.get_ref();
            let expires = match &entry.expires {
                None => None,
                Some(datetime) => match datetime.date {
                    Some(d) if datetime.time.is_none() => Some(Date { year: d.year, month: d.month, day: d.day }),
                    _ => {
                        self.error(
                            location.clone(),
                            format!("expires must be a date like 2027-01-31, not `{datetime}`"),
                        );
                        None
                    }
                },
            };
            match resolver.resolve(&entry.member) {
                Ok(Some(member)) => {
                    if !seen.insert(member.clone()) {
                        self.error(location, format!("`{}` is listed twice", entry.member));
                        continue;
                    }
                    grants.push(Grant { member, expires, location });
                }
                Ok(None) => {}
                Err(message) => self.error(location, message),
            }
        }
        grants
    }
}

/// Why a path written in the definitions could leave the definitions root, if it could.
/// A project's role mapping: each role the table lists replaces its default.
fn metamist_roles(table: Option<&files::MetamistRolesTable>, test: bool) -> BTreeMap<String, Vec<String>> {
    let mut roles = MetamistSettings::default_roles(test);
    for (role, listed) in metamist_role_lists(table) {
        roles.insert(role.to_owned(), listed.iter().map(|r| r.get_ref().clone()).collect());
    }
    roles
}

/// `a`, `b` and `c` (or `or`).
fn joined<'a>(names: impl Iterator<Item = &'a str>, last_word: &str) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} {last_word} {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn metamist_role_lists(table: Option<&files::MetamistRolesTable>) -> Vec<(&'static str, &Vec<Spanned<String>>)> {
    let Some(table) = table else { return Vec::new() };
    [
        ("reader", &table.reader),
        ("contributor", &table.contributor),
        ("writer", &table.writer),
        ("project_admin", &table.project_admin),
        ("project_member_admin", &table.project_member_admin),
    ]
    .into_iter()
    .filter_map(|(role, listed)| listed.as_ref().map(|l| (role, l)))
    .collect()
}

fn path_outside_root(path: &str) -> Option<&'static str> {
    let path = std::path::Path::new(path);
    if path.has_root() || path.is_absolute() {
        return Some("must be relative to the definitions root, not absolute");
    }
    if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Some("must stay inside the definitions root (no `..`)");
    }
    None
}

/// Cloud names join the prefix to others with `-` where they can, and without a separator
/// where only letters and digits are allowed (Azure storage accounts), so it has neither.
fn is_name_prefix(prefix: &str) -> bool {
    prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Markdown files document the definitions; they are the one kind of file loading ignores.
fn is_documentation(entry: &Entry) -> bool {
    entry.is_file() && entry.name.ends_with(".md")
}

impl Definitions {
    fn dataset_has_role_given(&self, components: &BTreeSet<String>, role: &Role) -> bool {
        role.requires_component.as_ref().is_none_or(|c| components.contains(c))
    }
}

/// `projects/<p>/locations/<l>/<kind>/<n>` (or without the location), every part non-empty.
fn resource_path(text: &str, kind: &str, located: bool) -> Option<GcpResourcePath> {
    let parts: Vec<&str> = text.split('/').collect();
    let ok = |part: &&str| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match parts.as_slice() {
        ["projects", project, "locations", location, k, name] if located && *k == kind => {
            [project, location, name].iter().all(|p| ok(p)).then(|| GcpResourcePath {
                project: (*project).to_owned(),
                location: (*location).to_owned(),
                name: (*name).to_owned(),
            })
        }
        ["projects", project, k, name] if !located && *k == kind => [project, name].iter().all(|p| ok(p)).then(|| {
            GcpResourcePath { project: (*project).to_owned(), location: String::new(), name: (*name).to_owned() }
        }),
        _ => None,
    }
}

fn reference(file: &SourceFile, value: &Spanned<String>) -> Reference {
    Reference { name: value.get_ref().clone(), location: file.location(value.span()) }
}

/// Turns the text of a member entry into a `MemberRef`.
/// `Ok(None)` means the reference cannot be checked because its target file failed to load.
struct MemberResolver<'a> {
    people: &'a BTreeMap<String, Person>,
    people_by_email: HashMap<&'a str, &'a str>,
    /// Full names of every group; references name groups without the prefix.
    group_names: &'a BTreeSet<String>,
    group_prefix: &'a str,
    /// Addresses here are groups': as a plain email one would count as one account while
    /// everyone in it gets the access, unseen by the diff.
    groups_domain: &'a str,
    allowed_domains: &'a [String],
    lenient_people: bool,
    lenient_groups: bool,
}

impl MemberResolver<'_> {
    /// A group's address written as a plain email: refused in favour of `group:`, which the
    /// diff expands into the people it brings.
    fn group_address_problem(&self, email: &str) -> Option<String> {
        let (local, domain) = email.rsplit_once('@')?;
        let groups_domain = self.groups_domain.to_ascii_lowercase();
        let in_groups_domain = domain == groups_domain || domain.ends_with(&format!(".{groups_domain}"));
        if !in_groups_domain {
            return None;
        }
        Some(match local.strip_prefix(self.group_prefix).filter(|_| self.group_names.contains(local)) {
            Some(name) => format!(
                "`{email}` is the address of group `{name}`: write `group:{name}`, so the diff shows the people it brings"
            ),
            None => format!(
                "`{email}` is an address in the groups domain `{}`: a group can be a member only as `group:<name>` \
                 of a group the definitions define",
                self.groups_domain
            ),
        })
    }

    fn resolve(&self, text: &str) -> Result<Option<MemberRef>, String> {
        if let Some(group) = text.strip_prefix("group:") {
            let full = format!("{}{group}", self.group_prefix);
            return if self.group_names.contains(&full) {
                Ok(Some(MemberRef::Group(full)))
            } else if self.lenient_groups {
                Ok(None)
            } else {
                let known = self.group_names.iter().filter_map(|g| g.strip_prefix(self.group_prefix));
                Err(wording::unknown("group", group, known, false))
            };
        }
        if text.contains('@') {
            let email = text.to_ascii_lowercase();
            if !is_valid_email(&email) {
                return Err(wording::invalid_email(text));
            }
            if let Some(problem) = self.group_address_problem(&email) {
                return Err(problem);
            }
            if let Some(key) = self.people_by_email.get(email.as_str()) {
                return Ok(Some(MemberRef::Person((*key).to_owned())));
            }
            if self.lenient_people {
                return Ok(None);
            }
            if !domain_allowed(&email, self.allowed_domains) {
                return Err(format!(
                    "email `{text}` is not a known person and its domain is not in allowed_member_domains"
                ));
            }
            return Ok(Some(MemberRef::Email(email)));
        }
        if self.people.contains_key(text) {
            Ok(Some(MemberRef::Person(text.to_owned())))
        } else if self.lenient_people {
            Ok(None)
        } else {
            Err(wording::unknown("person", text, self.people.keys().map(String::as_str), false))
        }
    }
}
