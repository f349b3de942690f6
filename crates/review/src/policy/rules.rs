//! One function per rule of the policy. Each adds its violations, located at the grant they
//! are about (or at the file to change), and says which rule of `groups/policy.toml` it is.

use std::collections::BTreeMap;

use super::{Policy, PolicyInput};
use crate::definitions::{domain_allowed, Date, Definitions, Diagnostics, Grant, Location, MemberRef};

/// Where a grant is written.
enum Place<'d> {
    Dataset { dataset: &'d str, role: &'d str },
    Group(&'d str),
    Role(&'d str),
}

impl Place<'_> {
    fn describe(&self) -> String {
        match self {
            Place::Dataset { dataset, role } => format!("role `{role}` of dataset `{dataset}`"),
            Place::Group(group) => format!("group `{group}`"),
            Place::Role(role) => format!("role `{role}` of every dataset"),
        }
    }
}

/// Every grant written in the definitions, with where it is written.
fn grants(definitions: &Definitions) -> impl Iterator<Item = (Place<'_>, &Grant)> {
    let datasets = definitions.datasets.values().flat_map(|dataset| {
        dataset.members.iter().flat_map(move |(role, grants)| {
            grants.iter().map(move |grant| (Place::Dataset { dataset: &dataset.name, role }, grant))
        })
    });
    let groups =
        definitions.groups.values().flat_map(|group| group.members.iter().map(move |g| (Place::Group(&group.name), g)));
    let roles =
        definitions.roles.values().flat_map(|role| role.members.iter().map(move |g| (Place::Role(&role.name), g)));
    datasets.chain(groups).chain(roles)
}

/// How a grant's member is named in messages: the key (with the email for people).
fn who(definitions: &Definitions, member: &MemberRef) -> String {
    match member {
        MemberRef::Person(key) => match definitions.people.get(key) {
            Some(person) => format!("`{key}` ({})", person.email),
            None => format!("`{key}`"),
        },
        MemberRef::Group(group) => format!("`group:{group}`"),
        MemberRef::Email(email) => format!("`{email}`"),
    }
}

fn rule_note(name: &str, location: &Location) -> String {
    format!("policy `{name}` at {location}")
}

/// `allowed_member_domains`: people's emails and raw emails are at an allowed domain.
pub fn allowed_member_domains(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.allowed_member_domains else { return };
    let definitions = input.definitions;
    for (place, grant) in grants(definitions) {
        let email = match &grant.member {
            MemberRef::Person(key) => definitions.people.get(key).map(|p| p.email.as_str()),
            MemberRef::Email(email) => Some(email.as_str()),
            MemberRef::Group(_) => None,
        };
        if email.is_some_and(|email| !domain_allowed(email, &rule.value)) {
            found.push(
                grant.location.clone(),
                format!(
                    "{} in {} is not at an allowed domain ({}; {})",
                    who(definitions, &grant.member),
                    place.describe(),
                    rule.value.join(", "),
                    rule_note("allowed_member_domains", &rule.location)
                ),
            );
        }
    }
}

/// `expiry_required_outside_domain`: access for accounts outside the organisation's domain to
/// these dataset roles ends on a date. Every kind of grant counts: a person whose email or
/// Google account is outside, a raw email outside, a `group:` reference whose group holds
/// anyone outside, and role-level members (which hold the role on every dataset).
pub fn expiry_outside_domain(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.expiry_required_outside_domain else { return };
    let definitions = input.definitions;
    let domain = [definitions.organisation.domain.clone()];
    let outside = |account: &str| outside_organisation(definitions, account);
    for (place, grant) in grants(definitions) {
        let role = match place {
            Place::Dataset { role, .. } | Place::Role(role) => role,
            Place::Group(_) => continue,
        };
        if grant.expires.is_some() || !rule.value.iter().any(|r| r == role) {
            continue;
        }
        let account: Option<String> = match &grant.member {
            MemberRef::Person(key) => definitions.people.get(key).and_then(|person| {
                [Some(&person.email), person.google.as_ref()].into_iter().flatten().find(|a| outside(a)).cloned()
            }),
            MemberRef::Email(email) => outside(email).then(|| email.clone()),
            MemberRef::Group(group) => input
                .hierarchy
                .effective_members(group)
                .into_iter()
                .find(|a| outside(a))
                .map(|a| format!("{a} (a member)")),
        };
        if let Some(account) = account {
            found.push(
                grant.location.clone(),
                format!(
                    "{} uses {account}, outside {}, so {} needs an expiry date ({})",
                    who(definitions, &grant.member),
                    domain[0],
                    place.describe(),
                    rule_note("expiry_required_outside_domain", &rule.location)
                ),
            );
        }
    }
}

