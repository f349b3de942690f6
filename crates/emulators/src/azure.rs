//! A fake Microsoft Graph v1.0 (users, service principals, groups, members, `$batch`) on 127.0.0.1, speaking the
//! wire format that `graph-rs-sdk` sends and reads.
//!
//! State lives in memory. Every request is counted per API method (sub-requests of a `$batch`
//! under `$batch/<method>` as well), can be slowed down, and can be answered by a fault from the
//! shared fault plan instead of being served (a faulted request never changes state); groups
//! created through the API can be missing from listings and answer 404 to direct reads for a
//! number of requests. It never talks to Microsoft.
//!
//! Wire facts it follows: paths under `/v1.0/`; collections are `{"value":[…]}` with an
//! `@odata.nextLink` holding the whole next URL (`$skiptoken`) while more remain; `$top` is at
//! most 999; `$select` keeps only the named properties (and `id`); `$filter` understands
//! `prop eq 'v'`, `prop eq true`, `startswith(prop,'v')` and `prop/any(x:x eq 'v')` (a
//! collection such as a service principal's `alternativeNames`) joined by `and` / `or` (no
//! parentheses); members carry `@odata.type` (`#microsoft.graph.user`, `#microsoft.graph.group`,
//! `#microsoft.graph.servicePrincipal`), and service principals (managed identities) are
//! members like users: bound, referenced, removed and in the change feed;
//! `PATCH /groups/{id}` takes `members@odata.bind` (at most 20 URLs; one that is already a
//! member fails the whole request with 400 and adds nobody); `POST …/members/$ref` answers 204,
//! 400 for an existing member; `DELETE …/members/{id}/$ref` answers 204, 404 for a non-member;
//! `POST /$batch` takes at most 20 requests and answers them in a shuffled order, each with its
//! own status, headers and body (run in order; one whose `dependsOn` failed answers 424);
//! errors are `{"error":{"code":"…","message":"…"}}`. A security group's `mailNickname` need
//! not be unique (only Microsoft 365 groups' are), so a repeated `POST /groups` makes a second
//! group; a write can be applied and its answer lost (503 or a reset connection); a new group
//! can be missing from the next change-feed rounds; `alternativeNames` are compared with case
//! (whether Graph ignores it is not documented).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Query;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::azure_audit::{AuditedMember, DirectoryAudits, Initiator};
use super::faults::{request_identity, Fault, FaultPlan, FaultState, LostAnswer};
use super::server::{has_bearer, url_form, ConnectionKiller, Request, Server};

/// Most members one `members@odata.bind` PATCH may add, and most requests in one `$batch`.
pub const GRAPH_BATCH_LIMIT: usize = 20;
/// Largest `$top` Graph accepts for groups and members.
const MAX_TOP: usize = 999;
/// Page size when a request gives no `$top`.
const DEFAULT_TOP: usize = 100;
const USER_TYPE: &str = "#microsoft.graph.user";
const GROUP_TYPE: &str = "#microsoft.graph.group";
const SERVICE_PRINCIPAL_TYPE: &str = "#microsoft.graph.servicePrincipal";

/// A running fake Graph API. Dropping it shuts the server down.
pub struct AzureEmulator {
    server: Server,
    shared: Arc<Shared>,
}

/// How the emulator listens and behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureEmulatorOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, every request must carry `Authorization: Bearer <token>`, or gets 401.
    pub token: Option<String>,
    /// Upper bound on any page, below Graph's own 999.
    pub max_page_size: usize,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// App registrations that may sign in with a client secret: client id → secret.
    pub client_secrets: BTreeMap<String, String>,
    /// App registrations with a federated credential: client id → the assertion it accepts.
    pub federated_tokens: BTreeMap<String, String>,
    /// Reads of the directory audit log a new event stays out of (Entra's reporting latency).
    pub audit_lag: u32,
}

impl Default for AzureEmulatorOptions {
    fn default() -> Self {
        AzureEmulatorOptions {
            port: 0,
            token: None,
            max_page_size: MAX_TOP,
            latency: Duration::ZERO,
            client_secrets: BTreeMap::new(),
            federated_tokens: BTreeMap::new(),
            audit_lag: 0,
        }
    }
}

/// A user to put into the emulator directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedUser {
    pub user_principal_name: String,
    /// `None` for a user without a mailbox.
    pub mail: Option<String>,
    pub display_name: String,
}

/// A service principal to put into the emulator directly, e.g. a managed identity's, whose
/// alternative names are `isExplicit=True` and the identity's ARM id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedServicePrincipal {
    pub display_name: String,
    pub alternative_names: Vec<String>,
}

/// A group to put into the emulator directly (no request, no fault, no count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedGroup {
    pub display_name: String,
    pub mail_nickname: String,
    pub description: String,
    /// Members by user principal name, mail, a service principal's ARM id, or a group's
    /// mailNickname.
    pub members: Vec<String>,
}

/// A group as the emulator holds it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedGroup {
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub security_enabled: bool,
    pub mail_enabled: bool,
    /// Members by name: a user's principal name (lowercased), a service principal's ARM id
    /// alternative name (lowercased; else its display name) or a group's mailNickname.
    pub members: BTreeSet<String>,
}

impl AzureEmulator {
    /// Binds 127.0.0.1 and serves on a background thread with its own runtime.
    pub fn start(options: AzureEmulatorOptions) -> io::Result<AzureEmulator> {
        let shared = Arc::new(Shared {
            tenant: Mutex::new(Tenant { audit: DirectoryAudits::with_lag(options.audit_lag), ..Tenant::default() }),
            faults: Mutex::new(FaultState::new(FaultPlan::default())),
            calls: Mutex::new(BTreeMap::new()),
            options,
        });
        let for_server = Arc::clone(&shared);
        let server = Server::start(shared.options.port, "azure-emulator", move |request, killer| {
            handle(Arc::clone(&for_server), request, killer)
        })?;
        Ok(AzureEmulator { server, shared })
    }

