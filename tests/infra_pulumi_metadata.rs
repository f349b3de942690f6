//! Checks every rendered Pulumi program against the providers' own metadata.
//!
//! No Pulumi CLI can run here, so this is the offline substitute for `pulumi preview`: the
//! npm packages `@pulumi/gcp`, `@pulumi/azure-native` and `@pulumi/azuread` (fetched by
//! `scripts/fetch-pulumi-packages` into `target/pulumi-packages/`) hold, in each generated
//! JavaScript file, a resource's type token (`__pulumiType`), its input properties
//! (`resourceInputs["x"] = args?.x`) and its required inputs (`Missing required property 'x'`),
//! and each function's token and arguments (`runtime.invoke("tok", {"x": args.x})`). Their
//! `.d.ts` files give the shapes of nested inputs and of function results.
//!
//! The test renders the example organisation (one project, and one per dataset) and every
//! valid case under `tests/data/infra/cases/`, reads each `Pulumi.yaml` back with a small YAML
//! reader, and fails on any unknown type or function, unknown or missing required property
//! (nested ones too), unknown option, provider of the wrong package, or `${...}` reference to
//! something that does not exist. A checker that finds nothing would pass anything, so it is
//! also run on a program with known mistakes, which it must report.
//!
//! When the packages are missing the test fails and says to run `scripts/fetch-pulumi-packages`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use common::{cpg, fixture_org_dir, manifest_dir, SUCCESS};
use cpg_infra::definitions::{Date, DirSource};
use cpg_infra::infra::{
    render_yaml, single, AccountAccess, Azure, BlobSpec, BucketAccess, BucketSpec, BudgetPeriod, BudgetSpec, Cloud,
    External, ExternalAccess, Gcp, Lifecycle, OnRequest, Owner, Principal, ProjectAccess, RegistryAccess, Scope,
    Unsupported, Value,
};
use cpg_infra::load::load_expanded;

/// Package name → directory under `target/pulumi-packages/`.
const PACKAGES: &[&str] = &["gcp", "azure-native", "azuread"];

const RESOURCE_OPTIONS: &[&str] = &[
    "additionalSecretOutputs",
    "aliases",
    "customTimeouts",
    "deleteBeforeReplace",
    "dependsOn",
    "ignoreChanges",
    "import",
    "parent",
    "protect",
    "provider",
    "providers",
    "version",
    "pluginDownloadURL",
    "replaceOnChanges",
    "retainOnDelete",
];

const TOP_LEVEL: &[&str] = &["name", "runtime", "description", "config", "variables", "resources", "outputs"];