/// `max_grant_days`: no grant ends more than this many days after today.
pub fn max_grant_days(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.max_grant_days else { return };
    let latest = input.today.add_days(i64::from(rule.value));
    for (place, grant) in grants(input.definitions) {
        let Some(expires) = grant.expires.filter(|expires| *expires > latest) else { continue };
        let days = expires.days_since_epoch() - input.today.days_since_epoch();
        found.push(
            grant.location.clone(),
            format!(
                "{} in {} runs until {expires}, {days} days from {}; the longest allowed is {} days (until {latest}; {})",
                who(input.definitions, &grant.member),
                place.describe(),
                input.today,
                rule.value,
                rule_note("max_grant_days", &rule.location)
            ),
        );
    }
}

/// Whether a grant still gives access on `today`.
fn current(grant: &Grant, today: Date) -> bool {
    grant.expires.is_none_or(|expires| expires >= today)
}

/// `every_dataset_has_data_manager`: each dataset has a data manager whose grant is current.
pub fn every_dataset_has_data_manager(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.every_dataset_has_data_manager else { return };
    let role = &policy.data_manager_role;
    for dataset in input.definitions.datasets.values() {
        let grants = dataset.members.get(role).map(Vec::as_slice).unwrap_or_default();
        if grants.iter().any(|grant| current(grant, input.today)) {
            continue;
        }
        let (location, detail) = match grants.first() {
            Some(first) => (first.location.clone(), "every grant has expired"),
            None => (Location::file(&format!("datasets/{}/members.toml", dataset.name)), "none is listed"),
        };
        found.push(
            location,
            format!(
                "dataset `{}` has no {role}: {detail} ({})",
                dataset.name,
                rule_note("every_dataset_has_data_manager", &rule.location)
            ),
        );
    }
}

/// `pinned_groups_not_empty`: the administrators' groups always have someone in them.
pub fn pinned_groups_not_empty(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.pinned_groups_not_empty else { return };
    let definitions = input.definitions;
    for pinned in &definitions.organisation.sync.pinned_groups {
        if !input.hierarchy.effective_members(pinned).is_empty() {
            continue;
        }
        let short = pinned.strip_prefix(definitions.organisation.group_prefix.as_str()).unwrap_or(pinned);
        let location =
            definitions.groups.get(short).map_or_else(|| Location::file("groups/org.toml"), |g| g.location.clone());
        found.push(
            location,
            format!(
                "pinned group `{short}` has no members today ({})",
                rule_note("pinned_groups_not_empty", &rule.location)
            ),
        );
    }
}

/// `max_data_manager_datasets`: nobody manages more than this many datasets, however they
/// hold the role: listed in the dataset, through a `group:` nesting, or as a role-level
/// member. Another dataset's managers nested in through a dependency manage that one, not this.
pub fn max_data_manager_datasets(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.max_data_manager_datasets else { return };
    let role = &policy.data_manager_role;
    let definitions = input.definitions;
    let mut managed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for dataset in definitions.datasets.values() {
        let group = definitions.dataset_group_name(&dataset.name, role);
        for member in super::approvals::own_members(input.hierarchy, &group) {
            managed.entry(member.to_owned()).or_default().push(&dataset.name);
        }
    }
    for (email, datasets) in managed.into_iter().filter(|(_, datasets)| datasets.len() > rule.value as usize) {
        let name = definitions.find_person(&email).map_or(email.clone(), |p| p.key.clone());
        for dataset in &datasets {
            let location = manager_grant(input, dataset, role, &email)
                .unwrap_or_else(|| definitions.datasets[*dataset].location.clone());
            found.push(
                location,
                format!(
                    "`{name}` is {role} of {} datasets ({}); the most allowed is {} ({})",
                    datasets.len(),
                    datasets.join(", "),
                    rule.value,
                    rule_note("max_data_manager_datasets", &rule.location)
                ),
            );
        }
    }
}

