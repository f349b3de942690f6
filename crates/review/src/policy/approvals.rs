//! Who must approve a change: approval follows the access, not the file.
//!
//! A change to a dataset's folder needs that dataset's data managers, but so does a change
//! anywhere else that reaches the dataset's groups (another dataset's `depends_on`, a role
//! template edit, a person's account). Organisation-wide changes (every file outside the
//! dataset folders, organisation groups) need the administrators. Owners are always read at
//! the base revision: a change that makes someone a data manager cannot be approved by them.
//!
//! Pure: the caller loads both revisions, lists the changed files and fetches the reviews.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::definitions::Definitions;
use crate::diff::HierarchyDiff;
use crate::hierarchy::{GroupKind, Hierarchy};

/// Whose approval a requirement asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "dataset", rename_all = "kebab-case")]
pub enum Owners {
    DataManagers(String),
    Administrators,
}

impl std::fmt::Display for Owners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owners::DataManagers(dataset) => write!(f, "the data managers of {dataset}"),
            Owners::Administrators => f.write_str("the administrators"),
        }
    }
}

/// One group of owners, one of whom must approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub owners: Owners,
    /// GitHub user names that can give this approval (at the base revision).
    pub approvers: BTreeSet<String>,
    /// Why, a few examples: changed files and groups whose members change.
    pub reasons: Vec<String>,
    /// Set when the owners named nobody with a GitHub user name, so the administrators stand in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stands_in_for: Option<String>,
}

/// What the requirements are computed from.
pub struct ApprovalInput<'a> {
    /// The base revision's definitions and hierarchy (owners are read here); `None` for a base
    /// from before the definitions existed.
    pub base: Option<(&'a Definitions, &'a Hierarchy)>,
    /// The head's hierarchy, for groups the change adds.
    pub head: Option<&'a Hierarchy>,
    pub diff: &'a HierarchyDiff,
    /// Paths changed between the revisions, relative to the repository's top.
    pub changed_files: &'a [String],
    /// Where the definitions live inside the repository (`""` at the top).
    pub prefix: &'a str,
    /// The policy's data-manager role.
    pub data_manager_role: &'a str,
}

/// At most this many reasons are kept per requirement.
const MAX_REASONS: usize = 5;

/// Every requirement, administrators last; empty when nothing changed.
pub fn required_approvals(input: &ApprovalInput) -> Vec<Requirement> {
    let mut reasons: BTreeMap<Owners, Vec<String>> = BTreeMap::new();
    let mut add = |owners: Owners, reason: String| {
        let list = reasons.entry(owners).or_default();
        if list.len() < MAX_REASONS && !list.contains(&reason) {
            list.push(reason);
        }
    };
    let datasets_folder = if input.prefix.is_empty() {
        "datasets/".to_owned()
    } else {
        format!("{}/datasets/", input.prefix.trim_matches('/'))
    };
    for path in input.changed_files {
        match path.strip_prefix(&datasets_folder).and_then(|rest| rest.split_once('/')) {
            Some((dataset, _)) => add(Owners::DataManagers(dataset.to_owned()), format!("changes `{path}`")),
            None => add(Owners::Administrators, format!("changes `{path}`")),
        }
    }
    let changed_groups = input
        .diff
        .groups_changed
        .iter()
        .map(|g| (g.name.as_str(), "members change"))
        .chain(input.diff.groups_removed.iter().map(|g| (g.name.as_str(), "is removed")))
        .chain(input.diff.groups_added.iter().map(|g| (g.name.as_str(), "is added")));
    for (name, what) in changed_groups {
        let kind = input
            .base
            .and_then(|(_, hierarchy)| hierarchy.group(name))
            .or_else(|| input.head.and_then(|h| h.group(name)))
            .map(|g| g.kind.clone());
        match kind {
            Some(GroupKind::Dataset { dataset, .. }) => add(Owners::DataManagers(dataset), format!("`{name}` {what}")),
            _ => add(Owners::Administrators, format!("`{name}` {what}")),
        }
    }
    let administrators = input.base.map(|(d, h)| administrators(d, h)).unwrap_or_default();
    let mut requirements: Vec<Requirement> = Vec::new();
    for (owners, reasons) in reasons {
        let approvers = match (&owners, input.base) {
            (Owners::DataManagers(dataset), Some((definitions, hierarchy))) => {
                let group = definitions.dataset_group_name(dataset, input.data_manager_role);
                github_names(definitions, own_members(hierarchy, &group))
            }
            _ => administrators.clone(),
        };
        if approvers.is_empty() && owners != Owners::Administrators {
            // A new dataset, or one whose managers have no GitHub user name: nobody could
            // approve, so the administrators must.
            requirements.push(Requirement {
                stands_in_for: Some(owners.to_string()),
                owners: Owners::Administrators,
                approvers: administrators.clone(),
                reasons,
            });
        } else {
            requirements.push(Requirement { owners, approvers, reasons, stands_in_for: None });
        }
    }
    requirements.sort_by(|a, b| a.owners.cmp(&b.owners).then(a.stands_in_for.cmp(&b.stands_in_for)));
    requirements
}

