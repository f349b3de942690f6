//! Google Cloud Identity provider: groups and memberships through the Cloud Identity v1 API,
//! with the `google-cloudidentity1` client over HTTP.
//!
//! Reads are one paged `groups.list` for the customer, then one paged `memberships.list` per
//! owned group; writes are one call per change. The provider never retries by itself (the sync
//! engine does, from the classified errors) and never mutates a group without the owner
//! marker in its description.
//!
//! Cloud Identity answers 403 "permission denied (or it may not exist)" for a group or account
//! it does not have: for a group this run listed or created that is replication lag (retried);
//! for an addition, one `groups.get` tells a missing account (that membership fails) from a
//! group not visible yet; only the customer's own listing refusing is a credentials error.
//! Membership expiry exists on premium editions only: a refused expiry adds the membership
//! without it, skips expiry for the rest of the run and leaves one notice.
//!
//! Every request, to Cloud Identity and to the Groups Settings API alike, first waits for the
//! provider's one pacer (`[providers.google] requests_per_second`), and a 429's Retry-After
//! pauses it for every worker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Datelike;
use google_cloudidentity1::api::{
    EntityKey, ExpiryDetail, Group, Membership, MembershipRole, ModifyMembershipRolesRequest, Operation,
    UpdateMembershipRolesParams,
};
use google_cloudidentity1::common::{Delegate, Retry};
use google_cloudidentity1::{yup_oauth2, CloudIdentity, Error as ApiError};
use google_groupssettings1::Groupssettings;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use super::{
    Directory, DirectoryError, GroupSettingsDirectory, LiveGroup, LiveMember, MemberKind, NewGroup, OWNER_MARKER,
};
use crate::definitions::{Date, RequestRate};
use crate::pacing::Pacer;

/// The label that makes a Cloud Identity group a Google Group (mail, membership).
const DISCUSSION_FORUM_LABEL: &str = "cloudidentity.googleapis.com/groups.discussion_forum";
/// The label that makes a group a security group.
const SECURITY_LABEL: &str = "cloudidentity.googleapis.com/groups.security";
/// Largest `pageSize` Cloud Identity accepts for `groups.list` and for `memberships.list` with the FULL view.
const PAGE_SIZE: i32 = 500;
const PRODUCTION_ENDPOINT: &str = "https://cloudidentity.googleapis.com/";

/// How to reach and authenticate to Cloud Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleConfig {
    /// The Workspace / Cloud Identity customer id, e.g. `C03example`.
    pub customer_id: String,
    /// Only groups whose email is in this domain are considered.
    pub groups_domain: String,
    /// Overrides the API root, e.g. an emulator on `http://127.0.0.1:PORT/`.
    pub endpoint: Option<String>,
    pub auth: GoogleAuth,
    /// Also label created groups `groups.security`.
    pub security_groups: bool,
    /// How fast requests may go, all of this run's concurrent requests together.
    pub requests: RequestRate,
}

/// Credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleAuth {
    /// A bearer token, e.g. from `gcloud auth print-access-token`.
    AccessToken(String),
    /// An Application Default Credentials file: a service-account key, an authorized user, or
    /// an external account (workload identity federation, as GitHub's auth action writes).
    CredentialsFile(PathBuf),
}

type Hub = CloudIdentity<HttpsConnector<HttpConnector>>;
type SettingsHub = Groupssettings<HttpsConnector<HttpConnector>>;

/// A Cloud Identity customer's groups.
pub struct GoogleDirectory {
    pub(super) runtime: tokio::runtime::Runtime,
    hub: Hub,
    /// The Groups Settings API (`google_settings.rs`): same client, credentials and endpoint.
    pub(super) settings_hub: SettingsHub,
    parent: String,
    domain_suffix: String,
    endpoint: String,
    /// Labels every created group gets.
    labels: HashMap<String, String>,
    /// Group email → resource name and ownership, learned from listings and creations.
    groups: Mutex<HashMap<String, KnownGroup>>,
    /// (group email, member email) → membership resource name, learned from listings.
    memberships: Mutex<HashMap<(String, String), String>>,
    /// HTTP requests sent, retries included.
    calls: AtomicU64,
    /// Every request waits for it (`CallObserver::pre_request`).
    pacer: Arc<Pacer>,
    /// The customer refused a membership expiry (not a premium edition): expiry is skipped for
    /// the rest of the run, and `notices` says so once.
    expiry_refused: AtomicBool,
    /// The Reports API (`google_audit.rs`), connected on first use with these credentials.
    pub(super) reports: super::google_audit::Reports,
}

#[derive(Debug, Clone)]
struct KnownGroup {
    name: String,
    owned: bool,
}

