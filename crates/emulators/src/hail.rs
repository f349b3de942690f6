//! A fake Hail Batch on 127.0.0.1: the billing-project routes of the batch front end and the
//! user routes of the auth service (one server here; two services in a deployment). It answers
//! as Hail Batch does (sources: hail batch/batch/front_end/front_end.py, batch/batch/utils.py
//! `query_billing_projects_with_cost`, batch/batch/exceptions.py, auth/auth/auth.py,
//! auth/auth/exceptions.py):
//! - an operation already done (creating an existing project, adding a member, removing an
//!   absent user, closing a closed project, reopening an open one) is a plain 200;
//! - a deleted project is hidden from the listing and from get (403), `create` of its name is
//!   200 and leaves it deleted, `users/add` is 404, `users/remove` 403, `reopen` 403;
//! - an unknown project: get 403, add/remove/close/reopen 404; a closed one: add/remove 403;
//! - closing a project with running batches is 403;
//! - adding a user the auth service does not know is 403 "User X does not exist.";
//! - a caller without the developer role sees only the projects it is a member of, with no
//!   error (`limit_visibility_to`);
//! - errors are plain text, `<status>: <reason>`, as aiohttp writes an `HTTPException`.
//!
//! Requests are counted per operation and need the bearer token. Faults: every distinct request
//! answered 503 once (a faulted request changes nothing); new projects missing from the next n
//! listings and answering 403 to direct reads meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, NewObjectLag, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(HailEmulator, "`billing_projects.list`, `users.add`, `auth.users.create`, …");

/// One billing project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingProject {
    pub users: BTreeSet<String>,
    /// `open`, `closed` or `deleted`.
    pub status: String,
}

/// One user of the auth service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HailUser {
    pub login_id: Option<String>,
    pub is_service_account: bool,
}

/// A running fake Hail Batch; dropping it stops the server.
pub struct HailEmulator {
    server: Server,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct State {
    projects: BTreeMap<String, BillingProject>,
    users: BTreeMap<String, HailUser>,
    /// Projects with a batch that has not completed.
    running_batches: BTreeSet<String>,
    /// The caller's username when it lacks the developer role: it sees only its projects.
    visible_to: Option<String>,
    lag: NewObjectLag,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    requests: RequestLog,
}

impl State {
    /// Whether the caller's listing and reads show this project.
    fn visible(&self, name: &str, project: &BillingProject) -> bool {
        project.status != "deleted"
            && !self.lag.is_hidden(name)
            && self.visible_to.as_ref().is_none_or(|caller| project.users.contains(caller))
    }
}

impl HailEmulator {
    /// Serves on 127.0.0.1:`port` (0 picks one); every request needs `Bearer <token>`, which
    /// stands for a developer.
    pub fn start(port: u16, token: &str) -> io::Result<HailEmulator> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(State::default()),
            requests: RequestLog::default(),
        });
        let server = serve(port, "hail-emulator", &shared, handle)?;
        Ok(HailEmulator { server, shared })
    }

    /// Puts a project in place without a request (`open`, `closed` or `deleted`); its users are
    /// made users of the auth service too.
    pub fn insert_project(&self, name: &str, users: &[&str], status: &str) {
        let mut state = lock(&self.shared.state);
        for user in users {
            state.users.entry((*user).to_owned()).or_insert(HailUser { login_id: None, is_service_account: true });
        }
        let project =
            BillingProject { users: users.iter().map(|u| (*u).to_owned()).collect(), status: status.to_owned() };
        state.projects.insert(name.to_owned(), project);
    }

    /// Puts users in place in the auth service without a request (people: a login id).
    pub fn insert_users(&self, users: &[&str]) {
        let mut state = lock(&self.shared.state);
        for user in users {
            let record = HailUser { login_id: Some(format!("{user}@example.org")), is_service_account: false };
            state.users.insert((*user).to_owned(), record);
        }
    }

    pub fn projects(&self) -> BTreeMap<String, BillingProject> {
        lock(&self.shared.state).projects.clone()
    }

    pub fn users(&self) -> BTreeMap<String, HailUser> {
        lock(&self.shared.state).users.clone()
    }

    /// Whether a batch of `project` is still running (closing it is then refused).
    pub fn set_running_batches(&self, project: &str, running: bool) {
        let mut state = lock(&self.shared.state);
        if running {
            state.running_batches.insert(project.to_owned());
        } else {
            state.running_batches.remove(project);
        }
    }

    /// The caller is `username` without the developer role: listings and reads show only the
    /// projects it is a member of (`None`: a developer, who sees every project).
    pub fn limit_visibility_to(&self, username: Option<&str>) {
        lock(&self.shared.state).visible_to = username.map(str::to_owned);
    }

    /// Projects created from now on are missing from the next `reads` listings and reads.
    pub fn hide_new_projects_for(&self, reads: u32) {
        lock(&self.shared.state).lag.set(reads);
    }
}

