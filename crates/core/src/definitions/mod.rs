//! Typed, validated definitions: people, roles, organisation groups and datasets.
//!
//! Owns reading the TOML files (from a directory or a Git tree) and every check that can be
//! made on them. Never expands groups (that is `hierarchy`) and never talks to a directory.
//! A `Definitions` value exists only if validation found no error.

mod diagnostic;
mod files;
mod group_settings;
mod names;
mod parse_cache;
mod request_rate;
mod source;
mod validate;
mod wording;

use std::collections::{BTreeMap, BTreeSet};

pub use diagnostic::{Diagnostic, Diagnostics, Location};
pub use group_settings::{GoogleGroupSettings, SettingSpec, GOOGLE_GROUP_SETTINGS};
pub use names::{domain_allowed, github_handle_problem, group_name_problem, is_valid_email, KNOWN_COMPONENTS};
pub use parse_cache::ParseCache;
pub use request_rate::RequestRate;
pub use source::{decode_utf8, DirSource, Entry, EntryKind, GitSource, OverlaySource, Source, SourceError};
pub use wording::unknown;

use thiserror::Error;

/// Why definitions could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{count} error(s) in definitions:\n{0}", count = .0.len())]
    Invalid(Diagnostics),
}

/// Reads and validates every definitions file under `source`.
pub fn load(source: &dyn Source) -> Result<Definitions, LoadError> {
    validate::load(source, None)
}

/// Like `load`, taking files already parsed from `cache` and keeping the ones it parses
/// there; for loading several revisions that share most of their files.
pub fn load_with_cache(source: &dyn Source, cache: &ParseCache) -> Result<Definitions, LoadError> {
    validate::load(source, Some(cache))
}

/// The whole validated organisation.
#[derive(Debug, Clone)]
pub struct Definitions {
    pub organisation: Organisation,
    pub people: BTreeMap<String, Person>,
    pub roles: BTreeMap<String, Role>,
    pub dependency_grants: DependencyGrants,
    pub groups: BTreeMap<String, OrgGroup>,
    pub datasets: BTreeMap<String, Dataset>,
}

impl Definitions {
    /// The full name of a dataset's role group, e.g. `tob-wgs-analysis`.
    pub fn dataset_group_name(&self, dataset: &str, role: &str) -> String {
        format!("{}{dataset}-{role}", self.organisation.group_prefix)
    }

    /// Every grant of a role written in the definitions: dataset members and role-level members
    /// (organisation groups' members are not grants of a role).
    pub fn role_grants(&self) -> impl Iterator<Item = &Grant> {
        let datasets = self.datasets.values().flat_map(|d| d.members.values().flatten());
        datasets.chain(self.roles.values().flat_map(|r| r.members.iter()))
    }

    /// The full name of an organisation group.
    pub fn org_group_name(&self, group: &str) -> String {
        format!("{}{group}", self.organisation.group_prefix)
    }

    /// The email of a group with the given full name.
    pub fn group_email(&self, full_name: &str) -> String {
        format!("{full_name}@{}", self.organisation.groups_domain)
    }

    /// Whether a dataset gets a group for this role (roles may require a component).
    pub fn dataset_has_role(&self, dataset: &Dataset, role: &str) -> bool {
        match self.roles.get(role) {
            Some(role) => match &role.requires_component {
                Some(component) => dataset.components.contains(component),
                None => true,
            },
            None => false,
        }
    }

    /// Each person's Google account, by their email, for those whose Google account is not
    /// their email: what Google and the services signed in to with Google know them by.
    pub fn google_accounts(&self) -> std::collections::HashMap<String, String> {
        self.people.values().filter_map(|p| p.google.clone().map(|google| (p.email.clone(), google))).collect()
    }

    /// Looks a person up by key or (case-insensitively) by email.
    pub fn find_person(&self, key_or_email: &str) -> Option<&Person> {
        if let Some(person) = self.people.get(key_or_email) {
            return Some(person);
        }
        let wanted = key_or_email.to_ascii_lowercase();
        self.people.values().find(|p| p.email == wanted)
    }
}

