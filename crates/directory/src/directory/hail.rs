//! Hail Batch billing projects as a directory, through its REST API
//! (`/api/v1alpha/billing_projects…`) and its auth service (`/api/v1alpha/users…`): a project
//! is a group named after its dataset, its users are the members. Only projects named after a
//! dataset of the definitions are the organisation's; any other project is read-only here.
//! Hail Batch has no membership expiry: the sync removes expired users.
//!
//! What Hail Batch does that shapes this provider (hail batch/batch/front_end/front_end.py):
//! - The listing carries every project's users, so a sync reads Hail Batch once.
//! - Adding a user the auth service does not know is 403 "User X does not exist.": before a
//!   first addition the auth service's users are listed once, the datasets' own users (one per
//!   access level, as the old system made them) are created when missing, and any other user
//!   that is missing is that member's failure (`UnknownMember`), not each project's.
//! - `create` answers 200 for a name that exists in any state, deleted too, so a created
//!   project is read back: a deleted one (reopen says so) is reported with what to do, and one
//!   that stays invisible means the token lacks the developer role (it sees only projects it is
//!   a member of, with no error): the run stops (`Stopped`).
//! - Closing a project with running batches is 403: reported, and tried again by the next run.
//! - A closed project of ours is reopened instead of created, and emptied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use hyper::{Method, StatusCode};

use super::{Directory, DirectoryError, LiveGroup, LiveMember, MemberKind, NewGroup};
use crate::definitions::{Date, RequestRate};
use crate::http_api::{percent_encode, ApiClient};
use crate::pacing::Pacer;

/// Reads of a just-created project that may still miss it (replication lag) before the token
/// is taken to lack the developer role; below the sync's attempts per change.
const INVISIBLE_READS: u32 = 5;

/// Where the provider talks to and what is the organisation's.
pub struct HailConfig {
    /// The batch service.
    pub endpoint: String,
    /// The auth service (the same host in a single-host deployment).
    pub auth_endpoint: String,
    pub token: String,
    /// Billing projects that are the organisation's: the datasets with the hail component.
    pub ours: BTreeSet<String>,
    /// Users the sync creates when missing: the datasets' users per access level.
    pub machine_users: BTreeSet<String>,
    /// How fast requests may go, to the batch and auth services together.
    pub requests: RequestRate,
}

/// The Hail Batch service of an organisation.
pub struct HailDirectory {
    api: ApiClient,
    auth: ApiClient,
    ours: BTreeSet<String>,
    machine_users: BTreeSet<String>,
    /// Closed projects seen in the listing: created by reopening.
    closed: Mutex<BTreeSet<String>>,
    /// Each listed project's users, as the listing gave them.
    listed_users: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// The auth service's users, listed before the first addition.
    users: Mutex<Option<BTreeSet<String>>>,
    /// Reads that missed a project just created, per project.
    invisible: Mutex<BTreeMap<String, u32>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A plain-text error body (`403: reason`) without its status prefix.
fn reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).trim().to_owned();
    match text.split_once(": ") {
        Some((status, reason)) if status.parse::<u16>().is_ok() => reason.to_owned(),
        _ => text,
    }
}

impl HailDirectory {
    pub fn connect(config: &HailConfig) -> Result<HailDirectory, DirectoryError> {
        let auth = super::GoogleAuth::AccessToken(config.token.clone());
        // One deployment behind both services: one bucket for the two clients.
        let pacer = Arc::new(Pacer::new(config.requests));
        Ok(HailDirectory {
            api: ApiClient::connect(&config.endpoint, &auth)?.paced(pacer.clone()),
            auth: ApiClient::connect(&config.auth_endpoint, &auth)?.paced(pacer),
            ours: config.ours.clone(),
            machine_users: config.machine_users.clone(),
            closed: Mutex::new(BTreeSet::new()),
            listed_users: Mutex::new(BTreeMap::new()),
            users: Mutex::new(None),
            invisible: Mutex::new(BTreeMap::new()),
        })
    }

    fn post(&self, path: &str, call: &str) -> Result<(StatusCode, Vec<u8>), DirectoryError> {
        let (status, body) =
            self.api.send_answering(Method::POST, path, Vec::new(), call, &[], &[StatusCode::FORBIDDEN])?;
        Ok((status, body.to_vec()))
    }

    fn owned(&self, project: &str) -> Result<(), DirectoryError> {
        if self.ours.contains(project) {
            Ok(())
        } else {
            Err(DirectoryError::NotOwned(project.to_owned()))
        }
    }