async fn handle(shared: Arc<Shared>, request: Request, _killer: ConnectionKiller) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let authorised = bearer_is(&request, &shared.token);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let call = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "v1alpha", "billing_projects"]) => "billing_projects.list",
        (&Method::GET, ["api", "v1alpha", "billing_projects", _]) => "billing_projects.get",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "create"]) => "billing_projects.create",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "reopen"]) => "billing_projects.reopen",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "close"]) => "billing_projects.close",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "delete"]) => "billing_projects.delete",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "users", _, "add"]) => "users.add",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "users", _, "remove"]) => "users.remove",
        // auth/auth/auth.py
        (&Method::GET, ["api", "v1alpha", "users"]) => "auth.users.list",
        (&Method::GET, ["api", "v1alpha", "users", _]) => "auth.users.get",
        (&Method::POST, ["api", "v1alpha", "users", _, "create"]) => "auth.users.create",
        _ => "unknown",
    };
    shared.requests.count(call);
    if !authorised {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if shared.requests.should_fault(&format!("{method} {path}")) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let mut state = lock(&shared.state);
    let name = segments.get(3).map(|s| (*s).to_owned()).unwrap_or_default();
    match call {
        "billing_projects.list" => {
            let status = query.split('&').find_map(|p| p.strip_prefix("status="));
            if status.is_some_and(|s| s != "open" && s != "closed") {
                let reason =
                    format!("Invalid value for status '{}'; must be 'open' or 'closed'.", status.unwrap_or(""));
                return text(StatusCode::BAD_REQUEST, &reason);
            }
            let all: Vec<Value> = state
                .projects
                .iter()
                .filter(|(n, p)| state.visible(n, p) && status.is_none_or(|s| p.status == s))
                .map(|(n, p)| project_json(n, p))
                .collect();
            state.lag.listed();
            answer(StatusCode::OK, Value::Array(all))
        }
        "billing_projects.get" => {
            let reply = match state.projects.get(&name).filter(|p| state.visible(&name, p)) {
                Some(p) => answer(StatusCode::OK, project_json(&name, p)),
                None => text(StatusCode::FORBIDDEN, &format!("Unknown Hail Batch billing project {name}.")),
            };
            state.lag.read(&name);
            reply
        }
        "billing_projects.create" => {
            // Any row of that name, deleted too, is "already exists": done, and left as it is.
            if !state.projects.contains_key(&name) {
                state
                    .projects
                    .insert(name.clone(), BillingProject { users: BTreeSet::new(), status: "open".to_owned() });
                state.lag.created(&name);
            }
            answer(StatusCode::OK, json!(name))
        }
        "billing_projects.close" => {
            let running = state.running_batches.contains(&name);
            let Some(p) = state.projects.get_mut(&name) else { return not_found(&name) };
            if p.status == "closed" {
                return answer(StatusCode::OK, json!(name));
            }
            if running {
                return text(StatusCode::FORBIDDEN, &format!("Billing project {name} has running batches."));
            }
            // `_close_billing_project` checks only for `closed`: a deleted project becomes closed.
            p.status = "closed".to_owned();
            answer(StatusCode::OK, json!(name))
        }
        "billing_projects.reopen" => {
            let Some(p) = state.projects.get_mut(&name) else { return not_found(&name) };
            if p.status == "deleted" {
                return text(
                    StatusCode::FORBIDDEN,
                    &format!("Billing project {name} has been deleted and cannot be reopened."),
                );
            }
            p.status = "open".to_owned();
            answer(StatusCode::OK, json!(name))
        }
        "billing_projects.delete" => {
            let Some(p) = state.projects.get_mut(&name) else { return not_found(&name) };
            if p.status == "open" {
                return text(StatusCode::FORBIDDEN, &format!("Billing project {name} is open and cannot be deleted."));
            }
            p.status = "deleted".to_owned();
            answer(StatusCode::OK, json!(name))
        }
        "users.add" => {
            let user = segments.get(5).map(|s| (*s).to_owned()).unwrap_or_default();
            // `_add_user_to_billing_project` asks the auth service for the user first.
            if !state.users.contains_key(&user) {
                return text(StatusCode::FORBIDDEN, &format!("User {user} does not exist."));
            }
            match state.projects.get_mut(&name) {
                None => not_found(&name),
                Some(p) if p.status == "deleted" => not_found(&name),
                Some(p) if p.status == "closed" => {
                    text(StatusCode::FORBIDDEN, &format!("Billing project {name} is closed and cannot be modified."))
                }
                Some(p) => {
                    p.users.insert(user.clone());
                    answer(StatusCode::OK, json!({"billing_project": name, "user": user}))
                }
            }
        }
        "users.remove" => {
            let user = segments.get(5).map(|s| (*s).to_owned()).unwrap_or_default();
            match state.projects.get_mut(&name) {
                None => not_found(&name),
                Some(p) if p.status != "open" => text(
                    StatusCode::FORBIDDEN,
                    &format!("Billing project {name} has been closed or deleted and cannot be modified."),
                ),
                Some(p) => {
                    p.users.remove(&user);
                    answer(StatusCode::OK, json!({"billing_project": name, "user": user}))
                }
            }
        }
        "auth.users.list" => {
            let users: Vec<Value> = state.users.iter().enumerate().map(|(id, (n, u))| user_json(id, n, u)).collect();
            answer(StatusCode::OK, Value::Array(users))
        }
        "auth.users.get" => match state.users.iter().enumerate().find(|(_, (n, _))| **n == name) {
            Some((id, (n, u))) => answer(StatusCode::OK, user_json(id, n, u)),
            None => text(StatusCode::NOT_FOUND, "Not Found"),
        },
        "auth.users.create" => create_user(&mut state, &name, &body),
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// auth/auth/auth.py `create_user` and `check_valid_new_user`.
fn create_user(state: &mut State, username: &str, body: &[u8]) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return text(StatusCode::BAD_REQUEST, "Invalid JSON");
    };
    // `body['login_id']` and `body['is_service_account']` are read unguarded: a KeyError.
    let (Some(login_id), Some(is_service_account)) = (body.get("login_id"), body.get("is_service_account")) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    if body.get("is_developer").is_some() {
        return text(StatusCode::BAD_REQUEST, "is_developer is no longer supported. Use roles instead.");
    }
    let login_id = login_id.as_str().map(str::to_owned);
    let Some(is_service_account) = is_service_account.as_bool() else {
        return text(StatusCode::BAD_REQUEST, "Expected 'is_service_account' is of type bool.");
    };
    if !is_service_account && login_id.as_deref().is_none_or(str::is_empty) {
        return text(StatusCode::BAD_REQUEST, &format!("Login id for user '{username}' must be a non-empty string."));
    }
    if !valid_username(username) {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("Invalid username '{username}'. Must be a non-empty lowercase alphanumeric string."),
        );
    }
    match state.users.get(username) {
        // The same user again: nothing to do.
        Some(existing) if existing.login_id == login_id => answer(StatusCode::OK, Value::Null),
        Some(existing) => text(
            StatusCode::BAD_REQUEST,
            &format!(
                "Username '{username}' already exists with login id '{}'.",
                existing.login_id.clone().unwrap_or_else(|| "None".to_owned())
            ),
        ),
        None => {
            state.users.insert(username.to_owned(), HailUser { login_id, is_service_account });
            answer(StatusCode::OK, Value::Null)
        }
    }
}

/// auth/auth/auth_utils.py `is_valid_username`: letters and digits, single inner hyphens.
fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// aiohttp's body for an `HTTPException` raised with a reason: `<status>: <reason>`.
fn text(status: StatusCode, reason: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{}: {reason}", status.as_u16())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn project_json(name: &str, project: &BillingProject) -> Value {
    json!({"billing_project": name, "users": project.users, "status": project.status, "accrued_cost": 0.0, "limit": null})
}

fn user_json(id: usize, name: &str, user: &HailUser) -> Value {
    json!({
        "id": id + 1,
        "username": name,
        "login_id": user.login_id,
        "state": "active",
        "is_service_account": user.is_service_account,
        "hail_identity": format!("{name}@hail-identity.example.org"),
        "system_permissions": {},
    })
}

fn not_found(project: &str) -> Response {
    text(StatusCode::NOT_FOUND, &format!("Billing project {project} does not exist."))
}
