//! A fake Metamist project API on 127.0.0.1, answering as Metamist does (sources: metamist
//! api/routes/project.py, db/python/tables/project.py, db/python/connect.py,
//! db/python/utils.py, api/utils/exceptions.py, models/models/project.py):
//! - `GET /api/v1/project/all`: only the projects the caller holds some role in; Metamist's
//!   `project-creators` group gives `project_admin` and `members-admin` gives
//!   `project_member_admin` in every project (`get_projects_accessible_by_user`).
//! - `GET /api/v1/project/`: the names of the caller's projects with a read or write role.
//! - `PUT /api/v1/project/?name=&dataset=&create_test_project=`: needs `project-creators` (403);
//!   a taken name is a database integrity error, answered 500; the project's id.
//! - `POST /api/v1/project/{project}/update` and `DELETE /api/v1/project/{project}`: need
//!   `project_admin`; deleting data only in test projects, deleting a project never (400).
//! - `PATCH /api/v1/project/{project}/members`: needs `project_member_admin` in the project; a
//!   project that does not exist or the caller cannot see is 403 (`ProjectDoesNotExist` is a
//!   `Forbidden`); an unknown role 400; a body that is not a member list 422; replaces the
//!   whole list. Any other method on that path is 405: nothing reads a project's members.
//!
//! Requests are counted per operation and need the bearer token. Faults: every distinct
//! request answered once with 503 (reads) or 429 with `Retry-After` (writes); new projects
//! missing from the next n listings. A faulted request changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, NewObjectLag, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(
    MetamistEmulator,
    "`project.all`, `project.mine`, `project.create`, `project.update`, `project.delete`, `members.update`, `members.other_method`"
);
/// One entry of the member list `PATCH .../members` takes (models/models/project.py `ProjectMemberUpdate`).
#[derive(Debug, Clone, serde::Deserialize)]
struct ProjectMember {
    member: String,
    roles: Vec<String>,
}

/// Every role Metamist knows (models/models/project.py `ProjectMemberRole`).
const ROLES: [&str; 5] = ["reader", "contributor", "writer", "project_admin", "project_member_admin"];

/// The account the emulator takes the bearer token to be.
pub const EMULATOR_CALLER: &str = "cpg-infra-sync@example.org";

/// One project: member → roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetamistProject {
    pub id: u64,
    pub dataset: String,
    pub members: BTreeMap<String, BTreeSet<String>>,
}

/// A running fake Metamist; dropping it stops the server.
pub struct MetamistEmulator {
    server: Server,
    shared: Arc<Shared>,
}

struct State {
    projects: BTreeMap<String, MetamistProject>,
    next_id: u64,
    /// New projects missing from the next listings.
    lag: NewObjectLag,
    /// The caller is in Metamist's `project-creators` group.
    project_creator: bool,
    /// The caller is in Metamist's `members-admin` group.
    members_admin: bool,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    requests: RequestLog,
}

impl State {
    /// The caller's roles in a project (db/python/tables/project.py
    /// `get_projects_accessible_by_user`): its own rows plus what its admin groups give.
    fn caller_roles(&self, project: &MetamistProject) -> BTreeSet<String> {
        let mut roles = project.members.get(EMULATOR_CALLER).cloned().unwrap_or_default();
        if self.project_creator {
            roles.insert("project_admin".to_owned());
        }
        if self.members_admin {
            roles.insert("project_member_admin".to_owned());
        }
        roles
    }
}

impl MetamistEmulator {
    /// Serves on 127.0.0.1:`port` (0 picks one); every request needs `Bearer <token>`, which
    /// stands for `EMULATOR_CALLER`, in the project-creators and members-admin groups.
    pub fn start(port: u16, token: &str) -> io::Result<MetamistEmulator> {
        let state = State {
            projects: BTreeMap::new(),
            next_id: 1,
            lag: NewObjectLag::default(),
            project_creator: true,
            members_admin: true,
        };
        let shared =
            Arc::new(Shared { token: token.to_owned(), state: Mutex::new(state), requests: RequestLog::default() });
        let server = serve(port, "metamist-emulator", &shared, handle)?;
        Ok(MetamistEmulator { server, shared })
    }

