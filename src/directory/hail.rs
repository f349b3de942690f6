//! Hail Batch billing projects as a directory, through its REST API
//! (`/api/v1alpha/billing_projects…`): a project is a group named after its dataset, its users
//! are the members. Only projects named after a dataset of the definitions are the
//! organisation's; any other project is read-only here. A closed project of ours is reopened
//! instead of created again. Hail Batch has no membership expiry: the sync removes expired users.
//! The listing carries every project's users, so a sync reads Hail Batch once; a project read
//! directly is only one the listing did not have.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use hyper::{Method, StatusCode};

use super::{Directory, DirectoryError, LiveGroup, LiveMember, MemberKind, NewGroup};
use crate::definitions::Date;
use crate::http_api::ApiClient;

/// The Hail Batch service of an organisation.
pub struct HailDirectory {
    api: ApiClient,
    /// Billing projects that are the organisation's: the datasets with the hail component.
    ours: BTreeSet<String>,
    /// Closed projects seen in the listing: created by reopening.
    closed: Mutex<BTreeSet<String>>,
    /// Each listed project's users, as the listing gave them.
    listed_users: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl HailDirectory {
    pub fn connect(endpoint: &str, token: &str, ours: BTreeSet<String>) -> Result<HailDirectory, DirectoryError> {
        let api = ApiClient::connect(endpoint, &super::GoogleAuth::AccessToken(token.to_owned()))?;
        Ok(HailDirectory { api, ours, closed: Mutex::new(BTreeSet::new()), listed_users: Mutex::new(BTreeMap::new()) })
    }

    fn call(&self, method: Method, path: &str, what: &str) -> Result<(StatusCode, serde_json::Value), DirectoryError> {
        let (status, body) = self.api.send(method, path, Vec::new(), what)?;
        let json =
            if body.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&body).unwrap_or_default() };
        Ok((status, json))
    }

    fn owned(&self, project: &str) -> Result<(), DirectoryError> {
        if self.ours.contains(project) {
            Ok(())
        } else {
            Err(DirectoryError::NotOwned(project.to_owned()))
        }
    }
}

impl Directory for HailDirectory {
    fn describe(&self) -> String {
        format!("Hail Batch at {}", self.api.endpoint())
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let (_, projects) = self.call(Method::GET, "api/v1alpha/billing_projects", "billing_projects.list")?;
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
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = closed;
        *self.listed_users.lock().unwrap_or_else(|e| e.into_inner()) = listed_users;
        Ok(groups)
    }

    fn list_members(&self, project: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let listed = self.listed_users.lock().unwrap_or_else(|e| e.into_inner()).get(project).cloned();
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
        let closed = self.closed.lock().unwrap_or_else(|e| e.into_inner()).contains(&group.email);
        let verb = if closed { "reopen" } else { "create" };
        let path = format!("api/v1alpha/billing_projects/{}/{verb}", group.email);
        let (status, _) = self.call(Method::POST, &path, &format!("billing_projects.{verb} {}", group.email))?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::Rejected(format!("billing_projects.{verb} {}: not found", group.email)));
        }
        if closed {
            // A reopened project must start empty like a created one: the plan adds its users,
            // and nobody left from before it was closed keeps access unplanned.
            for member in self.list_members(&group.email)? {
                self.remove_member(&group.email, &member.email)?;
            }
        }
        Ok(())
    }

    /// Ownership of a billing project comes from its name: nothing to mark.
    fn adopt_group(&self, project: &str, _description: &str) -> Result<(), DirectoryError> {
        self.owned(project)
    }

    fn add_member(&self, project: &str, user: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned(project)?;
        let path = format!("api/v1alpha/billing_projects/{project}/users/{user}/add");
        let (status, _) = self.call(Method::POST, &path, &format!("billing_projects.users.add {user} to {project}"))?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::GroupNotFound(project.to_owned()));
        }
        Ok(())
    }

    /// Hail Batch keeps no end date: the sync removes the user after it.
    fn set_expiry(&self, project: &str, _user: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned(project)
    }

    fn remove_member(&self, project: &str, user: &str) -> Result<(), DirectoryError> {
        self.owned(project)?;
        let path = format!("api/v1alpha/billing_projects/{project}/users/{user}/remove");
        // Hail Batch answers 200 when the user is not (or no longer) in the project.
        self.call(Method::POST, &path, &format!("billing_projects.users.remove {user} from {project}")).map(|_| ())
    }

    fn delete_group(&self, project: &str) -> Result<(), DirectoryError> {
        self.owned(project)?;
        let path = format!("api/v1alpha/billing_projects/{project}/close");
        self.call(Method::POST, &path, &format!("billing_projects.close {project}")).map(|_| ())
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.api.calls())
    }
}

/// The users of a project as the API describes it.
fn users_of(project: &serde_json::Value) -> BTreeSet<String> {
    project["users"].as_array().into_iter().flatten().filter_map(|u| u.as_str()).map(str::to_owned).collect()
}
