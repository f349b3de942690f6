//! A fake Google Cloud Identity v1 API (groups and memberships) on 127.0.0.1, speaking the
//! wire format that the `google-cloudidentity1` client sends and reads.
//!
//! State lives in memory (`store`). Every request is counted per API method, can be slowed
//! down, and can be answered by a fault from `faults` instead of being served (a faulted request
//! never changes state); groups and memberships created through the API can lag behind in reads
//! for a number of requests. It never talks to Google.
//!
//! Wire facts it follows: paths `v1/groups`, `v1/groups:lookup`, `v1/groups/{id}`,
//! `v1/groups/{id}/memberships`, `v1/groups/{id}/memberships:lookup`,
//! `v1/groups/{id}/memberships/{mid}`, `v1/groups/{id}/memberships/{mid}:modifyMembershipRoles`;
//! camelCase JSON; writes answer a finished `Operation` (`modifyMembershipRoles` answers
//! `{"membership": …}`); errors are `{"error":{"code":N,"message":"…","status":"NOT_FOUND"}}`.
//! A group the customer does not have (or that has not replicated yet) and an account that does
//! not exist answer 403 `Error(2028): Permission denied for resource … (or it may not exist)`,
//! not 404, as Cloud Identity does; membership expiry is refused (403) unless the customer is
//! premium (`EmulatorOptions::premium`: Workspace Enterprise / Education, Cloud Identity Premium).
//! A membership's type (`USER`, `GROUP`, `SERVICE_ACCOUNT`) is fixed when it is created: adding
//! a group's email before the group exists makes a `USER` member, as with the real API.
//! Group settings (the Groups Settings API): `GET` and `PATCH groups/v1/groups/{email}` with
//! `alt=json` (required: the API's own default is Atom, which the emulator does not speak), `404` for a group the customer does not have;
//! every group starts with the settings `store::DEFAULT_SETTINGS`, and a PATCH changes the fields
//! it carries only (values are checked against the API's).
//! Views: `BASIC` (the default) leaves out timestamps and membership expiry details, `FULL` has
//! everything. Page sizes default to 200 (`BASIC`) or 50 (`FULL`), are capped at 1000 / 500 like
//! the real API, and further at `EmulatorOptions::max_page_size`.
//! The Reports API's group audit log (`reports.rs`) records every membership change made
//! through the API (as `EmulatorOptions::api_actor`) or by hand (`add_member_by_hand`).

mod objects;
mod reports;
mod store;
mod token;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::{request_identity, Fault, FaultPlan, FaultState};
use super::server::{has_bearer, ConnectionKiller, Request, Server};
pub(crate) use store::rfc3339;
use store::{Directory, NewMember};

/// What Google APIs answer (403) when the token lacks the scope a method needs.
const INSUFFICIENT_SCOPES: &str = "Request had insufficient authentication scopes.";

/// A running fake Cloud Identity API. Dropping it shuts the server down.
pub struct GoogleEmulator {
    server: Server,
    shared: Arc<Shared>,
}

/// How the emulator listens and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The customer id (without `customers/`) every group belongs to.
    pub customer: String,
    /// When set, every request must carry `Authorization: Bearer <token>`, or gets 401.
    pub token: Option<String>,
    /// Upper bound on any page, below the API's own maxima (1000 `BASIC`, 500 `FULL`).
    pub max_page_size: usize,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// A Workspace Enterprise / Education or Cloud Identity Premium customer: memberships may
    /// expire. Others refuse `expiryDetail` with 403.
    pub premium: bool,
    /// Whether the bearer token carries the `apps.groups.settings` scope; without it every
    /// Groups Settings call answers 403 (tokens from `gcloud auth print-access-token` lack it).
    pub settings_scope: bool,
    /// Service-account keys Google issued: client email → the key's PKCS#8 PEM (as in a key
    /// file's `private_key`). The token endpoint keeps only the public halves, to verify
    /// assertions.
    pub service_account_keys: BTreeMap<String, String>,
    /// Workload identity providers: audience (`//iam.googleapis.com/projects/…/providers/…`)
    /// → the subject token the provider trusts.
    pub workload_identity: BTreeMap<String, String>,
    /// Service accounts (lowercased emails) a federated identity may impersonate.
    pub impersonable: BTreeSet<String>,
    /// Whether the bearer token carries `admin.reports.audit.readonly`; without it the Reports
    /// API answers 403.
    pub reports_scope: bool,
    /// Reads of the audit log a new event stays out of (the Reports API's lag).
    pub audit_lag: u32,
    /// The account the audit log names for changes made through the API (the sync's).
    pub api_actor: String,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            port: 0,
            customer: "C03example".to_owned(),
            token: None,
            max_page_size: 200,
            latency: Duration::ZERO,
            premium: false,
            settings_scope: true,
            service_account_keys: BTreeMap::new(),
            workload_identity: BTreeMap::new(),
            impersonable: BTreeSet::new(),
            reports_scope: true,
            audit_lag: 0,
            api_actor: "groups-sync@example-project.iam.gserviceaccount.com".to_owned(),
        }
    }
}