#[test]
fn rendered_programs_match_the_provider_packages() {
    let schema = Schema::load(&packages_dir()).unwrap_or_else(|problem| panic!("{problem}"));
    let mut programs = Vec::new();
    let example = common::example_org();
    programs.extend(render(example.path(), false));
    programs.extend(render(example.path(), true));
    for case in valid_cases() {
        let copy = tempfile::tempdir().expect("temporary directory");
        common::copy_dir(&case, copy.path());
        programs.extend(render(copy.path(), false));
    }
    let mut failures = Vec::new();
    let mut checked = Checked::default();
    for (path, text) in &programs {
        match parse_yaml(text) {
            Ok(yaml) => {
                failures.extend(check_program(&schema, &yaml, &mut checked).into_iter().map(|f| format!("{path}: {f}")))
            }
            Err(e) => failures.push(format!("{path}: not readable as YAML: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
    assert!(checked.types.len() >= 20, "only {} resource types were checked: {:?}", checked.types.len(), checked.types);
    assert!(checked.functions.len() >= 3, "functions checked: {:?}", checked.functions);
    eprintln!(
        "checked {} programs: {} resources of {} types, {} properties, {} references, {} function calls",
        programs.len(),
        checked.resources,
        checked.types.len(),
        checked.properties,
        checked.references,
        checked.invokes
    );
}

/// Every `Cloud` call on both clouds, including those the example organisation does not make
/// (a secret stored on GCP, a fixed budget, grants to machine accounts at every level).
#[test]
fn every_cloud_call_renders_valid_resources() {
    let schema = Schema::load(&packages_dir()).unwrap_or_else(|problem| panic!("{problem}"));
    let today = Date { year: 2026, month: 11, day: 26 };
    let expanded = load_expanded(&DirSource::new(fixture_org_dir()), today).expect("the example organisation is valid");
    let definitions = &expanded.definitions;
    let site = &definitions.datasets["tob-wgs"];
    let owner = Owner::Dataset(site.name.clone());
    let scope = Scope { owner: &owner, site, component: "everything" };
    let mut gcp = Gcp::new(definitions);
    let gcp_unsupported = exercise(&mut gcp, &scope);
    let mut azure = Azure::new(definitions);
    let azure_unsupported = exercise(&mut azure, &scope);
    assert!(gcp_unsupported.is_empty(), "gcp: {gcp_unsupported:?}");
    assert_eq!(
        azure_unsupported,
        [
            "Dataproc clusters",
            "a fixed budget",
            "access for the web-server service",
            "admin-clusters access",
            "edit-batch-jobs access",
            "invoke on the analysis runner service",
            "invoke on the metadata service",
            "machine-account keys",
            "mutate access to everything on request for up to 1 day",
            "read access to everything on request for up to 7 days",
            "read on the analysis runner registry",
            "read on the git token secret",
            "report-batch-jobs access",
            "requester pays",
            "run-clusters access",
            "run-compute on the notebooks project",
            "view-clusters access"
        ]
    );
    let mut checked = Checked::default();
    let mut failures = Vec::new();
    for program in [gcp.into_program(), azure.into_program()] {
        let text = render_yaml(&single(program, "Example"));
        let yaml = parse_yaml(&text).unwrap_or_else(|e| panic!("not readable as YAML: {e}\n{text}"));
        failures.extend(check_program(&schema, &yaml, &mut checked));
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
    for token in [
        "gcp:secretmanager:Secret",
        "gcp:secretmanager:SecretVersion",
        "gcp:secretmanager:SecretIamMember",
        "gcp:projects:Service",
        "gcp:projects:IAMMember",
        "gcp:privilegedaccessmanager:entitlement",
        "gcp:organizations:IAMCustomRole",
        "gcp:cloudrunv2:ServiceIamMember",
        "gcp:artifactregistry:RepositoryIamMember",
    ] {
        assert!(checked.types.contains(token), "{token} was not checked: {:?}", checked.types);
    }
}

/// Makes every kind of call once per variant; returns what the cloud could not provide.
fn exercise(cloud: &mut dyn Cloud, scope: &Scope) -> Vec<String> {
    let mut unsupported = Vec::new();
    let group = Principal::Group { name: "tob-wgs-analysis", email: "tob-wgs-analysis@groups.example.org" };
    let lifecycle = vec![
        Lifecycle::Versioned { noncurrent_days: 30 },
        Lifecycle::AbortUploadsAfter { days: 7 },
        Lifecycle::DeleteAfter { days: 8 },
        Lifecycle::ArchiveAfter { days: 30 },
    ];
    let spec = BucketSpec { name: "everything".into(), lifecycle, requester_pays: false };
    let bucket = cloud.bucket(scope, &spec).expect("buckets");
    if cloud.requester_pays().is_ok() {
        let spec = BucketSpec { name: "released".into(), lifecycle: Vec::new(), requester_pays: true };
        cloud.bucket(scope, &spec).expect("requester-pays buckets");
    } else {
        unsupported.push("requester pays".to_owned());
    }
    let mut note = |outcome: Result<(), Unsupported>| {
        if let Err(u) = outcome {
            unsupported.push(u.what);
        }
    };
    let organisation = Scope { owner: &Owner::Organisation, ..*scope };
    note(cloud.organisation_roles(&organisation));
    for component in cpg_infra::definitions::KNOWN_COMPONENTS {
        note(cloud.prepare(&Scope { component, ..*scope }));
    }
    let account = cloud.machine_account(scope, "everything").expect("machine accounts");
    let secret = cloud.secret(scope, "everything").expect("secrets");
    let registry = cloud.registry(scope, "everything").expect("registries");
    let service = Principal::Service { name: "web-server", email: "web-server@example-common.iam.gserviceaccount.com" };
    for who in [group, Principal::Account(&account), service] {
        for access in [BucketAccess::List, BucketAccess::Read, BucketAccess::Append, BucketAccess::Mutate] {
            note(cloud.grant_bucket(scope, &bucket, &who, access));
        }
        for (access, max_days) in [(BucketAccess::Read, 7), (BucketAccess::Mutate, 1)] {
            let request = OnRequest { who, access, max_days, approvers: group };
            note(cloud.grant_bucket_on_request(scope, &bucket, &request));
        }
        for access in [
            ProjectAccess::ListBuckets,
            ProjectAccess::ViewCompute,
            ProjectAccess::ViewLogs,
            ProjectAccess::ViewMonitoring,
            ProjectAccess::ViewIamRoles,
            ProjectAccess::UseRequesterPays,
            ProjectAccess::ReportBatchJobs,
            ProjectAccess::EditBatchJobs,
            ProjectAccess::AdminClusters,
            ProjectAccess::RunClusters,
            ProjectAccess::ViewClusters,
        ] {
            note(cloud.grant_project(scope, &who, access));
        }
        for (target, access) in [
            (External::AnalysisRunnerService, ExternalAccess::Invoke),
            (External::MetadataService, ExternalAccess::Invoke),
            (External::AnalysisRunnerRegistry, ExternalAccess::Read),
            (External::GitTokenSecret, ExternalAccess::Read),
            (External::NotebooksProject, ExternalAccess::RunCompute),
        ] {
            note(cloud.grant_external(scope, target, &who, access));
        }
        for access in [AccountAccess::Use, AccountAccess::Impersonate, AccountAccess::ManageKeys] {
            note(cloud.grant_machine_account(scope, &account, &who, access));
        }
        for access in [RegistryAccess::Read, RegistryAccess::Write] {
            note(cloud.grant_registry(scope, &registry, &who, access));
        }
        note(cloud.grant_secret(scope, &secret, &who));
    }
    let key = cloud.machine_account_key(scope, &account);
    note(key.as_ref().map(|_| ()).map_err(Clone::clone));
    let value = key.unwrap_or_else(|_| Value::str("a secret"));
    note(cloud.secret_version(scope, &secret, &value));
    let start = Date { year: 2026, month: 1, day: 1 };
    for period in [BudgetPeriod::Monthly, BudgetPeriod::Fixed { start }] {
        let spec = BudgetSpec {
            period,
            amount: 1234.5,
            currency: Some("AUD".into()),
            alert_thresholds: vec![0.5, 1.0],
            notify: vec!["tob-wgs-data-manager@groups.example.org".into()],
        };
        note(cloud.budget(scope, &spec));
    }
    let blob = BlobSpec { name: "everything".into(), path: "everything.txt".into(), content: Value::str("a@b.org\n") };
    note(cloud.blob(scope, &bucket, &blob));
    unsupported.sort();
    unsupported.dedup();
    unsupported
}

#[test]
fn the_checker_reports_known_mistakes() {
    let schema = Schema::load(&packages_dir()).unwrap_or_else(|problem| panic!("{problem}"));
    let text = r#"name: broken
runtime: yaml
resources:
  typo:
    type: gcp:storage:Buckt
  no-location:
    type: gcp:storage:Bucket
    properties:
      colour: blue
      softDeletePolicy:
        retentionDays: 3
      lifecycleRules:
        - action:
            storageClass: ARCHIVE
          condition:
            age: 1
  wrong-provider:
    type: gcp:storage:BucketIAMMember
    properties:
      bucket: ${no-location.nonsense}
      member: ${nowhere}
      role: roles/storage.objectViewer
    options:
      provider: ${azure}
      sometimes: true
  azure:
    type: pulumi:providers:azure-native
variables:
  lookup:
    fn::invoke:
      function: azuread:getGroup
      arguments:
        displayNam: x
      return: objectIdentifier
"#;
    let yaml = parse_yaml(text).expect("valid YAML");
    let problems = check_program(&schema, &yaml, &mut Checked::default());
    let expected = [
        "resource `typo`: unknown type `gcp:storage:Buckt`",
        "resource `no-location`: unknown property `colour`",
        "resource `no-location`: missing required property `location`",
        "resource `no-location`: unknown property `softDeletePolicy.retentionDays`",
        "resource `no-location`: missing required property `lifecycleRules[0].action.type`",
        "resource `wrong-provider`: `${no-location.nonsense}`: gcp:storage:Bucket has no property `nonsense`",
        "resource `wrong-provider`: `${nowhere}`: no resource, variable or config named `nowhere`",
        "resource `wrong-provider`: provider `azure` is a pulumi:providers:azure-native, not a gcp provider",
        "resource `wrong-provider`: unknown option `sometimes`",
        "variable `lookup`: azuread:getGroup has no argument `displayNam`",
        "variable `lookup`: azuread:getGroup returns no `objectIdentifier`",
    ];
    for message in expected {
        assert!(problems.iter().any(|p| p == message), "not reported: {message}\nreported:\n{}", problems.join("\n"));
    }
    assert_eq!(problems.len(), expected.len(), "reported:\n{}", problems.join("\n"));
}

fn packages_dir() -> PathBuf {
    manifest_dir().join("target/pulumi-packages")
}

/// Runs `infra render` on `root` and returns every `Pulumi.yaml` written, with a label.
fn render(root: &Path, per_dataset: bool) -> Vec<(String, String)> {
    let out = tempfile::tempdir().expect("temporary directory");
    let out_arg = out.path().to_string_lossy().into_owned();
    let mut args = vec!["infra", "render", "--out", out_arg.as_str()];
    if per_dataset {
        args.push("--per-dataset");
    }
    cpg(root, &args).expect_code(SUCCESS);
    let mut files = Vec::new();
    collect_programs(out.path(), out.path(), &mut files);
    assert!(!files.is_empty(), "infra render wrote no Pulumi.yaml under {}", out.path().display());
    files
}

fn collect_programs(base: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir).expect("readable").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_programs(base, &path, files);
        } else if path.file_name().is_some_and(|n| n == "Pulumi.yaml") {
            let label = path.strip_prefix(base).unwrap_or(&path).display().to_string();
            files.push((label, fs::read_to_string(&path).expect("readable")));
        }
    }
}

/// Case directories with an expected plan (valid definitions).
fn valid_cases() -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests/data/infra/cases");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.expect("entry").path()).filter(|p| p.join("plan.txt").is_file()).collect())
        .unwrap_or_default();
    cases.sort();
    cases
}

// ---------------------------------------------------------------------------------------------
// Provider metadata read from the packages.

/// Inputs and outputs of one resource type.
#[derive(Debug, Default)]
struct ResourceSchema {
    token: String,
    inputs: BTreeSet<String>,
    required: BTreeSet<String>,
    /// Inputs and outputs: what `${resource.x}` may read.
    properties: BTreeSet<String>,
    /// The `<Class>Args` interface, for nested shapes.
    args: Interface,
}

#[derive(Debug, Default)]
struct FunctionSchema {
    token: String,
    arguments: BTreeSet<String>,
    args: Interface,
    result: Interface,
}

/// Members of a TypeScript interface.
#[derive(Debug, Default, Clone)]
struct Interface {
    members: BTreeMap<String, Member>,
}

#[derive(Debug, Clone)]
struct Member {
    required: bool,
    /// `inputs.<namespace>.<Name>` the member's value (or its items) has, if any.
    nested: Option<(String, String)>,
    /// The type is a map from strings to `nested`.
    map_of: bool,
}

#[derive(Debug, Default)]
struct Schema {
    /// Full token (`gcp:storage/bucket:Bucket`, `pulumi:providers:gcp`) → schema.
    resources: HashMap<String, ResourceSchema>,
    functions: HashMap<String, FunctionSchema>,
    /// (package, namespace, name) → interface from `types/input.d.ts`.
    types: HashMap<(String, String, String), Interface>,
}

impl Schema {
    fn load(dir: &Path) -> Result<Schema, String> {
        let mut schema = Schema::default();
        for package in PACKAGES {
            let base = dir.join(package).join("package");
            if !base.is_dir() {
                return Err(format!(
                    "the Pulumi provider packages are missing ({} does not exist): run scripts/fetch-pulumi-packages \
                     (scripts/test runs it before the tests)",
                    base.display()
                ));
            }
            let mut files = Vec::new();
            walk(&base, &mut files);
            for path in files {
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
                if name == "input.d.ts" && path.parent().is_some_and(|p| p.ends_with("types")) {
                    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    for (namespace, interface, members) in parse_interfaces(&text) {
                        schema.types.insert((package.to_string(), namespace, interface), members);
                    }
                } else if name.ends_with(".js") {
                    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    schema.read_js(&path, &text);
                }
            }
        }
        if schema.resources.is_empty() {
            return Err(format!("no resource types found under {}; run scripts/fetch-pulumi-packages", dir.display()));
        }
        Ok(schema)
    }

    fn read_js(&mut self, path: &Path, text: &str) {
        let declarations = fs::read_to_string(path.with_extension("d.ts")).unwrap_or_default();
        let interfaces: HashMap<String, Interface> =
            parse_interfaces(&declarations).into_iter().map(|(_, name, members)| (name, members)).collect();
        if let Some(token) = between(text, "__pulumiType = '", "'") {
            let full = if token.contains(':') { token.to_owned() } else { format!("pulumi:providers:{token}") };
            let class = if token.contains(':') { token.rsplit(':').next().unwrap_or("") } else { "Provider" };
            let mut resource = ResourceSchema { token: full.clone(), ..ResourceSchema::default() };
            for line in text.lines() {
                let line = line.trim();
                if let Some(rest) = line.strip_prefix("resourceInputs[\"") {
                    let Some((name, expression)) = rest.split_once("\"] = ") else { continue };
                    resource.properties.insert(name.to_owned());
                    if expression.contains("args") {
                        resource.inputs.insert(name.to_owned());
                    }
                } else if let Some(name) = between(line, "Missing required property '", "'") {
                    resource.required.insert(name.to_owned());
                }
            }
            // A few tokens keep a lowercase type name (`...:entitlement`) while the class is
            // capitalised in the declarations.
            let args = interfaces
                .get(&format!("{class}Args"))
                .or_else(|| interfaces.get(&format!("{}Args", capitalise(class))));
            resource.args = args.cloned().unwrap_or_default();
            self.resources.insert(full, resource);
        }
        let mut rest = text;
        while let Some(start) = rest.find("runtime.invoke(\"") {
            rest = &rest[start + "runtime.invoke(\"".len()..];
            let Some(end) = rest.find('"') else { break };
            let token = rest[..end].to_owned();
            let body = rest[end..].split_once('}').map_or("", |(body, _)| body);
            let arguments = body
                .lines()
                .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.split_once('"')).map(|(n, _)| n.to_owned()))
                .collect();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let capitalised = capitalise(stem);
            let function = FunctionSchema {
                token: token.clone(),
                arguments,
                args: interfaces.get(&format!("{capitalised}Args")).cloned().unwrap_or_default(),
                result: interfaces.get(&format!("{capitalised}Result")).cloned().unwrap_or_default(),
            };
            self.functions.insert(token, function);
        }
    }

    fn resource(&self, token: &str) -> Option<&ResourceSchema> {
        if token == "pulumi:pulumi:StackReference" {
            return None;
        }
        candidates(token).iter().find_map(|t| self.resources.get(t))
    }

    fn function(&self, token: &str) -> Option<&FunctionSchema> {
        candidates(token).iter().find_map(|t| self.functions.get(t))
    }
}

