//! Serde shapes of the TOML files, exactly as written on disk.
//!
//! These types stay at the boundary: `validate` turns them into the domain types of
//! `definitions`, so nothing downstream sees serde or spans.

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// `groups/org.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    pub organisation: OrganisationTable,
    #[serde(default)]
    pub sync: Option<SyncTable>,
    #[serde(default)]
    pub providers: Option<ProvidersTable>,
    #[serde(default)]
    pub services: Option<ServicesTable>,
    #[serde(default)]
    pub cache: Option<CacheTable>,
    #[serde(default)]
    pub migration: Option<MigrationTable>,
    #[serde(default)]
    pub infra: Option<InfraTable>,
}

/// `[migration]`: moving off the old groups without a gap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationTable {
    /// The import mapping; while set, each mapped old group is nested into its new group.
    pub transition: Option<Spanned<String>>,
}

/// `[cache]`: where `groups sync` writes the members cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheTable {
    pub destinations: Option<Vec<Spanned<String>>>,
    pub local_dir: Option<Spanned<String>>,
}

/// `[services]`: the organisation's own services' accounts, which the infrastructure grants
/// access to (the members cache, web buckets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServicesTable {
    pub analysis_runner: Option<Spanned<String>>,
    pub metadata_server: Option<Spanned<String>>,
    pub web_server: Option<Spanned<String>>,
    pub cromwell_runner: Option<Spanned<String>>,
}

/// `[infra]`: settings of the cloud infrastructure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraTable {
    pub name_prefix: Option<Spanned<String>>,
    /// The organisation group whose members may ask for time-limited emergency write access.
    pub administrators: Option<Spanned<String>>,
    pub gcp: Option<InfraGcpTable>,
}