/// A group to put into the emulator directly (no request, no fault, no count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedGroup {
    pub email: String,
    pub display_name: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// Member emails; one that is a group in the emulator is listed with type `GROUP`.
    pub members: Vec<String>,
}

/// A group as the emulator holds it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedGroup {
    /// `groups/{id}`.
    pub name: String,
    /// Lowercased.
    pub email: String,
    pub display_name: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// Lowercased member email → membership; includes members that listings do not show yet.
    pub members: BTreeMap<String, MemberInfo>,
}

/// One membership, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Role names, e.g. `["MEMBER"]`.
    pub roles: Vec<String>,
    /// The `MEMBER` role's `expiryDetail.expireTime`, as the client sent it.
    pub expire_time: Option<String>,
    /// `USER`, `GROUP` or `SERVICE_ACCOUNT`, as `memberships.list` reports it.
    pub kind: String,
}

impl GoogleEmulator {
    /// Binds 127.0.0.1 and serves on a background thread with its own runtime; returns once
    /// the socket is listening.
    pub fn start(options: EmulatorOptions) -> io::Result<GoogleEmulator> {
        let shared = Arc::new(Shared {
            directory: Mutex::new({
                let mut directory = Directory::new(&options.customer);
                directory.premium = options.premium;
                directory.audit.lag = options.audit_lag;
                directory.api_actor = options.api_actor.clone();
                directory
            }),
            objects: Mutex::new(objects::Objects::default()),
            faults: Mutex::new(FaultState::new(FaultPlan::default())),
            calls: Mutex::new(BTreeMap::new()),
            keys: token::Keys::from_options(&options),
            options,
        });
        let for_server = Arc::clone(&shared);
        let server = Server::start(shared.options.port, "google-emulator", move |request, killer| {
            handle(Arc::clone(&for_server), request, killer)
        })?;
        Ok(GoogleEmulator { server, shared })
    }

    /// Creates an empty Cloud Storage bucket (buckets are made by Pulumi, not by the API users).
    pub fn create_bucket(&self, bucket: &str) {
        lock(&self.shared.objects).create_bucket(bucket);
    }

