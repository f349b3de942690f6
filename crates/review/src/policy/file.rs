//! The shape of `groups/policy.toml` and its conversion into a `Policy`; unknown keys, roles
//! that do not exist and impossible numbers are located diagnostics.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::definitions::{unknown, Definitions, Diagnostics, Location};

/// Where the policy lives, relative to the definitions root.
pub const POLICY_FILE: &str = "groups/policy.toml";

/// The rules in force; a rule that is not set is not checked.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Every member's account (a person's email, a raw email) is at one of these domains.
    pub allowed_member_domains: Option<Rule<Vec<String>>>,
    /// These dataset roles need an expiry date for people outside the organisation's domain.
    pub expiry_required_outside_domain: Option<Rule<Vec<String>>>,
    /// No grant runs longer than this many days from today.
    pub max_grant_days: Option<Rule<u32>>,
    /// The role whose holders manage a dataset (default `data-manager`).
    pub data_manager_role: String,
    /// Every dataset has at least one data manager whose grant has not expired.
    pub every_dataset_has_data_manager: Option<Rule<bool>>,
    /// The sync's pinned groups (`sync.pinned_groups`, the administrators) are never empty.
    pub pinned_groups_not_empty: Option<Rule<bool>>,
    /// Nobody is a data manager of more than this many datasets.
    pub max_data_manager_datasets: Option<Rule<u32>>,
    /// `.github/CODEOWNERS` is what `cpg-infra codeowners` writes.
    pub codeowners: Option<Rule<bool>>,
    /// `[roles.<role>]`: limits on grants of one role.
    pub role_limits: BTreeMap<String, RoleLimits>,
    /// `[[incompatible_roles]]`: pairs of roles nobody may hold both of.
    pub incompatible_roles: Vec<IncompatibleRoles>,
    /// Days between reviews of every dataset's members (a dataset's `review_every` overrides it).
    pub review_every: Option<Rule<i64>>,
    /// A review more than this many days past its due day is a violation.
    pub review_grace: Option<Rule<i64>>,
}

/// Limits on the grants of one role, in `[roles.<role>]`.
#[derive(Debug, Clone, Default)]
pub struct RoleLimits {
    /// Every grant ends, at most this many days after the commit that made it.
    pub max_days: Option<Rule<i64>>,
    /// The same, for accounts outside the organisation's domain only.
    pub max_days_outside_domain: Option<Rule<i64>>,
    /// A comment giving the reason stands on the line above each grant.
    pub require_reason: Option<Rule<bool>>,
}

/// Separation of duties: nobody holds both roles, on one dataset or (`across_datasets`) on any two.
#[derive(Debug, Clone)]
pub struct IncompatibleRoles {
    pub roles: [String; 2],
    pub across_datasets: bool,
    pub location: Location,
}