impl GoogleDirectory {
    /// Connects (lazily: no request is sent until the first call) with the given settings.
    pub fn connect(config: &GoogleConfig) -> Result<GoogleDirectory, DirectoryError> {
        let endpoint = config.endpoint.clone().unwrap_or_else(|| PRODUCTION_ENDPOINT.to_owned());
        check_endpoint(&endpoint)?;
        let endpoint = if endpoint.ends_with('/') { endpoint } else { format!("{endpoint}/") };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| DirectoryError::Storage(format!("cannot start the HTTP runtime: {e}")))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| DirectoryError::Rejected(format!("google: no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        let (mut hub, mut settings_hub) = match &config.auth {
            GoogleAuth::AccessToken(token) => {
                (CloudIdentity::new(client.clone(), token.clone()), Groupssettings::new(client, token.clone()))
            }
            GoogleAuth::CredentialsFile(path) => {
                let auth = runtime.block_on(credentials_file_authenticator(path, connector))?;
                (CloudIdentity::new(client.clone(), auth.clone()), Groupssettings::new(client, auth))
            }
        };
        hub.base_url(endpoint.clone());
        hub.root_url(endpoint.clone());
        // The settings API has its own host in production; an override (an emulator) serves
        // both under one root.
        if config.endpoint.is_some() {
            settings_hub.base_url(format!("{endpoint}groups/v1/groups/"));
            settings_hub.root_url(endpoint.clone());
        }
        // The Reports API (audit log) has its own host in production; an override serves it too.
        let reports =
            super::google_audit::Reports::new(config.endpoint.is_some().then(|| endpoint.clone()), config.auth.clone());
        Ok(GoogleDirectory {
            runtime,
            hub,
            settings_hub,
            parent: format!("customers/{}", config.customer_id),
            domain_suffix: format!("@{}", config.groups_domain.to_ascii_lowercase()),
            endpoint,
            labels: [Some(DISCUSSION_FORUM_LABEL), config.security_groups.then_some(SECURITY_LABEL)]
                .into_iter()
                .flatten()
                .map(|label| (label.to_owned(), String::new()))
                .collect(),
            groups: Mutex::new(HashMap::new()),
            memberships: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
            pacer: Arc::new(Pacer::new(config.requests)),
            expiry_refused: AtomicBool::new(false),
            reports,
        })
    }

    /// Paces requests with `pacer` instead of the one `connect` made from the configured rate,
    /// e.g. one on a virtual clock, or one shared with another client.
    pub fn with_pacer(self, pacer: Arc<Pacer>) -> GoogleDirectory {
        GoogleDirectory { pacer, ..self }
    }