/// Settings from `groups/org.toml`.
#[derive(Debug, Clone)]
pub struct Organisation {
    pub name: String,
    pub domain: String,
    pub groups_domain: String,
    pub group_prefix: String,
    /// A dataset every other dataset implicitly depends on.
    pub common_dataset: Option<String>,
    /// Domains raw member emails may use; empty allows none.
    pub allowed_member_domains: Vec<String>,
    pub sync: SyncSettings,
    /// `[infra] name_prefix`: put in front of every cloud name that must be unique across all
    /// organisations (GCS buckets, Azure storage accounts, key vaults, registries) and of the
    /// other names cpg-infra creates in a cloud. Located at the setting.
    pub name_prefix: Option<Reference>,
    pub google: Option<ProviderSettings>,
    pub azure: Option<ProviderSettings>,
    pub hail: Option<HailSettings>,
    pub metamist: Option<MetamistSettings>,
    /// `[services]`: service name (`analysis-runner`, `metadata-server`, `web-server`) → the
    /// lowercased email of its Google service account.
    pub services: BTreeMap<String, String>,
    /// `[infra] administrators`: the organisation group whose members may request
    /// time-limited, approved write access to a dataset's main bucket (never held permanently).
    pub administrators: Option<Reference>,
    /// `[infra.gcp]`: existing Google Cloud resources of the organisation's services.
    pub gcp: GcpOrganisation,
    pub cache: CacheSettings,
    /// `[migration] transition`: the mapping file (relative to the root) whose old groups the
    /// sync nests into their new groups until they are retired.
    pub transition_mapping: Option<String>,
}

/// `[infra.gcp]`: the organisation's existing Google Cloud resources that dataset workloads
/// use; the infrastructure grants access to them and never manages them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpOrganisation {
    /// The numeric organisation id: custom roles and the privileged-access service agent.
    pub organisation_id: Option<String>,
    /// The analysis runner's Cloud Run service, which analysts invoke.
    pub analysis_runner_service: Option<GcpResourcePath>,
    /// The metadata server's (Metamist's) Cloud Run service.
    pub metadata_service: Option<GcpResourcePath>,
    /// The Artifact Registry repository of the analysis runner's driver images.
    pub analysis_runner_registry: Option<GcpResourcePath>,
    /// The Secret Manager secret holding the token jobs clone the analysis repository with.
    pub git_token_secret: Option<GcpResourcePath>,
    /// The project notebooks run in.
    pub notebooks_project: Option<String>,
}

/// A resource named by its path: `projects/<project>[/locations/<location>]/<kind>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpResourcePath {
    pub project: String,
    /// Empty for resources without a location (secrets).
    pub location: String,
    pub name: String,
}

/// Where `groups sync` writes the members cache; the defaults live here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    pub destinations: Vec<CacheDestination>,
    /// The local destination's folder, relative to the definitions root.
    pub local_dir: String,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings { destinations: vec![CacheDestination::Local], local_dir: ".cpg-infra/members-cache".to_owned() }
    }
}

/// A members-cache destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CacheDestination {
    /// A folder under the definitions root.
    Local,
    /// The organisation's members-cache bucket on Google Cloud Storage.
    Gcs,
    /// The organisation's members-cache container in Azure Blob storage.
    AzureBlob,
}

/// Safety settings of `groups sync`; the defaults live here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Most member removals one run may make without `--allow-mass-removal`.
    pub max_removals: usize,
    /// Largest share of one group's members one run may remove, in percent.
    pub max_removal_percent: u8,
    /// The local directory's state file, relative to the definitions root.
    pub state_file: String,
    /// Full names (prefix included; the file names them without it) of groups, e.g.
    /// administrators, no run may remove members from without `--allow-mass-removal`.
    pub pinned_groups: Vec<String>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            max_removals: 100,
            max_removal_percent: 50,
            state_file: ".cpg-infra/directory.json".to_owned(),
            pinned_groups: Vec::new(),
        }
    }
}

/// How a provider represents a group that contains groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Groups are members of groups.
    Native,
    /// Every group lists its transitive people directly.
    Flatten,
}

/// `[providers.hail]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HailSettings {
    pub enabled: bool,
    pub endpoint: Option<String>,
    pub auth_endpoint: Option<String>,
    pub aggregator: Option<String>,
    /// `{dataset}` and `{level}` are replaced.
    pub account_usernames: String,
    /// How fast the sync may send requests (`requests_per_second`, `request_burst`).
    pub requests: RequestRate,
}

/// `[providers.metamist]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetamistSettings {
    pub enabled: bool,
    pub endpoint: Option<String>,
    pub audience: Option<String>,
    /// The account the sync signs in as; written with `project_member_admin` into every
    /// project (required when enabled).
    pub account: Option<String>,
    /// The state file of the lists last written, relative to the root.
    pub state_file: String,
    /// How fast the sync may send requests (`requests_per_second`, `request_burst`).
    pub requests: RequestRate,
    /// The dataset's project: Metamist role → what holds it: dataset roles (their groups'
    /// effective members) and `group:<name>` organisation groups.
    pub main: BTreeMap<String, Vec<String>>,
    /// The dataset's `-test` project, the same way.
    pub test: BTreeMap<String, Vec<String>>,
}

/// Every project role Metamist knows (metamist models/models/project.py `ProjectMemberRole`).
/// The sync writes a project's whole list, so it decides every one of them.
pub const METAMIST_ROLES: [&str; 5] = ["reader", "contributor", "writer", "project_admin", "project_member_admin"];

