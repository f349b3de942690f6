//! Metamist projects as a directory, through its REST API (`/api/v1/project/…`). Each role of
//! a project (`<project>/reader`, `/contributor`, `/writer`) is a group; a member may hold
//! several. Metamist replaces a project's whole member list in one call, so changes are kept
//! per project and written at `flush`, once per changed project, merged onto the list read
//! again just before: roles the sync does not manage (project admins) and untouched members
//! stay as they are, even when changed by hand during the sync. Only the projects of datasets with the metamist component are ours; any other is
//! read-only here, and projects are never deleted. Metamist has no membership expiry: the
//! sync removes expired members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Directory, DirectoryError, LiveGroup, LiveMember, MemberKind, NewGroup};
use crate::apps::metamist::{role_group, split_role_group};
use crate::definitions::{Date, METAMIST_ROLES};
use crate::http_api::ApiClient;

const JSON: (&str, &str) = ("content-type", "application/json");

/// Projects whose role groups are listed together (more than any sync's concurrency).
const LISTING_BLOCK: usize = 64;

/// One entry of a project's member list, as Metamist reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectMember {
    pub member: String,
    pub roles: Vec<String>,
}

/// Member → every role they hold in the project.
type Roles = BTreeMap<String, BTreeSet<String>>;

/// What this run knows of one of our projects.
#[derive(Default)]
struct ProjectState {
    /// The member list as last read or written; `None` until read (or created empty).
    known: Option<Roles>,
    /// Created by this run, so nobody else has written its list yet.
    created: bool,
    /// Roles whose members were listed from `known`; once all were, the list is dropped, as
    /// the write reads it again anyway.
    listed: u8,
    /// Role changes not written yet: (member, role) → whether the member holds the role.
    pending: BTreeMap<(String, String), bool>,
}

/// The Metamist service of an organisation.
pub struct MetamistDirectory {
    api: ApiClient,
    /// Our projects → their dataset.
    ours: BTreeMap<String, String>,
    /// One lock per project, so that its three role groups share one read.
    projects: Mutex<BTreeMap<String, Arc<Mutex<ProjectState>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl MetamistDirectory {
    /// `ours`: the organisation's projects and the dataset each belongs to.
    pub fn connect(endpoint: &str, token: &str, ours: BTreeMap<String, String>) -> Result<Self, DirectoryError> {
        let api = ApiClient::connect(endpoint, &super::GoogleAuth::AccessToken(token.to_owned()))?;
        Ok(MetamistDirectory { api, ours, projects: Mutex::new(BTreeMap::new()) })
    }

    /// The project and role a group name stands for; only our three roles are groups.
    fn parse<'a>(&self, group: &'a str) -> Result<(&'a str, &'a str), DirectoryError> {
        match split_role_group(group) {
            Some((project, role)) if METAMIST_ROLES.contains(&role) => Ok((project, role)),
            _ => Err(DirectoryError::GroupNotFound(group.to_owned())),
        }
    }

    /// The project of a group we may change.
    fn owned<'a>(&self, group: &'a str) -> Result<(&'a str, &'a str), DirectoryError> {
        let (project, role) = self.parse(group)?;
        if self.ours.contains_key(project) {
            Ok((project, role))
        } else {
            Err(DirectoryError::NotOwned(group.to_owned()))
        }
    }

    fn state(&self, project: &str) -> Arc<Mutex<ProjectState>> {
        Arc::clone(lock(&self.projects).entry(project.to_owned()).or_default())
    }

    fn read_members(&self, project: &str) -> Result<Roles, DirectoryError> {
        let path = format!("api/v1/project/{project}/members");
        let call = format!("project.members.get {project}");
        let (status, body) = self.api.send(Method::GET, &path, Vec::new(), &call)?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::GroupNotFound(project.to_owned()));
        }
        let members: Vec<ProjectMember> =
            serde_json::from_slice(&body).map_err(|e| DirectoryError::Storage(format!("{call}: {e}")))?;
        let mut roles = Roles::new();
        for entry in members {
            roles.entry(entry.member.to_ascii_lowercase()).or_default().extend(entry.roles);
        }
        Ok(roles)
    }

    /// Writes one project's pending changes, merged onto its list, if they change it.
    fn write_project(&self, project: &str, state: &mut ProjectState) -> Result<(), DirectoryError> {
        // The write replaces the whole list, so the changes go onto the list as it is now, not
        // as the plan read it: whatever changed since (a project admin added by hand) stays.
        let known = if state.created {
            state.known.take().unwrap_or_default()
        } else {
            state.known = None;
            self.read_members(project)?
        };
        let mut merged = known.clone();
        for ((member, role), holds) in &state.pending {
            let roles = merged.entry(member.clone()).or_default();
            if *holds {
                roles.insert(role.clone());
            } else {
                roles.remove(role);
            }
        }
        merged.retain(|_, roles| !roles.is_empty());
        if merged == known {
            state.known = Some(known);
            state.pending.clear();
            return Ok(());
        }
        let body: Vec<ProjectMember> = merged
            .iter()
            .map(|(member, roles)| ProjectMember { member: member.clone(), roles: roles.iter().cloned().collect() })
            .collect();
        let body = serde_json::to_vec(&body).map_err(|e| DirectoryError::Storage(e.to_string()))?;
        let path = format!("api/v1/project/{project}/members");
        let call = format!("project.members.update {project}");
        let result = self.api.send_answering(Method::PATCH, &path, body, &call, &[JSON], &[]);
        match result {
            Ok((StatusCode::NOT_FOUND, _)) => {
                state.known = Some(known);
                Err(DirectoryError::GroupNotFound(project.to_owned()))
            }
            Ok(_) => {
                state.known = Some(merged);
                state.pending.clear();
                Ok(())
            }
            Err(error) => {
                state.known = Some(known);
                Err(error)
            }
        }
    }
}

