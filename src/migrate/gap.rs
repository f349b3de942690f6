//! Switching structures without a gap in access: for every member of an old group, whether the
//! new hierarchy still gives them the role the mapping says the old group stood for, and if
//! not, the grant that would. Pure.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::definitions::Definitions;
use crate::hierarchy::Hierarchy;

/// An old group as it is now, and the role of the new structure it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldGroup {
    pub email: String,
    pub dataset: String,
    pub role: String,
    pub members: BTreeSet<String>,
}

/// Someone the switch would cut off.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AccessGap {
    pub email: String,
    /// The old group that gives the access today.
    pub old_group: String,
    /// The new group that would not include them.
    pub new_group: String,
    /// What restores it: `datasets/<dataset>/members.toml`, role and member.
    pub restore: String,
}

/// Every member of an old group whom the new hierarchy does not give the mapped role.
pub fn access_gaps(definitions: &Definitions, hierarchy: &Hierarchy, old_groups: &[OldGroup]) -> Vec<AccessGap> {
    let mut gaps = Vec::new();
    for old in old_groups {
        let new_group = definitions.dataset_group_name(&old.dataset, &old.role);
        let effective = hierarchy.effective_members(&new_group);
        for email in old.members.iter().filter(|email| !effective.contains(email.as_str())) {
            let member = definitions.find_person(email).map_or_else(|| email.clone(), |p| p.key.clone());
            gaps.push(AccessGap {
                email: email.clone(),
                old_group: old.email.clone(),
                new_group: new_group.clone(),
                restore: format!("datasets/{}/members.toml: {} = [\"{member}\"]", old.dataset, old.role),
            });
        }
    }
    gaps.sort();
    gaps
}

pub fn render_gaps_text(gaps: &[AccessGap], checked: usize) -> String {
    let mut out = String::new();
    for gap in gaps {
        let _ = writeln!(
            out,
            "! {} loses {} (has it through {}); restore with {}",
            gap.email, gap.new_group, gap.old_group, gap.restore
        );
    }
    let _ =
        writeln!(out, "migration plan: {} old group(s) checked, {} member(s) would lose access", checked, gaps.len());
    out
}

pub fn render_gaps_markdown(gaps: &[AccessGap], checked: usize) -> String {
    let mut out = format!(
        "## Access after the switch\n\n{checked} old group(s) checked, {} member(s) would lose access.\n",
        gaps.len()
    );
    if !gaps.is_empty() {
        out.push_str("\n| member | loses | today through | restore with |\n|---|---|---|---|\n");
        for gap in gaps {
            let _ = writeln!(out, "| {} | {} | {} | `{}` |", gap.email, gap.new_group, gap.old_group, gap.restore);
        }
    }
    out
}

pub fn render_gaps_json(gaps: &[AccessGap]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "gaps": gaps })).unwrap_or_default() + "\n"
}