    /// Makes sure `user` exists in the auth service before it is added anywhere.
    fn ensure_user(&self, user: &str) -> Result<(), DirectoryError> {
        let mut users = lock(&self.users);
        if users.is_none() {
            let listed = self.auth.send(Method::GET, "api/v1alpha/users", Vec::new(), "auth.users.list");
            // Without the users nobody can be added: one error for the run, not one per member.
            let (_, body) = listed.map_err(|error| match error {
                DirectoryError::Rejected(why) => DirectoryError::Stopped(format!(
                    "{why}: the Hail Batch token may not list the auth service's users, which adding users needs"
                )),
                other => other,
            })?;
            let listed: Vec<serde_json::Value> =
                serde_json::from_slice(&body).map_err(|e| DirectoryError::Storage(format!("auth.users.list: {e}")))?;
            *users = Some(listed.iter().filter_map(|u| u["username"].as_str()).map(str::to_owned).collect());
        }
        let known = users.get_or_insert_with(BTreeSet::new);
        if known.contains(user) {
            return Ok(());
        }
        if !self.machine_users.contains(user) {
            return Err(DirectoryError::UnknownMember {
                member: user.to_owned(),
                reason: "Hail Batch has no such user: create it in Hail Batch, or correct `hail_batch` in people.toml"
                    .to_owned(),
            });
        }
        // auth/auth/auth.py `create_user`: a service account has no login id; the same user
        // again is a 200.
        let body = serde_json::json!({"login_id": null, "is_service_account": true}).to_string().into_bytes();
        let path = format!("api/v1alpha/users/{}/create", percent_encode(user));
        let call = format!("auth.users.create {user}");
        let json = [("content-type", "application/json")];
        let (status, answer) =
            self.auth.send_answering(Method::POST, &path, body, &call, &json, &[StatusCode::BAD_REQUEST])?;
        if status == StatusCode::BAD_REQUEST {
            return Err(DirectoryError::Rejected(format!("{call}: 400: {}", reason(&answer))));
        }
        known.insert(user.to_owned());
        Ok(())
    }

    /// After `create` answered 200: whether the project is there for us, deleted, or hidden.
    fn confirm_created(&self, project: &str) -> Result<(), DirectoryError> {
        let path = format!("api/v1alpha/billing_projects/{project}");
        let call = format!("billing_projects.get {project}");
        let (status, body) =
            self.api.send_answering(Method::GET, &path, Vec::new(), &call, &[], &[StatusCode::FORBIDDEN])?;
        if status.is_success() {
            let users = users_of(&serde_json::from_slice(&body).unwrap_or_default());
            lock(&self.listed_users).insert(project.to_owned(), users);
            lock(&self.invisible).remove(project);
            return Ok(());
        }
        // Not readable: a deleted project says so when asked to reopen; any other is there but
        // not shown to this token (or not yet).
        let reopen = format!("api/v1alpha/billing_projects/{project}/reopen");
        let (status, body) = self.post(&reopen, &format!("billing_projects.reopen {project}"))?;
        let why = reason(&body);
        if status == StatusCode::FORBIDDEN && why.contains("deleted") {
            return Err(DirectoryError::Rejected(format!(
                "billing project {project} was deleted in Hail Batch ({why}): a deleted project cannot be created or reopened under its name; ask a Hail Batch administrator to restore it, or take the hail component off the dataset"
            )));
        }
        let mut invisible = lock(&self.invisible);
        let misses = invisible.entry(project.to_owned()).or_default();
        *misses += 1;
        if *misses >= INVISIBLE_READS {
            return Err(DirectoryError::Stopped(format!(
                "the Hail Batch token does not see billing project {project} after creating it: it lacks the developer role, and sees only the projects it is a member of; use a developer's token (CPG_INFRA_HAIL_TOKEN)"
            )));
        }
        Err(DirectoryError::Unavailable(format!("billing_projects.get {project}: created but not visible yet")))
    }
}