    /// `http://127.0.0.1:PORT`: the Graph root; requests go to `{base_url}/v1.0/…`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.address())
    }

    /// Requests received per API method (`groups.list`, `groups.update`, `$batch`,
    /// `$batch/groups.members.remove`, …; `unknown` for anything else), faulted ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.calls).clone()
    }

    /// HTTP requests received (sub-requests of a `$batch` not counted again).
    pub fn total_calls(&self) -> u64 {
        lock(&self.shared.calls).iter().filter(|(method, _)| !method.starts_with("$batch/")).map(|(_, n)| n).sum()
    }

    pub fn reset_calls(&self) {
        lock(&self.shared.calls).clear();
    }

    /// Replaces the fault plan and restarts its generator from the plan's seed.
    pub fn set_faults(&self, faults: FaultPlan) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    /// Adds a user; returns its object id.
    pub fn insert_user(&self, user: SeedUser) -> String {
        lock(&self.shared.tenant).insert_user(user)
    }

    /// Adds a service principal; returns its object id. Alternative names that are ARM ids
    /// (`/subscriptions/…`) name it for `add_member_directly` and in `groups`.
    pub fn insert_service_principal(&self, principal: SeedServicePrincipal) -> String {
        lock(&self.shared.tenant).insert_service_principal(principal)
    }

    /// Adds a group (members must already exist); returns its object id.
    ///
    /// # Panics
    /// If a member names nothing in the tenant.
    pub fn insert_group(&self, group: SeedGroup) -> String {
        let mut tenant = lock(&self.shared.tenant);
        let id = tenant.new_group(&group.display_name, &group.mail_nickname, &group.description, 0, 0);
        for member in &group.members {
            let member = tenant.object_named(member).unwrap_or_else(|| panic!("no object named {member}"));
            tenant.set_member(&id, &member, true);
        }
        id
    }

    /// mailNickname → group, as stored (lag hides nothing here).
    pub fn groups(&self) -> BTreeMap<String, EmulatedGroup> {
        let tenant = lock(&self.shared.tenant);
        tenant
            .groups
            .values()
            .map(|group| {
                let members = group.members.iter().filter_map(|id| tenant.name_of(id)).collect();
                let emulated = EmulatedGroup {
                    id: group.id.clone(),
                    display_name: group.display_name.clone(),
                    description: group.description.clone(),
                    security_enabled: group.security_enabled,
                    mail_enabled: group.mail_enabled,
                    members,
                };
                (group.mail_nickname.clone(), emulated)
            })
            .collect()
    }

    /// mailNickname → how many groups carry it (security groups may share one).
    pub fn nickname_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for group in lock(&self.shared.tenant).groups.values() {
            *counts.entry(group.mail_nickname.clone()).or_default() += 1;
        }
        counts
    }

    /// Makes every delta link handed out so far expire (410 `syncStateNotFound`).
    pub fn expire_delta_links(&self) {
        let mut tenant = lock(&self.shared.tenant);
        // Links carry the change they saw; the next link handed out is the first valid one.
        tenant.version += 1;
        tenant.oldest_delta = tenant.version;
    }

    /// Adds a member by hand: no request counted.
    ///
    /// # Panics
    /// If either name is unknown.
    pub fn add_member_directly(&self, group_nickname: &str, member: &str) {
        let mut tenant = lock(&self.shared.tenant);
        let member = tenant.object_named(member).expect("unknown member");
        let group = tenant.group_id_by_nickname(group_nickname).expect("unknown group");
        tenant.set_member(&group, &member, true);
    }

    /// Adds a member as the person `actor` (a user principal name) would in the Entra admin
    /// centre: at once, and in the directory audit log (after its lag) under that person.
    ///
    /// # Panics
    /// If either name is unknown.
    pub fn add_member_by_hand(&self, group_nickname: &str, member: &str, actor: &str) {
        self.change_by_hand(group_nickname, member, actor, true);
    }

    /// Removes a member as the person `actor` would, with its audit event.
    ///
    /// # Panics
    /// If either name is unknown.
    pub fn remove_member_by_hand(&self, group_nickname: &str, member: &str, actor: &str) {
        self.change_by_hand(group_nickname, member, actor, false);
    }

    fn change_by_hand(&self, group_nickname: &str, member: &str, actor: &str, added: bool) {
        let mut tenant = lock(&self.shared.tenant);
        let member = tenant.object_named(member).expect("unknown member");
        let group = tenant.group_id_by_nickname(group_nickname).expect("unknown group");
        tenant.set_member(&group, &member, added);
        let initiator = Initiator::User(actor.to_lowercase(), format!("user-{}", actor.len()));
        tenant.audit_member_change(initiator, added, &group, &member);
    }

    /// Removes a member by hand; absent members are ignored.
    ///
    /// # Panics
    /// If either name is unknown.
    pub fn remove_member_directly(&self, group_nickname: &str, member: &str) {
        let mut tenant = lock(&self.shared.tenant);
        let member = tenant.object_named(member).expect("unknown member");
        let group = tenant.group_id_by_nickname(group_nickname).expect("unknown group");
        tenant.set_member(&group, &member, false);
    }
}

const MAX_BODY_BYTES: usize = 1 << 20;

struct Shared {
    options: AzureEmulatorOptions,
    tenant: Mutex<Tenant>,
    faults: Mutex<FaultState>,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn count(&self, method: &str) {
        *lock(&self.calls).entry(method.to_owned()).or_default() += 1;
    }

    fn draw_fault(&self, method: &str, identity: u64) -> (Option<Fault>, FaultPlan) {
        let mut faults = lock(&self.faults);
        (faults.next_fault(method, identity), faults.plan.clone())
    }
}

/// Serves one request: count, read, wait, authenticate, maybe fault, then answer.
async fn handle(shared: Arc<Shared>, request: Request, killer: ConnectionKiller) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::POST && parts.uri.path().ends_with("/oauth2/v2.0/token") {
        shared.count("oauth2.token");
        let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await else {
            return token_error(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS900144: unreadable body.");
        };
        return sign_in(&shared.options, &body);
    }
    let route = parts.uri.path().strip_prefix("/v1.0").map_or(Route::Unknown, |path| Route::parse(&parts.method, path));
    shared.count(route.method_name());
    let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES).await else {
        return GraphError::bad_request("request body unreadable or over 1 MiB").into_response();
    };
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    if let Some(expected) = &shared.options.token {
        if !has_bearer(&parts.headers, expected) {
            return GraphError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
            .into_response();
        }
    }
    let (fault, plan) = shared.draw_fault(route.method_name(), request_identity(&parts.method, &parts.uri, &body));
    match fault {
        Some(Fault::Drop) => return killer.drop_connection().await,
        Some(fault) => return fault_answer(fault).into_response(),
        None => {}
    }
    let base = base_of(&parts.headers);
    let answer = if route == Route::Batch {
        batch(&shared, &body, &base)
    } else {
        let context = match Context::new(&parts.uri, &body, &plan, &base, shared.options.max_page_size) {
            Ok(context) => context,
            Err(error) => return error.into_response(),
        };
        lock(&shared.tenant).answer(&route, &context)
    };
    // A write applied whose answer never reaches the client (a gateway timeout, a reset
    // connection): Graph then has the change, and a blind retry repeats it.
    if answer.status.is_success() && parts.method != Method::GET {
        let lost = lock(&shared.faults).lose_answer(route.method_name());
        match lost {
            Some(LostAnswer::Reset) => return killer.drop_connection().await,
            Some(LostAnswer::Unavailable) => return fault_answer(Fault::Unavailable).into_response(),
            None => {}
        }
    }
    answer.into_response()
}

