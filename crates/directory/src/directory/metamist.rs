//! Metamist projects through its REST API (`/api/v1/project/…`), as a write-only directory of
//! member lists. Metamist has no route that reads a project's members (metamist
//! api/routes/project.py: `/{project}/members` is routed for PATCH only, so a GET is 405), and
//! its PATCH replaces the project's whole list (db/python/tables/project.py
//! `set_project_members`: delete every row, insert the given ones). So this provider lists
//! projects, creates missing ones and writes whole lists; deciding what to write, retrying and
//! remembering what was written are the sync's. Projects are never deleted.

use std::collections::BTreeSet;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{DirectoryError, ListDirectory};
use crate::apps::metamist::MemberList;
use crate::definitions::RequestRate;
use crate::http_api::{percent_encode, ApiClient};
use crate::pacing::Pacer;

const JSON: (&str, &str) = ("content-type", "application/json");

/// One entry of a project's member list as Metamist takes it (`ProjectMemberUpdate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectMember {
    pub member: String,
    pub roles: Vec<String>,
}

/// The Metamist service of an organisation.
pub struct MetamistDirectory {
    api: ApiClient,
}

impl MetamistDirectory {
    /// Connects lazily; every request waits for a pacer at `requests`.
    pub fn connect(endpoint: &str, token: &str, requests: RequestRate) -> Result<Self, DirectoryError> {
        let api = ApiClient::connect(endpoint, &super::GoogleAuth::AccessToken(token.to_owned()))?
            .paced(std::sync::Arc::new(Pacer::new(requests)));
        Ok(MetamistDirectory { api })
    }

    /// A status Metamist answers for something wrong with the request or the caller's rights.
    fn refused(call: &str, status: StatusCode, body: &[u8], hint: &str) -> DirectoryError {
        let text = String::from_utf8_lossy(body);
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["description"].as_str().or(v["detail"].as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.trim().to_owned());
        DirectoryError::Rejected(format!("{call}: {status}: {detail}{hint}"))
    }
}

impl ListDirectory for MetamistDirectory {
    fn describe(&self) -> String {
        format!("Metamist at {}", self.api.endpoint())
    }

    /// `GET /project/all`: only the projects the caller has some role in (or every project,
    /// when it is in Metamist's project-creators or members-admin group).
    fn list_projects(&self) -> Result<BTreeSet<String>, DirectoryError> {
        let (_, body) = self.api.send(Method::GET, "api/v1/project/all", Vec::new(), "project.all")?;
        let projects: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| DirectoryError::Storage(format!("project.all: {e}")))?;
        Ok(projects.iter().filter_map(|p| p["name"].as_str()).map(str::to_owned).collect())
    }

    /// `PUT /project/?name=&dataset=`. A name that is taken is a database integrity error that
    /// Metamist answers with 500, like any outage: after a 500 the listing tells which it was
    /// (the project is there: done; not there: retry).
    fn create_project(&self, project: &str, dataset: &str) -> Result<(), DirectoryError> {
        let path = format!(
            "api/v1/project/?name={}&dataset={}&create_test_project=false",
            percent_encode(project),
            percent_encode(dataset)
        );
        let call = format!("project.create {project}");
        let answers = [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::FORBIDDEN];
        let (status, body) = self.api.send_answering(Method::PUT, &path, Vec::new(), &call, &[], &answers)?;
        match status {
            StatusCode::FORBIDDEN => {
                Err(Self::refused(&call, status, &body, " (creating projects needs Metamist's project-creators group)"))
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                if self.list_projects()?.contains(project) {
                    Ok(())
                } else {
                    // Metamist failed, or the project exists but this account holds no role in
                    // it (the listing shows only those): retried, then reported as such.
                    Err(DirectoryError::Unavailable(format!(
                        "{call}: 500, and the project is not listed: Metamist failed, or the project exists and the account holds no role in it (Metamist's members-admin group gives it one everywhere)"
                    )))
                }
            }
            _ => Ok(()),
        }
    }

    /// `PATCH /project/{project}/members` with the whole list.
    fn write_members(&self, project: &str, members: &MemberList) -> Result<(), DirectoryError> {
        let body: Vec<ProjectMember> = members
            .iter()
            .map(|(member, roles)| ProjectMember { member: member.clone(), roles: roles.iter().cloned().collect() })
            .collect();
        let body = serde_json::to_vec(&body).map_err(|e| DirectoryError::Storage(e.to_string()))?;
        let path = format!("api/v1/project/{}/members", percent_encode(project));
        let call = format!("project.members.update {project}");
        let answers = [StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY];
        let (status, body) = self.api.send_answering(Method::PATCH, &path, body, &call, &[JSON], &answers)?;
        match status {
            // metamist db/python/utils.py: `ProjectDoesNotExist` is a Forbidden error.
            StatusCode::FORBIDDEN => Err(Self::refused(
                &call,
                status,
                &body,
                " (the project does not exist, or the account lacks project_member_admin in it)",
            )),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Err(Self::refused(&call, status, &body, "")),
            _ => Ok(()),
        }
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.api.calls())
    }
}