    /// A bucket's objects and their bytes.
    pub fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        lock(&self.shared.objects).objects(bucket)
    }

    /// Adds a version to a Secret Manager secret (created if new), without a request.
    pub fn add_secret_version(&self, project: &str, secret: &str, bytes: &[u8]) {
        lock(&self.shared.objects).add_secret_version(project, secret, bytes);
    }

    /// Writes an object without a request (no count, no fault), e.g. a file changed by hand.
    pub fn put_object_directly(&self, bucket: &str, name: &str, bytes: &[u8]) {
        lock(&self.shared.objects).put_directly(bucket, name, bytes);
    }

    /// `http://127.0.0.1:PORT/`: the client's base URL and root URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.server.address())
    }

    /// Requests received per API method (`groups.list`, `groups.memberships.create`, …;
    /// `unknown` for anything else), faulted and refused ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.calls).clone()
    }

    /// Requests received, all methods together.
    pub fn total_calls(&self) -> u64 {
        lock(&self.shared.calls).values().sum()
    }

    /// Forgets every count.
    pub fn reset_calls(&self) {
        lock(&self.shared.calls).clear();
    }

    /// Replaces the fault plan and restarts its generator from the plan's seed.
    pub fn set_faults(&self, faults: FaultPlan) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// Adds a group, or replaces the fields and members of the group with that email.
    pub fn insert_group(&self, group: SeedGroup) {
        lock(&self.shared.directory).insert_seed(group);
    }

    /// Lowercased email → group, as stored (consistency delays do not hide anything here).
    pub fn groups(&self) -> BTreeMap<String, EmulatedGroup> {
        lock(&self.shared.directory).snapshot()
    }

    /// Adds a member as if someone did it by hand: visible at once, no request counted.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn add_member_directly(&self, group_email: &str, member: &str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.add_member(&group, member, NewMember::seeded());
    }

    /// Adds a member with a fixed type (`USER`, `GROUP`, …) as if someone did it by hand, e.g. a
    /// person's email recorded as a group.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn add_member_directly_as(&self, group_email: &str, member: &str, kind: &'static str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.add_member(&group, member, NewMember { kind: Some(kind), ..NewMember::seeded() });
    }

    /// A group's settings (Groups Settings API field → value), as stored.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn settings(&self, group_email: &str) -> BTreeMap<String, String> {
        let directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.settings(&group)
    }

    /// Changes one setting as if someone did it in the admin console: no request counted.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn set_setting_directly(&self, group_email: &str, field: &str, value: &str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.set_setting(&group, field, value);
    }

    /// Adds a member as `actor` would in the admin console: visible at once, and in the audit
    /// log (after its lag) under that actor.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn add_member_by_hand(&self, group_email: &str, member: &str, actor: &str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.add_member(&group, member, NewMember::seeded());
        directory.audit.record(actor, true, &group, member, "USER");
    }

    /// Removes a member as `actor` would in the admin console, with its audit event.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn remove_member_by_hand(&self, group_email: &str, member: &str, actor: &str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.remove_member(&group, member);
        directory.audit.record(actor, false, &group, member, "USER");
    }

    /// Removes a member as if someone did it by hand; absent members are ignored.
    ///
    /// # Panics
    /// If the emulator has no group `group_email`.
    pub fn remove_member_directly(&self, group_email: &str, member: &str) {
        let mut directory = lock(&self.shared.directory);
        let group = directory.group_key(group_email);
        directory.remove_member(&group, member);
    }
}

/// Request bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 1 << 20;

/// What the server thread and the test-facing handle share.
struct Shared {
    options: EmulatorOptions,
    directory: Mutex<Directory>,
    objects: Mutex<objects::Objects>,
    faults: Mutex<FaultState>,
    calls: Mutex<BTreeMap<String, u64>>,
    keys: token::Keys,
}

/// Serves one request: count, read, wait, authenticate, maybe fault, then answer.
async fn handle(shared: Arc<Shared>, request: Request, killer: ConnectionKiller) -> Response {
    let (parts, body) = request.into_parts();
    if parts.uri.path() == METADATA_IDENTITY_PATH {
        return metadata_identity(&parts);
    }
    if let Some((call, endpoint)) = token::route(&parts.method, parts.uri.path()) {
        *lock(&shared.calls).entry(call.to_owned()).or_default() += 1;
        let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await else {
            return ApiError::invalid("request body unreadable or over 1 MiB").into_response();
        };
        return token::answer(&shared.options, &shared.keys, endpoint, &parts, &body);
    }
    let route = Route::parse(&parts.method, parts.uri.path());
    *lock(&shared.calls).entry(route.method_name().to_owned()).or_default() += 1;
    // The whole body is read first, so that a dropped connection closes cleanly.
    let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await else {
        return ApiError::invalid("request body unreadable or over 1 MiB").into_response();
    };
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    if let Some(expected) = &shared.options.token {
        if !has_bearer(&parts.headers, expected) {
            return unauthenticated();
        }
    }
    let scoped = match route {
        Route::GetSettings(_) | Route::PatchSettings(_) => shared.options.settings_scope,
        Route::ListActivities { .. } => shared.options.reports_scope,
        _ => true,
    };
    if !scoped {
        // Google's answer for a token without the method's scope.
        let denied = ApiError { code: Code::PermissionDenied, message: INSUFFICIENT_SCOPES.to_owned() };
        return denied.into_response();
    }
    let identity = request_identity(&parts.method, &parts.uri, &body);
    let (fault, plan) = {
        let mut faults = lock(&shared.faults);
        (faults.next_fault(route.method_name(), identity), faults.plan.clone())
    };
    match fault {
        Some(Fault::Drop) => return killer.drop_connection().await,
        Some(fault) => return fault_response(fault),
        None => {}
    }
    let query = match Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
        Ok(Query(query)) => query,
        Err(error) => return ApiError::invalid(&format!("malformed query string: {error}")).into_response(),
    };
    let context = Context { query: &query, body: &body, faults: &plan };
    let max_page_size = shared.options.max_page_size;
    let answer = match &route {
        Route::ListObjects(bucket) => lock(&shared.objects).list(bucket, &context, max_page_size),
        Route::InsertObject(bucket) => lock(&shared.objects).insert(bucket, &context),
        Route::DeleteObject(bucket, name) => lock(&shared.objects).delete(bucket, name),
        Route::AccessSecret { project, secret, version } => {
            lock(&shared.objects).access_secret(project, secret, version)
        }
        _ => lock(&shared.directory).answer(&route, &context, max_page_size),
    };
    match answer {
        // Cloud Storage answers a deletion with no content.
        Ok(_) if matches!(route, Route::DeleteObject(..)) => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error.into_response(),
    }
}

