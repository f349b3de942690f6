//! The Pulumi program model: config, variables, resources and outputs as plain values.
//!
//! Owns the shape of a Pulumi YAML program plus the bookkeeping the plan needs (which owner,
//! cloud and component made each resource, where each owner lives). Never decides what to
//! create (the driver and the clouds do) and never does I/O.

use std::collections::{BTreeMap, BTreeSet};

use super::names::NameClaim;

/// Who a resource belongs to: the organisation, or one dataset. In a per-dataset render each
/// owner is one Pulumi project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    Organisation,
    Dataset(String),
}

impl Owner {
    /// The prefix of the owner's logical resource names.
    pub fn prefix(&self) -> &str {
        match self {
            Owner::Organisation => "organisation",
            Owner::Dataset(name) => name,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A whole program. Maps are sorted, so the same design renders to the same bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Program {
    /// Stack configuration the program reads (`${name}`), e.g. the billing account.
    pub config: BTreeMap<String, ConfigEntry>,
    /// Named values, mostly lookups of existing things (`fn::invoke`).
    pub variables: BTreeMap<String, Value>,
    pub resources: BTreeMap<String, Resource>,
    pub outputs: BTreeMap<String, Value>,
    /// Where each owner's resources live on each cloud, for the plan (not rendered).
    pub sites: BTreeMap<(Owner, String), String>,
    /// Logical names that were added twice (a dataset name that clashes with another name).
    pub duplicates: Vec<String>,
    /// The cloud names the resources use, to check (not rendered).
    pub names: Vec<NameClaim>,
    /// A program built only to be checked keeps the properties of these resources alone (the
    /// imported ones, whose ids are checked against them): most of a program's memory is its
    /// properties, which no check reads. `None`: a program to render, with every property.
    pub keep_properties_of: Option<BTreeSet<String>>,
}

/// One stack configuration value the program needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub description: String,
}

/// One resource, as Pulumi YAML declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The type token, e.g. `gcp:storage:Bucket`.
    pub type_token: String,
    pub properties: BTreeMap<String, Value>,
    pub options: Options,
    /// Who made it and why (not rendered).
    pub origin: Origin,
}

/// Resource options the design uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// The id of an existing cloud resource to adopt.
    pub import: Option<String>,
    /// An explicit provider resource.
    pub provider: Option<Ref>,
    /// Keep the cloud resource when it leaves the program (buckets hold data).
    pub retain_on_delete: bool,
    /// Resources of the same owner to create first though no property refers to them: the
    /// project the resource lives in and the APIs it needs enabled there.
    pub depends_on: Vec<String>,
}

/// Which owner, cloud and component a resource serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    pub owner: Owner,
    pub cloud: String,
    pub component: String,
}

/// A property value, a variable, or an output.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Number(f64),
    /// A literal string (a `${` in it is escaped when rendered).
    String(String),
    /// A string built from literal text and references, e.g. `group:${x}` or `${bucket.name}`.
    Interpolation(Vec<Piece>),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// `fn::invoke` of a provider function, e.g. a lookup of an existing group.
    Invoke {
        function: String,
        arguments: BTreeMap<String, Value>,
        return_field: Option<String>,
    },
    /// `fn::stringAsset`: file contents given inline.
    StringAsset(Box<Value>),
}

/// A part of an interpolated string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Ref(Ref),
}

/// `${root.field["key"]}`: a resource output, a variable, a config value or `pulumi.stack`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    pub root: String,
    pub path: Vec<Step>,
}

/// One property access after the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Field(String),
    Key(String),
}

impl Ref {
    /// `${root}`.
    pub fn to(root: &str) -> Ref {
        Ref { root: root.to_owned(), path: Vec::new() }
    }

    /// `${root.field}`.
    pub fn field(root: &str, field: &str) -> Ref {
        Ref { root: root.to_owned(), path: vec![Step::Field(field.to_owned())] }
    }
}

impl Value {
    pub fn str(text: impl Into<String>) -> Value {
        Value::String(text.into())
    }

    /// A value that is exactly one reference.
    pub fn reference(reference: Ref) -> Value {
        Value::Interpolation(vec![Piece::Ref(reference)])
    }

    /// `${root.field}`.
    pub fn output(root: &str, field: &str) -> Value {
        Value::reference(Ref::field(root, field))
    }

    /// `text${reference}`.
    pub fn prefixed(text: &str, reference: Ref) -> Value {
        Value::Interpolation(vec![Piece::Text(text.to_owned()), Piece::Ref(reference)])
    }

    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// Calls `visit` on every reference inside the value.
    pub fn visit_refs(&self, visit: &mut impl FnMut(&Ref)) {
        match self {
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
            Value::Interpolation(pieces) => pieces.iter().for_each(|p| {
                if let Piece::Ref(r) = p {
                    visit(r)
                }
            }),
            Value::List(items) => items.iter().for_each(|v| v.visit_refs(visit)),
            Value::Map(entries) => entries.values().for_each(|v| v.visit_refs(visit)),
            Value::Invoke { arguments, .. } => arguments.values().for_each(|v| v.visit_refs(visit)),
            Value::StringAsset(inner) => inner.visit_refs(visit),
        }
    }