/// Pulumi YAML's token resolution: the token itself, `pkg:index:Name` for `pkg:Name`, and
/// `pkg:mod/camelName:Name` for `pkg:mod:Name`.
fn candidates(token: &str) -> Vec<String> {
    let parts: Vec<&str> = token.split(':').collect();
    let mut all = vec![token.to_owned()];
    match parts.as_slice() {
        [package, name] => {
            all.push(format!("{package}:index:{name}"));
            all.push(format!("{package}:index/{}:{name}", lower_first(name)));
        }
        [package, module, name] if !module.contains('/') => {
            all.push(format!("{package}:{module}/{}:{name}", lower_first(name)));
        }
        _ => {}
    }
    all
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn between<'t>(text: &'t str, start: &str, end: &str) -> Option<&'t str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)?;
    Some(&text[from..from + to])
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Every `interface Name { ... }` of a `.d.ts` file, with its namespace ("" at top level).
fn parse_interfaces(text: &str) -> Vec<(String, String, Interface)> {
    let mut found = Vec::new();
    let mut namespaces: Vec<(usize, String)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed == "}" && namespaces.last().is_some_and(|(i, _)| *i == indent) {
            namespaces.pop();
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let keyword = words.iter().position(|w| *w == "namespace" || *w == "interface");
        let Some(k) = keyword else { continue };
        if words.last() != Some(&"{") || words.len() != k + 3 {
            continue;
        }
        let name = words[k + 1].to_owned();
        if words[k] == "namespace" {
            namespaces.push((indent, name));
            continue;
        }
        // An interface: gather its body up to the closing brace at the same indentation.
        let mut body = String::new();
        for inner in lines.by_ref() {
            let inner_indent = inner.len() - inner.trim_start().len();
            if inner.trim() == "}" && inner_indent == indent {
                break;
            }
            let t = inner.trim();
            if t.starts_with("/**") || t.starts_with('*') || t.starts_with("//") {
                continue;
            }
            body.push_str(t);
            body.push(' ');
        }
        let namespace = namespaces.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(".");
        found.push((namespace, name, parse_members(&body)));
    }
    found
}