impl Policy {
    /// How many rules are set.
    pub fn rule_count(&self) -> usize {
        [
            self.allowed_member_domains.is_some(),
            self.expiry_required_outside_domain.is_some(),
            self.max_grant_days.is_some(),
            self.every_dataset_has_data_manager.is_some(),
            self.pinned_groups_not_empty.is_some(),
            self.max_data_manager_datasets.is_some(),
            self.codeowners.is_some(),
            self.review_grace.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count()
            + self.role_limits.len()
            + self.incompatible_roles.len()
    }
}

/// One rule's setting and where the policy file sets it (named in violations).
#[derive(Debug, Clone)]
pub struct Rule<T> {
    pub value: T,
    pub location: Location,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    allowed_member_domains: Option<Spanned<Vec<Spanned<String>>>>,
    expiry_required_outside_domain: Option<Spanned<Vec<Spanned<String>>>>,
    max_grant_days: Option<Spanned<i64>>,
    data_manager_role: Option<Spanned<String>>,
    every_dataset_has_data_manager: Option<Spanned<bool>>,
    pinned_groups_not_empty: Option<Spanned<bool>>,
    max_data_manager_datasets: Option<Spanned<i64>>,
    codeowners: Option<Spanned<bool>>,
    roles: Option<BTreeMap<Spanned<String>, RoleLimitsFile>>,
    incompatible_roles: Option<Vec<IncompatibleFile>>,
    review_every: Option<Spanned<String>>,
    review_grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleLimitsFile {
    max_duration: Option<Spanned<String>>,
    max_duration_outside_domain: Option<Spanned<String>>,
    require_reason: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncompatibleFile {
    roles: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    across_datasets: bool,
}

/// Parses the policy file's `text` and checks it against the definitions it governs.
pub fn parse(text: &str, definitions: &Definitions) -> Result<Policy, Diagnostics> {
    let path: Arc<str> = Arc::from(POLICY_FILE);
    let at = |offset: usize| Location::at_offset(&path, text, offset);
    let mut problems = Diagnostics::default();
    let file: PolicyFile = match toml::from_str(text) {
        Ok(file) => file,
        Err(error) => {
            problems.push(at(error.span().map_or(0, |s| s.start)), error.message().trim().to_owned());
            return Err(problems);
        }
    };
    let strings = |list: &Spanned<Vec<Spanned<String>>>| -> Vec<String> {
        list.get_ref().iter().map(|s| s.get_ref().to_ascii_lowercase()).collect()
    };
    let count = |value: &Spanned<i64>, problems: &mut Diagnostics| -> Option<Rule<u32>> {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if n > 0 => Some(Rule { value: n, location: at(value.span().start) }),
            _ => {
                problems
                    .push(at(value.span().start), format!("must be a whole number above 0, not {}", value.get_ref()));
                None
            }
        }
    };
    if let Some(domains) = &file.allowed_member_domains {
        for domain in domains.get_ref() {
            let lowered = domain.get_ref().to_ascii_lowercase();
            // A subdomain matches: the bare service-account domain would admit every machine
            // account of every Google Cloud project, anyone's.
            if ["iam.gserviceaccount.com", "gserviceaccount.com"].contains(&lowered.as_str()) {
                problems.push(
                    at(domain.span().start),
                    format!(
                        "`{lowered}` admits the machine accounts of every Google Cloud project; name the projects \
                         trusted instead, as `<project>.iam.gserviceaccount.com`"
                    ),
                );
            }
        }
    }
    let known_roles = || definitions.roles.keys().map(String::as_str);
    if let Some(roles) = &file.expiry_required_outside_domain {
        for role in roles.get_ref() {
            if !definitions.roles.contains_key(role.get_ref()) {
                problems.push(at(role.span().start), unknown("role", role.get_ref(), known_roles(), false));
            }
        }
    }
    let data_manager_role = match &file.data_manager_role {
        Some(role) if !definitions.roles.contains_key(role.get_ref()) => {
            problems.push(at(role.span().start), unknown("role", role.get_ref(), known_roles(), false));
            role.get_ref().clone()
        }
        Some(role) => role.get_ref().clone(),
        None => "data-manager".to_owned(),
    };
    let flag = |value: &Option<Spanned<bool>>| {
        value.as_ref().filter(|v| *v.get_ref()).map(|v| Rule { value: true, location: at(v.span().start) })
    };
    let duration = |value: &Option<Spanned<String>>, positive: bool, problems: &mut Diagnostics| {
        let value = value.as_ref()?;
        match crate::definitions::parse_day_count(value.get_ref()) {
            Some(days) if days > 0 || (!positive && days == 0) => {
                Some(Rule { value: days, location: at(value.span().start) })
            }
            _ => {
                problems.push(
                    at(value.span().start),
                    format!("`{}` is not a duration: use days or weeks, like \"90d\" or \"26w\"", value.get_ref()),
                );
                None
            }
        }
    };
    let review_every = duration(&file.review_every, true, &mut problems);
    let review_grace = duration(&file.review_grace, false, &mut problems);
    if review_grace.is_some() && review_every.is_none() && file.review_every.is_none() {
        let every_set_per_dataset = definitions.datasets.values().any(|d| d.review_every.is_some());
        if !every_set_per_dataset {
            if let Some(grace) = &review_grace {
                problems.push(
                    grace.location.clone(),
                    "review_grace needs review_every (here, or in a dataset's dataset.toml)".to_owned(),
                );
            }
        }
    }
    let mut role_limits = BTreeMap::new();
    for (role, limits) in file.roles.iter().flatten() {
        if !definitions.roles.contains_key(role.get_ref()) {
            problems.push(at(role.span().start), unknown("role", role.get_ref(), known_roles(), false));
            continue;
        }
        let parsed = RoleLimits {
            max_days: duration(&limits.max_duration, true, &mut problems),
            max_days_outside_domain: duration(&limits.max_duration_outside_domain, true, &mut problems),
            require_reason: flag(&limits.require_reason),
        };
        role_limits.insert(role.get_ref().clone(), parsed);
    }
    let mut incompatible_roles = Vec::new();
    for pair in file.incompatible_roles.iter().flatten() {
        let names = pair.roles.get_ref();
        let mut valid = names.len() == 2;
        if !valid {
            problems.push(at(pair.roles.span().start), "name exactly two roles".to_owned());
        }
        for role in names {
            if !definitions.roles.contains_key(role.get_ref()) {
                problems.push(at(role.span().start), unknown("role", role.get_ref(), known_roles(), false));
                valid = false;
            }
        }
        if valid {
            incompatible_roles.push(IncompatibleRoles {
                roles: [names[0].get_ref().clone(), names[1].get_ref().clone()],
                across_datasets: pair.across_datasets,
                location: at(pair.roles.span().start),
            });
        }
    }
    let policy = Policy {
        allowed_member_domains: file
            .allowed_member_domains
            .as_ref()
            .map(|list| Rule { value: strings(list), location: at(list.span().start) }),
        expiry_required_outside_domain: file.expiry_required_outside_domain.as_ref().map(|list| Rule {
            value: list.get_ref().iter().map(|r| r.get_ref().clone()).collect(),
            location: at(list.span().start),
        }),
        max_grant_days: file.max_grant_days.as_ref().and_then(|v| count(v, &mut problems)),
        data_manager_role,
        every_dataset_has_data_manager: flag(&file.every_dataset_has_data_manager),
        pinned_groups_not_empty: flag(&file.pinned_groups_not_empty),
        max_data_manager_datasets: file.max_data_manager_datasets.as_ref().and_then(|v| count(v, &mut problems)),
        codeowners: flag(&file.codeowners),
        role_limits,
        incompatible_roles,
        review_every,
        review_grace,
    };
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems.finish())
    }
}
