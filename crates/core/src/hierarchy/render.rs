//! Printing a hierarchy for people (text) and programs (JSON).

use std::fmt::Write;

use serde::Serialize;

use super::Hierarchy;

/// One block per group: its name and email, then nested groups, then member emails.
pub fn render_text(hierarchy: &Hierarchy) -> String {
    let mut out = String::new();
    for group in hierarchy.groups.values() {
        let _ = writeln!(out, "{} <{}>", group.name, group.email);
        for child in &group.groups {
            let _ = writeln!(out, "  group  {child}");
        }
        for member in &group.members {
            let _ = writeln!(out, "  member {member}");
        }
    }
    out
}

#[derive(Serialize)]
struct JsonHierarchy<'a> {
    groups: Vec<JsonGroup<'a>>,
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    name: &'a str,
    email: &'a str,
    members: Vec<&'a str>,
    groups: Vec<&'a str>,
}

/// `{"groups":[{"name","email","members":[emails],"groups":[nested group emails]}]}`.
pub fn render_json(hierarchy: &Hierarchy) -> String {
    let groups = hierarchy
        .groups
        .values()
        .map(|group| JsonGroup {
            name: &group.name,
            email: &group.email,
            members: group.members.iter().map(String::as_str).collect(),
            groups: group
                .groups
                .iter()
                .map(|child| hierarchy.groups.get(child).map_or(child.as_str(), |g| g.email.as_str()))
                .collect(),
        })
        .collect();
    let mut json = serde_json::to_string_pretty(&JsonHierarchy { groups }).unwrap_or_default();
    json.push('\n');
    json
}