/// Where the Metamist lists last written are kept when `[providers.metamist] state` is not set.
pub const METAMIST_DEFAULT_STATE: &str = ".cpg-infra/metamist-lists.jsonl";

impl MetamistSettings {
    /// The old system's mapping: people with metadata access read the project and write
    /// its test project; machine accounts that create main data write the main project.
    pub fn default_roles(test: bool) -> BTreeMap<String, Vec<String>> {
        // The old system gave the admin roles through Metamist's own admin groups, never in a
        // project's list: by default nobody but `account` holds them in the list.
        let roles: [(&str, &[&str]); 5] = if test {
            [
                ("reader", &["metadata-access", "test-read"]),
                ("contributor", &["metadata-contribute", "full"]),
                ("writer", &["metadata-access", "test-full"]),
                ("project_admin", &[]),
                ("project_member_admin", &[]),
            ]
        } else {
            // The old system's: the test levels read the main project, `full` holds every role.
            [
                ("reader", &["metadata-access", "main-read", "test-read"]),
                ("contributor", &["metadata-contribute", "full"]),
                ("writer", &["metadata-write", "main-create"]),
                ("project_admin", &[]),
                ("project_member_admin", &[]),
            ]
        };
        roles.iter().map(|(role, from)| ((*role).to_owned(), from.iter().map(|r| (*r).to_owned()).collect())).collect()
    }
}

/// One directory provider's settings.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub enabled: bool,
    pub nesting: Nesting,
    pub customer_id: Option<String>,
    pub tenant_id: Option<String>,
    pub endpoint: Option<String>,
    pub concurrency: Option<usize>,
    /// How fast the sync may send requests (`requests_per_second`, `request_burst`), shared
    /// by all of a run's concurrent requests to this provider.
    pub requests: RequestRate,
    /// Google: label created groups as security groups too (usable in IAM conditions).
    pub security_groups: bool,
    /// Google: `[providers.google.group_settings]`, the settings of every owned group unless
    /// the group's own `google_settings` says otherwise; empty when not configured.
    pub group_settings: GoogleGroupSettings,
    /// Google: who ends a time-limited grant.
    pub membership_expiry: MembershipExpiry,
}

/// Who ends a time-limited grant in Google: Cloud Identity itself (membership expiry exists
/// only on Workspace Enterprise / Education and Cloud Identity Premium), or the sync, which
/// leaves expired grants out of the desired state and so removes them when it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MembershipExpiry {
    #[default]
    Native,
    EnforcedBySync,
}

/// A person from `groups/people.toml`.
#[derive(Debug, Clone)]
pub struct Person {
    pub key: String,
    /// Lowercased primary email.
    pub email: String,
    pub name: Option<String>,
    /// Google account email, when it differs from `email`.
    pub google: Option<String>,
    /// Azure AD object id or user principal name.
    pub azure: Option<String>,
    /// GitHub user name, without `@` (for CODEOWNERS).
    pub github: Option<String>,
    /// Hail Batch username.
    pub hail_batch: Option<String>,
}

/// A role of the per-dataset template in `groups/roles.toml`.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub description: String,
    /// Roles whose groups are members of this role's group.
    pub includes: Vec<Reference>,
    /// Members every dataset's group for this role gets.
    pub members: Vec<Grant>,
    /// The role exists only for datasets with this component.
    pub requires_component: Option<String>,
    /// Google group settings of this role's group in every dataset, over the organisation's.
    pub google_settings: GoogleGroupSettings,
    pub location: Location,
}

/// A name written somewhere in the definitions, with where it was written.
#[derive(Debug, Clone)]
pub struct Reference {
    pub name: String,
    pub location: Location,
}

/// How dependencies between datasets grant access (data in `roles.toml`, not code).
#[derive(Debug, Clone, Default)]
pub struct DependencyGrants {
    /// With `depends_on = ["ref"]`, `ref-<role>` includes this dataset's `<role>`.
    pub shared_roles: Vec<String>,
    /// With `depends_on_readonly = ["ref"]`, `ref-<key>` includes this dataset's listed roles.
    pub readonly: BTreeMap<String, Vec<String>>,
}