/// The identity platform's client-credentials grant (`/{tenant}/oauth2/v2.0/token`, a form):
/// a client secret or a `jwt-bearer` client assertion for a known app gives the access token
/// the Graph routes take; errors are `{"error","error_description"}` with AADSTS codes as the
/// platform writes them (a wrong secret is 401 `invalid_client`, AADSTS7000215).
fn sign_in(options: &AzureEmulatorOptions, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url_form(body);
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        return token_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "AADSTS70003: unsupported grant type.");
    }
    let client_id = field("client_id").unwrap_or_default();
    let accepted = match (field("client_secret"), field("client_assertion_type"), field("client_assertion")) {
        (Some(secret), None, None) => match options.client_secrets.get(client_id) {
            Some(expected) => expected == secret,
            None => return unknown_app(client_id),
        },
        (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(assertion)) => {
            match options.federated_tokens.get(client_id) {
                Some(expected) if expected == assertion => true,
                Some(_) => {
                    return token_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_client",
                        "AADSTS70021: No matching federated identity record found for presented assertion.",
                    )
                }
                None => return unknown_app(client_id),
            }
        }
        _ => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        }
    };
    if !accepted {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let token = options.token.clone().unwrap_or_else(|| "emulator-token".to_owned());
    let answer = json!({ "token_type": "Bearer", "expires_in": 3599, "access_token": token });
    Answer::json(StatusCode::OK, answer).into_response()
}

fn unknown_app(client_id: &str) -> Response {
    let message = format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory.");
    token_error(StatusCode::BAD_REQUEST, "unauthorized_client", &message)
}

fn token_error(status: StatusCode, code: &str, description: &str) -> Response {
    Answer::json(status, json!({ "error": code, "error_description": description })).into_response()
}

/// `http://host:port` as the client addressed us, for `@odata.nextLink`.
fn base_of(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `POST /$batch`: every sub-request answered on its own (its own fault draw, count and
/// status), in a shuffled order.
fn batch(shared: &Shared, body: &[u8], base: &str) -> Answer {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => return GraphError::bad_request(&format!("Invalid batch payload: {error}")).into(),
    };
    let Some(requests) = parsed.get("requests").and_then(Value::as_array) else {
        return GraphError::bad_request("Invalid batch payload format.").into();
    };
    if requests.is_empty() || requests.len() > GRAPH_BATCH_LIMIT {
        return GraphError::bad_request(&format!(
            "Number of batch requests must be between 1 and {GRAPH_BATCH_LIMIT}, was {}.",
            requests.len()
        ))
        .into();
    }
    let mut responses = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut shuffle = 0u64;
    for request in requests {
        let id = request.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        // Requests run in the order given; one whose `dependsOn` failed is not run.
        let depends_on = request.get("dependsOn").and_then(Value::as_array).into_iter().flatten();
        if depends_on.filter_map(Value::as_str).any(|dependency| failed.contains(dependency)) {
            failed.insert(id.clone());
            let error =
                GraphError::new(StatusCode::FAILED_DEPENDENCY, "FailedDependency", "A request it depends on failed.");
            responses.push(sub_response(&id, error.into()));
            continue;
        }
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
        let url = request.get("url").and_then(Value::as_str).unwrap_or_default();
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let path_and_query = format!("/{}", url.trim_start_matches('/').trim_start_matches("v1.0/"));
        let sub_body = request.get("body").map(|b| b.to_string()).unwrap_or_default();
        let uri: Uri = match path_and_query.parse() {
            Ok(uri) => uri,
            Err(_) => {
                responses.push(sub_response(&id, GraphError::bad_request("Invalid request URL.").into()));
                continue;
            }
        };
        let route = Route::parse(&method, uri.path());
        let name = format!("$batch/{}", route.method_name());
        shared.count(&name);
        let identity = request_identity(&method, &uri, sub_body.as_bytes());
        shuffle = shuffle.wrapping_mul(31).wrapping_add(identity);
        let (fault, plan) = shared.draw_fault(&name, identity);
        let answer = match (fault, &route) {
            // A sub-request has no connection of its own to drop.
            (Some(Fault::Drop), _) => fault_answer(Fault::Unavailable),
            (Some(fault), _) => fault_answer(fault),
            (None, Route::Batch) => GraphError::bad_request("Nested batches are not supported.").into(),
            (None, route) => match Context::new(&uri, sub_body.as_bytes(), &plan, base, shared.options.max_page_size) {
                Ok(context) => lock(&shared.tenant).answer(route, &context),
                Err(error) => error.into(),
            },
        };
        if answer.status.as_u16() >= 400 {
            failed.insert(id.clone());
        }
        responses.push(sub_response(&id, answer));
    }
    // Graph answers in whatever order the requests finished.
    let count = responses.len();
    for index in (1..count).rev() {
        shuffle = shuffle.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        responses.swap(index, (shuffle >> 33) as usize % (index + 1));
    }
    Answer::json(StatusCode::OK, json!({ "responses": responses }))
}

fn sub_response(id: &str, answer: Answer) -> Value {
    let mut headers = Map::new();
    if let Some(retry_after) = answer.retry_after {
        headers.insert("Retry-After".to_owned(), Value::String(retry_after.as_secs().to_string()));
    }
    let mut response = json!({ "id": id, "status": answer.status.as_u16(), "headers": headers });
    if let Some(body) = answer.body {
        response["body"] = body;
        response["headers"]["Content-Type"] = Value::String("application/json".to_owned());
    }
    response
}

/// A Graph error body for an injected fault.
fn fault_answer(fault: Fault) -> Answer {
    match fault {
        Fault::TooManyRequests(retry_after) => Answer {
            retry_after,
            ..GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please retry after the time specified in the Retry-After header.",
            )
            .into()
        },
        Fault::Unavailable => {
            GraphError::new(StatusCode::SERVICE_UNAVAILABLE, "serviceNotAvailable", "The service is unavailable.")
                .into()
        }
        Fault::Internal | Fault::Drop => {
            GraphError::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", "An internal server error occurred.")
                .into()
        }
    }
}

/// An answer: a status, maybe a JSON body, maybe a `Retry-After`.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    retry_after: Option<Duration>,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Answer {
        Answer { status, body: Some(body), retry_after: None }
    }

    fn no_content() -> Answer {
        Answer { status: StatusCode::NO_CONTENT, body: None, retry_after: None }
    }

    fn into_response(self) -> Response {
        let mut response = match &self.body {
            Some(body) => {
                let mut response = Response::new(Body::from(body.to_string()));
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            None => Response::new(Body::empty()),
        };
        *response.status_mut() = self.status;
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
        }
        response
    }
}