/// `name?: type; other: type;` (types may hold braces with their own `;`).
fn parse_members(body: &str) -> Interface {
    let mut members = BTreeMap::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in body.chars() {
        match c {
            '{' | '<' | '(' | '[' => depth += 1,
            '}' | '>' | ')' | ']' => depth -= 1,
            _ => {}
        }
        if c == ';' && depth == 0 {
            if let Some((name, member)) = parse_member(&current) {
                members.insert(name, member);
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    Interface { members }
}

fn parse_member(text: &str) -> Option<(String, Member)> {
    let text = text.trim().trim_start_matches("readonly ").trim();
    let (name, ty) = text.split_once(':')?;
    let (name, optional) = match name.trim().strip_suffix('?') {
        Some(name) => (name, true),
        None => (name.trim(), false),
    };
    let name = name.trim_matches('"').to_owned();
    let nested = ty.find("inputs.").map(|at| {
        let path: String =
            ty[at + "inputs.".len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_').collect();
        match path.rsplit_once('.') {
            Some((namespace, name)) => (namespace.to_owned(), name.to_owned()),
            None => (String::new(), path),
        }
    });
    Some((name, Member { required: !optional, nested, map_of: ty.contains("[key: string]") }))
}

// ---------------------------------------------------------------------------------------------
// Checking a program.

#[derive(Debug, Default)]
struct Checked {
    resources: usize,
    properties: usize,
    references: usize,
    invokes: usize,
    types: BTreeSet<String>,
    functions: BTreeSet<String>,
}

fn check_program(schema: &Schema, program: &Yaml, checked: &mut Checked) -> Vec<String> {
    let mut problems = Vec::new();
    let Yaml::Map(top) = program else {
        return vec!["the program is not a mapping".to_owned()];
    };
    for (key, _) in top {
        if !TOP_LEVEL.contains(&key.as_str()) {
            problems.push(format!("unknown top-level key `{key}`"));
        }
    }
    if program.get("runtime").and_then(Yaml::as_str) != Some("yaml") {
        problems.push("runtime is not yaml".to_owned());
    }
    let resources = program.get("resources").map(Yaml::entries).unwrap_or_default();
    let variables = program.get("variables").map(Yaml::entries).unwrap_or_default();
    let config = program.get("config").map(Yaml::entries).unwrap_or_default();
    let types: HashMap<&str, &str> = resources
        .iter()
        .filter_map(|(name, r)| r.get("type").and_then(Yaml::as_str).map(|t| (name.as_str(), t)))
        .collect();
    let names = Names {
        schema,
        types: &types,
        variables: variables.iter().map(|(n, _)| n.as_str()).collect(),
        config: config.iter().map(|(n, _)| n.as_str()).collect(),
    };
    for (name, _) in &variables {
        if types.contains_key(name.as_str()) {
            problems.push(format!("`{name}` is both a variable and a resource"));
        }
    }
    for (name, resource) in &resources {
        checked.resources += 1;
        let context = format!("resource `{name}`");
        let Some(token) = resource.get("type").and_then(Yaml::as_str) else {
            problems.push(format!("{context}: no type"));
            continue;
        };
        checked.types.insert(token.to_owned());
        let properties = resource.get("properties").map(Yaml::entries).unwrap_or_default();
        for (_, value) in &properties {
            names.check_references(value, &context, checked, &mut problems);
        }
        if token == "pulumi:pulumi:StackReference" {
            if !properties.iter().any(|(k, _)| k == "name") || properties.len() != 1 {
                problems.push(format!("{context}: a stack reference takes exactly `name`"));
            }
        } else if let Some(resource_schema) = schema.resource(token) {
            if resource_schema.args.members.is_empty() && !properties.is_empty() {
                problems.push(format!("{context}: no {}Args interface found for nested checks", resource_schema.token));
            }
            for (property, value) in &properties {
                checked.properties += 1;
                if !resource_schema.inputs.contains(property) {
                    problems.push(format!("{context}: unknown property `{property}`"));
                    continue;
                }
                if let Some(member) = resource_schema.args.members.get(property) {
                    check_nested(schema, token, member, value, property, &context, &mut problems);
                }
            }
            for required in &resource_schema.required {
                if !properties.iter().any(|(k, _)| k == required) {
                    problems.push(format!("{context}: missing required property `{required}`"));
                }
            }
        } else {
            problems.push(format!("{context}: unknown type `{token}`"));
        }
        for (option, value) in resource.get("options").map(Yaml::entries).unwrap_or_default() {
            if !RESOURCE_OPTIONS.contains(&option.as_str()) {
                problems.push(format!("{context}: unknown option `{option}`"));
            }
            if option == "provider" {
                let provider = value.as_str().and_then(|v| v.strip_prefix("${")).and_then(|v| v.strip_suffix('}'));
                let package = token.split(':').next().unwrap_or("");
                match provider.and_then(|p| types.get(p).map(|t| (p, *t))) {
                    Some((_, t)) if *t == format!("pulumi:providers:{package}") => {}
                    Some((p, t)) => {
                        problems.push(format!("{context}: provider `{p}` is a {t}, not a {package} provider"))
                    }
                    None => problems.push(format!("{context}: provider {value:?} is not a resource of this program")),
                }
            }
        }
    }
    for (name, value) in &variables {
        let context = format!("variable `{name}`");
        names.check_references(value, &context, checked, &mut problems);
        if let Some(invoke) = value.get("fn::invoke") {
            checked.invokes += 1;
            check_invoke(schema, invoke, &context, checked, &mut problems);
        }
    }
    for (name, value) in program.get("outputs").map(Yaml::entries).unwrap_or_default() {
        names.check_references(value, &format!("output `{name}`"), checked, &mut problems);
    }
    problems
}

fn check_invoke(schema: &Schema, invoke: &Yaml, context: &str, checked: &mut Checked, problems: &mut Vec<String>) {
    let Some(token) = invoke.get("function").and_then(Yaml::as_str) else {
        problems.push(format!("{context}: fn::invoke without a function"));
        return;
    };
    let Some(function) = schema.function(token) else {
        problems.push(format!("{context}: unknown function `{token}`"));
        return;
    };
    checked.functions.insert(function.token.clone());
    let arguments = invoke.get("arguments").map(Yaml::entries).unwrap_or_default();
    for (argument, _) in &arguments {
        if !function.arguments.contains(argument) {
            problems.push(format!("{context}: {token} has no argument `{argument}`"));
        }
    }
    for (member, m) in &function.args.members {
        if m.required && !arguments.iter().any(|(a, _)| a == member) {
            problems.push(format!("{context}: {token} needs argument `{member}`"));
        }
    }
    if let Some(field) = invoke.get("return").and_then(Yaml::as_str) {
        if !function.result.members.contains_key(field) {
            problems.push(format!("{context}: {token} returns no `{field}`"));
        }
    }
}

/// Checks a nested value against the member's input type, recursively.
fn check_nested(
    schema: &Schema,
    token: &str,
    member: &Member,
    value: &Yaml,
    path: &str,
    context: &str,
    problems: &mut Vec<String>,
) {
    let Some((namespace, name)) = &member.nested else { return };
    let package = token.split(':').next().unwrap_or("").to_owned();
    let Some(interface) = schema.types.get(&(package, namespace.clone(), name.clone())) else {
        problems.push(format!("{context}: `{path}` has type {namespace}.{name}, which is not in types/input.d.ts"));
        return;
    };
    match value {
        Yaml::List(items) => {
            for (i, item) in items.iter().enumerate() {
                let item_member = Member { map_of: false, ..member.clone() };
                check_nested(schema, token, &item_member, item, &format!("{path}[{i}]"), context, problems);
            }
        }
        Yaml::Map(entries) if member.map_of => {
            for (key, item) in entries {
                let item_member = Member { map_of: false, ..member.clone() };
                check_nested(schema, token, &item_member, item, &format!("{path}.{key}"), context, problems);
            }
        }
        Yaml::Map(entries) => {
            for (key, item) in entries {
                match interface.members.get(key) {
                    Some(inner) => {
                        check_nested(schema, token, inner, item, &format!("{path}.{key}"), context, problems)
                    }
                    None => problems.push(format!("{context}: unknown property `{path}.{key}`")),
                }
            }
            for (key, inner) in &interface.members {
                if inner.required && !entries.iter().any(|(k, _)| k == key) {
                    problems.push(format!("{context}: missing required property `{path}.{key}`"));
                }
            }
        }
        _ => {}
    }
}

/// What `${...}` may name in one program.
struct Names<'p> {
    schema: &'p Schema,
    types: &'p HashMap<&'p str, &'p str>,
    variables: BTreeSet<&'p str>,
    config: BTreeSet<&'p str>,
}

impl Names<'_> {
    fn check_references(&self, value: &Yaml, context: &str, checked: &mut Checked, problems: &mut Vec<String>) {
        match value {
            Yaml::Str(text) => {
                for reference in references(text) {
                    checked.references += 1;
                    if let Some(problem) = self.reference_problem(&reference) {
                        problems.push(format!("{context}: `${{{}}}`: {problem}", reference.text));
                    }
                }
            }
            Yaml::List(items) => items.iter().for_each(|v| self.check_references(v, context, checked, problems)),
            Yaml::Map(entries) => {
                entries.iter().for_each(|(_, v)| self.check_references(v, context, checked, problems))
            }
            _ => {}
        }
    }

    fn reference_problem(&self, reference: &Reference) -> Option<String> {
        let root = reference.root.as_str();
        if root == "pulumi" {
            let ok = matches!(reference.first.as_deref(), Some("stack" | "project" | "cwd" | "organization"));
            return (!ok).then(|| "the built-in `pulumi` has stack, project, cwd and organization".to_owned());
        }
        if self.variables.contains(root) || self.config.contains(root) {
            return None;
        }
        let Some(token) = self.types.get(root) else {
            return Some(format!("no resource, variable or config named `{root}`"));
        };
        let field = reference.first.as_deref()?;
        if *token == "pulumi:pulumi:StackReference" {
            let ok = matches!(field, "outputs" | "name" | "secretOutputNames");
            return (!ok).then(|| format!("a stack reference has no property `{field}`"));
        }
        let schema = self.schema.resource(token)?;
        if field == "id" || field == "urn" || schema.properties.contains(field) {
            None
        } else {
            Some(format!("{token} has no property `{field}`"))
        }
    }
}

struct Reference {
    text: String,
    root: String,
    first: Option<String>,
}

/// The `${...}` expressions of an interpolated string (`$${` is a literal `${`).
fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if at > 0 && rest[..at].ends_with('$') {
            rest = &rest[at + 2..];
            continue;
        }
        let body = &rest[at + 2..];
        let Some(end) = body.find('}') else { break };
        let expression = &body[..end];
        let (root, after) = if let Some(quoted) = expression.strip_prefix("[\"") {
            let close = quoted.find("\"]").unwrap_or(quoted.len());
            (quoted[..close].to_owned(), &quoted[(close + 2).min(quoted.len())..])
        } else {
            let stop = expression.find(['.', '[']).unwrap_or(expression.len());
            (expression[..stop].to_owned(), &expression[stop..])
        };
        let first = after
            .strip_prefix('.')
            .map(|field| field.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>());
        found.push(Reference { text: expression.to_owned(), root, first });
        rest = &body[end + 1..];
    }
    found
}