/// Where `email` is made a manager of `dataset`: the grant naming them, or the `group:` grant
/// whose group holds them.
fn manager_grant(input: &PolicyInput, dataset: &str, role: &str, email: &str) -> Option<Location> {
    let definitions = input.definitions;
    let grants = definitions.datasets.get(dataset)?.members.get(role)?;
    let holds = |grant: &&Grant| match &grant.member {
        MemberRef::Person(key) => definitions.people.get(key).is_some_and(|p| p.email == email),
        MemberRef::Email(address) => address == email,
        MemberRef::Group(group) => input.hierarchy.effective_members(group).contains(email),
    };
    grants.iter().find(holds).map(|grant| grant.location.clone())
}

/// `codeowners`: the committed CODEOWNERS file is the one the definitions give.
pub fn codeowners_current(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(rule) = &policy.codeowners else { return };
    let Some(files) = &input.codeowners else { return };
    let problem = match files.committed {
        None => "is missing",
        Some(committed) if committed != files.expected => "is out of date with the definitions",
        Some(_) => return,
    };
    found.push(
        Location::file(files.path),
        format!("{problem}; run `cpg-infra codeowners` and commit it ({})", rule_note("codeowners", &rule.location)),
    );
}

/// Whether `account` is outside the organisation: not at its domain, and not a machine
/// account of one of its own projects.
fn outside_organisation(definitions: &Definitions, account: &str) -> bool {
    let domain = [definitions.organisation.domain.clone()];
    if domain_allowed(account, &domain) {
        return false;
    }
    let at = account.rsplit_once('@').map_or("", |(_, at)| at);
    !definitions
        .datasets
        .values()
        .filter_map(|d| d.gcp.as_ref())
        .any(|gcp| at == format!("{}.iam.gserviceaccount.com", gcp.project))
}

/// The accounts a grant gives access to: a person's email and Google account, a raw email,
/// everyone in a referenced group.
fn accounts_of(input: &PolicyInput, member: &MemberRef) -> Vec<String> {
    match member {
        MemberRef::Person(key) => input
            .definitions
            .people
            .get(key)
            .map(|p| [Some(p.email.clone()), p.google.clone()].into_iter().flatten().collect())
            .unwrap_or_default(),
        MemberRef::Email(email) => vec![email.clone()],
        MemberRef::Group(group) => input.hierarchy.effective_members(group).into_iter().map(str::to_owned).collect(),
    }
}