/// `[infra.gcp]`: the organisation's existing Google Cloud resources that workloads use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfraGcpTable {
    pub organisation_id: Option<Spanned<String>>,
    pub analysis_runner_service: Option<Spanned<String>>,
    pub metadata_service: Option<Spanned<String>>,
    pub analysis_runner_registry: Option<Spanned<String>>,
    pub git_token_secret: Option<Spanned<String>>,
    pub notebooks_project: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationTable {
    pub name: String,
    pub domain: Spanned<String>,
    pub groups_domain: Spanned<String>,
    pub group_prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub common_dataset: Option<Spanned<String>>,
    #[serde(default)]
    pub allowed_member_domains: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTable {
    pub max_removals: Option<usize>,
    /// Checked to be 0–100 by `validate` (a wider type, so 300 gets that message too).
    pub max_removal_percent: Option<Spanned<i64>>,
    pub state_file: Option<Spanned<String>>,
    #[serde(default)]
    pub pinned_groups: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersTable {
    pub google: Option<ProviderTable>,
    pub azure: Option<ProviderTable>,
    pub hail: Option<HailTable>,
    pub metamist: Option<MetamistTable>,
}

/// `[providers.metamist]`: Metamist projects (a dataset's and its `-test` project) as a directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetamistTable {
    /// Spanned: the default role mapping's problems are reported here.
    pub enabled: Option<Spanned<bool>>,
    pub endpoint: Option<String>,
    /// The audience of the Google identity token sent when no bearer token is given
    /// (Metamist on Cloud Run); default: the endpoint.
    pub audience: Option<String>,
    /// The account the sync signs in to Metamist as. A write replaces a project's whole member
    /// list, so this account is written with `project_member_admin` into every project: left
    /// out, the first write would take away its right to write the next time.
    pub account: Option<Spanned<String>>,
    /// Where the member lists last written are kept, relative to the root (Metamist has no
    /// way to read them back); default `.cpg-infra/metamist-lists.jsonl`.
    pub state: Option<Spanned<String>>,
    /// Project role → the dataset roles whose members hold it, for the dataset's project.
    pub main: Option<MetamistRolesTable>,
    /// The same for the dataset's `-test` project.
    pub test: Option<MetamistRolesTable>,
    /// Requests a second the sync may send (a positive number; default: the service's quota).
    pub requests_per_second: Option<Spanned<f64>>,
    /// Requests the sync may send at once before the rate applies (default: one second's worth).
    pub request_burst: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetamistRolesTable {
    pub reader: Option<Vec<Spanned<String>>>,
    pub contributor: Option<Vec<Spanned<String>>>,
    pub writer: Option<Vec<Spanned<String>>>,
    pub project_admin: Option<Vec<Spanned<String>>>,
    pub project_member_admin: Option<Vec<Spanned<String>>>,
}

/// `[providers.hail]`: Hail Batch billing projects as a directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HailTable {
    #[serde(default)]
    pub enabled: bool,
    pub endpoint: Option<String>,
    /// The auth service, where Hail Batch users are created; default: the endpoint with a
    /// leading `batch.` in its host replaced by `auth.`, else the endpoint itself.
    pub auth_endpoint: Option<String>,
    /// A user added to every billing project (the billing aggregator).
    pub aggregator: Option<String>,
    /// The Hail Batch user of each dataset's hail machine account per access level
    /// (`{dataset}`, `{level}`); default `{dataset}-{level}`.
    pub account_usernames: Option<String>,
    /// Requests a second the sync may send (a positive number; default: the service's quota).
    pub requests_per_second: Option<Spanned<f64>>,
    /// Requests the sync may send at once before the rate applies (default: one second's worth).
    pub request_burst: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTable {
    #[serde(default)]
    pub enabled: bool,
    pub nesting: Option<Spanned<String>>,
    pub customer_id: Option<String>,
    pub tenant_id: Option<String>,
    pub endpoint: Option<String>,
    pub concurrency: Option<usize>,
    /// Requests a second the sync may send (a positive number; default: the service's quota).
    pub requests_per_second: Option<Spanned<f64>>,
    /// Requests the sync may send at once before the rate applies (default: one second's worth).
    pub request_burst: Option<Spanned<i64>>,
    #[serde(default)]
    pub security_groups: bool,
    /// Google only: `native` (Cloud Identity expires memberships; premium editions) or
    /// `enforced-by-sync` (the sync removes expired grants).
    pub membership_expiry: Option<Spanned<String>>,
    /// Google only: settings every owned group gets (`[providers.google.group_settings]`).
    pub group_settings: Option<Spanned<GoogleSettingsTable>>,
}

/// Google group settings: `[providers.google.group_settings]` for every owned group, or
/// `google_settings` of one organisation group or role, which wins field by field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettingsTable {
    pub who_can_view_membership: Option<Spanned<String>>,
    pub who_can_join: Option<Spanned<String>>,
    pub who_can_post_message: Option<Spanned<String>>,
    pub allow_external_members: Option<bool>,
    pub is_archived: Option<bool>,
    pub archive_only: Option<bool>,
}

/// `groups/people.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleFile {
    #[serde(default)]
    pub people: BTreeMap<Spanned<String>, PersonTable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonTable {
    pub email: Spanned<String>,
    pub name: Option<String>,
    pub google: Option<Spanned<String>>,
    pub azure: Option<String>,
    pub github: Option<Spanned<String>>,
    /// Hail Batch username, for the billing projects of the datasets they analyse.
    pub hail_batch: Option<String>,
}

/// `groups/roles.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    #[serde(default)]
    pub roles: BTreeMap<Spanned<String>, RoleTable>,
    #[serde(default)]
    pub dependencies: Option<DependenciesTable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleTable {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub includes: Vec<Spanned<String>>,
    #[serde(default)]
    pub members: Vec<Spanned<MemberEntry>>,
    pub requires_component: Option<Spanned<String>>,
    /// Google group settings of this role's group in every dataset.
    pub google_settings: Option<GoogleSettingsTable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependenciesTable {
    /// With `depends_on`, the dependency's group for each of these roles includes ours.
    #[serde(default)]
    pub shared_roles: Vec<Spanned<String>>,
    /// With `depends_on_readonly`: dependency role → our roles that its group includes.
    #[serde(default)]
    pub readonly: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
}

/// Any other `groups/*.toml`: organisation-wide groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsFile {
    #[serde(default)]
    pub groups: BTreeMap<Spanned<String>, GroupTable>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupTable {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub members: Vec<Spanned<MemberEntry>>,
    /// Google group settings of this group.
    pub google_settings: Option<GoogleSettingsTable>,
}

/// `datasets/<name>/dataset.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetFile {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub components: Vec<Spanned<String>>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    pub depends_on_readonly: Vec<Spanned<String>>,
    pub gcp: Option<GcpTable>,
    pub azure: Option<AzureTable>,
    pub budget: Option<BudgetTable>,
    #[serde(default)]
    pub imports: BTreeMap<Spanned<String>, Spanned<String>>,
    /// How often the members are recertified (`"180d"`), instead of the organisation's
    /// `review_every` in groups/policy.toml.
    pub review_every: Option<Spanned<String>>,
}

/// `datasets/<name>/review.toml`: the last recertification, written by `review open`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFile {
    pub reviewed_on: Spanned<toml::value::Datetime>,
    pub revision: Spanned<String>,
    pub prepared_by: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcpTable {
    pub project: Spanned<String>,
    pub region: Option<String>,
    /// Let GCS move objects between storage classes by how often they are read.
    #[serde(default)]
    pub autoclass: bool,
    /// Create the project itself under this folder or organisation (`folders/…`,
    /// `organizations/…`); without it the project must exist.
    pub create_in: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureTable {
    pub subscription: Spanned<String>,
    pub region: Option<String>,
    /// The subscription's billing currency: Azure budgets are in it and cannot name another.
    pub billing_currency: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetTable {
    pub monthly: Option<Spanned<f64>>,
    pub fixed: Option<Spanned<f64>>,
    /// The first day a `fixed` budget counts spending from.
    pub fixed_start: Option<Spanned<toml::value::Datetime>>,
    pub currency: Option<String>,
    #[serde(default)]
    pub alert_thresholds: Vec<Spanned<f64>>,
    /// Per-cloud budgets for a dataset on several clouds; they take `currency` and
    /// `alert_thresholds` from `[budget]` unless they set their own.
    pub gcp: Option<Spanned<CloudBudgetTable>>,
    pub azure: Option<Spanned<CloudBudgetTable>>,
}

/// `[budget.gcp]`, `[budget.azure]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudBudgetTable {
    pub monthly: Option<Spanned<f64>>,
    pub fixed: Option<Spanned<f64>>,
    pub fixed_start: Option<Spanned<toml::value::Datetime>>,
    pub currency: Option<String>,
    pub alert_thresholds: Option<Vec<Spanned<f64>>>,
}

/// `datasets/<name>/members.toml`: role name → members.
#[derive(Debug, Clone, Deserialize)]
pub struct MembersFile(pub BTreeMap<Spanned<String>, Vec<Spanned<MemberEntry>>>);

/// One entry of a member list: `"alice"` or `{ member = "alice", expires = 2027-01-31 }`.
#[derive(Debug, Clone)]
pub struct MemberEntry {
    pub member: String,
    pub expires: Option<toml::value::Datetime>,
}

impl<'de> Deserialize<'de> for MemberEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberEntryVisitor)
    }
}

struct MemberEntryVisitor;

impl<'de> Visitor<'de> for MemberEntryVisitor {
    type Value = MemberEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a member string or a table { member = \"...\", expires = YYYY-MM-DD }")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<MemberEntry, E> {
        Ok(MemberEntry { member: value.to_owned(), expires: None })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemberEntry, A::Error> {
        let mut member = None;
        let mut expires = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "member" => member = Some(map.next_value::<String>()?),
                "expires" => expires = Some(map.next_value::<toml::value::Datetime>()?),
                other => return Err(de::Error::unknown_field(other, &["member", "expires"])),
            }
        }
        let member = member.ok_or_else(|| de::Error::missing_field("member"))?;
        Ok(MemberEntry { member, expires })
    }
}