    /// Which of Metamist's admin groups the caller is in.
    pub fn set_caller_groups(&self, project_creator: bool, members_admin: bool) {
        let mut state = lock(&self.shared.state);
        state.project_creator = project_creator;
        state.members_admin = members_admin;
    }

    /// Puts a project in place without a request: `members` as (member, roles).
    pub fn insert_project(&self, name: &str, members: &[(&str, &[&str])]) {
        let mut state = lock(&self.shared.state);
        let id = state.projects.get(name).map(|p| p.id).unwrap_or(state.next_id);
        state.next_id += 1;
        let members = members
            .iter()
            .map(|(m, roles)| ((*m).to_owned(), roles.iter().map(|r| (*r).to_owned()).collect()))
            .collect();
        let dataset = name.strip_suffix("-test").unwrap_or(name).to_owned();
        state.projects.insert(name.to_owned(), MetamistProject { id, dataset, members });
    }

    pub fn projects(&self) -> BTreeMap<String, MetamistProject> {
        lock(&self.shared.state).projects.clone()
    }

    /// Members of a project holding `role`.
    pub fn holders(&self, project: &str, role: &str) -> BTreeSet<String> {
        let state = lock(&self.shared.state);
        let members = state.projects.get(project).map(|p| &p.members).into_iter().flatten();
        members.filter(|(_, roles)| roles.contains(role)).map(|(m, _)| m.clone()).collect()
    }

    /// Projects created from now on are missing from the next `listings` project listings.
    pub fn hide_new_projects_for(&self, listings: u32) {
        lock(&self.shared.state).lag.set(listings);
    }
}

async fn handle(shared: Arc<Shared>, request: Request, _killer: ConnectionKiller) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let authorised = bearer_is(&request, &shared.token);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // api/routes/project.py: the routes under /api/v1/project.
    let call = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "v1", "project", "all"]) => "project.all",
        (&Method::GET, ["api", "v1", "project"]) => "project.mine",
        (&Method::PUT, ["api", "v1", "project"]) => "project.create",
        (&Method::POST, ["api", "v1", "project", _, "update"]) => "project.update",
        (&Method::DELETE, ["api", "v1", "project", _]) => "project.delete",
        (&Method::PATCH, ["api", "v1", "project", _, "members"]) => "members.update",
        // The path is routed for PATCH only: FastAPI answers other methods 405.
        (_, ["api", "v1", "project", _, "members"]) => "members.other_method",
        _ => "unknown",
    };
    shared.requests.count(call);
    if !authorised {
        return answer(StatusCode::UNAUTHORIZED, json!({"detail": "Not authenticated"}));
    }
    if call == "members.other_method" {
        return answer(StatusCode::METHOD_NOT_ALLOWED, json!({"detail": "Method Not Allowed"}));
    }
    if call == "unknown" {
        return answer(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}));
    }
    if shared.requests.should_fault(&format!("{method} {path}?{query}")) {
        return fault(&method);
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST, json!({"detail": "unreadable body"})),
    };
    let project = segments.get(3).map(|s| (*s).to_owned()).unwrap_or_default();
    let mut state = lock(&shared.state);
    match call {
        "project.all" => {
            let mut all = Vec::new();
            for (name, p) in &state.projects {
                let roles = state.caller_roles(p);
                if state.lag.is_hidden(name) || roles.is_empty() {
                    continue;
                }
                all.push(json!({"id": p.id, "name": name, "dataset": p.dataset, "meta": {}, "roles": roles}));
            }
            state.lag.listed();
            answer(StatusCode::OK, Value::Array(all))
        }
        "project.mine" => {
            let read = ["reader", "contributor", "writer"];
            let names: Vec<&String> = state
                .projects
                .iter()
                .filter(|(_, p)| state.caller_roles(p).iter().any(|r| read.contains(&r.as_str())))
                .map(|(name, _)| name)
                .collect();
            answer(StatusCode::OK, json!(names))
        }
        "project.create" => create(&mut state, &query),
        "project.update" | "project.delete" => {
            let Some(p) = state.projects.get(&project) else { return does_not_exist(&project) };
            if !state.caller_roles(p).contains("project_admin") {
                return no_access(&project, "project_admin");
            }
            // api/routes/project.py: deleting a project is no longer allowed, and
            // db/python/tables/project.py refuses to delete a non-test project's data.
            if call == "project.delete" && (query.contains("delete_project=true") || !project.ends_with("-test")) {
                return error(StatusCode::BAD_REQUEST, "ValueError", "refusing to delete this project");
            }
            answer(StatusCode::OK, json!({"success": true}))
        }
        "members.update" => {
            // FastAPI validates the body before the route runs.
            let Ok(members) = serde_json::from_slice::<Vec<ProjectMember>>(&body) else {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"detail": [{"type": "list_type", "loc": ["body"], "msg": "Input should be a valid list"}]}),
                );
            };
            let Some(p) = state.projects.get(&project) else { return does_not_exist(&project) };
            let roles = state.caller_roles(p);
            if roles.is_empty() {
                return does_not_exist(&project);
            }
            if !roles.contains("project_member_admin") {
                return no_access(&project, "project_member_admin");
            }
            if let Some(m) = members.iter().find(|m| m.roles.iter().any(|r| !ROLES.contains(&r.as_str()))) {
                let role = m.roles.iter().find(|r| !ROLES.contains(&r.as_str())).cloned().unwrap_or_default();
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"detail": format!("Role {role} is not valid for member {}", m.member)}),
                );
            }
            // db/python/tables/project.py `set_project_members`: every row deleted, the given
            // ones inserted.
            let mut list: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for m in members {
                list.entry(m.member).or_default().extend(m.roles);
            }
            list.retain(|_, roles| !roles.is_empty());
            if let Some(p) = state.projects.get_mut(&project) {
                p.members = list;
            }
            answer(StatusCode::OK, json!({"success": true}))
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
    }
}