    /// Replaces references in place.
    pub fn rewrite_refs(&mut self, rewrite: &mut impl FnMut(&mut Ref)) {
        match self {
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
            Value::Interpolation(pieces) => pieces.iter_mut().for_each(|p| {
                if let Piece::Ref(r) = p {
                    rewrite(r)
                }
            }),
            Value::List(items) => items.iter_mut().for_each(|v| v.rewrite_refs(rewrite)),
            Value::Map(entries) => entries.values_mut().for_each(|v| v.rewrite_refs(rewrite)),
            Value::Invoke { arguments, .. } => arguments.values_mut().for_each(|v| v.rewrite_refs(rewrite)),
            Value::StringAsset(inner) => inner.rewrite_refs(rewrite),
        }
    }
}

impl Resource {
    pub fn new(type_token: &str, origin: Origin, properties: Value) -> Resource {
        let properties = match properties {
            Value::Map(map) => map,
            _ => BTreeMap::new(),
        };
        Resource { type_token: type_token.to_owned(), properties, options: Options::default(), origin }
    }

    /// Calls `visit` on every reference in the properties and options.
    pub fn visit_refs(&self, visit: &mut impl FnMut(&Ref)) {
        self.properties.values().for_each(|v| v.visit_refs(visit));
        if let Some(provider) = &self.options.provider {
            visit(provider);
        }
    }

    pub fn rewrite_refs(&mut self, rewrite: &mut impl FnMut(&mut Ref)) {
        self.properties.values_mut().for_each(|v| v.rewrite_refs(rewrite));
        if let Some(provider) = &mut self.options.provider {
            rewrite(provider);
        }
    }
}

impl Program {
    /// Adds a resource; a name that is already taken is recorded in `duplicates`.
    pub fn add(&mut self, name: &str, resource: Resource) {
        if self.resources.contains_key(name) || self.variables.contains_key(name) {
            self.duplicates.push(name.to_owned());
            return;
        }
        let mut resource = resource;
        if self.keep_properties_of.as_ref().is_some_and(|kept| !kept.contains(name)) {
            resource.properties = BTreeMap::new();
        }
        self.resources.insert(name.to_owned(), resource);
    }

    /// Adds a variable unless it exists (lookups are shared by name).
    pub fn variable(&mut self, name: &str, value: Value) -> Ref {
        if self.resources.contains_key(name) {
            self.duplicates.push(name.to_owned());
        }
        self.variables.entry(name.to_owned()).or_insert(value);
        Ref::to(name)
    }

    /// Declares a config value and returns a reference to it.
    pub fn config(&mut self, name: &str, description: &str) -> Ref {
        self.config.entry(name.to_owned()).or_insert_with(|| ConfigEntry { description: description.to_owned() });
        Ref::to(name)
    }

    /// Moves everything from `other` into this program.
    pub fn merge(&mut self, other: Program) {
        self.config.extend(other.config);
        for (name, value) in other.variables {
            self.variable(&name, value);
        }
        for (name, resource) in other.resources {
            self.add(&name, resource);
        }
        self.outputs.extend(other.outputs);
        self.sites.extend(other.sites);
        self.duplicates.extend(other.duplicates);
        self.names.extend(other.names);
    }

    /// The number of resources adopted with `import`.
    pub fn adopted(&self) -> usize {
        self.resources.values().filter(|r| r.options.import.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin { owner: Owner::Dataset("d".into()), cloud: "gcp".into(), component: "storage".into() }
    }

    #[test]
    fn references_are_visited_and_rewritten_everywhere() {
        let mut resource = Resource::new(
            "gcp:storage:BucketIAMMember",
            origin(),
            Value::map([
                ("bucket", Value::output("b", "name")),
                ("member", Value::prefixed("group:", Ref::to("g"))),
                ("nested", Value::list([Value::map([("x", Value::output("c", "id"))])])),
            ]),
        );
        resource.options.provider = Some(Ref::to("p"));
        let mut seen = Vec::new();
        resource.visit_refs(&mut |r| seen.push(r.root.clone()));
        seen.sort();
        assert_eq!(seen, ["b", "c", "g", "p"]);
        resource.rewrite_refs(&mut |r| r.root = format!("x-{}", r.root));
        let mut seen = Vec::new();
        resource.visit_refs(&mut |r| seen.push(r.root.clone()));
        seen.sort();
        assert_eq!(seen, ["x-b", "x-c", "x-g", "x-p"]);
    }

    #[test]
    fn duplicate_names_are_recorded_not_overwritten() {
        let mut program = Program::default();
        program.add("a", Resource::new("t:m:A", origin(), Value::map([])));
        program.add("a", Resource::new("t:m:B", origin(), Value::map([])));
        assert_eq!(program.resources["a"].type_token, "t:m:A");
        assert_eq!(program.duplicates, ["a"]);
    }
}