// ---------------------------------------------------------------------------------------------
// A YAML reader for the subset the renderer writes: block mappings and sequences, plain and
// double-quoted scalars, `|` literal blocks, `{}` and `[]`, comments.

#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Str(String),
    Number(f64),
    Bool(bool),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    fn entries(&self) -> Vec<(String, &Yaml)> {
        match self {
            Yaml::Map(entries) => entries.iter().map(|(k, v)| (k.clone(), v)).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Line {
    number: usize,
    indent: usize,
    text: String,
}

fn parse_yaml(text: &str) -> Result<Yaml, String> {
    let mut lines: Vec<Line> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.trim_start();
        if raw.contains('\t') && raw.trim_start_matches(' ').starts_with('\t') {
            return Err(format!("line {}: tab indentation", i + 1));
        }
        // Blank lines and comments matter only inside literal blocks, which keep raw lines.
        lines.push(Line { number: i + 1, indent: raw.len() - content.len(), text: content.to_owned() });
    }
    let mut reader = Reader { lines, at: 0 };
    reader.skip_blank();
    let value = reader.block(0)?;
    reader.skip_blank();
    if reader.at < reader.lines.len() {
        let line = &reader.lines[reader.at];
        return Err(format!("line {}: unexpected `{}`", line.number, line.text));
    }
    Ok(value)
}

struct Reader {
    lines: Vec<Line>,
    at: usize,
}

impl Reader {
    fn skip_blank(&mut self) {
        while self.at < self.lines.len()
            && (self.lines[self.at].text.is_empty() || self.lines[self.at].text.starts_with('#'))
        {
            self.at += 1;
        }
    }

    fn block(&mut self, indent: usize) -> Result<Yaml, String> {
        self.skip_blank();
        let Some(line) = self.lines.get(self.at) else { return Ok(Yaml::Map(Vec::new())) };
        if line.indent != indent {
            return Err(format!("line {}: expected indentation {indent}, found {}", line.number, line.indent));
        }
        if line.text == "-" || line.text.starts_with("- ") {
            self.sequence(indent)
        } else {
            self.mapping(indent)
        }
    }

    fn sequence(&mut self, indent: usize) -> Result<Yaml, String> {
        let mut items = Vec::new();
        loop {
            self.skip_blank();
            let Some(line) = self.lines.get(self.at).cloned() else { break };
            if line.indent != indent || !(line.text == "-" || line.text.starts_with("- ")) {
                break;
            }
            let content = line.text[1..].trim_start().to_owned();
            if content.is_empty() {
                self.at += 1;
                self.skip_blank();
                let next = self.lines.get(self.at).map_or(indent + 2, |l| l.indent);
                items.push(self.block(next)?);
            } else if split_key(&content).is_some() {
                // `- key: value`: a mapping whose first line starts after the dash.
                let inner = indent + (line.text.len() - content.len());
                self.lines[self.at] = Line { number: line.number, indent: inner, text: content };
                items.push(self.mapping(inner)?);
            } else {
                self.at += 1;
                items.push(scalar(&content).map_err(|e| format!("line {}: {e}", line.number))?);
            }
        }
        Ok(Yaml::List(items))
    }

    fn mapping(&mut self, indent: usize) -> Result<Yaml, String> {
        let mut entries: Vec<(String, Yaml)> = Vec::new();
        loop {
            self.skip_blank();
            let Some(line) = self.lines.get(self.at).cloned() else { break };
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return Err(format!("line {}: unexpected indentation", line.number));
            }
            if line.text.starts_with("- ") {
                break;
            }
            let (key, rest) =
                split_key(&line.text).ok_or_else(|| format!("line {}: expected `key: value`", line.number))?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("line {}: duplicate key `{key}`", line.number));
            }
            self.at += 1;
            let value = if rest.is_empty() {
                self.skip_blank();
                match self.lines.get(self.at) {
                    Some(next) if next.indent > indent => {
                        let next_indent = next.indent;
                        self.block(next_indent)?
                    }
                    // A sequence may sit at the key's own indentation.
                    Some(next) if next.indent == indent && next.text.starts_with("- ") => self.sequence(indent)?,
                    _ => return Err(format!("line {}: `{key}:` has no value", line.number)),
                }
            } else if rest == "|" {
                self.literal(indent)
            } else {
                scalar(&rest).map_err(|e| format!("line {}: {e}", line.number))?
            };
            entries.push((key, value));
        }
        Ok(Yaml::Map(entries))
    }

    /// A `|` block: the following lines indented deeper than `indent`, one newline at the end.
    fn literal(&mut self, indent: usize) -> Yaml {
        let mut block_lines = Vec::new();
        let mut block_indent = None;
        while let Some(line) = self.lines.get(self.at) {
            if !line.text.is_empty() && line.indent <= indent {
                break;
            }
            if !line.text.is_empty() && block_indent.is_none() {
                block_indent = Some(line.indent);
            }
            let extra = line.indent.saturating_sub(block_indent.unwrap_or(line.indent));
            block_lines.push(format!("{}{}", " ".repeat(extra), line.text));
            self.at += 1;
        }
        while block_lines.last().is_some_and(String::is_empty) {
            block_lines.pop();
        }
        let mut text = block_lines.join("\n");
        text.push('\n');
        Yaml::Str(text)
    }
}