impl Directory for HailDirectory {
    fn describe(&self) -> String {
        format!("Hail Batch at {}", self.api.endpoint())
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let (_, body) =
            self.api.send(Method::GET, "api/v1alpha/billing_projects", Vec::new(), "billing_projects.list")?;
        let projects: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| DirectoryError::Storage(format!("billing_projects.list: {e}")))?;
        let mut groups = Vec::new();
        let mut closed = BTreeSet::new();
        let mut listed_users = BTreeMap::new();
        for project in projects.as_array().into_iter().flatten() {
            let name = project["billing_project"].as_str().unwrap_or_default().to_owned();
            listed_users.insert(name.clone(), users_of(project));
            match project["status"].as_str() {
                Some("open") | None => {}
                Some(_) => {
                    closed.insert(name);
                    continue;
                }
            }
            let owned = self.ours.contains(&name);
            groups.push(LiveGroup { email: name.clone(), name, description: String::new(), owned });
        }
        *lock(&self.closed) = closed;
        *lock(&self.listed_users) = listed_users;
        Ok(groups)
    }

    fn list_members(&self, project: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let listed = lock(&self.listed_users).get(project).cloned();
        let users = match listed {
            Some(users) => users,
            None => {
                let path = format!("api/v1alpha/billing_projects/{project}");
                let call = format!("billing_projects.get {project}");
                // Hail Batch answers 403 for a project it does not know.
                let (status, body) =
                    self.api.send_answering(Method::GET, &path, Vec::new(), &call, &[], &[StatusCode::FORBIDDEN])?;
                if status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN {
                    return Err(DirectoryError::GroupNotFound(project.to_owned()));
                }
                users_of(&serde_json::from_slice(&body).unwrap_or_default())
            }
        };
        Ok(users.into_iter().map(|email| LiveMember { email, kind: MemberKind::Account, expires: None }).collect())
    }

    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError> {
        self.owned(&group.email)?;
        let project = &group.email;
        let closed = lock(&self.closed).contains(project);
        let verb = if closed { "reopen" } else { "create" };
        let call = format!("billing_projects.{verb} {project}");
        let (status, body) = self.post(&format!("api/v1alpha/billing_projects/{project}/{verb}"), &call)?;
        match status {
            StatusCode::NOT_FOUND => return Err(DirectoryError::Rejected(format!("{call}: not found"))),
            StatusCode::FORBIDDEN => return Err(DirectoryError::Rejected(format!("{call}: 403: {}", reason(&body)))),
            _ => {}
        }
        if closed {
            // A reopened project must start empty like a created one: the plan adds its users,
            // and nobody left from before it was closed keeps access unplanned.
            for member in self.list_members(project)? {
                self.remove_member(project, &member.email)?;
            }
            return Ok(());
        }
        self.confirm_created(project)
    }

    /// Ownership of a billing project comes from its name: nothing to mark.
    fn adopt_group(&self, project: &str, _description: &str) -> Result<(), DirectoryError> {
        self.owned(project)
    }

    fn add_member(&self, project: &str, user: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned(project)?;
        self.ensure_user(user)?;
        let path = format!("api/v1alpha/billing_projects/{project}/users/{}/add", percent_encode(user));
        let (status, body) = self.post(&path, &format!("billing_projects.users.add {user} to {project}"))?;
        match status {
            StatusCode::NOT_FOUND => Err(DirectoryError::GroupNotFound(project.to_owned())),
            StatusCode::FORBIDDEN if reason(&body).starts_with("User ") => {
                Err(DirectoryError::UnknownMember { member: user.to_owned(), reason: reason(&body) })
            }
            StatusCode::FORBIDDEN => Err(DirectoryError::Rejected(format!(
                "billing_projects.users.add {user} to {project}: 403: {}",
                reason(&body)
            ))),
            _ => Ok(()),
        }
    }

    /// Hail Batch keeps no end date: the sync removes the user after it.
    fn set_expiry(&self, project: &str, _user: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned(project)
    }

    fn remove_member(&self, project: &str, user: &str) -> Result<(), DirectoryError> {
        self.owned(project)?;
        let path = format!("api/v1alpha/billing_projects/{project}/users/{}/remove", percent_encode(user));
        // Hail Batch answers 200 when the user is not (or no longer) in the project.
        let call = format!("billing_projects.users.remove {user} from {project}");
        match self.post(&path, &call)? {
            (StatusCode::FORBIDDEN, body) => Err(DirectoryError::Rejected(format!("{call}: 403: {}", reason(&body)))),
            _ => Ok(()),
        }
    }

    fn delete_group(&self, project: &str) -> Result<(), DirectoryError> {
        self.owned(project)?;
        let call = format!("billing_projects.close {project}");
        match self.post(&format!("api/v1alpha/billing_projects/{project}/close"), &call)? {
            (StatusCode::FORBIDDEN, body) if reason(&body).contains("running batches") => {
                Err(DirectoryError::Rejected(format!(
                    "{call}: {}: it is closed by a later run, once its batches have finished",
                    reason(&body)
                )))
            }
            (StatusCode::FORBIDDEN, body) => Err(DirectoryError::Rejected(format!("{call}: 403: {}", reason(&body)))),
            _ => Ok(()),
        }
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.api.calls() + self.auth.calls())
    }
}

/// The users of a project as the API describes it.
fn users_of(project: &serde_json::Value) -> BTreeSet<String> {
    project["users"].as_array().into_iter().flatten().filter_map(|u| u.as_str()).map(str::to_owned).collect()
}