/// A Graph error: status, code and message.
#[derive(Debug)]
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: &str) -> GraphError {
        GraphError { status, code, message: message.to_owned() }
    }

    fn bad_request(message: &str) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    fn not_found(id: &str) -> GraphError {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    fn into_response(self) -> Response {
        Answer::from(self).into_response()
    }
}

impl From<GraphError> for Answer {
    fn from(error: GraphError) -> Answer {
        let body = json!({ "error": { "code": error.code, "message": error.message } });
        Answer::json(error.status, body)
    }
}

/// A Graph method, recognised from the HTTP method and the path below `/v1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ListUsers,
    GetUser(String),
    ListServicePrincipals,
    ListGroups,
    CreateGroup,
    GetGroup(String),
    UpdateGroup(String),
    DeleteGroup(String),
    ListMembers(String),
    GroupsDelta,
    AddMember(String),
    RemoveMember(String, String),
    ListDirectoryAudits,
    Batch,
    Unknown,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Route {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let id = |index: usize| segments[index].to_owned();
        match (method, segments.as_slice()) {
            (&Method::GET, ["users"]) => Route::ListUsers,
            (&Method::GET, ["users", _]) => Route::GetUser(id(1)),
            (&Method::GET, ["servicePrincipals"]) => Route::ListServicePrincipals,
            (&Method::GET, ["groups"]) => Route::ListGroups,
            (&Method::GET, ["groups", "delta" | "delta()"]) => Route::GroupsDelta,
            (&Method::POST, ["groups"]) => Route::CreateGroup,
            (&Method::GET, ["groups", _]) => Route::GetGroup(id(1)),
            (&Method::PATCH, ["groups", _]) => Route::UpdateGroup(id(1)),
            (&Method::DELETE, ["groups", _]) => Route::DeleteGroup(id(1)),
            (&Method::GET, ["groups", _, "members"]) => Route::ListMembers(id(1)),
            (&Method::POST, ["groups", _, "members", "$ref"]) => Route::AddMember(id(1)),
            (&Method::DELETE, ["groups", _, "members", _, "$ref"]) => Route::RemoveMember(id(1), id(3)),
            (&Method::POST, ["$batch"]) => Route::Batch,
            (&Method::GET, ["auditLogs", "directoryAudits"]) => Route::ListDirectoryAudits,
            _ => Route::Unknown,
        }
    }

    fn method_name(&self) -> &'static str {
        match self {
            Route::ListUsers => "users.list",
            Route::GetUser(_) => "users.get",
            Route::ListServicePrincipals => "servicePrincipals.list",
            Route::ListGroups => "groups.list",
            Route::CreateGroup => "groups.create",
            Route::GetGroup(_) => "groups.get",
            Route::UpdateGroup(_) => "groups.update",
            Route::DeleteGroup(_) => "groups.delete",
            Route::ListMembers(_) => "groups.members.list",
            Route::GroupsDelta => "groups.delta",
            Route::AddMember(_) => "groups.members.add",
            Route::RemoveMember(..) => "groups.members.remove",
            Route::ListDirectoryAudits => "auditLogs.directoryAudits.list",
            Route::Batch => "$batch",
            Route::Unknown => "unknown",
        }
    }
}

/// What a handler needs of a request.
struct Context<'a> {
    path: String,
    query: Vec<(String, String)>,
    body: &'a [u8],
    faults: &'a FaultPlan,
    base: &'a str,
    max_page_size: usize,
}

impl<'a> Context<'a> {
    fn new(
        uri: &Uri,
        body: &'a [u8],
        faults: &'a FaultPlan,
        base: &'a str,
        max_page_size: usize,
    ) -> Result<Context<'a>, GraphError> {
        let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| GraphError::bad_request(&format!("malformed query string: {e}")))?;
        // Top-level requests arrive under `/v1.0`, `$batch` sub-requests relative to it.
        let path = uri.path().strip_prefix("/v1.0").unwrap_or(uri.path()).to_owned();
        Ok(Context { path, query, body, faults, base, max_page_size })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Result<Value, GraphError> {
        serde_json::from_slice(self.body)
            .map_err(|e| GraphError::bad_request(&format!("Unable to read JSON request payload: {e}")))
    }

    /// One page of `items` (already filtered), with `$select` applied and a next link.
    fn page(&self, items: Vec<Value>) -> Result<Answer, GraphError> {
        let top = match self.param("$top") {
            Some(top) => match top.parse::<usize>() {
                Ok(top) if (1..=MAX_TOP).contains(&top) => top,
                _ => return Err(GraphError::bad_request(&format!("Invalid page size specified: '{top}'."))),
            },
            None => DEFAULT_TOP,
        };
        let top = top.min(self.max_page_size.max(1));
        let skip: usize = self.param("$skiptoken").and_then(|t| t.parse().ok()).unwrap_or(0);
        let select: Option<Vec<&str>> = self.param("$select").map(|s| s.split(',').map(str::trim).collect());
        let value: Vec<Value> =
            items.iter().skip(skip).take(top).map(|item| selected(item, select.as_deref())).collect();
        let mut body = json!({ "value": value });
        if skip + top < items.len() {
            let mut next: Vec<(String, String)> =
                self.query.iter().filter(|(k, _)| k != "$skiptoken").cloned().collect();
            next.push(("$skiptoken".to_owned(), (skip + top).to_string()));
            let query: Vec<String> = next.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
            body["@odata.nextLink"] = Value::String(format!("{}/v1.0{}?{}", self.base, self.path, query.join("&")));
        }
        Ok(Answer::json(StatusCode::OK, body))
    }
}