    pub(super) fn observer(&self) -> CallObserver<'_> {
        CallObserver { calls: &self.calls, pacer: &self.pacer, status: None, retry_after: None }
    }

    fn remember_group(&self, email: &str, group: KnownGroup) {
        lock(&self.groups).insert(email.to_owned(), group);
    }

    /// What this run knows of a group, looking it up if it has not seen it.
    fn known_group(&self, email: &str) -> Result<KnownGroup, DirectoryError> {
        let known = lock(&self.groups).get(email).cloned();
        match known {
            Some(group) => Ok(group),
            None => {
                let group = self.fetch_group(email)?;
                self.remember_group(email, group.clone());
                Ok(group)
            }
        }
    }

    /// The resource name of any group in the domain, for reading.
    fn group_name(&self, email: &str) -> Result<String, DirectoryError> {
        self.known_group(email).map(|group| group.name)
    }

    /// The resource name of an owned group, for changing it.
    pub(super) fn owned_group_name(&self, email: &str) -> Result<String, DirectoryError> {
        let group = self.known_group(email)?;
        if group.owned {
            Ok(group.name)
        } else {
            Err(DirectoryError::NotOwned(email.to_owned()))
        }
    }

    /// `groups.lookup` then `groups.get`, to learn a group's name and whether we own it.
    fn fetch_group(&self, email: &str) -> Result<KnownGroup, DirectoryError> {
        self.look_up_group(email)?
            .map(|(known, _)| known)
            .ok_or_else(|| DirectoryError::GroupNotFound(email.to_owned()))
    }

    /// `groups.lookup` then `groups.get`: the group's resource name and what a listing would
    /// say of it; `None` when the domain has no such group.
    fn look_up_group(&self, email: &str) -> Result<Option<(KnownGroup, LiveGroup)>, DirectoryError> {
        let mut observer = self.observer();
        let found =
            self.runtime.block_on(self.hub.groups().lookup().group_key_id(email).delegate(&mut observer).doit());
        let name = match found {
            Ok((_, response)) => response.name.unwrap_or_default(),
            Err(error) => {
                return match classify(error, &observer) {
                    // 403 is how Cloud Identity says a group does not exist (or is not visible).
                    Failure::NotFound | Failure::Denied(_) => Ok(None),
                    other => Err(other.into_error("groups.lookup", email)),
                };
            }
        };
        let mut observer = self.observer();
        let found = self.runtime.block_on(self.hub.groups().get(&name).delegate(&mut observer).doit());
        match found {
            Ok((_, group)) => {
                let owned = is_owned(&group);
                let live = LiveGroup {
                    name: group.display_name.clone().unwrap_or_default(),
                    email: email.to_ascii_lowercase(),
                    description: group.description.clone().unwrap_or_default(),
                    owned,
                };
                Ok(Some((KnownGroup { name, owned }, live)))
            }
            Err(error) => Err(match classify(error, &observer) {
                // The lookup found it: a read that has not caught up yet.
                Failure::NotFound | Failure::Denied(_) => lagging("groups.get", email),
                other => other.into_error("groups.get", email),
            }),
        }
    }

    /// The resource name of a membership of an owned group: learned from a listing or an
    /// addition, else looked up. `None` when the group has no such member.
    fn membership_name(&self, group_email: &str, member_email: &str) -> Result<Option<String>, DirectoryError> {
        let key = (group_email.to_owned(), member_email.to_owned());
        if let Some(name) = lock(&self.memberships).get(&key).cloned() {
            return Ok(Some(name));
        }
        let parent = self.owned_group_name(group_email)?;
        let mut observer = self.observer();
        let found = self.runtime.block_on(
            self.hub.groups().memberships_lookup(&parent).member_key_id(member_email).delegate(&mut observer).doit(),
        );
        match found {
            Ok((_, response)) => Ok(response.name),
            Err(error) => match classify(error, &observer) {
                Failure::NotFound => Ok(None),
                // The group is ours (listed or created): not visible yet.
                Failure::Denied(_) => Err(lagging("memberships.lookup", group_email)),
                other => Err(other.into_error("memberships.lookup", &format!("{member_email} in {group_email}"))),
            },
        }
    }
}

/// A `memberships.create` that failed: with 403 (to be told apart by the caller), or otherwise.
enum AddFailure {
    Denied(String),
    Error(DirectoryError),
}

impl GoogleDirectory {
    /// One `memberships.create`; an existing member is success.
    fn create_membership(
        &self,
        parent: &str,
        group_email: &str,
        member_email: &str,
        expires: Option<Date>,
    ) -> Result<(), AddFailure> {
        let request = Membership {
            preferred_member_key: Some(EntityKey { id: Some(member_email.to_owned()), namespace: None }),
            roles: Some(vec![member_role(expires)]),
            ..Membership::default()
        };
        let mut observer = self.observer();
        let added =
            self.runtime.block_on(self.hub.groups().memberships_create(request, parent).delegate(&mut observer).doit());
        match added {
            Ok((_, operation)) => {
                if let Some(name) = operation_name(&operation) {
                    lock(&self.memberships).insert((group_email.to_owned(), member_email.to_owned()), name);
                }
                Ok(())
            }
            Err(error) => match classify(error, &observer) {
                Failure::AlreadyExists => Ok(()),
                Failure::Denied(message) => Err(AddFailure::Denied(message)),
                // The group exists (we listed or created it): a 404 is a read that has not
                // caught up yet, worth another attempt.
                Failure::NotFound => Err(AddFailure::Error(lagging("memberships.create", group_email))),
                other => Err(AddFailure::Error(
                    other.into_error("memberships.create", &format!("{member_email} in {group_email}")),
                )),
            },
        }
    }
}

