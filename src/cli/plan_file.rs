//! Reading the plan a sync printed with `--format json` (kept by the nightly job as
//! drift-<provider>.json): its member changes, for `codify-drift` and `drift-report`.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::InputError;

/// A member the plan adds to or removes from an existing group.
pub struct MemberChange {
    /// `true`: the plan adds the member (someone may have removed it by hand); `false`: the
    /// plan removes it (someone may have added it by hand).
    pub adds: bool,
    pub group: String,
    pub member: String,
}

/// The `add_member` and `remove_member` changes of the plan at `path`, leaving out additions
/// to groups the plan creates (those are new, not drift).
pub fn member_changes(path: &Path) -> Result<Vec<MemberChange>> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError(format!("--plan {}: {e}", path.display())))?;
    let not_a_plan =
        |why: &str| InputError(format!("{}: not a plan from `groups sync --format json` ({why})", path.display()));
    let plan: Value = serde_json::from_str(&text).map_err(|e| not_a_plan(&e.to_string()))?;
    let changes = plan["changes"].as_array().ok_or_else(|| not_a_plan("no `changes` list"))?;
    let created: Vec<&str> =
        changes.iter().filter(|c| c["op"] == "create_group").filter_map(|c| c["email"].as_str()).collect();
    let mut found = Vec::new();
    for change in changes {
        let op = change["op"].as_str().unwrap_or_default();
        let adds = match op {
            "add_member" => true,
            "remove_member" => false,
            _ => continue,
        };
        let field = |name: &str| change[name].as_str().map(str::to_owned);
        match (field("group"), field("member")) {
            (Some(group), Some(_)) if adds && created.contains(&group.as_str()) => {}
            (Some(group), Some(member)) => found.push(MemberChange { adds, group, member }),
            _ => return Err(not_a_plan(&format!("a `{op}` without `group` and `member`")).into()),
        }
    }
    Ok(found)
}
