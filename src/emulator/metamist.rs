//! A fake Metamist project API on 127.0.0.1: `GET /api/v1/project/all`,
//! `PUT /api/v1/project/?name=&dataset=&create_test_project=` (409 when the name is taken),
//! `GET /api/v1/project/{project}/members` and `PATCH /api/v1/project/{project}/members`,
//! which replaces the project's whole member list (`[{"member", "roles"}]`, roles from
//! Metamist's own set, anything else 400). Requests are counted per operation and need the
//! bearer token. Faults: every distinct request answered once with 503 (reads) or 429 with
//! `Retry-After` (writes); new projects missing from the next n listings. A faulted request
//! changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, NewObjectLag, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(MetamistEmulator, "`project.all`, `project.create`, `members.get`, `members.update`");
use crate::directory::ProjectMember;

/// Every role Metamist knows; the sync manages the first three.
const ROLES: [&str; 5] = ["reader", "contributor", "writer", "project_admin", "project_member_admin"];

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

#[derive(Default)]
struct State {
    projects: BTreeMap<String, MetamistProject>,
    next_id: u64,
    /// New projects missing from the next listings.
    lag: NewObjectLag,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    requests: RequestLog,
}

impl MetamistEmulator {
    /// Serves on 127.0.0.1:`port` (0 picks one); every request needs `Bearer <token>`.
    pub fn start(port: u16, token: &str) -> io::Result<MetamistEmulator> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(State { next_id: 1, ..State::default() }),
            requests: RequestLog::default(),
        });
        let server = serve(port, "metamist-emulator", &shared, handle)?;
        Ok(MetamistEmulator { server, shared })
    }

    /// Puts a project in place without a request: `members` as (member, roles).
    pub fn insert_project(&self, name: &str, members: &[(&str, &[&str])]) {
        let mut state = lock(&self.shared.state);
        let id = state.next_id;
        state.next_id += 1;
        let members = members
            .iter()
            .map(|(m, roles)| ((*m).to_owned(), roles.iter().map(|r| (*r).to_owned()).collect()))
            .collect();
        state.projects.insert(name.to_owned(), MetamistProject { id, dataset: name.to_owned(), members });
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
    let call = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "v1", "project", "all"]) => "project.all",
        (&Method::PUT, ["api", "v1", "project"]) => "project.create",
        (&Method::GET, ["api", "v1", "project", _, "members"]) => "members.get",
        (&Method::PATCH, ["api", "v1", "project", _, "members"]) => "members.update",
        _ => "unknown",
    };
    shared.requests.count(call);
    if !authorised {
        return answer(StatusCode::UNAUTHORIZED, json!({"name": "Unauthorized", "description": "no valid token"}));
    }
    if shared.requests.should_fault(&format!("{method} {path}?{query}")) {
        return fault(&method);
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST, json!({"name": "BadRequest"})),
    };
    let project = segments.get(3).map(|s| (*s).to_owned()).unwrap_or_default();
    let mut state = lock(&shared.state);
    match call {
        "project.all" => {
            let mut all = Vec::new();
            for (name, p) in &state.projects {
                if state.lag.is_hidden(name) {
                    continue;
                }
                all.push(json!({"id": p.id, "name": name, "dataset": p.dataset, "meta": {}, "roles": []}));
            }
            state.lag.listed();
            answer(StatusCode::OK, Value::Array(all))
        }
        "project.create" => create(&mut state, &query),
        "members.get" => match state.projects.get(&project) {
            Some(p) => {
                let members: Vec<ProjectMember> = p
                    .members
                    .iter()
                    .map(|(member, roles)| ProjectMember {
                        member: member.clone(),
                        roles: roles.iter().cloned().collect(),
                    })
                    .collect();
                answer(StatusCode::OK, json!(members))
            }
            None => not_found(&project),
        },
        "members.update" => {
            let Ok(members) = serde_json::from_slice::<Vec<ProjectMember>>(&body) else {
                return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"name": "ValidationError"}));
            };
            if let Some(role) = members.iter().flat_map(|m| &m.roles).find(|r| !ROLES.contains(&r.as_str())) {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"name": "ValueError", "description": format!("unknown role {role}")}),
                );
            }
            match state.projects.get_mut(&project) {
                Some(p) => {
                    p.members = members
                        .into_iter()
                        .filter(|m| !m.roles.is_empty())
                        .map(|m| (m.member, m.roles.into_iter().collect()))
                        .collect();
                    answer(StatusCode::OK, json!({"success": true}))
                }
                None => not_found(&project),
            }
        }
        _ => not_found(&path),
    }
}

fn create(state: &mut State, query: &str) -> Response {
    let params: BTreeMap<&str, &str> = query.split('&').filter_map(|pair| pair.split_once('=')).collect();
    let (Some(name), Some(dataset)) = (params.get("name"), params.get("dataset")) else {
        return answer(StatusCode::UNPROCESSABLE_ENTITY, json!({"name": "ValidationError"}));
    };
    let mut names = vec![(*name).to_owned()];
    if params.get("create_test_project") == Some(&"true") {
        names.push(format!("{name}-test"));
    }
    if let Some(taken) = names.iter().find(|n| state.projects.contains_key(*n)) {
        return answer(
            StatusCode::CONFLICT,
            json!({"name": "IntegrityError", "description": format!("project {taken} exists")}),
        );
    }
    let first = state.next_id;
    for name in names {
        let id = state.next_id;
        state.next_id += 1;
        state
            .projects
            .insert(name.clone(), MetamistProject { id, dataset: (*dataset).to_owned(), members: BTreeMap::new() });
        state.lag.created(&name);
    }
    answer(StatusCode::OK, json!(first))
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

fn not_found(what: &str) -> Response {
    answer(
        StatusCode::NOT_FOUND,
        json!({"name": "NotFoundError", "description": format!("could not find project {what}")}),
    )
}