impl Directory for GoogleDirectory {
    fn describe(&self) -> String {
        format!("Google Cloud Identity {} at {}", self.parent, self.endpoint)
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let mut groups = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut observer = self.observer();
            let mut call = self.hub.groups().list().parent(&self.parent).view("FULL").page_size(PAGE_SIZE);
            if let Some(token) = &page_token {
                call = call.page_token(token);
            }
            let (_, page) = self
                .runtime
                .block_on(call.delegate(&mut observer).doit())
                .map_err(|e| classify(e, &observer).into_error("groups.list", &self.parent))?;
            for group in page.groups.unwrap_or_default() {
                let Some(email) = group.group_key.as_ref().and_then(|k| k.id.as_ref()).map(|e| e.to_ascii_lowercase())
                else {
                    continue;
                };
                if !email.ends_with(&self.domain_suffix) {
                    continue;
                }
                let owned = is_owned(&group);
                let name = group.name.clone().unwrap_or_default();
                self.remember_group(&email, KnownGroup { name, owned });
                groups.push(LiveGroup {
                    name: group.display_name.clone().unwrap_or_default(),
                    email,
                    description: group.description.clone().unwrap_or_default(),
                    owned,
                });
            }
            page_token = page.next_page_token.filter(|t| !t.is_empty());
            if page_token.is_none() {
                return Ok(groups);
            }
        }
    }

    /// Two calls, and the group's name is remembered for the member listing that follows.
    fn get_group(&self, group_email: &str) -> Result<Option<LiveGroup>, DirectoryError> {
        let Some((known, live)) = self.look_up_group(group_email)? else { return Ok(None) };
        self.remember_group(&live.email, known);
        Ok(Some(live))
    }

    fn list_members(&self, group_email: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let name = self.group_name(group_email)?;
        let mut members = Vec::new();
        let mut learned = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut observer = self.observer();
            let mut call = self.hub.groups().memberships_list(&name).view("FULL").page_size(PAGE_SIZE);
            if let Some(token) = &page_token {
                call = call.page_token(token);
            }
            let (_, page) = self.runtime.block_on(call.delegate(&mut observer).doit()).map_err(|e| {
                match classify(e, &observer) {
                    // The group listing just returned it: a read that has not caught up yet.
                    Failure::NotFound | Failure::Denied(_) => lagging("memberships.list", group_email),
                    other => other.into_error("memberships.list", group_email),
                }
            })?;
            for membership in page.memberships.unwrap_or_default() {
                let Some(member) = live_member(&membership) else { continue };
                if let Some(membership_name) = membership.name {
                    learned.push(((group_email.to_owned(), member.email.clone()), membership_name));
                }
                members.push(member);
            }
            page_token = page.next_page_token.filter(|t| !t.is_empty());
            if page_token.is_none() {
                break;
            }
        }
        lock(&self.memberships).extend(learned);
        Ok(members)
    }

    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError> {
        let request = Group {
            group_key: Some(EntityKey { id: Some(group.email.clone()), namespace: None }),
            parent: Some(self.parent.clone()),
            display_name: Some(group.name.clone()),
            description: Some(owned_description(&group.description)),
            labels: Some(self.labels.clone()),
            ..Group::default()
        };
        let mut observer = self.observer();
        let created = self
            .runtime
            .block_on(self.hub.groups().create(request).initial_group_config("EMPTY").delegate(&mut observer).doit());
        match created {
            Ok((_, operation)) => {
                let name = match operation_name(&operation) {
                    Some(name) => name,
                    // Not done yet: the name is known once the group can be looked up.
                    None => {
                        self.fetch_group(&group.email)
                            .map_err(|e| not_visible_yet(e, "groups.create", &group.email))?
                            .name
                    }
                };
                self.remember_group(&group.email, KnownGroup { name, owned: true });
                Ok(())
            }
            Err(error) => match classify(error, &observer) {
                // Created by an earlier attempt whose answer was lost, or by someone else; if
                // the lookup does not find it yet, the directory has not caught up.
                Failure::AlreadyExists => self
                    .owned_group_name(&group.email)
                    .map(|_| ())
                    .map_err(|e| not_visible_yet(e, "groups.create", &group.email)),
                // A 403 on create can also mean the group exists (made by a lost attempt, or
                // outside what these credentials see).
                Failure::Denied(message) => match self.owned_group_name(&group.email) {
                    Ok(_) => Ok(()),
                    Err(DirectoryError::GroupNotFound(_)) => Err(DirectoryError::Rejected(format!(
                        "groups.create {}: permission denied (403): {message}; the group may exist where these credentials cannot see it, or they may not create groups",
                        group.email
                    ))),
                    Err(other) => Err(other),
                },
                other => Err(other.into_error("groups.create", &group.email)),
            },
        }
    }

    fn adopt_group(&self, group_email: &str, description: &str) -> Result<(), DirectoryError> {
        let name = self.group_name(group_email)?;
        let request = Group { description: Some(owned_description(description)), ..Group::default() };
        let mut observer = self.observer();
        let patched = self.runtime.block_on(
            self.hub
                .groups()
                .patch(request, &name)
                .update_mask(google_cloudidentity1::FieldMask::new(&["description"]))
                .delegate(&mut observer)
                .doit(),
        );
        match patched {
            Ok(_) => {
                self.remember_group(group_email, KnownGroup { name, owned: true });
                Ok(())
            }
            Err(error) => Err(match classify(error, &observer) {
                Failure::Denied(_) => lagging("groups.patch", group_email),
                other => other.into_error("groups.patch", group_email),
            }),
        }
    }

    fn add_member(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError> {
        let parent = self.owned_group_name(group_email)?;
        let expires = expires.filter(|_| !self.expiry_refused.load(Ordering::Relaxed));
        let denied = match self.create_membership(&parent, group_email, member_email, expires) {
            Err(AddFailure::Denied(message)) if expires.is_some() => {
                // Expiry needs a premium edition; elsewhere `expiryDetail` is refused with 403:
                // the membership is added without it, and the run says so once.
                match self.create_membership(&parent, group_email, member_email, None) {
                    Ok(()) => {
                        self.expiry_refused.store(true, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(AddFailure::Denied(_)) => message,
                    Err(AddFailure::Error(error)) => return Err(error),
                }
            }
            Err(AddFailure::Denied(message)) => message,
            Err(AddFailure::Error(error)) => return Err(error),
            Ok(()) => return Ok(()),
        };
        // 403 names either the member (an account that does not exist) or the group (not
        // visible yet): one `groups.get` tells them apart.
        let mut observer = self.observer();
        let visible = self.runtime.block_on(self.hub.groups().get(&parent).delegate(&mut observer).doit());
        match visible {
            Ok(_) => Err(DirectoryError::Rejected(format!(
                "memberships.create {member_email} in {group_email}: permission denied (403): {denied}; the account may not exist"
            ))),
            Err(error) => Err(match classify(error, &observer) {
                Failure::NotFound | Failure::Denied(_) => lagging("memberships.create", group_email),
                other => other.into_error("groups.get", group_email),
            }),
        }
    }

    fn set_expiry(&self, group_email: &str, member_email: &str, expires: Option<Date>) -> Result<(), DirectoryError> {
        let subject = format!("{member_email} in {group_email}");
        self.owned_group_name(group_email)?;
        if expires.is_some() && self.expiry_refused.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Some(name) = self.membership_name(group_email, member_email)? else {
            return Err(DirectoryError::Rejected(format!("memberships.modifyMembershipRoles {subject}: not a member")));
        };
        // Only the expiry changes; a role without `expiryDetail` under this mask clears it.
        let request = ModifyMembershipRolesRequest {
            update_roles_params: Some(vec![UpdateMembershipRolesParams {
                field_mask: Some(google_cloudidentity1::FieldMask::new(&["expiry_detail.expire_time"])),
                membership_role: Some(member_role(expires)),
            }]),
            ..ModifyMembershipRolesRequest::default()
        };
        let mut observer = self.observer();
        let modified = self.runtime.block_on(
            self.hub.groups().memberships_modify_membership_roles(request, &name).delegate(&mut observer).doit(),
        );
        match modified {
            Ok(_) => Ok(()),
            Err(error) => match classify(error, &observer) {
                // No membership expiry on this edition: skipped, said once per run.
                Failure::Denied(_) if expires.is_some() => {
                    self.expiry_refused.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Failure::Denied(_) => Err(lagging("memberships.modifyMembershipRoles", group_email)),
                other => Err(other.into_error("memberships.modifyMembershipRoles", &subject)),
            },
        }
    }

    fn notices(&self) -> Vec<String> {
        if !self.expiry_refused.load(Ordering::Relaxed) {
            return Vec::new();
        }
        vec![format!(
            "membership expiry: {} refuses expiryDetail (it needs Google Workspace Enterprise or Education, or Cloud Identity Premium); memberships were added without it. Set `membership_expiry = \"enforced-by-sync\"` in [providers.google]: the sync then removes expired grants itself",
            self.parent
        )]
    }

    fn remove_member(&self, group_email: &str, member_email: &str) -> Result<(), DirectoryError> {
        let key = (group_email.to_owned(), member_email.to_owned());
        self.owned_group_name(group_email)?;
        let Some(name) = self.membership_name(group_email, member_email)? else {
            return Ok(());
        };
        let mut observer = self.observer();
        let removed = self.runtime.block_on(self.hub.groups().memberships_delete(&name).delegate(&mut observer).doit());
        match removed {
            Ok(_) => {
                lock(&self.memberships).remove(&key);
                Ok(())
            }
            Err(error) => match classify(error, &observer) {
                Failure::NotFound => Ok(()),
                Failure::Denied(_) => Err(lagging("memberships.delete", group_email)),
                other => Err(other.into_error("memberships.delete", &format!("{member_email} in {group_email}"))),
            },
        }
    }

    fn delete_group(&self, group_email: &str) -> Result<(), DirectoryError> {
        let name = self.owned_group_name(group_email)?;
        let mut observer = self.observer();
        let deleted = self.runtime.block_on(self.hub.groups().delete(&name).delegate(&mut observer).doit());
        match deleted {
            Ok(_) => {
                lock(&self.groups).remove(group_email);
                Ok(())
            }
            Err(error) => match classify(error, &observer) {
                Failure::NotFound => Ok(()),
                Failure::Denied(_) => Err(lagging("groups.delete", group_email)),
                other => Err(other.into_error("groups.delete", group_email)),
            },
        }
    }

    fn audit_log(&self) -> Option<&dyn super::AuditLog> {
        Some(self)
    }

    fn group_settings(&self) -> Option<&dyn GroupSettingsDirectory> {
        Some(self)
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.calls.load(Ordering::Relaxed) + self.reports.calls())
    }
}

/// Builds an authenticator from an Application Default Credentials file.
pub(crate) async fn credentials_file_authenticator(
    path: &std::path::Path,
    connector: HttpsConnector<HttpConnector>,
) -> Result<yup_oauth2::authenticator::Authenticator<HttpsConnector<HttpConnector>>, DirectoryError> {
    // The token client is separate: yup-oauth2 speaks to the token endpoint with its own body type.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let bad = |message: String| DirectoryError::Rejected(format!("google credentials {}: {message}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let kind: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    check_token_endpoints(&kind).map_err(|e| bad(e.to_string()))?;
    let builder = yup_oauth2::CustomHyperClientBuilder::from(client);
    let built = match kind.get("type").and_then(|t| t.as_str()) {
        Some("service_account") => {
            let key = yup_oauth2::parse_service_account_key(&text).map_err(|e| bad(e.to_string()))?;
            yup_oauth2::ServiceAccountAuthenticator::with_client(key, builder).build().await
        }
        Some("authorized_user") => {
            let secret = yup_oauth2::read_authorized_user_secret(path).await.map_err(|e| bad(e.to_string()))?;
            yup_oauth2::AuthorizedUserAuthenticator::with_client(secret, builder).build().await
        }
        Some("external_account") => {
            let secret = yup_oauth2::read_external_account_secret(path).await.map_err(|e| bad(e.to_string()))?;
            yup_oauth2::ExternalAccountAuthenticator::with_client(secret, builder).build().await
        }
        other => {
            return Err(bad(format!(
                "unsupported credentials type {other:?}; expected service_account, authorized_user or external_account"
            )))
        }
    };
    built.map_err(|e| bad(e.to_string()))
}

/// Google's hosts a credentials file may send its signed assertion or token to.
const GOOGLE_TOKEN_HOSTS: &[&str] =
    &["oauth2.googleapis.com", "accounts.google.com", "sts.googleapis.com", "iamcredentials.googleapis.com"];

/// The endpoints a credentials file names (a key's `token_uri`, an external account's
/// `token_url` and impersonation URL) are Google's over HTTPS or loopback: a file pointing
/// anywhere else would hand a signed assertion or a token to that host.
fn check_token_endpoints(file: &serde_json::Value) -> Result<(), DirectoryError> {
    for field in ["token_uri", "token_url", "service_account_impersonation_url"] {
        if let Some(url) = file.get(field).and_then(|v| v.as_str()) {
            super::endpoint::check_root(url, GOOGLE_TOKEN_HOSTS, field)?;
        }
    }
    Ok(())
}

/// Plain HTTP is accepted only on loopback (emulators); anything else must be HTTPS. The
/// endpoint is parsed as a URL, as the HTTP client will read it: a user name or password
/// (`http://127.0.0.1:80@example.org/` is a request to example.org) is refused, and loopback
/// means the parsed host is in 127.0.0.0/8, is `::1`, or is `localhost` exactly.
pub fn check_endpoint(endpoint: &str) -> Result<(), DirectoryError> {
    super::endpoint::check_any_https(endpoint, "endpoint").map(|_| ())
}

/// The `MEMBER` role, expiring after `expires` when given.
fn member_role(expires: Option<Date>) -> MembershipRole {
    MembershipRole {
        name: Some("MEMBER".to_owned()),
        expiry_detail: expires.map(|date| ExpiryDetail { expire_time: end_of_day_utc(date) }),
        ..MembershipRole::default()
    }
}

/// A membership as our types see it; `None` without a member key.
fn live_member(membership: &Membership) -> Option<LiveMember> {
    let email = membership.preferred_member_key.as_ref()?.id.as_ref()?.to_ascii_lowercase();
    let kind = match membership.type_.as_deref() {
        Some("GROUP") => MemberKind::Group,
        // Older answers leave the type out; a user is what Cloud Identity assumes then.
        Some("USER" | "SERVICE_ACCOUNT") | None => MemberKind::Account,
        Some(_) => MemberKind::Other,
    };
    let expires = membership
        .roles
        .iter()
        .flatten()
        .filter(|role| role.name.as_deref() == Some("MEMBER"))
        .find_map(|role| role.expiry_detail.as_ref()?.expire_time)
        .map(last_day_of_access);
    Some(LiveMember { email, kind, expires })
}

/// The last day an expiry time still grants: access ends at that instant, so the day before
/// it at midnight (as `end_of_day_utc` writes it), else the day it falls on.
fn last_day_of_access(time: chrono::DateTime<chrono::Utc>) -> Date {
    let last_moment = (time - chrono::TimeDelta::nanoseconds(1)).date_naive();
    Date { year: last_moment.year() as u16, month: last_moment.month() as u8, day: last_moment.day() as u8 }
}

/// A read that does not find what the directory just reported or accepted: replication lag,
/// worth another attempt.
pub(super) fn lagging(method: &str, subject: &str) -> DirectoryError {
    DirectoryError::Unavailable(format!("{method} {subject}: not found yet (the directory has not caught up)"))
}

/// A group the directory says exists but cannot be looked up yet is lag, not absence.
fn not_visible_yet(error: DirectoryError, method: &str, email: &str) -> DirectoryError {
    match error {
        DirectoryError::GroupNotFound(_) => lagging(method, email),
        other => other,
    }
}

/// Access lasts through the expiry date: the membership ends at the next midnight, UTC.
fn end_of_day_utc(date: Date) -> Option<chrono::DateTime<chrono::Utc>> {
    let day = chrono::NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))?;
    Some(day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc())
}