/// `[roles.<role>]`: `max_duration` (for everyone) and `max_duration_outside_domain` (for
/// accounts outside the organisation): the grant has `expires`, at most that long after the
/// commit that made it; `require_reason`: a comment stands on the line above the grant.
pub fn role_limits(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    if policy.role_limits.is_empty() {
        return;
    }
    let definitions = input.definitions;
    let empty = super::GrantContext::default();
    let context = input.grant_context.unwrap_or(&empty);
    for (place, grant) in grants(definitions) {
        let role = match place {
            Place::Dataset { role, .. } | Place::Role(role) => role,
            Place::Group(_) => continue,
        };
        let Some(limits) = policy.role_limits.get(role) else { continue };
        let outside = accounts_of(input, &grant.member).iter().any(|a| outside_organisation(definitions, a));
        let limit = [limits.max_days.as_ref(), limits.max_days_outside_domain.as_ref().filter(|_| outside)]
            .into_iter()
            .flatten()
            .min_by_key(|rule| rule.value);
        if let Some(rule) = limit {
            let since = context.committed_on.get(&(grant.location.path.to_string(), grant.location.line)).copied();
            let since = since.unwrap_or(input.today);
            let latest = since.add_days(rule.value);
            let problem = match grant.expires {
                None => Some(format!("needs `expires`, at most {} days after it is granted", rule.value)),
                Some(expires) if expires > latest => {
                    Some(format!("runs until {expires}, past {latest} ({} days from {since})", rule.value))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                found.push(
                    grant.location.clone(),
                    format!(
                        "{} in {} {problem} (policy `roles.{role}` at {})",
                        who(definitions, &grant.member),
                        place.describe(),
                        rule.location
                    ),
                );
            }
        }
        if let Some(rule) = &limits.require_reason {
            let text = context.texts.get(grant.location.path.as_ref());
            if text.and_then(|t| crate::edit::reason_above(t, grant.location.line)).is_none() {
                found.push(
                    grant.location.clone(),
                    format!(
                        "{} in {} needs a reason: a `# …` comment on the line above (policy `roles.{role}` at {})",
                        who(definitions, &grant.member),
                        place.describe(),
                        rule.location
                    ),
                );
            }
        }
    }
}

/// `[[incompatible_roles]]`: nobody holds both roles (directly or through groups) on one
/// dataset, or with `across_datasets` on any datasets.
pub fn incompatible_roles(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let definitions = input.definitions;
    for pair in &policy.incompatible_roles {
        let holders = |dataset: &str, role: &str| -> Vec<String> {
            let group = definitions.dataset_group_name(dataset, role);
            input.hierarchy.effective_members(&group).into_iter().map(str::to_owned).collect()
        };
        let mut clashes: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for dataset in definitions.datasets.values() {
            for (index, role) in pair.roles.iter().enumerate() {
                for member in holders(&dataset.name, role) {
                    let entry = clashes.entry(member).or_default();
                    let list = if index == 0 { &mut entry.0 } else { &mut entry.1 };
                    list.push(dataset.name.clone());
                }
            }
        }
        for (member, (first, second)) in clashes {
            let together: Vec<&String> = if pair.across_datasets {
                if first.is_empty() || second.is_empty() {
                    continue;
                }
                second.iter().collect()
            } else {
                second.iter().filter(|d| first.contains(d)).collect()
            };
            for dataset in together {
                let name = definitions.find_person(&member).map_or(member.clone(), |p| p.key.clone());
                // The grant that gives the second role, else any of the dataset's grants that
                // brings the person in (a role that includes it).
                let roles =
                    std::iter::once(&pair.roles[1]).chain(definitions.datasets[dataset.as_str()].members.keys());
                let location = roles
                    .filter_map(|role| manager_grant(input, dataset, role, &member))
                    .next()
                    .unwrap_or_else(|| definitions.datasets[dataset.as_str()].location.clone());
                let scope = if pair.across_datasets { format!(" (on {})", first.join(", ")) } else { String::new() };
                found.push(
                    location,
                    format!(
                        "`{name}` holds both `{}`{scope} and `{}` on `{dataset}`, which may not be held together (policy `incompatible_roles` at {})",
                        pair.roles[0], pair.roles[1], pair.location
                    ),
                );
            }
        }
    }
}

/// `review_grace`: no dataset's review is more than this many days past its due day (located
/// at the review record, which the review's pull request rewrites).
pub fn reviews_overdue(policy: &Policy, input: &PolicyInput, found: &mut Diagnostics) {
    let Some(grace) = &policy.review_grace else { return };
    for review in crate::recertify::review_schedule(policy, input.definitions) {
        let (Some(last), Some(due)) = (review.last, review.due_on) else { continue };
        if !review.is_overdue(input.today, grace.value) {
            continue;
        }
        found.push(
            last.location.clone(),
            format!(
                "the review of dataset `{}` was due on {due} (every {} days, set at {}) and is {} days late; \
                 run `cpg-infra review open --dataset {}` and merge its pull request ({})",
                review.dataset,
                review.every_days,
                review.every_location,
                input.today.days_since_epoch() - due.days_since_epoch(),
                review.dataset,
                rule_note("review_grace", &grace.location)
            ),
        );
    }
}