/// One membership written in the definitions.
#[derive(Debug, Clone)]
pub struct Grant {
    pub member: MemberRef,
    pub expires: Option<Date>,
    pub location: Location,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberRef {
    /// A person key from `people.toml`.
    Person(String),
    /// A group by full name (`group:<name>` in the files).
    Group(String),
    /// A raw email, e.g. a machine account, from an allowed domain.
    Email(String),
}

/// An organisation-wide group.
#[derive(Debug, Clone)]
pub struct OrgGroup {
    pub name: String,
    pub description: String,
    pub members: Vec<Grant>,
    /// Google group settings of this group, over the organisation's.
    pub google_settings: GoogleGroupSettings,
    pub location: Location,
}

/// A dataset from `datasets/<name>/`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub description: String,
    pub components: BTreeSet<String>,
    pub depends_on: Vec<Reference>,
    pub depends_on_readonly: Vec<Reference>,
    pub gcp: Option<GcpSettings>,
    pub azure: Option<AzureSettings>,
    /// Cloud (`gcp`, `azure`) → its budget: each cloud gets its own amount, never the whole
    /// dataset's on each.
    pub budgets: BTreeMap<String, Budget>,
    /// Logical resource name → existing cloud resource id, to adopt (located at the name).
    pub imports: BTreeMap<String, Reference>,
    /// Role → grants from `members.toml`.
    pub members: BTreeMap<String, Vec<Grant>>,
    /// `review_every` in dataset.toml: days between recertifications, where it is written.
    pub review_every: Option<(i64, Location)>,
    /// The last recertification (`review.toml`), `None` before the first.
    pub last_review: Option<ReviewRecord>,
    pub location: Location,
}

/// Where a dataset's last review record is, relative to the definitions root.
pub fn review_record_path(dataset: &str) -> String {
    format!("datasets/{dataset}/review.toml")
}

/// A dataset's last recertification: the day it was prepared, the revision whose members it
/// listed, and who prepared it. Merging the review's pull request is the attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRecord {
    pub reviewed_on: Date,
    pub revision: String,
    pub prepared_by: String,
    /// Where `reviewed_on` is written.
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct GcpSettings {
    pub project: String,
    pub region: Option<String>,
    /// Where `project` is written.
    pub project_location: Location,
    /// GCS Autoclass on the dataset's long-lived buckets.
    pub autoclass: bool,
    /// `folders/<id>` or `organizations/<id>` to create the project in; `None`: it exists.
    pub create_in: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub subscription: String,
    pub region: Option<String>,
    /// The subscription's billing currency, when the definitions state it.
    pub billing_currency: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Budget {
    pub monthly: Option<f64>,
    pub fixed: Option<f64>,
    /// The first day a `fixed` budget counts spending from.
    pub fixed_start: Option<Date>,
    pub currency: Option<String>,
    pub alert_thresholds: Vec<f64>,
}

/// A calendar date, for grant expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A length of time written as days or weeks (`14d`, `2w`, `30days`; a bare number is days),
/// from 0 to 100 years. The one parser for `--within` and the policy's durations.
pub fn parse_day_count(text: &str) -> Option<i64> {
    let (number, unit) = match text.strip_suffix("days").or_else(|| text.strip_suffix('d')) {
        Some(number) => (number, 1),
        None => match text.strip_suffix('w') {
            Some(number) => (number, 7),
            None => (text, 1),
        },
    };
    let number: i64 = number.trim().parse().ok()?;
    (0..=36_500).contains(&number).then_some(number * unit)
}

impl Date {
    /// Days since 1970-01-01 (the inverse of `from_days_since_epoch`).
    pub fn days_since_epoch(self) -> i64 {
        let (year, month, day) = (i64::from(self.year), i64::from(self.month), i64::from(self.day));
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days later (earlier when negative).
    pub fn add_days(self, days: i64) -> Date {
        Date::from_days_since_epoch(self.days_since_epoch() + days)
    }

    /// The civil date of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date { year, month, day }
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Read back from what `Serialize` writes (`2027-01-31`), e.g. by the local directory's file.
impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for Date {
    type Err = String;

    fn from_str(text: &str) -> Result<Date, String> {
        let bad = || format!("`{text}` is not a date like 2027-01-31");
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let date = Date {
            year: y.parse().map_err(|_| bad())?,
            month: m.parse().map_err(|_| bad())?,
            day: d.parse().map_err(|_| bad())?,
        };
        if !(1..=12).contains(&date.month) || !(1..=31).contains(&date.day) {
            return Err(bad());
        }
        Ok(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_since_epoch_become_dates() {
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days_since_epoch(20_783).to_string(), "2026-11-26");
        assert_eq!(Date::from_days_since_epoch(11_016).to_string(), "2000-02-29");
        for days in [-1, 0, 59, 11_016, 20_783, 36_525] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
        assert_eq!("2026-11-26".parse::<Date>().unwrap().add_days(14).to_string(), "2026-12-10");
    }

    #[test]
    fn dates_parse_and_reject_garbage() {
        assert_eq!("2027-01-31".parse::<Date>().unwrap().to_string(), "2027-01-31");
        assert!("2027-13-01".parse::<Date>().is_err());
        assert!("tomorrow".parse::<Date>().is_err());
    }
}