fn is_owned(group: &Group) -> bool {
    group.description.as_deref().is_some_and(|d| d.contains(OWNER_MARKER))
}

fn owned_description(description: &str) -> String {
    if description.is_empty() {
        format!("[{OWNER_MARKER}]")
    } else {
        format!("{description} [{OWNER_MARKER}]")
    }
}

/// The `name` of the resource a finished operation returns.
fn operation_name(operation: &Operation) -> Option<String> {
    if operation.done != Some(true) {
        return None;
    }
    operation.response.as_ref()?.get("name")?.as_str().map(str::to_owned)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Watches one API call: counts requests and keeps what the client's error value loses (the
/// status line and the Retry-After header). Always tells the client not to retry.
pub(super) struct CallObserver<'a> {
    calls: &'a AtomicU64,
    pacer: &'a Pacer,
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Delegate for CallObserver<'_> {
    /// Called by the client right before it sends each request: waits for the pacer there (on
    /// the calling thread, which `block_on` runs the call on), then counts the request.
    fn pre_request(&mut self) {
        self.pacer.acquire(1);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn http_failure(
        &mut self,
        response: &google_cloudidentity1::common::Response,
        _: Option<&serde_json::Value>,
    ) -> Retry {
        self.status = Some(response.status().as_u16());
        self.retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if let (429, Some(wait)) = (response.status().as_u16(), self.retry_after) {
            self.pacer.pause(wait);
        }
        Retry::Abort
    }
}

/// What a failed call means to the provider.
pub(super) enum Failure {
    NotFound,
    /// 403: Cloud Identity's answer for what the caller may not see *or what does not exist*
    /// (Error 2028 "... (or it may not exist)"), for groups and for member accounts alike.
    Denied(String),
    AlreadyExists,
    Other(DirectoryError),
}

impl Failure {
    pub(super) fn into_error(self, method: &str, subject: &str) -> DirectoryError {
        match self {
            Failure::NotFound => DirectoryError::Rejected(format!("{method} {subject}: not found")),
            Failure::Denied(message) => {
                DirectoryError::Rejected(format!("{method} {subject}: permission denied (403): {message}"))
            }
            Failure::AlreadyExists => DirectoryError::Rejected(format!("{method} {subject}: already exists")),
            Failure::Other(DirectoryError::Rejected(message)) => {
                DirectoryError::Rejected(format!("{method} {subject}: {message}"))
            }
            Failure::Other(DirectoryError::Unavailable(message)) => {
                DirectoryError::Unavailable(format!("{method} {subject}: {message}"))
            }
            Failure::Other(DirectoryError::Throttled { retry_after, .. }) => {
                DirectoryError::Throttled { call: format!("{method} {subject}"), retry_after }
            }
            Failure::Other(error) => error,
        }
    }
}

pub(super) fn classify(error: ApiError, observer: &CallObserver) -> Failure {
    let (code, message) = match &error {
        ApiError::HttpError(e) => {
            return Failure::Other(DirectoryError::Unavailable(format!("connection failed: {e}")))
        }
        ApiError::MissingToken(e) => {
            // An unreachable token endpoint is an outage; any other answer is about the credentials.
            let unreachable = e.downcast_ref::<yup_oauth2::Error>().is_some_and(|e| {
                matches!(
                    e,
                    yup_oauth2::Error::HttpError(_)
                        | yup_oauth2::Error::HttpClientError(_)
                        | yup_oauth2::Error::LowLevelError(_)
                )
            });
            return Failure::Other(if unreachable {
                DirectoryError::Unavailable(format!("token endpoint unreachable: {e}"))
            } else {
                DirectoryError::Rejected(format!(
                    "the token endpoint refused the credentials (GOOGLE_APPLICATION_CREDENTIALS, else gcloud's default credentials file): {e}"
                ))
            });
        }
        ApiError::BadRequest(body) => {
            let code = body.pointer("/error/code").and_then(|c| c.as_u64()).map(|c| c as u16);
            let message = body.pointer("/error/message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
            (observer.status.or(code), message)
        }
        ApiError::Failure(response) => (Some(response.status().as_u16()), String::new()),
        other => (observer.status, other.to_string()),
    };
    match code {
        Some(404) => Failure::NotFound,
        Some(409) => Failure::AlreadyExists,
        Some(429) => Failure::Other(DirectoryError::Throttled { call: String::new(), retry_after: observer.retry_after }),
        Some(401) => Failure::Other(DirectoryError::Rejected(format!(
            "authentication failed (401): {message}; check CPG_INFRA_GOOGLE_ACCESS_TOKEN or GOOGLE_APPLICATION_CREDENTIALS"
        ))),
        Some(403) => Failure::Denied(message),
        Some(code) if code >= 500 => Failure::Other(DirectoryError::Unavailable(format!("{code}: {message}"))),
        Some(code) => Failure::Other(DirectoryError::Rejected(format!("{code}: {message}"))),
        None => Failure::Other(DirectoryError::Rejected(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_endpoint("https://cloudidentity.googleapis.com/").is_ok());
        assert!(check_endpoint("http://127.0.0.1:8089/").is_ok());
        assert!(check_endpoint("http://localhost:1/").is_ok());
        assert!(check_endpoint("http://[::1]:8089/").is_ok());
        assert!(check_endpoint("http://10.0.0.5:8089/").is_err());
        assert!(check_endpoint("http://example.org/").is_err());
        assert!(check_endpoint("ftp://127.0.0.1/").is_err());
        // What the client would really connect to decides, not how the text starts.
        assert!(check_endpoint("http://127.0.0.1:80@example.org/").is_err());
        assert!(check_endpoint("http://user:secret@127.0.0.1:8089/").is_err());
        assert!(check_endpoint("https://token@cloudidentity.googleapis.com/").is_err());
        assert!(check_endpoint("http://127.0.0.1.example.org/").is_err());
        assert!(check_endpoint("http://localhost.example.org/").is_err());
        assert!(check_endpoint("http://127.5.6.7:1/").is_ok());
        assert!(check_endpoint("http://[::ffff:127.0.0.1]/").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn credentials_files_may_name_only_google_or_loopback_token_endpoints() {
        let file = |field: &str, url: &str| serde_json::json!({ "type": "service_account", field: url });
        assert!(check_token_endpoints(&file("token_uri", "https://oauth2.googleapis.com/token")).is_ok());
        assert!(check_token_endpoints(&file("token_uri", "http://127.0.0.1:8089/token")).is_ok());
        assert!(check_token_endpoints(&file("token_url", "https://sts.googleapis.com/v1/token")).is_ok());
        assert!(check_token_endpoints(&file("token_uri", "https://oauth2.googleapis.com.evil.example/token")).is_err());
        assert!(check_token_endpoints(&file("token_uri", "http://oauth2.googleapis.com/token")).is_err());
        assert!(check_token_endpoints(&file("token_url", "http://user@127.0.0.1/token")).is_err());
        let impersonation = "https://attacker.example/v1/projects/-/serviceAccounts/x:generateAccessToken";
        assert!(check_token_endpoints(&file("service_account_impersonation_url", impersonation)).is_err());
    }

    #[test]
    fn expiry_times_read_back_as_the_last_day_of_access() {
        let day: Date = "2027-03-31".parse().unwrap();
        assert_eq!(end_of_day_utc(day).map(last_day_of_access), Some(day));
        let afternoon = "2027-03-31T15:00:00Z".parse().unwrap();
        assert_eq!(last_day_of_access(afternoon), day);
    }

    #[test]
    fn ownership_is_the_description_marker() {
        let ours = Group { description: Some(owned_description("Analysts")), ..Group::default() };
        let theirs = Group { description: Some("Analysts".to_owned()), ..Group::default() };
        assert!(is_owned(&ours));
        assert!(!is_owned(&theirs));
    }
}