/// Keeps the `$select`ed properties (and `id` and `@odata.type`, which Graph always sends).
fn selected(item: &Value, select: Option<&[&str]>) -> Value {
    let (Some(select), Some(object)) = (select, item.as_object()) else { return item.clone() };
    let kept = object
        .iter()
        .filter(|(key, _)| key.as_str() == "id" || key.starts_with("@odata") || select.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Value::Object(kept)
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~$,".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Whether `item` passes an OData `$filter` of `prop eq 'v'`, `prop eq true|false` and
/// `startswith(prop,'v')` clauses joined by `and` / `or` (`and` binds tighter; no parentheses).
/// String comparisons ignore case, as Graph's do for these properties.
fn matches_filter(item: &Value, filter: &str) -> Result<bool, GraphError> {
    let mut any = false;
    for alternative in filter.split(" or ") {
        let mut all = true;
        for clause in alternative.split(" and ") {
            all &= matches_clause(item, clause.trim())?;
        }
        any |= all;
    }
    Ok(any)
}

fn matches_clause(item: &Value, clause: &str) -> Result<bool, GraphError> {
    let unsupported = || GraphError::bad_request(&format!("Invalid filter clause: {clause}"));
    let text = |property: &str| item.get(property).and_then(Value::as_str).map(str::to_lowercase);
    if let Some((property, lambda)) = clause.split_once("/any(").filter(|_| clause.ends_with(')')) {
        // `alternativeNames/any(x:x eq 'v')`: some element of the collection equals v.
        let lambda = &lambda[..lambda.len() - 1];
        let (variable, body) = lambda.split_once(':').ok_or_else(unsupported)?;
        let (left, literal) = body.split_once(" eq ").ok_or_else(unsupported)?;
        if left.trim() != variable.trim() {
            return Err(unsupported());
        }
        // Whether Graph compares alternative names without regard to case is not documented
        // (servicePrincipal resource; ARM ids are stored in mixed case): assume it does not.
        let inner = literal.trim().strip_prefix('\'').and_then(|l| l.strip_suffix('\'')).ok_or_else(unsupported)?;
        let literal = inner.replace("''", "'");
        let values = item.get(property.trim()).and_then(Value::as_array).into_iter().flatten();
        return Ok(values.filter_map(Value::as_str).any(|value| value == literal));
    }
    if let Some(arguments) = clause.strip_prefix("startswith(").and_then(|c| c.strip_suffix(')')) {
        let (property, literal) = arguments.split_once(',').ok_or_else(unsupported)?;
        let literal = string_literal(literal.trim()).ok_or_else(unsupported)?;
        return Ok(text(property.trim()).is_some_and(|value| value.starts_with(&literal)));
    }
    let (property, literal) = clause.split_once(" eq ").ok_or_else(unsupported)?;
    let property = property.trim();
    match literal.trim() {
        "true" => Ok(item.get(property) == Some(&Value::Bool(true))),
        "false" => Ok(item.get(property) == Some(&Value::Bool(false))),
        literal => {
            let literal = string_literal(literal).ok_or_else(unsupported)?;
            Ok(text(property).is_some_and(|value| value == literal))
        }
    }
}

fn invalid_token() -> GraphError {
    GraphError::bad_request("Invalid delta or skip token.")
}

/// The literals of a filter made only of `userPrincipalName eq '…'` / `mail eq '…'` clauses
/// joined by `or`; `None` for any other filter.
fn name_literals(filter: &str) -> Option<Vec<String>> {
    filter
        .split(" or ")
        .map(|clause| {
            let (property, literal) = clause.trim().split_once(" eq ")?;
            ["userPrincipalName", "mail"].contains(&property.trim()).then_some(())?;
            string_literal(literal.trim())
        })
        .collect()
}

/// `'it''s'` → `it's`, lowercased.
fn string_literal(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'").to_lowercase())
}

/// The directory object id at the end of a bind or `@odata.id` URL.
fn object_id_of(url: &str) -> Option<&str> {
    let (_, id) = url.trim_end_matches('/').rsplit_once('/')?;
    let collection = url.trim_end_matches('/').trim_end_matches(id).trim_end_matches('/');
    let known = ["directoryObjects", "users", "groups", "servicePrincipals"];
    known.iter().any(|c| collection.ends_with(c)).then_some(id)
}

#[derive(Default)]
struct Tenant {
    /// Object id → user.
    users: BTreeMap<String, User>,
    /// Object id → group.
    groups: BTreeMap<String, Group>,
    /// Object id → service principal.
    service_principals: BTreeMap<String, ServicePrincipal>,
    /// Lowercased principal name, mail or mailNickname → object id, so look-ups stay cheap in
    /// a large tenant.
    names: HashMap<String, String>,
    created: u64,
    /// Counts every change to groups and memberships; delta links carry the count they saw.
    version: u64,
    /// Groups deleted: (change, id).
    deleted: Vec<(u64, String)>,
    /// Delta links from before this change have expired.
    oldest_delta: u64,
    /// Membership changes, for `auditLogs/directoryAudits` (`azure_audit.rs`).
    audit: DirectoryAudits,
}

struct User {
    id: String,
    user_principal_name: String,
    mail: Option<String>,
    display_name: String,
}

struct ServicePrincipal {
    id: String,
    display_name: String,
    alternative_names: Vec<String>,
}

struct Group {
    id: String,
    display_name: String,
    mail_nickname: String,
    description: String,
    security_enabled: bool,
    mail_enabled: bool,
    /// Member object ids.
    members: BTreeSet<String>,
    /// `groups.list` requests that will still leave it out.
    listing_lag: u32,
    /// Direct reads that will still answer 404.
    read_lag: u32,
    /// Change-feed rounds that will still leave it out.
    delta_lag: u32,
    /// The feed shows it only to rounds that start at or after this change.
    delta_visible_from: u64,
    /// The change (see `Tenant::version`) that last touched its properties or made it.
    changed: u64,
    /// Membership changes: (change, member id, added).
    member_log: Vec<(u64, String, bool)>,
}

impl Tenant {
    fn next_id(&mut self, kind: u32) -> String {
        self.created += 1;
        format!("{kind:08x}-0000-4000-8000-{:012x}", self.created)
    }

    fn insert_user(&mut self, user: SeedUser) -> String {
        let id = self.next_id(1);
        self.names.insert(user.user_principal_name.to_lowercase(), id.clone());
        if let Some(mail) = &user.mail {
            self.names.insert(mail.to_lowercase(), id.clone());
        }
        let record = User {
            id: id.clone(),
            user_principal_name: user.user_principal_name,
            mail: user.mail,
            display_name: user.display_name,
        };
        self.users.insert(id.clone(), record);
        id
    }

    fn insert_service_principal(&mut self, principal: SeedServicePrincipal) -> String {
        let id = self.next_id(3);
        for name in principal.alternative_names.iter().filter(|n| n.starts_with('/')) {
            self.names.insert(name.to_lowercase(), id.clone());
        }
        let record = ServicePrincipal {
            id: id.clone(),
            display_name: principal.display_name,
            alternative_names: principal.alternative_names,
        };
        self.service_principals.insert(id.clone(), record);
        id
    }

    fn new_group(
        &mut self,
        display_name: &str,
        mail_nickname: &str,
        description: &str,
        listing_lag: u32,
        read_lag: u32,
    ) -> String {
        let id = self.next_id(2);
        self.names.insert(mail_nickname.to_lowercase(), id.clone());
        self.version += 1;
        let group = Group {
            changed: self.version,
            member_log: Vec::new(),
            id: id.clone(),
            display_name: display_name.to_owned(),
            mail_nickname: mail_nickname.to_owned(),
            description: description.to_owned(),
            security_enabled: true,
            mail_enabled: false,
            members: BTreeSet::new(),
            listing_lag,
            read_lag,
            delta_lag: 0,
            delta_visible_from: 0,
        };
        self.groups.insert(id.clone(), group);
        id
    }

    /// Adds or removes a member, recording the change for delta queries.
    fn set_member(&mut self, group_id: &str, member: &str, added: bool) {
        self.version += 1;
        let version = self.version;
        if let Some(group) = self.groups.get_mut(group_id) {
            let changed = if added { group.members.insert(member.to_owned()) } else { group.members.remove(member) };
            if changed {
                group.member_log.push((version, member.to_owned(), added));
            }
        }
    }

    /// `GET /groups/delta`: every group with `members@delta` on the first round, then only what
    /// changed after the `$deltatoken`; pages carry `$skiptoken=<since>.<start>.<offset>` and
    /// the last one a `@odata.deltaLink` from the change the round started at. An expired token
    /// answers 410 `syncStateNotFound`.
    fn delta(&mut self, context: &Context) -> Result<Answer, GraphError> {
        let (since, start, offset) = match (context.param("$deltatoken"), context.param("$skiptoken")) {
            (Some(token), _) => (Some(token.parse::<u64>().map_err(|_| invalid_token())?), self.version, 0),
            (None, Some(skip)) => {
                let parts: Vec<&str> = skip.split('.').collect();
                let [since, start, offset] = parts.as_slice() else { return Err(invalid_token()) };
                let since = if since.is_empty() { None } else { Some(since.parse().map_err(|_| invalid_token())?) };
                (since, start.parse().map_err(|_| invalid_token())?, offset.parse().map_err(|_| invalid_token())?)
            }
            (None, None) => (None, self.version, 0),
        };
        if since.is_some_and(|since| since < self.oldest_delta) {
            return Err(GraphError::new(
                StatusCode::GONE,
                "syncStateNotFound",
                "The sync state generation is not found: the delta token has expired. Start a new round.",
            ));
        }
        if context.param("$skiptoken").is_none() {
            self.start_delta_round();
        }
        let mut items: Vec<Value> = Vec::new();
        for group in self.groups.values() {
            // Not replicated to the feed yet (for every page of this round alike).
            if group.delta_lag > 0 || group.delta_visible_from > start {
                continue;
            }
            let after = since.unwrap_or(0);
            let members: Vec<Value> = match since {
                None => group.members.iter().filter_map(|m| self.delta_member(m, true)).collect(),
                Some(since) => {
                    let mut last: BTreeMap<&str, bool> = BTreeMap::new();
                    for (version, member, added) in &group.member_log {
                        if *version > since {
                            last.insert(member, *added);
                        }
                    }
                    last.into_iter().filter_map(|(member, added)| self.delta_member(member, added)).collect()
                }
            };
            if since.is_some() && group.changed <= after && members.is_empty() {
                continue;
            }
            let mut item = Tenant::group_json(group);
            item.as_object_mut().expect("an object").remove("@odata.type");
            item["members@delta"] = Value::Array(members);
            items.push(item);
        }
        if let Some(since) = since {
            for (version, id) in &self.deleted {
                if *version > since {
                    items.push(json!({ "id": id, "@removed": { "reason": "changed" } }));
                }
            }
        }
        let top = context.max_page_size.clamp(1, MAX_TOP);
        let page: Vec<Value> = items.iter().skip(offset).take(top).cloned().collect();
        let mut body = json!({ "value": page });
        let link = format!("{}/v1.0/groups/delta", context.base);
        if offset + top < items.len() {
            let since = since.map(|s| s.to_string()).unwrap_or_default();
            body["@odata.nextLink"] = Value::String(format!("{link}?$skiptoken={since}.{start}.{}", offset + top));
        } else {
            body["@odata.deltaLink"] = Value::String(format!("{link}?$deltatoken={start}"));
        }
        Ok(Answer::json(StatusCode::OK, body))
    }

    /// A new round of the feed: groups that lag it come one round closer. One that has caught up
    /// is shown from the next round on, as changed then with every membership it ever had (so
    /// a round that started before it missed nothing).
    fn start_delta_round(&mut self) {
        let caught_up: Vec<String> = self
            .groups
            .values_mut()
            .filter(|g| g.delta_lag > 0)
            .filter_map(|g| {
                g.delta_lag -= 1;
                (g.delta_lag == 0).then(|| g.id.clone())
            })
            .collect();
        for id in caught_up {
            self.version += 1;
            let version = self.version;
            let group = self.groups.get_mut(&id).expect("listed");
            group.delta_visible_from = version;
            group.changed = version;
            let ever: BTreeSet<String> = group.member_log.iter().map(|(_, member, _)| member.clone()).collect();
            for member in ever {
                let present = group.members.contains(&member);
                group.member_log.push((version, member, present));
            }
        }
    }

    /// A `members@delta` entry: the object's type and id, and `@removed` when it left.
    fn delta_member(&self, id: &str, added: bool) -> Option<Value> {
        let kind = if self.groups.contains_key(id) {
            GROUP_TYPE
        } else if self.users.contains_key(id) {
            USER_TYPE
        } else if self.service_principals.contains_key(id) {
            SERVICE_PRINCIPAL_TYPE
        } else if added {
            return None;
        } else {
            // A deleted object: its type no longer matters.
            "#microsoft.graph.directoryObject"
        };
        let mut entry = json!({ "@odata.type": kind, "id": id });
        if !added {
            entry["@removed"] = json!({ "reason": "deleted" });
        }
        Some(entry)
    }

    /// A user by UPN or mail, or a group by mailNickname.
    fn object_named(&self, name: &str) -> Option<String> {
        self.names.get(&name.to_lowercase()).cloned()
    }

    fn group_id_by_nickname(&self, nickname: &str) -> Option<String> {
        self.object_named(nickname).filter(|id| self.groups.contains_key(id))
    }

    /// What `EmulatedGroup::members` and `reject_members` call an object.
    fn name_of(&self, id: &str) -> Option<String> {
        if let Some(user) = self.users.get(id) {
            return Some(user.user_principal_name.to_lowercase());
        }
        if let Some(principal) = self.service_principals.get(id) {
            let arm_id = principal.alternative_names.iter().find(|n| n.starts_with('/'));
            return Some(arm_id.unwrap_or(&principal.display_name).to_lowercase());
        }
        self.groups.get(id).map(|g| g.mail_nickname.clone())
    }

    fn rejected(&self, id: &str, faults: &FaultPlan) -> bool {
        let mut names: Vec<String> = self.name_of(id).into_iter().collect();
        if let Some(mail) = self.users.get(id).and_then(|u| u.mail.clone()) {
            names.push(mail.to_lowercase());
        }
        names.iter().any(|name| faults.reject_members.contains(name))
    }

    fn user_json(user: &User) -> Value {
        json!({
            "@odata.type": USER_TYPE,
            "id": user.id,
            "displayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "mail": user.mail,
        })
    }

    fn group_json(group: &Group) -> Value {
        json!({
            "@odata.type": GROUP_TYPE,
            "id": group.id,
            "displayName": group.display_name,
            "description": group.description,
            "mailNickname": group.mail_nickname,
            "mail": Value::Null,
            "mailEnabled": group.mail_enabled,
            "securityEnabled": group.security_enabled,
            "groupTypes": [],
        })
    }

    fn service_principal_json(principal: &ServicePrincipal) -> Value {
        json!({
            "@odata.type": SERVICE_PRINCIPAL_TYPE,
            "id": principal.id,
            "displayName": principal.display_name,
            "alternativeNames": principal.alternative_names,
            "servicePrincipalType": "ManagedIdentity",
        })
    }

    fn object_json(&self, id: &str) -> Option<Value> {
        self.users
            .get(id)
            .map(Tenant::user_json)
            .or_else(|| self.groups.get(id).map(Tenant::group_json))
            .or_else(|| self.service_principals.get(id).map(Tenant::service_principal_json))
    }

    fn answer(&mut self, route: &Route, context: &Context) -> Answer {
        self.route(route, context).unwrap_or_else(Answer::from)
    }

    fn route(&mut self, route: &Route, context: &Context) -> Result<Answer, GraphError> {
        match route {
            Route::ListUsers => {
                let filter = context.param("$filter");
                let users: Vec<Value> = match filter.and_then(name_literals) {
                    // Only names asked for: look them up instead of scanning the tenant.
                    Some(names) => {
                        let ids: BTreeSet<String> = names.iter().filter_map(|n| self.object_named(n)).collect();
                        ids.iter().filter_map(|id| self.users.get(id)).map(Tenant::user_json).collect()
                    }
                    None => self.users.values().map(Tenant::user_json).collect(),
                };
                context.page(filtered(users.into_iter(), filter)?)
            }
            Route::ListServicePrincipals => {
                let principals = self.service_principals.values().map(Tenant::service_principal_json);
                context.page(filtered(principals, context.param("$filter"))?)
            }
            Route::GetUser(key) => {
                let key = key.to_lowercase();
                let user = self
                    .users
                    .values()
                    .find(|u| u.id == key || u.user_principal_name.to_lowercase() == key)
                    .ok_or_else(|| GraphError::not_found(&key))?;
                Ok(Answer::json(StatusCode::OK, Tenant::user_json(user)))
            }
            Route::ListGroups => {
                let groups = self.groups.values().filter(|g| g.listing_lag == 0).map(Tenant::group_json);
                let page = context.page(filtered(groups, context.param("$filter"))?);
                for group in self.groups.values_mut() {
                    group.listing_lag = group.listing_lag.saturating_sub(1);
                }
                page
            }
            Route::CreateGroup => self.create_group(context),
            Route::GroupsDelta => self.delta(context),
            Route::GetGroup(id) => {
                self.read_lagging(id)?;
                let group = self.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
                Ok(Answer::json(StatusCode::OK, selected(&Tenant::group_json(group), None)))
            }
            Route::UpdateGroup(id) => self.update_group(id, context),
            Route::DeleteGroup(id) => {
                let group = self.groups.remove(id).ok_or_else(|| GraphError::not_found(id))?;
                self.names.remove(&group.mail_nickname.to_lowercase());
                let containing: Vec<String> =
                    self.groups.values().filter(|g| g.members.contains(id)).map(|g| g.id.clone()).collect();
                for parent in containing {
                    self.set_member(&parent, id, false);
                }
                self.version += 1;
                self.deleted.push((self.version, id.clone()));
                Ok(Answer::no_content())
            }
            Route::ListMembers(id) => {
                self.read_lagging(id)?;
                let group = self.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
                let members = group.members.iter().filter_map(|m| self.object_json(m));
                context.page(filtered(members, context.param("$filter"))?)
            }
            Route::AddMember(id) => {
                let body = context.json()?;
                let reference = body.get("@odata.id").and_then(Value::as_str).unwrap_or_default();
                let member = object_id_of(reference)
                    .ok_or_else(|| GraphError::bad_request("Invalid URL format specified in @odata.id."))?
                    .to_owned();
                self.add_members(id, &[member], context.faults)?;
                Ok(Answer::no_content())
            }
            Route::RemoveMember(id, member) => {
                let group = self.groups.get(id).ok_or_else(|| GraphError::not_found(id))?;
                if !group.members.contains(member) {
                    return Err(GraphError::not_found(member));
                }
                self.set_member(id, member, false);
                self.audit_member_change(sync_app(), false, id, member);
                Ok(Answer::no_content())
            }
            Route::ListDirectoryAudits => {
                let events = self.audit.list(context.param("$filter")).map_err(|m| GraphError::bad_request(&m))?;
                context.page(events)
            }
            Route::Batch | Route::Unknown => Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Resource not found for the segment '{}'.", context.path),
            )),
        }
    }

    /// A direct read of a group that has not replicated yet answers 404 and uses up one read.
    fn read_lagging(&mut self, id: &str) -> Result<(), GraphError> {
        let Some(group) = self.groups.get_mut(id) else { return Ok(()) };
        if group.read_lag == 0 {
            return Ok(());
        }
        group.read_lag -= 1;
        Err(GraphError::not_found(id))
    }

    fn create_group(&mut self, context: &Context) -> Result<Answer, GraphError> {
        let body = context.json()?;
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let flag = |name: &str| body.get(name).and_then(Value::as_bool);
        let (Some(display_name), Some(nickname), Some(mail_enabled), Some(security_enabled)) =
            (text("displayName"), text("mailNickname"), flag("mailEnabled"), flag("securityEnabled"))
        else {
            return Err(GraphError::bad_request(
                "Invalid value specified for property: displayName, mailNickname, mailEnabled and securityEnabled are required.",
            ));
        };
        if context.faults.reject_groups.contains(&nickname.to_lowercase()) {
            return Err(GraphError::bad_request(&format!(
                "Invalid value specified for property 'mailNickname' of resource 'Group': {nickname}."
            )));
        }
        // Graph (group resource, mailNickname): unique only among Microsoft 365 (`Unified`)
        // groups; security groups may share a nickname, so a repeated POST makes a second one.
        let unified = body
            .get("groupTypes")
            .and_then(Value::as_array)
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("Unified")));
        if unified && self.group_id_by_nickname(&nickname).is_some() {
            return Err(GraphError::bad_request(
                "Another object with the same value for property mailNickname already exists.",
            ));
        }
        let faults = context.faults;
        let id = self.new_group(
            &display_name,
            &nickname,
            &text("description").unwrap_or_default(),
            faults.group_listing_lag,
            faults.group_read_lag,
        );
        let group = self.groups.get_mut(&id).expect("just created");
        group.delta_lag = faults.delta_lag;
        group.mail_enabled = mail_enabled;
        group.security_enabled = security_enabled;
        Ok(Answer::json(StatusCode::CREATED, Tenant::group_json(group)))
    }

    fn update_group(&mut self, id: &str, context: &Context) -> Result<Answer, GraphError> {
        let body = context.json()?;
        if !self.groups.contains_key(id) {
            return Err(GraphError::not_found(id));
        }
        if let Some(binds) = body.get("members@odata.bind") {
            let urls =
                binds.as_array().ok_or_else(|| GraphError::bad_request("members@odata.bind must be an array."))?;
            if urls.len() > GRAPH_BATCH_LIMIT {
                return Err(GraphError::bad_request(&format!(
                    "The maximum number of references that can be added in a single request is {GRAPH_BATCH_LIMIT}."
                )));
            }
            let mut members = Vec::new();
            for url in urls {
                let id = url.as_str().and_then(object_id_of).ok_or_else(|| {
                    GraphError::bad_request("Invalid URL format specified in @odata.bind for members.")
                })?;
                members.push(id.to_owned());
            }
            self.add_members(id, &members, context.faults)?;
        }
        self.version += 1;
        let version = self.version;
        let group = self.groups.get_mut(id).expect("checked");
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            group.description = description.to_owned();
            group.changed = version;
        }
        if let Some(name) = body.get("displayName").and_then(Value::as_str) {
            group.display_name = name.to_owned();
            group.changed = version;
        }
        Ok(Answer::no_content())
    }

    /// Adds all of `members` or, if any is unknown, refused or already a member, none.
    fn add_members(&mut self, group_id: &str, members: &[String], faults: &FaultPlan) -> Result<(), GraphError> {
        let group = self.groups.get(group_id).ok_or_else(|| GraphError::not_found(group_id))?;
        for member in members {
            let known = self.users.contains_key(member)
                || self.groups.contains_key(member)
                || self.service_principals.contains_key(member);
            if !known {
                return Err(GraphError::not_found(member));
            }
            if self.rejected(member, faults) {
                return Err(GraphError::bad_request(&format!(
                    "Invalid object identifier '{member}': the object cannot be added to this group."
                )));
            }
            if group.members.contains(member) || member == group_id {
                return Err(GraphError::bad_request(
                    "One or more added object references already exist for the following modified properties: 'members'.",
                ));
            }
        }
        for member in members {
            self.set_member(group_id, member, true);
            self.audit_member_change(sync_app(), true, group_id, member);
        }
        Ok(())
    }

    /// Records a membership change in the directory audit log, naming the member as Graph does.
    fn audit_member_change(&mut self, initiator: Initiator, added: bool, group_id: &str, member: &str) {
        let group_name = self.groups.get(group_id).map(|g| g.display_name.clone()).unwrap_or_default();
        let (kind, principal_name) = if let Some(user) = self.users.get(member) {
            ("User", Some(user.user_principal_name.as_str()))
        } else if self.service_principals.contains_key(member) {
            ("ServicePrincipal", None)
        } else {
            ("Group", None)
        };
        let audited = AuditedMember { id: member, kind, principal_name };
        self.audit.record(initiator, added, (group_id, &group_name), audited);
    }
}

