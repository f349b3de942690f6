//! `infra plan`: every resource of a program per owner, cloud and component, as a readable
//! tree or as JSON.
//!
//! Owns the plan's presentation only; never changes the program and never does I/O.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::program::{Owner, Program, Resource};

/// The plan as an indented tree, with notes, the config the stacks need, and totals.
pub fn render_plan_text(program: &Program, notes: &[String]) -> String {
    let mut out = String::new();
    let width = program.resources.values().map(|r| r.type_token.len()).max().unwrap_or(0);
    let tree = tree(program);
    for (owner, clouds) in &tree {
        let _ = writeln!(out, "{owner}");
        for (cloud, components) in clouds {
            match program.sites.get(&((*owner).clone(), (*cloud).to_owned())) {
                Some(site) => {
                    let _ = writeln!(out, "  {cloud}: {site}");
                }
                None => {
                    let _ = writeln!(out, "  {cloud}");
                }
            }
            for (component, resources) in components {
                let _ = writeln!(out, "    {component} ({})", resources.len());
                for (name, resource) in resources {
                    let _ = write!(out, "      {:width$}  {name}", resource.type_token);
                    if let Some(id) = &resource.options.import {
                        let _ = write!(out, "  (adopted: {id})");
                    }
                    out.push('\n');
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    if !program.config.is_empty() {
        out.push_str("\nstack config the program reads (pulumi config set NAME VALUE):\n");
        for (name, config) in &program.config {
            let _ = writeln!(out, "  {name}: {}", config.description);
        }
    }
    let by_cloud = count_by_cloud(program);
    let clouds: Vec<String> = by_cloud.iter().map(|(cloud, n)| format!("{cloud} {n}")).collect();
    let _ = writeln!(
        out,
        "\n{} resources ({}), {} adopted, {} lookups",
        program.resources.len(),
        clouds.join(", "),
        program.adopted(),
        program.variables.len()
    );
    out
}

/// The plan as JSON: one flat list of resources with their owner, cloud and component.
pub fn render_plan_json(program: &Program, notes: &[String]) -> String {
    let resources = program
        .resources
        .iter()
        .map(|(name, r)| JsonResource {
            name,
            r#type: &r.type_token,
            owner: r.origin.owner.prefix(),
            cloud: &r.origin.cloud,
            component: &r.origin.component,
            adopt: r.options.import.as_deref(),
        })
        .collect();
    let sites =
        program.sites.iter().map(|((owner, cloud), site)| JsonSite { owner: owner.prefix(), cloud, site }).collect();
    let config = program.config.iter().map(|(name, c)| JsonConfig { name, description: &c.description }).collect();
    let plan = JsonPlan {
        resources,
        sites,
        config,
        notes,
        summary: JsonSummary {
            resources: program.resources.len(),
            adopted: program.adopted(),
            lookups: program.variables.len(),
            by_cloud: count_by_cloud(program),
        },
    };
    let mut json = serde_json::to_string_pretty(&plan).unwrap_or_default();
    json.push('\n');
    json
}

type Tree<'p> = BTreeMap<&'p Owner, BTreeMap<&'p str, BTreeMap<&'p str, Vec<(&'p str, &'p Resource)>>>>;

fn tree(program: &Program) -> Tree<'_> {
    let mut tree: Tree = BTreeMap::new();
    for (name, resource) in &program.resources {
        let origin = &resource.origin;
        tree.entry(&origin.owner)
            .or_default()
            .entry(&origin.cloud)
            .or_default()
            .entry(&origin.component)
            .or_default()
            .push((name, resource));
    }
    tree
}

fn count_by_cloud(program: &Program) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for resource in program.resources.values() {
        *counts.entry(resource.origin.cloud.as_str()).or_default() += 1;
    }
    counts
}

#[derive(Serialize)]
struct JsonPlan<'p> {
    resources: Vec<JsonResource<'p>>,
    sites: Vec<JsonSite<'p>>,
    config: Vec<JsonConfig<'p>>,
    notes: &'p [String],
    summary: JsonSummary<'p>,
}

#[derive(Serialize)]
struct JsonResource<'p> {
    name: &'p str,
    r#type: &'p str,
    owner: &'p str,
    cloud: &'p str,
    component: &'p str,
    /// The id of the existing resource to adopt, if any.
    adopt: Option<&'p str>,
}

#[derive(Serialize)]
struct JsonSite<'p> {
    owner: &'p str,
    cloud: &'p str,
    site: &'p str,
}

#[derive(Serialize)]
struct JsonConfig<'p> {
    name: &'p str,
    description: &'p str,
}

#[derive(Serialize)]
struct JsonSummary<'p> {
    resources: usize,
    adopted: usize,
    lookups: usize,
    by_cloud: BTreeMap<&'p str, usize>,
}