impl Directory for MetamistDirectory {
    fn describe(&self) -> String {
        format!("Metamist at {}", self.api.endpoint())
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let (_, body) = self.api.send(Method::GET, "api/v1/project/all", Vec::new(), "project.all")?;
        let projects: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| DirectoryError::Storage(format!("project.all: {e}")))?;
        let names: Vec<&str> = projects.iter().filter_map(|p| p["name"].as_str()).collect();
        // Role by role within blocks of projects: parallel readers working through this list
        // read different projects at once instead of waiting on one project's single read,
        // and a block's lists are dropped once its last role is listed.
        let mut groups = Vec::new();
        for block in names.chunks(LISTING_BLOCK) {
            for role in METAMIST_ROLES {
                for name in block {
                    let email = role_group(name, role);
                    let owned = self.ours.contains_key(*name);
                    groups.push(LiveGroup { name: email.clone(), email, description: String::new(), owned });
                }
            }
        }
        Ok(groups)
    }

    fn list_members(&self, group: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let (project, role) = self.parse(group)?;
        let state = self.state(project);
        let mut state = lock(&state);
        if state.known.is_none() {
            state.known = Some(self.read_members(project)?);
        }
        let known = state.known.as_ref().map(|k| k.iter()).into_iter().flatten();
        let members = known
            .filter(|(_, roles)| roles.contains(role))
            .map(|(member, _)| LiveMember { email: member.clone(), kind: MemberKind::Account, expires: None })
            .collect();
        if let Some(index) = METAMIST_ROLES.iter().position(|r| *r == role) {
            state.listed |= 1 << index;
        }
        if state.listed.count_ones() as usize == METAMIST_ROLES.len() && !state.created {
            // Every role group has its members: keep no second copy of a large organisation.
            state.known = None;
        }
        Ok(members)
    }

    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError> {
        let (project, _) = self.owned(&group.email)?;
        let state = self.state(project);
        let mut state = lock(&state);
        if state.known.is_some() {
            // Created for another of its roles already.
            return Ok(());
        }
        let dataset = &self.ours[project];
        let path = format!("api/v1/project/?name={project}&dataset={dataset}&create_test_project=false");
        let call = format!("project.create {project}");
        let (status, _) =
            self.api.send_answering(Method::PUT, &path, Vec::new(), &call, &[], &[StatusCode::CONFLICT])?;
        if status != StatusCode::CONFLICT {
            state.known = Some(Roles::new());
            state.created = true;
        }
        Ok(())
    }

    /// Ownership of a project comes from its name: nothing to mark.
    fn adopt_group(&self, group: &str, _description: &str) -> Result<(), DirectoryError> {
        self.owned(group).map(|_| ())
    }

    fn add_member(&self, group: &str, member: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        let (project, role) = self.owned(group)?;
        let state = self.state(project);
        lock(&state).pending.insert((member.to_ascii_lowercase(), role.to_owned()), true);
        Ok(())
    }

    /// Metamist keeps no end date: the sync removes the member after it.
    fn set_expiry(&self, group: &str, _member: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned(group).map(|_| ())
    }

    fn remove_member(&self, group: &str, member: &str) -> Result<(), DirectoryError> {
        let (project, role) = self.owned(group)?;
        let state = self.state(project);
        lock(&state).pending.insert((member.to_ascii_lowercase(), role.to_owned()), false);
        Ok(())
    }

    fn delete_group(&self, group: &str) -> Result<(), DirectoryError> {
        self.owned(group)?;
        Err(DirectoryError::Rejected(format!("{group}: Metamist projects are never deleted by the sync")))
    }

    /// One write per project with changes. A project that fails keeps its changes, so the
    /// sync's retry of `flush` writes only those; the error is retryable only if every
    /// failure was.
    fn flush(&self) -> Result<(), DirectoryError> {
        let projects: Vec<(String, Arc<Mutex<ProjectState>>)> =
            lock(&self.projects).iter().map(|(name, state)| (name.clone(), Arc::clone(state))).collect();
        let mut failures = Vec::new();
        for (project, state) in projects {
            let mut state = lock(&state);
            if state.pending.is_empty() {
                continue;
            }
            if let Err(error) = self.write_project(&project, &mut state) {
                failures.push(error);
            }
        }
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => {
                let message = failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                if failures.iter().all(DirectoryError::is_retryable) {
                    Err(DirectoryError::Unavailable(message))
                } else {
                    Err(DirectoryError::Rejected(message))
                }
            }
        }
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.api.calls())
    }
}