/// The members a dataset's group names itself: its direct members and those of organisation
/// groups nested in it, but not other datasets' groups (a dataset that depends on this one
/// nests its data managers here; they manage their own dataset, not this one).
pub(super) fn own_members<'h>(hierarchy: &'h Hierarchy, group: &str) -> BTreeSet<&'h str> {
    let mut found = BTreeSet::new();
    let mut pending = vec![group];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(g) = hierarchy.group(name) else { continue };
        found.extend(g.members.iter().map(String::as_str));
        for nested in &g.groups {
            if hierarchy.group(nested).is_some_and(|n| n.kind == GroupKind::Organisation) {
                pending.push(nested);
            }
        }
    }
    found
}

/// The administrators' GitHub user names: the people in the sync's pinned groups.
pub fn administrators(definitions: &Definitions, hierarchy: &Hierarchy) -> BTreeSet<String> {
    let emails =
        definitions.organisation.sync.pinned_groups.iter().flat_map(|group| hierarchy.effective_members(group));
    github_names(definitions, emails)
}

fn github_names<'e>(definitions: &Definitions, emails: impl IntoIterator<Item = &'e str>) -> BTreeSet<String> {
    let emails: BTreeSet<&str> = emails.into_iter().collect();
    definitions
        .people
        .values()
        .filter(|p| emails.contains(p.email.as_str()))
        .filter_map(|p| p.github.as_ref().map(|g| g.to_lowercase()))
        .collect()
}

/// One review as the GitHub API reports it, reduced to what counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub reviewer: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    pub state: String,
    /// The commit the review was given on.
    pub commit: String,
}

/// The pull request the reviews are for.
pub struct PullRequestFacts<'a> {
    pub head_sha: &'a str,
    /// People whose approval never counts: the author and, for a pull request a bot opened
    /// from an issue, the author (the requester).
    pub requesters: BTreeSet<String>,
    /// Reviews in the order GitHub gave them (oldest first).
    pub reviews: &'a [Review],
}

/// Each requirement with the approvers that satisfy it (empty: missing).
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub requirement: Requirement,
    pub approved_by: BTreeSet<String>,
}

/// Applies the reviews: per reviewer only the latest review that is not a comment counts, and
/// an approval only when it was given on the head commit (a push after it makes it stale).
pub fn check_reviews(requirements: &[Requirement], facts: &PullRequestFacts) -> Vec<Checked> {
    let mut latest: BTreeMap<String, &Review> = BTreeMap::new();
    for review in facts.reviews {
        if matches!(review.state.as_str(), "COMMENTED" | "PENDING") {
            continue;
        }
        latest.insert(review.reviewer.to_lowercase(), review);
    }
    let approvers: BTreeSet<String> = latest
        .iter()
        .filter(|(reviewer, review)| {
            review.state == "APPROVED" && review.commit == facts.head_sha && !facts.requesters.contains(*reviewer)
        })
        .map(|(reviewer, _)| reviewer.clone())
        .collect();
    requirements
        .iter()
        .map(|requirement| Checked {
            approved_by: requirement.approvers.intersection(&approvers).cloned().collect(),
            requirement: requirement.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requirement(approvers: &[&str]) -> Requirement {
        Requirement {
            owners: Owners::DataManagers("tob-wgs".into()),
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            reasons: vec![],
            stands_in_for: None,
        }
    }

    fn review(reviewer: &str, state: &str, commit: &str) -> Review {
        Review { reviewer: reviewer.into(), state: state.into(), commit: commit.into() }
    }

    fn approved(reviews: &[Review], requesters: &[&str]) -> BTreeSet<String> {
        let facts = PullRequestFacts {
            head_sha: "head",
            requesters: requesters.iter().map(|r| r.to_string()).collect(),
            reviews,
        };
        check_reviews(&[requirement(&["amara", "ben"])], &facts).remove(0).approved_by
    }

    #[test]
    fn only_the_latest_approval_of_the_head_by_someone_else_counts() {
        let none = BTreeSet::new();
        let amara: BTreeSet<String> = ["amara".to_string()].into();
        assert_eq!(approved(&[review("amara", "APPROVED", "head")], &[]), amara);
        assert_eq!(approved(&[review("Amara", "APPROVED", "head")], &[]), amara, "names ignore case");
        assert_eq!(approved(&[review("amara", "APPROVED", "old")], &[]), none, "stale after a push");
        assert_eq!(approved(&[review("amara", "APPROVED", "head"), review("amara", "DISMISSED", "head")], &[]), none);
        assert_eq!(
            approved(&[review("amara", "APPROVED", "head"), review("amara", "COMMENTED", "head")], &[]),
            amara,
            "a later comment keeps the approval"
        );
        assert_eq!(
            approved(&[review("amara", "CHANGES_REQUESTED", "head"), review("amara", "APPROVED", "head")], &[]),
            amara
        );
        assert_eq!(approved(&[review("amara", "APPROVED", "head")], &["amara"]), none, "the requester never counts");
        assert_eq!(approved(&[review("zoe", "APPROVED", "head")], &[]), none, "not an owner");
    }
}