fn create(state: &mut State, query: &str) -> Response {
    let params: BTreeMap<&str, &str> = query.split('&').filter_map(|pair| pair.split_once('=')).collect();
    let (Some(name), Some(dataset)) = (params.get("name"), params.get("dataset")) else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"type": "missing", "loc": ["query", "name"], "msg": "Field required"}]}),
        );
    };
    if !state.project_creator {
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!("{EMULATOR_CALLER} does not have access to create a project"),
        );
    }
    let mut names = vec![(*name).to_owned()];
    if params.get("create_test_project") == Some(&"true") {
        names.push(format!("{name}-test"));
    }
    let first = state.next_id;
    for name in names {
        // The project name is unique in the database: a second insert is an integrity error,
        // which api/utils/exceptions.py maps to 500 (the main project stays if the test
        // project fails, as the route creates them one after the other).
        if state.projects.contains_key(&name) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "IntegrityError",
                &format!("(1062, \"Duplicate entry '{name}' for key 'project.name'\")"),
            );
        }
        let id = state.next_id;
        state.next_id += 1;
        state
            .projects
            .insert(name.clone(), MetamistProject { id, dataset: (*dataset).to_owned(), members: BTreeMap::new() });
        state.lag.created(&name);
    }
    answer(StatusCode::OK, json!(first))
}

/// api/server.py's exception handler: `{"name", "description"}` with the mapped status.
fn error(status: StatusCode, name: &str, description: &str) -> Response {
    answer(status, json!({"name": name, "description": description}))
}

fn does_not_exist(project: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "ProjectDoesNotExist",
        &format!("Project with id '{project}' does not exist, or you do not have the appropriate permissions"),
    )
}

fn no_access(project: &str, role: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        "NoProjectAccess",
        &format!(
            "{EMULATOR_CALLER} does not have {role} access to resources from the following project(s), or they may not exist: '{project}'"
        ),
    )
}

/// Reads get 503; writes get 429 with a Retry-After, as a throttled service answers.
fn fault(method: &Method) -> Response {
    if method == Method::GET {
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"name": "ServiceUnavailable"}));
    }
    let mut response = answer(StatusCode::TOO_MANY_REQUESTS, json!({"name": "TooManyRequests"}));
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
    response
}
