//! A fake Hail Batch billing-projects API on 127.0.0.1: `GET /api/v1alpha/billing_projects`
//! (every project with its users and status), `GET …/billing_projects/{bp}`,
//! `POST …/billing_projects/{bp}/create|reopen|close`, `POST …/{bp}/users/{user}/add|remove`.
//! It answers as Hail Batch does: an operation already done (creating an existing project,
//! adding a member, removing an absent user, closing a closed project) is a plain 200; an
//! unknown project read is 403, an unknown project changed 404, a closed one changed 403.
//! Requests are counted per method and need the bearer token. Faults: every distinct request
//! answered 503 once (a faulted request changes nothing); new projects missing from the next
//! n listings and answering 403 to direct reads meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex};

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::requests::{bearer_is, json_answer as answer, lock, request_log_handle, serve, NewObjectLag, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(HailEmulator, "`billing_projects.list`, `users.add`, …");

/// One billing project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingProject {
    pub users: BTreeSet<String>,
    /// `open` or `closed`.
    pub status: String,
}

/// A running fake Hail Batch; dropping it stops the server.
pub struct HailEmulator {
    server: Server,
    shared: Arc<Shared>,
}

struct Shared {
    token: String,
    projects: Mutex<BTreeMap<String, BillingProject>>,
    /// Reads a new project is still missing from, and how many reads new projects start with.
    lag: Mutex<NewObjectLag>,
    requests: RequestLog,
}

impl HailEmulator {
    /// Serves on 127.0.0.1:`port` (0 picks one); every request needs `Bearer <token>`.
    pub fn start(port: u16, token: &str) -> io::Result<HailEmulator> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            projects: Mutex::new(BTreeMap::new()),
            lag: Mutex::new(NewObjectLag::default()),
            requests: RequestLog::default(),
        });
        let server = serve(port, "hail-emulator", &shared, handle)?;
        Ok(HailEmulator { server, shared })
    }

    /// Puts a project in place without a request.
    pub fn insert_project(&self, name: &str, users: &[&str], status: &str) {
        let project =
            BillingProject { users: users.iter().map(|u| (*u).to_owned()).collect(), status: status.to_owned() };
        lock(&self.shared.projects).insert(name.to_owned(), project);
    }

    pub fn projects(&self) -> BTreeMap<String, BillingProject> {
        lock(&self.shared.projects).clone()
    }

    /// Projects created from now on are missing from the next `reads` listings and reads.
    pub fn hide_new_projects_for(&self, reads: u32) {
        lock(&self.shared.lag).set(reads);
    }
}

async fn handle(shared: Arc<Shared>, request: Request, _killer: ConnectionKiller) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorised = bearer_is(&request, &shared.token);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let call = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "v1alpha", "billing_projects"]) => "billing_projects.list",
        (&Method::GET, ["api", "v1alpha", "billing_projects", _]) => "billing_projects.get",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "create"]) => "billing_projects.create",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "reopen"]) => "billing_projects.reopen",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "close"]) => "billing_projects.close",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "users", _, "add"]) => "users.add",
        (&Method::POST, ["api", "v1alpha", "billing_projects", _, "users", _, "remove"]) => "users.remove",
        _ => "unknown",
    };
    shared.requests.count(call);
    if !authorised {
        return answer(StatusCode::UNAUTHORIZED, json!({"message": "not authenticated"}));
    }
    if shared.requests.should_fault(&format!("{method} {path}")) {
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"message": "try again"}));
    }
    let mut projects = lock(&shared.projects);
    let mut lag = lock(&shared.lag);
    let project = segments.get(3).map(|s| (*s).to_owned()).unwrap_or_default();
    let answer_done = || answer(StatusCode::OK, json!(project));
    match call {
        "billing_projects.list" => {
            let all: Vec<Value> = projects
                .iter()
                .filter(|(name, _)| !lag.is_hidden(name))
                .map(|(name, p)| project_json(name, p))
                .collect();
            lag.listed();
            answer(StatusCode::OK, Value::Array(all))
        }
        "billing_projects.get" => {
            let seen = projects.get(&project).filter(|_| !lag.is_hidden(&project));
            let reply = match seen {
                Some(p) => answer(StatusCode::OK, project_json(&project, p)),
                None => refuse(&format!("Unknown Hail Batch billing project {project}.")),
            };
            lag.read(&project);
            reply
        }
        "billing_projects.create" => {
            // Already there, open or closed: done, and left as it is.
            if !projects.contains_key(&project) {
                projects.insert(project.clone(), BillingProject { users: BTreeSet::new(), status: "open".to_owned() });
                lag.created(&project);
            }
            answer_done()
        }
        "billing_projects.reopen" | "billing_projects.close" => match projects.get_mut(&project) {
            Some(p) => {
                p.status = if call.ends_with("reopen") { "open" } else { "closed" }.to_owned();
                answer_done()
            }
            None => not_found(&project),
        },
        "users.add" | "users.remove" => {
            let user = segments.get(5).map(|s| (*s).to_owned()).unwrap_or_default();
            match projects.get_mut(&project) {
                None => not_found(&project),
                Some(p) if p.status != "open" => {
                    refuse(&format!("Billing project {project} is closed and cannot be modified."))
                }
                Some(p) => {
                    // Adding a member or removing an absent user is already done: 200 too.
                    if call == "users.add" {
                        p.users.insert(user.clone());
                    } else {
                        p.users.remove(&user);
                    }
                    answer(StatusCode::OK, json!({"billing_project": project, "user": user}))
                }
            }
        }
        _ => answer(StatusCode::NOT_FOUND, json!({"message": format!("{path} not found")})),
    }
}

/// Hail Batch's refusal of a user error: 403 with the reason.
fn refuse(reason: &str) -> Response {
    answer(StatusCode::FORBIDDEN, json!({"message": format!("403: {reason}")}))
}

fn project_json(name: &str, project: &BillingProject) -> Value {
    json!({"billing_project": name, "users": project.users, "status": project.status, "accrued_cost": 0.0, "limit": null})
}

fn not_found(project: &str) -> Response {
    answer(StatusCode::NOT_FOUND, json!({"message": format!("404: Billing project {project} does not exist.")}))
}