/// `key: rest` or `key:`; keys are plain or double-quoted.
fn split_key(text: &str) -> Option<(String, String)> {
    if text.starts_with('"') {
        let end = closing_quote(text)?;
        let key: String = serde_json::from_str(&text[..=end]).ok()?;
        let rest = text[end + 1..].strip_prefix(':')?;
        return Some((key, rest.trim().to_owned()));
    }
    if let Some(key) = text.strip_suffix(':') {
        if !key.contains(": ") {
            return Some((key.to_owned(), String::new()));
        }
    }
    let (key, rest) = text.split_once(": ")?;
    if key.starts_with(['"', '{', '[', '$']) {
        return None;
    }
    Some((key.to_owned(), rest.trim().to_owned()))
}

fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn scalar(text: &str) -> Result<Yaml, String> {
    if text.starts_with('"') {
        let end = closing_quote(text).ok_or("unterminated string")?;
        if end + 1 != text.len() {
            return Err(format!("text after a quoted string: `{text}`"));
        }
        return serde_json::from_str::<String>(text).map(Yaml::Str).map_err(|e| e.to_string());
    }
    Ok(match text {
        "{}" => Yaml::Map(Vec::new()),
        "[]" => Yaml::List(Vec::new()),
        "true" => Yaml::Bool(true),
        "false" => Yaml::Bool(false),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') => {
            Yaml::Number(text.parse().map_err(|_| format!("`{text}` is neither a number nor quoted"))?)
        }
        _ if text.starts_with(['\'', '{', '[', '&', '*', '!', '%', '@', '`', '>', '|', '#']) => {
            return Err(format!("`{text}` needs quotes"));
        }
        _ => Yaml::Str(text.to_owned()),
    })
}