/// How the audit log names changes made through the API: the sync's app registration.
fn sync_app() -> Initiator {
    Initiator::App("cpg-infra groups sync".to_owned(), "8f1d7c52-sync-app".to_owned())
}

fn filtered(items: impl Iterator<Item = Value>, filter: Option<&str>) -> Result<Vec<Value>, GraphError> {
    let mut kept = Vec::new();
    for item in items {
        if filter.map_or(Ok(true), |f| matches_filter(&item, f))? {
            kept.push(item);
        }
    }
    Ok(kept)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_graph_methods() {
        assert_eq!(Route::parse(&Method::GET, "/groups"), Route::ListGroups);
        assert_eq!(Route::parse(&Method::PATCH, "/groups/g1"), Route::UpdateGroup("g1".to_owned()));
        assert_eq!(Route::parse(&Method::POST, "/groups/g1/members/$ref"), Route::AddMember("g1".to_owned()));
        assert_eq!(
            Route::parse(&Method::DELETE, "/groups/g1/members/u1/$ref"),
            Route::RemoveMember("g1".to_owned(), "u1".to_owned())
        );
        assert_eq!(Route::parse(&Method::POST, "/$batch"), Route::Batch);
        assert_eq!(Route::parse(&Method::PUT, "/groups/g1"), Route::Unknown);
    }

    #[test]
    fn filters_understand_eq_startswith_and_or() {
        let item = json!({ "mailNickname": "Tob-Analysis", "securityEnabled": true, "mail": null });
        assert!(matches_filter(&item, "mailNickname eq 'tob-analysis'").unwrap());
        assert!(matches_filter(&item, "securityEnabled eq true and startswith(mailNickname,'tob-')").unwrap());
        assert!(matches_filter(&item, "mail eq 'x' or mailNickname eq 'tob-analysis'").unwrap());
        assert!(!matches_filter(&item, "securityEnabled eq false").unwrap());
        assert!(matches_filter(&item, "nonsense").is_err());
        let principal = json!({ "alternativeNames": ["isExplicit=True", "/subscriptions/S/resourceGroups/RG"] });
        assert!(
            matches_filter(&principal, "alternativeNames/any(x:x eq '/subscriptions/S/resourceGroups/RG')").unwrap()
        );
        assert!(
            !matches_filter(&principal, "alternativeNames/any(x:x eq '/subscriptions/s/resourcegroups/rg')").unwrap()
        );
        assert!(!matches_filter(&principal, "alternativeNames/any(x:x eq '/subscriptions/s')").unwrap());
        assert!(matches_filter(&principal, "alternativeNames/any(x:y eq 'a')").is_err());
    }

    #[test]
    fn bind_urls_name_directory_objects() {
        assert_eq!(object_id_of("https://graph.microsoft.com/v1.0/directoryObjects/abc"), Some("abc"));
        assert_eq!(object_id_of("http://127.0.0.1:1/v1.0/users/u1"), Some("u1"));
        assert_eq!(object_id_of("https://graph.microsoft.com/v1.0/me"), None);
    }
}