/// The metadata server's identity-token route (Cloud Run, GCE), for services that take Google
/// identity tokens.
const METADATA_IDENTITY_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// The token the fake metadata server gives for `audience`.
pub fn identity_token_for(audience: &str) -> String {
    format!("identity-token-for-{audience}")
}

/// Answers like the metadata server: only with `Metadata-Flavor: Google`, only for an audience.
fn metadata_identity(parts: &axum::http::request::Parts) -> Response {
    let flavour = parts.headers.get("metadata-flavor").and_then(|v| v.to_str().ok());
    let query = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map(|Query(q)| q).unwrap_or_default();
    let audience = query.iter().find(|(key, _)| key == "audience").map(|(_, value)| value.as_str());
    let (status, body) = match (flavour, audience) {
        (Some("Google"), Some(audience)) if !audience.is_empty() => (StatusCode::OK, identity_token_for(audience)),
        (Some("Google"), _) => (StatusCode::BAD_REQUEST, "non-empty audience parameter required".to_owned()),
        _ => (StatusCode::FORBIDDEN, "Missing Metadata-Flavor:Google header.".to_owned()),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// A Cloud Identity error body for an injected fault.
fn fault_response(fault: Fault) -> Response {
    let (code, message) = match fault {
        Fault::TooManyRequests(_) => (
            Code::ResourceExhausted,
            "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service \
             'cloudidentity.googleapis.com'.",
        ),
        Fault::Unavailable => (Code::Unavailable, "The service is currently unavailable."),
        Fault::Internal | Fault::Drop => (Code::Internal, "Internal error encountered."),
    };
    let mut response = ApiError { code, message: message.to_owned() }.into_response();
    if let Fault::TooManyRequests(Some(retry_after)) = fault {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
    }
    response
}

fn unauthenticated() -> Response {
    let mut response = ApiError {
        code: Code::Unauthenticated,
        message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
                  or other valid authentication credential."
            .to_owned(),
    }
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\""),
    );
    response
}

/// An API method, recognised from the HTTP method and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    CreateGroup,
    ListGroups,
    LookupGroup,
    GetGroup(String),
    PatchGroup(String),
    DeleteGroup(String),
    CreateMembership(String),
    ListMemberships(String),
    LookupMembership(String),
    GetMembership(String, String),
    DeleteMembership(String, String),
    ModifyMembershipRoles(String, String),
    /// Groups Settings API: a group's settings, by email.
    GetSettings(String),
    PatchSettings(String),
    /// Reports API `activities.list` (`reports.rs`).
    ListActivities {
        user_key: String,
        application: String,
    },
    /// Cloud Storage: a bucket's objects.
    ListObjects(String),
    InsertObject(String),
    DeleteObject(String, String),
    /// Secret Manager: `projects/{p}/secrets/{s}/versions/{v}:access`.
    AccessSecret {
        project: String,
        secret: String,
        version: String,
    },
    Unknown,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Route {
        if let Some(route) = Route::parse_storage(method, path) {
            return route;
        }
        if let Some(rest) = path.strip_prefix("/admin/reports/v1/activity/users/") {
            return match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
                (&Method::GET, [user, "applications", application]) => match percent_decode(user) {
                    Some(user_key) => Route::ListActivities { user_key, application: (*application).to_owned() },
                    None => Route::Unknown,
                },
                _ => Route::Unknown,
            };
        }
        if let Some(email) = path.strip_prefix("/groups/v1/groups/") {
            let Some(email) = percent_decode(email).filter(|e| !e.is_empty() && !e.contains('/')) else {
                return Route::Unknown;
            };
            return match *method {
                Method::GET => Route::GetSettings(email),
                Method::PATCH => Route::PatchSettings(email),
                _ => Route::Unknown,
            };
        }
        // The client leaves `/` and `:` of `{+name}` as they are; decode anything else.
        let Some(path) = path.strip_prefix("/v1/").and_then(percent_decode) else {
            return Route::Unknown;
        };
        let segments: Vec<&str> = path.split('/').collect();
        let id = |index: usize| segments[index].to_owned();
        match (method, segments.as_slice()) {
            (&Method::POST, ["groups"]) => Route::CreateGroup,
            (&Method::GET, ["groups"]) => Route::ListGroups,
            (&Method::GET, ["groups:lookup"]) => Route::LookupGroup,
            (&Method::GET, ["groups", _]) => Route::GetGroup(id(1)),
            (&Method::PATCH, ["groups", _]) => Route::PatchGroup(id(1)),
            (&Method::DELETE, ["groups", _]) => Route::DeleteGroup(id(1)),
            (&Method::POST, ["groups", _, "memberships"]) => Route::CreateMembership(id(1)),
            (&Method::GET, ["groups", _, "memberships"]) => Route::ListMemberships(id(1)),
            (&Method::GET, ["groups", _, "memberships:lookup"]) => Route::LookupMembership(id(1)),
            (&Method::GET, ["groups", _, "memberships", _]) => Route::GetMembership(id(1), id(3)),
            (&Method::DELETE, ["groups", _, "memberships", _]) => Route::DeleteMembership(id(1), id(3)),
            (&Method::GET, ["projects", project, "secrets", secret, "versions", version]) => {
                match version.strip_suffix(":access") {
                    Some(version) => Route::AccessSecret {
                        project: (*project).to_owned(),
                        secret: (*secret).to_owned(),
                        version: version.to_owned(),
                    },
                    None => Route::Unknown,
                }
            }
            (&Method::POST, ["groups", _, "memberships", member]) => {
                match member.strip_suffix(":modifyMembershipRoles") {
                    Some(member) => Route::ModifyMembershipRoles(id(1), member.to_owned()),
                    None => Route::Unknown,
                }
            }
            _ => Route::Unknown,
        }
    }

    /// Cloud Storage JSON API paths (`storage/v1/...`, `upload/storage/v1/...`).
    fn parse_storage(method: &Method, path: &str) -> Option<Route> {
        if let Some(rest) = path.strip_prefix("/upload/storage/v1/b/") {
            let bucket = rest.strip_suffix("/o")?;
            return (method == Method::POST).then(|| Route::InsertObject(bucket.to_owned()));
        }
        let rest = path.strip_prefix("/storage/v1/b/")?;
        let (bucket, objects) = rest.split_once("/o")?;
        match (method, objects.strip_prefix('/')) {
            (&Method::GET, None) if objects.is_empty() => Some(Route::ListObjects(bucket.to_owned())),
            (&Method::DELETE, Some(name)) => Some(Route::DeleteObject(bucket.to_owned(), percent_decode(name)?)),
            _ => Some(Route::Unknown),
        }
    }

    /// The API method name, as in the discovery document without the `cloudidentity.` prefix.
    fn method_name(&self) -> &'static str {
        match self {
            Route::CreateGroup => "groups.create",
            Route::ListGroups => "groups.list",
            Route::LookupGroup => "groups.lookup",
            Route::GetGroup(_) => "groups.get",
            Route::PatchGroup(_) => "groups.patch",
            Route::DeleteGroup(_) => "groups.delete",
            Route::CreateMembership(_) => "groups.memberships.create",
            Route::ListMemberships(_) => "groups.memberships.list",
            Route::LookupMembership(_) => "groups.memberships.lookup",
            Route::GetMembership(..) => "groups.memberships.get",
            Route::DeleteMembership(..) => "groups.memberships.delete",
            Route::ModifyMembershipRoles(..) => "groups.memberships.modifyMembershipRoles",
            Route::GetSettings(_) => "groupsSettings.groups.get",
            Route::PatchSettings(_) => "groupsSettings.groups.patch",
            Route::ListActivities { .. } => "reports.activities.list",
            Route::ListObjects(_) => "storage.objects.list",
            Route::InsertObject(_) => "storage.objects.insert",
            Route::DeleteObject(..) => "storage.objects.delete",
            Route::AccessSecret { .. } => "secretmanager.versions.access",
            Route::Unknown => "unknown",
        }
    }
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The parts of a request the directory needs.
struct Context<'a> {
    query: &'a [(String, String)],
    body: &'a [u8],
    faults: &'a FaultPlan,
}

impl Context<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(self.body)
            .map_err(|error| ApiError::invalid(&format!("Invalid JSON payload received. {error}")))
    }
}

/// A Google API error: the canonical code and a message.
#[derive(Debug)]
struct ApiError {
    code: Code,
    message: String,
}

#[derive(Debug, Clone, Copy)]
enum Code {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    ResourceExhausted,
    Internal,
    Unavailable,
}

impl Code {
    fn http_status(self) -> StatusCode {
        match self {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

impl ApiError {
    fn invalid(message: &str) -> ApiError {
        ApiError { code: Code::InvalidArgument, message: message.to_owned() }
    }

    /// What Cloud Identity answers for a group or member it does not have, or that the caller
    /// may not see: 403, never 404 (Cloud Identity error 2028; real-apis.md).
    fn denied(resource: &str) -> ApiError {
        ApiError {
            code: Code::PermissionDenied,
            message: format!("Error(2028): Permission denied for resource {resource} (or it may not exist)."),
        }
    }

    /// Membership expiry on an edition without it: refused with 403 ("manage membership
    /// expirations": Enterprise, Education and Cloud Identity Premium only). The exact message
    /// is not documented.
    fn expiry_not_available() -> ApiError {
        ApiError {
            code: Code::PermissionDenied,
            message: "Error(4085): Membership expiry is not available for this customer's edition.".to_owned(),
        }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError { code: Code::NotFound, message: format!("Error(2015): Resource not found: {what}.") }
    }

    fn into_response(self) -> Response {
        let status = self.code.http_status();
        let body = json!({
            "error": { "code": status.as_u16(), "message": self.message, "status": self.code.name() }
        });
        json_response(status, &body)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    response
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_api_methods() {
        let route = |method: Method, path: &str| Route::parse(&method, path);
        assert_eq!(route(Method::GET, "/v1/groups:lookup"), Route::LookupGroup);
        assert_eq!(route(Method::GET, "/v1/groups%3Alookup"), Route::LookupGroup);
        assert_eq!(route(Method::PATCH, "/v1/groups/01ab"), Route::PatchGroup("01ab".to_owned()));
        assert_eq!(
            route(Method::GET, "/v1/groups/01ab/memberships:lookup"),
            Route::LookupMembership("01ab".to_owned())
        );
        assert_eq!(
            route(Method::DELETE, "/v1/groups/01ab/memberships/1cd"),
            Route::DeleteMembership("01ab".to_owned(), "1cd".to_owned())
        );
        assert_eq!(route(Method::PUT, "/v1/groups/01ab"), Route::Unknown);
        assert_eq!(
            route(Method::GET, "/groups/v1/groups/g1%40groups.example.org"),
            Route::GetSettings("g1@groups.example.org".to_owned())
        );
        assert_eq!(
            route(Method::PATCH, "/groups/v1/groups/g1@groups.example.org"),
            Route::PatchSettings("g1@groups.example.org".to_owned())
        );
        assert_eq!(route(Method::PUT, "/groups/v1/groups/g1@groups.example.org"), Route::Unknown);
        assert_eq!(route(Method::GET, "/v2/groups"), Route::Unknown);
    }
}
