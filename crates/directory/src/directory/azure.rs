//! Azure AD (Entra ID) provider: security groups and their members through Microsoft Graph
//! v1.0, with the `graph-rs-sdk` client over HTTP.
//!
//! Reads are one paged group listing, then one paged member listing per owned group; additions
//! go in chunks of 20 through `PATCH /groups/{id}` with `members@odata.bind` (a refused chunk
//! falls back to one `members/$ref` per member, so only the bad one fails), removals in chunks
//! of 20 through `POST /$batch`, each sub-response judged on its own. People are resolved to
//! directory objects once per run (their `azure` id or principal name, else their email as a
//! principal name or mail); managed identities (`azure-identity:<ARM id>`) to their service
//! principals by that ARM id among their `alternativeNames`, every configured one together on
//! first need, so that listings and the change feed name them back. The provider never
//! retries by itself and never mutates a group without the owner marker in its description.
//! Graph has no membership expiry: a grant ends when the sync after its last day removes it.
//! Every request waits for the provider's pacer first, a `$batch` for each request in it (Graph
//! throttles them one by one), and a 429's Retry-After, of a request or of one inside a batch,
//! pauses it for every worker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_http::api_impl::RequestHandler;
use graph_rs_sdk::http::{BodyRead, Method, Url};
use graph_rs_sdk::{GraphClient, GraphClientConfiguration, GraphFailure, ODataQuery};
use serde_json::{json, Value};

use super::azure_login;
use super::{
    check_endpoint, DeltaGroup, DeltaMember, DeltaState, Directory, DirectoryError, LiveGroup, LiveMember, MemberKind,
    NewGroup, OWNER_MARKER,
};
use crate::definitions::{Date, RequestRate};
use crate::http_api::percent_encode;
use crate::infra::AZURE_IDENTITY_PREFIX;
use crate::pacing::Pacer;

/// Graph takes at most 20 references per `members@odata.bind` and 20 requests per `$batch`.
pub const AZURE_BATCH_SIZE: usize = 20;
const PRODUCTION_ENDPOINT: &str = "https://graph.microsoft.com";
/// The largest `$top` Graph accepts for these listings.
const PAGE_SIZE: &str = "999";
const GROUP_FIELDS: &[&str] = &["id", "displayName", "description", "mailNickname", "securityEnabled"];
const MEMBER_FIELDS: &[&str] = &["id", "displayName", "userPrincipalName", "mail", "mailNickname"];
/// What a delta round asks for: the group fields we keep, and members as `members@delta`.
const DELTA_FIELDS: &str = "displayName,description,mailNickname,securityEnabled,members";
const SERVICE_PRINCIPAL_TYPE: &str = "#microsoft.graph.servicePrincipal";
/// What bind URLs point at; Graph reads only the object id at the end.
const DIRECTORY_OBJECTS: &str = "https://graph.microsoft.com/v1.0/directoryObjects/";

/// How to reach and authenticate to Microsoft Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureConfig {
    /// The Entra ID tenant (directory) id.
    pub tenant_id: String,
    /// Group emails are `<mailNickname>@<groups_domain>` in our types.
    pub groups_domain: String,
    /// Overrides the Graph root (`https://graph.microsoft.com`), e.g. an emulator on loopback.
    pub endpoint: Option<String>,
    /// Overrides the sign-in authority (`https://login.microsoftonline.com`), e.g. an emulator.
    pub authority: Option<String>,
    pub auth: AzureAuth,
    /// Person email (lowercased) → the `azure` object id or principal name in `people.toml`.
    pub people: BTreeMap<String, String>,
    /// ARM ids of the managed identities the desired state names (`azure-identity:<ARM id>`),
    /// resolved together on first need, so listings can name their service principals.
    pub identities: Vec<String>,
    /// How fast requests to Graph may go, all of this run's concurrent requests together.
    pub requests: RequestRate,
}

/// Credentials, and where they came from (named when the directory rejects them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// A bearer token, e.g. from `az account get-access-token --resource https://graph.microsoft.com`.
    AccessToken { token: String, source: String },
    /// An app registration's client secret (client credentials flow).
    ClientSecret { client_id: String, secret: String, source: String },
    /// A signed client assertion, e.g. a GitHub OIDC token for a federated credential.
    ClientAssertion { client_id: String, assertion: String, source: String },
}

impl AzureAuth {
    fn source(&self) -> &str {
        match self {
            AzureAuth::AccessToken { source, .. }
            | AzureAuth::ClientSecret { source, .. }
            | AzureAuth::ClientAssertion { source, .. } => source,
        }
    }
}

/// A tenant's security groups.
pub struct AzureDirectory {
    runtime: tokio::runtime::Runtime,
    client: GraphClient,
    /// `{endpoint}/v1.0`.
    pub(super) api_root: String,
    tenant_id: String,
    domain_suffix: String,
    credential_source: String,
    pub(super) people: BTreeMap<String, String>,
    /// ARM ids of the configured managed identities, as rendered (mixed case).
    identities: Vec<String>,
    /// Whether every configured identity has been looked up; held while they are.
    identities_resolved: Mutex<bool>,
    /// Service principal object id → the `azure-identity:` member it was resolved for.
    identity_names: Mutex<HashMap<String, String>>,
    /// Group email → object id and ownership, learned from listings and creations.
    groups: Mutex<HashMap<String, KnownGroup>>,
    /// Group object id → email.
    group_emails: Mutex<HashMap<String, String>>,
    /// Member email → object id (`None`: nobody in the tenant), learned from listings and
    /// look-ups, so each person is resolved at most once per run.
    objects: Mutex<HashMap<String, Option<String>>>,
    /// One lock per member email being looked up, so parallel changes for the same person wait
    /// for one look-up instead of each sending their own.
    lookups: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// User object id → the email our definitions use for that person.
    user_emails: Mutex<HashMap<String, String>>,
    /// Groups this run created (or found already made when about to create them), with the
    /// members it added, by email: kept in the change-feed state until the feed shows them.
    created: Mutex<BTreeMap<String, DeltaGroup>>,
    /// HTTP requests sent, retries included.
    calls: AtomicU64,
    /// Every request to Graph waits for it (`call_costing`).
    pacer: Pacer,
}

#[derive(Debug, Clone)]
pub(super) struct KnownGroup {
    pub(super) id: String,
    owned: bool,
}

/// A failed Graph call: its status (none for transport failures), code, message and Retry-After.
#[derive(Debug)]
pub(super) struct CallError {
    status: Option<u16>,
    code: String,
    message: String,
    retry_after: Option<Duration>,
}

impl AzureDirectory {
    /// Connects (lazily: no request is sent until the first call).
    pub fn connect(config: &AzureConfig) -> Result<AzureDirectory, DirectoryError> {
        let endpoint = config.endpoint.clone().unwrap_or_else(|| PRODUCTION_ENDPOINT.to_owned());
        check_endpoint(&endpoint)?;
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let api_root = format!("{endpoint}/v1.0");
        let url =
            Url::parse(&api_root).map_err(|e| DirectoryError::Rejected(format!("azure endpoint `{endpoint}`: {e}")))?;
        let microsoft = url.host_str() == Some("graph.microsoft.com");
        if let AzureAuth::ClientSecret { client_id, source, .. }
        | AzureAuth::ClientAssertion { client_id, source, .. } = &config.auth
        {
            // The client library would quietly use the nil id for anything that is not a GUID.
            if !looks_like_object_id(client_id) {
                return Err(DirectoryError::Rejected(format!(
                    "the client id `{client_id}` from {source} is not an application (client) id GUID"
                )));
            }
        }
        let configuration = GraphClientConfiguration::new()
            .https_only(!url.scheme().eq_ignore_ascii_case("http"))
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| DirectoryError::Storage(format!("cannot start the HTTP runtime: {e}")))?;
        let authority = config.authority.as_deref().unwrap_or(azure_login::PRODUCTION_AUTHORITY);
        let authority = super::endpoint::check_root(authority, &["login.microsoftonline.com"], "azure authority")?;
        // Apps sign in here (one client-credentials exchange per run); the client takes the token.
        let token = match &config.auth {
            AzureAuth::AccessToken { token, .. } => token.clone(),
            AzureAuth::ClientSecret { client_id, secret, source } => runtime.block_on(azure_login::access_token(
                &authority,
                &config.tenant_id,
                client_id,
                azure_login::Proof::Secret(secret),
                source,
            ))?,
            AzureAuth::ClientAssertion { client_id, assertion, source } => {
                runtime.block_on(azure_login::access_token(
                    &authority,
                    &config.tenant_id,
                    client_id,
                    azure_login::Proof::Assertion(assertion),
                    source,
                ))?
            }
        };
        let configuration = configuration.access_token(token);
        let mut client = GraphClient::from(configuration);
        if !microsoft {
            // `check_endpoint` allowed only HTTPS or loopback; the client's own `use_endpoint`
            // panics on any host but Microsoft's, so its test hook is the way to an emulator.
            client.use_test_endpoint(&url);
        }
        Ok(AzureDirectory {
            runtime,
            client,
            api_root,
            tenant_id: config.tenant_id.clone(),
            domain_suffix: format!("@{}", config.groups_domain.to_ascii_lowercase()),
            credential_source: config.auth.source().to_owned(),
            people: config.people.iter().map(|(email, id)| (email.to_ascii_lowercase(), id.clone())).collect(),
            identities: unique_ignoring_case(&config.identities),
            identities_resolved: Mutex::new(false),
            identity_names: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            group_emails: Mutex::new(HashMap::new()),
            objects: Mutex::new(HashMap::new()),
            lookups: Mutex::new(HashMap::new()),
            user_emails: Mutex::new(HashMap::new()),
            created: Mutex::new(BTreeMap::new()),
            calls: AtomicU64::new(0),
            pacer: Pacer::new(config.requests),
        })
    }

    /// Sends one request built by `request` and reads its JSON answer (`Value::Null` for none).
    fn call(&self, request: RequestHandler) -> Result<Value, CallError> {
        self.call_costing(request, 1)
    }

    /// `call` for a request Graph counts as `cost` requests (a `$batch` of that many).
    fn call_costing(&self, request: RequestHandler, cost: u32) -> Result<Value, CallError> {
        self.pacer.acquire(cost);
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.runtime.block_on(async {
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = response.bytes().await.map_err(|e| CallError {
                status: None,
                code: String::new(),
                message: format!("connection failed while reading the answer: {e}"),
                retry_after: None,
            })?;
            let body: Value =
                if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
            if (200..300).contains(&status) {
                Ok(body)
            } else {
                if let (429, Some(wait)) = (status, retry_after) {
                    self.pacer.pause(wait);
                }
                Err(CallError::from_answer(status, &body, retry_after))
            }
        })
    }

    /// A request to any URL below the API root, e.g. an `@odata.nextLink` followed verbatim.
    pub(super) fn request_to(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<RequestHandler, CallError> {
        if !url.starts_with(&self.api_root) {
            return Err(CallError::local(format!("refusing to follow a link outside {}: {url}", self.api_root)));
        }
        let url = Url::parse(url).map_err(|e| CallError::local(format!("bad link {url}: {e}")))?;
        let body = match body {
            Some(body) => Some(BodyRead::from_serialize(&body).map_err(|e| CallError::local(e.to_string()))?),
            None => None,
        };
        let mut request = self.client.custom(method, body);
        *request.as_mut() = url;
        Ok(request)
    }

    /// Every item of a paged collection, following `@odata.nextLink`.
    pub(super) fn list_all(
        &self,
        first: RequestHandler,
        method: &str,
        subject: &str,
    ) -> Result<Vec<Value>, (CallError, String)> {
        let mut items = Vec::new();
        let mut page = self.call(first).map_err(|e| (e, format!("{method} {subject}")))?;
        loop {
            if let Some(values) = page.get_mut("value").and_then(Value::as_array_mut) {
                items.append(values);
            }
            let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned) else {
                return Ok(items);
            };
            let request = self.request_to(Method::GET, &next, None).map_err(|e| (e, format!("{method} {subject}")))?;
            page = self.call(request).map_err(|e| (e, format!("{method} {subject}")))?;
        }
    }

    fn email_of_nickname(&self, nickname: &str) -> String {
        format!("{}{}", nickname.to_ascii_lowercase(), self.domain_suffix)
    }

    fn remember_group(&self, email: &str, group: KnownGroup) {
        lock(&self.group_emails).insert(group.id.clone(), email.to_owned());
        lock(&self.objects).insert(email.to_owned(), Some(group.id.clone()));
        lock(&self.groups).insert(email.to_owned(), group);
    }

    /// What this run knows of a group, looking it up by mailNickname if it has not seen it.
    pub(super) fn known_group(&self, email: &str) -> Result<KnownGroup, DirectoryError> {
        if let Some(group) = lock(&self.groups).get(email).cloned() {
            return Ok(group);
        }
        let group = self.fetch_group(email)?.ok_or_else(|| DirectoryError::GroupNotFound(email.to_owned()))?;
        self.remember_group(email, group.clone());
        Ok(group)
    }

    fn owned_group_id(&self, email: &str) -> Result<String, DirectoryError> {
        let group = self.known_group(email)?;
        if group.owned {
            Ok(group.id)
        } else {
            Err(DirectoryError::NotOwned(email.to_owned()))
        }
    }

    /// `GET /groups?$filter=mailNickname eq '…'`, straight from the directory (not the change
    /// feed). Security groups may share a nickname: two owned ones are an error, an owned one
    /// wins over others.
    fn fetch_group(&self, email: &str) -> Result<Option<KnownGroup>, DirectoryError> {
        let Some(nickname) = email.strip_suffix(&self.domain_suffix) else { return Ok(None) };
        let filter = format!("mailNickname eq '{}'", nickname.replace('\'', "''"));
        let request = self.client.groups().list_group().filter(&[&filter]).select(GROUP_FIELDS);
        let page = self.call(request).map_err(|e| self.error(e, "groups.list", email))?;
        let mut found: Option<KnownGroup> = None;
        for group in page["value"].as_array().into_iter().flatten() {
            if group["securityEnabled"].as_bool() == Some(false) {
                continue;
            }
            let candidate =
                KnownGroup { id: group["id"].as_str().unwrap_or_default().to_owned(), owned: is_owned(group) };
            found = Some(match found {
                None => candidate,
                Some(kept) => pick_group(email, kept, candidate)?,
            });
        }
        Ok(found)
    }

    /// Keeps `group` (with `members`, by email) in the change-feed state of this run.
    fn record_created(&self, email: &str, id: &str, name: &str, description: &str) {
        lock(&self.created).entry(email.to_owned()).or_insert_with(|| DeltaGroup {
            id: id.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            owned: true,
            members: BTreeMap::new(),
        });
    }

    /// Notes members added to a group this run created, for the change-feed state.
    fn record_added(&self, group_email: &str, member_email: &str) {
        let mut created = lock(&self.created);
        let Some(group) = created.get_mut(group_email) else { return };
        let Some(Some(id)) = lock(&self.objects).get(member_email).cloned() else { return };
        let kind = if lock(&self.groups).contains_key(member_email) { MemberKind::Group } else { MemberKind::Account };
        group.members.insert(id, DeltaMember { email: member_email.to_owned(), kind });
    }

    /// Sends up to `AZURE_BATCH_SIZE` requests (method, URL under the API root) as one
    /// `$batch`; the answer to each, in order (`None` where the batch left one out).
    fn batch(&self, requests: &[(&str, String)]) -> Result<Vec<Option<SubResponse>>, CallError> {
        let body: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(index, (method, url))| json!({ "id": index.to_string(), "method": method, "url": url }))
            .collect();
        let cost = u32::try_from(requests.len()).unwrap_or(u32::MAX);
        let mut answer = self.call_costing(self.client.batch(&json!({ "requests": body })), cost)?;
        let mut answers: Vec<Option<SubResponse>> = requests.iter().map(|_| None).collect();
        for response in answer["responses"].as_array_mut().into_iter().flatten() {
            let Some(index) = response["id"].as_str().and_then(|id| id.parse::<usize>().ok()) else { continue };
            let Some(slot) = answers.get_mut(index) else { continue };
            let retry_after = response["headers"]
                .as_object()
                .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")))
                .and_then(|(_, v)| v.as_str()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let status = response["status"].as_u64().unwrap_or(0) as u16;
            if let (429, Some(wait)) = (status, retry_after) {
                self.pacer.pause(wait);
            }
            *slot = Some(SubResponse { status, body: response["body"].take(), retry_after });
        }
        Ok(answers)
    }

    /// The directory object a member email stands for: a known group, else the person's
    /// `azure` id, else a user whose principal name or mail is the email (or the `azure` name).
    fn object_id(&self, member_email: &str) -> Result<String, DirectoryError> {
        self.find_object(member_email)?.ok_or_else(|| unresolvable(member_email))
    }

    /// `object_id`, with `None` for nobody in the tenant by that name.
    fn find_object(&self, member_email: &str) -> Result<Option<String>, DirectoryError> {
        if let Some(known) = lock(&self.objects).get(member_email).cloned() {
            return Ok(known);
        }
        let in_flight = Arc::clone(lock(&self.lookups).entry(member_email.to_owned()).or_default());
        let _only_one = lock(&in_flight);
        // Another thread may have finished the same look-up while this one waited.
        if let Some(known) = lock(&self.objects).get(member_email).cloned() {
            return Ok(known);
        }
        if let Some(arm_id) = member_email.strip_prefix(AZURE_IDENTITY_PREFIX) {
            return self.find_identity(member_email, arm_id);
        }
        if member_email.ends_with(&self.domain_suffix) {
            if let Some(group) = self.fetch_group(member_email)? {
                self.remember_group(member_email, group.clone());
                return Ok(Some(group.id));
            }
        }
        let key = self.people.get(member_email).cloned().unwrap_or_else(|| member_email.to_owned());
        let found = if looks_like_object_id(&key) {
            Some(key)
        } else {
            let request = self.client.users().list_user().filter(&[&user_filter(&key)]).select(&[
                "id",
                "userPrincipalName",
                "mail",
            ]);
            let page = self.call(request).map_err(|e| self.error(e, "users.list", member_email))?;
            first_id(&page)
        };
        if let Some(id) = &found {
            lock(&self.user_emails).insert(id.clone(), member_email.to_owned());
        }
        lock(&self.objects).insert(member_email.to_owned(), found.clone());
        Ok(found)
    }

    /// Looks up the people among `member_emails` this run has not resolved yet with one `$batch`
    /// per 20, so a chunk of new people costs one request rather than twenty. Anyone whose
    /// look-up failed is left for `object_id`, which reports or retries it on its own.
    fn prefetch_people(&self, member_emails: &[&str]) {
        let mut wanted: Vec<(String, String)> = member_emails
            .iter()
            .filter(|email| !email.ends_with(&self.domain_suffix) && !email.starts_with(AZURE_IDENTITY_PREFIX))
            .filter(|email| !lock(&self.objects).contains_key(**email))
            .map(|email| (email.to_string(), self.people.get(*email).cloned().unwrap_or_else(|| email.to_string())))
            .filter(|(_, key)| !looks_like_object_id(key))
            .collect();
        wanted.sort();
        wanted.dedup();
        if wanted.len() < 2 {
            return;
        }
        // Hold every person's look-up lock (in sorted order, so two batches never wait on each
        // other), so nobody is looked up twice at once.
        let locks: Vec<Arc<Mutex<()>>> =
            wanted.iter().map(|(email, _)| Arc::clone(lock(&self.lookups).entry(email.clone()).or_default())).collect();
        let _held: Vec<_> = locks.iter().map(|l| lock(l)).collect();
        wanted.retain(|(email, _)| !lock(&self.objects).contains_key(email));
        for chunk in wanted.chunks(AZURE_BATCH_SIZE) {
            let requests: Vec<(&str, String)> = chunk
                .iter()
                .map(|(_, key)| {
                    let filter = percent_encode(&user_filter(key));
                    ("GET", format!("/users?$filter={filter}&$select=id,userPrincipalName,mail"))
                })
                .collect();
            let Ok(answers) = self.batch(&requests) else { continue };
            for ((email, _), answer) in chunk.iter().zip(answers) {
                let Some(answer) = answer.filter(|a| a.status == 200) else { continue };
                let found = first_id(&answer.body);
                if let Some(id) = &found {
                    lock(&self.user_emails).insert(id.clone(), email.clone());
                }
                lock(&self.objects).insert(email.clone(), found);
            }
        }
    }

    /// The service principal of the managed identity `arm_id` (member `member`): the configured
    /// identities are looked up together first; any other one on its own.
    fn find_identity(&self, member: &str, arm_id: &str) -> Result<Option<String>, DirectoryError> {
        self.resolve_identities()?;
        if let Some(known) = lock(&self.objects).get(member).cloned() {
            return Ok(known);
        }
        // As rendered when it is a configured one (the member name is lowercased), else with
        // the provider and type segments as Azure writes them.
        let arm_id = match self.identities.iter().find(|id| id.eq_ignore_ascii_case(arm_id)) {
            Some(rendered) => rendered.clone(),
            None => as_azure_writes(arm_id),
        };
        let arm_id = arm_id.as_str();
        let request = self
            .client
            .service_principals()
            .list_service_principal()
            .filter(&[&identity_filter(arm_id)])
            .select(IDENTITY_FIELDS);
        let page = self.call(request).map_err(|e| self.error(e, "servicePrincipals.list", member))?;
        let found = identity_match(&page, arm_id);
        self.remember_identity(member, found.clone());
        Ok(found)
    }

    /// Looks up every configured identity not known yet, 20 to a `$batch` of
    /// `GET /servicePrincipals?$filter=alternativeNames/any(…)`, once per run. A failed
    /// sub-request fails the call (the sync retries it) and is asked again next time; those
    /// answered are kept.
    fn resolve_identities(&self) -> Result<(), DirectoryError> {
        if self.identities.is_empty() {
            return Ok(());
        }
        let mut resolved = lock(&self.identities_resolved);
        if *resolved {
            return Ok(());
        }
        let wanted: Vec<&String> = self
            .identities
            .iter()
            .filter(|arm_id| !lock(&self.objects).contains_key(&identity_member(arm_id)))
            .collect();
        // The look-up sends each ARM id as rendered; the answer is matched without regard to case.
        let mut failure = None;
        for chunk in wanted.chunks(AZURE_BATCH_SIZE) {
            let requests: Vec<(&str, String)> = chunk
                .iter()
                .map(|arm_id| {
                    let filter = percent_encode(&identity_filter(arm_id));
                    ("GET", format!("/servicePrincipals?$filter={filter}&$select={}", IDENTITY_FIELDS.join(",")))
                })
                .collect();
            let answers = self.batch(&requests).map_err(|e| self.error(e, "$batch servicePrincipals.list", ""))?;
            let mut unanswered = false;
            for (arm_id, answer) in chunk.iter().zip(answers) {
                match answer {
                    Some(answer) if answer.status == 200 => {
                        self.remember_identity(&identity_member(arm_id), identity_match(&answer.body, arm_id));
                    }
                    Some(answer) => {
                        let error = answer.error();
                        failure.get_or_insert_with(|| self.error(error, "$batch servicePrincipals.list", arm_id));
                    }
                    None => unanswered = true,
                }
            }
            if unanswered && failure.is_none() {
                failure = Some(DirectoryError::Unavailable(
                    "$batch servicePrincipals.list: an identity look-up got no answer in the batch".to_owned(),
                ));
            }
        }
        match failure {
            Some(error) => Err(error),
            None => {
                *resolved = true;
                Ok(())
            }
        }
    }

    fn remember_identity(&self, member: &str, found: Option<String>) {
        if let Some(id) = &found {
            lock(&self.identity_names).insert(id.clone(), member.to_owned());
        }
        lock(&self.objects).insert(member.to_owned(), found);
    }

    /// Resolves the configured identities when `members` hold a service principal this run
    /// cannot name yet, so that a managed identity is never mistaken for a stranger.
    fn name_service_principals<'m>(
        &self,
        members: impl IntoIterator<Item = (&'m str, &'m str)>,
    ) -> Result<(), DirectoryError> {
        let unnamed = members
            .into_iter()
            .any(|(id, kind)| kind == SERVICE_PRINCIPAL_TYPE && !lock(&self.identity_names).contains_key(id));
        if unnamed {
            self.resolve_identities()?;
        }
        Ok(())
    }

    /// A listed member as our types see it, learning its object id on the way.
    fn live_member(&self, object: &Value) -> Option<LiveMember> {
        let id = object["id"].as_str()?;
        let kind = object["@odata.type"].as_str().unwrap_or_default();
        let (email, kind) = match kind {
            "#microsoft.graph.group" => {
                let email = lock(&self.group_emails)
                    .get(id)
                    .cloned()
                    .or_else(|| object["mailNickname"].as_str().map(|nickname| self.email_of_nickname(nickname)))?;
                (email, MemberKind::Group)
            }
            "#microsoft.graph.user" => (self.user_email(id, object)?, MemberKind::Account),
            SERVICE_PRINCIPAL_TYPE if lock(&self.identity_names).contains_key(id) => {
                (lock(&self.identity_names)[id].clone(), MemberKind::Account)
            }
            _ => {
                let name = object["mail"].as_str().or(object["displayName"].as_str()).unwrap_or(id);
                (name.to_ascii_lowercase(), MemberKind::Other)
            }
        };
        lock(&self.objects).entry(email.clone()).or_insert_with(|| Some(id.to_owned()));
        Some(LiveMember { email, kind, expires: None })
    }

    /// The email our definitions use for a user: whoever this run resolved to it, a person whose
    /// `azure` field names it, else its mail, else its principal name.
    fn user_email(&self, id: &str, user: &Value) -> Option<String> {
        if let Some(email) = lock(&self.user_emails).get(id).cloned() {
            return Some(email);
        }
        let upn = user["userPrincipalName"].as_str().map(str::to_ascii_lowercase);
        let mail = user["mail"].as_str().map(str::to_ascii_lowercase);
        let person = self.people.iter().find(|(_, azure)| {
            let azure = azure.to_ascii_lowercase();
            azure == id || Some(&azure) == upn.as_ref()
        });
        let email = person.map(|(email, _)| email.clone()).or(mail).or(upn)?;
        lock(&self.user_emails).insert(id.to_owned(), email.clone());
        Some(email)
    }

    /// Classifies a failed call about `subject`.
    pub(super) fn error(&self, error: CallError, method: &str, subject: &str) -> DirectoryError {
        let call = if subject.is_empty() { method.to_owned() } else { format!("{method} {subject}") };
        match error.status {
            None => DirectoryError::Unavailable(format!("{call}: {}", error.message)),
            Some(429) => DirectoryError::Throttled { call, retry_after: error.retry_after },
            Some(401) => DirectoryError::Rejected(format!(
                "{call}: authentication failed (401 {}): {}; check {}",
                error.code, error.message, self.credential_source
            )),
            Some(403) => DirectoryError::Rejected(format!(
                "{call}: permission denied (403 {}): {}; the credentials from {} need Group.ReadWrite.All, User.Read.All and Application.Read.All",
                error.code, error.message, self.credential_source
            )),
            Some(status) if status >= 500 => {
                DirectoryError::Unavailable(format!("{call}: {status} {}: {}", error.code, error.message))
            }
            Some(status) => DirectoryError::Rejected(format!("{call}: {status} {}: {}", error.code, error.message)),
        }
    }

    /// A member addition through `members/$ref`; an existing member is success.
    fn add_one(&self, group_id: &str, group_email: &str, member_email: &str) -> Result<(), DirectoryError> {
        let member = self.object_id(member_email)?;
        let body = json!({ "@odata.id": format!("{DIRECTORY_OBJECTS}{member}") });
        let url = format!("{}/groups/{group_id}/members/$ref", self.api_root);
        let request = self
            .request_to(Method::POST, &url, Some(body))
            .map_err(|e| self.error(e, "groups.members.add", group_email))?;
        match self.call(request) {
            Ok(_) => {
                self.record_added(group_email, member_email);
                Ok(())
            }
            Err(error) if error.is_already_member() => {
                self.record_added(group_email, member_email);
                Ok(())
            }
            Err(error) if error.status == Some(404) && error.message.contains(group_id) => {
                Err(lagging("groups.members.add", group_email))
            }
            Err(error) => Err(self.error(error, "groups.members.add", &format!("{member_email} in {group_email}"))),
        }
    }
}

/// A group while a delta round is being applied, keyed by object id.
#[derive(Debug, Clone, Default)]
struct DeltaWork {
    nickname: Option<String>,
    name: String,
    description: String,
    security: bool,
    /// Member object id → what it is (`None`: not known yet), and its `@odata.type`.
    members: BTreeMap<String, (Option<DeltaMember>, String)>,
}

impl AzureDirectory {
    /// One delta round from `since` (or from scratch), applied to `since`.
    fn delta_round(&self, since: Option<&DeltaState>) -> Result<DeltaState, DirectoryError> {
        let mut work: BTreeMap<String, DeltaWork> = BTreeMap::new();
        if let Some(since) = since {
            for (email, group) in &since.groups {
                let nickname = email.strip_suffix(&self.domain_suffix).map(str::to_owned);
                let members =
                    group.members.iter().map(|(id, m)| (id.clone(), (Some(m.clone()), String::new()))).collect();
                let entry = DeltaWork {
                    nickname,
                    name: group.name.clone(),
                    description: group.description.clone(),
                    security: true,
                    members,
                };
                work.insert(group.id.clone(), entry);
            }
        }
        let first = match since {
            Some(since) => since.link.clone(),
            None => format!("{}/groups/delta?$select={DELTA_FIELDS}", self.api_root),
        };
        let mut url = first;
        let link = loop {
            let request = self.request_to(Method::GET, &url, None).map_err(|e| self.error(e, "groups.delta", ""))?;
            let page = match self.call(request) {
                Ok(page) => page,
                Err(error)
                    if error.status == Some(410)
                        || error.code == "syncStateNotFound"
                        || error.code == "resyncRequired" =>
                {
                    return Err(DirectoryError::DeltaExpired(format!(
                        "groups.delta ({} {})",
                        error.code, error.message
                    )))
                }
                Err(error) => return Err(self.error(error, "groups.delta", "")),
            };
            for item in page["value"].as_array().into_iter().flatten() {
                let Some(id) = item["id"].as_str() else { continue };
                if item.get("@removed").is_some() {
                    work.remove(id);
                    continue;
                }
                let entry = work.entry(id.to_owned()).or_default();
                if let Some(nickname) = item["mailNickname"].as_str() {
                    entry.nickname = Some(nickname.to_ascii_lowercase());
                }
                if let Some(name) = item["displayName"].as_str() {
                    entry.name = name.to_owned();
                }
                if let Some(description) = item.get("description") {
                    entry.description = description.as_str().unwrap_or_default().to_owned();
                }
                if let Some(security) = item["securityEnabled"].as_bool() {
                    entry.security = security;
                }
                for member in item["members@delta"].as_array().into_iter().flatten() {
                    let Some(member_id) = member["id"].as_str() else { continue };
                    if member.get("@removed").is_some() {
                        entry.members.remove(member_id);
                    } else {
                        let kind = member["@odata.type"].as_str().unwrap_or_default().to_owned();
                        entry.members.entry(member_id.to_owned()).or_insert((None, kind));
                    }
                }
            }
            if let Some(next) = page["@odata.nextLink"].as_str() {
                url = next.to_owned();
            } else if let Some(delta) = page["@odata.deltaLink"].as_str() {
                break delta.to_owned();
            } else {
                return Err(DirectoryError::Unavailable(
                    "groups.delta: a page with neither next nor delta link".into(),
                ));
            }
        };
        // Groups of the domain by id, so that nested groups are named without a request.
        let group_emails: HashMap<String, String> = work
            .iter()
            .filter(|(_, g)| g.security)
            .filter_map(|(id, g)| g.nickname.as_ref().map(|n| (id.clone(), self.email_of_nickname(n))))
            .collect();
        // Managed identities are named from their resolution, which a run may not have done yet.
        self.name_service_principals(work.values().filter(|g| g.security && g.nickname.is_some()).flat_map(|g| {
            g.members
                .iter()
                .filter(|(_, (known, _))| known.is_none())
                .map(|(id, (_, kind))| (id.as_str(), kind.as_str()))
        }))?;
        // Everyone this run resolved or added, by object id: no request to name them again.
        let known_ids: HashMap<String, String> =
            lock(&self.objects).iter().filter_map(|(email, id)| id.clone().map(|id| (id, email.clone()))).collect();
        let unknown: BTreeSet<String> = work
            .values()
            .filter(|g| g.security && g.nickname.is_some())
            .flat_map(|g| g.members.iter())
            .filter(|(id, (known, kind))| {
                known.is_none()
                    && kind != "#microsoft.graph.group"
                    && kind != SERVICE_PRINCIPAL_TYPE
                    && !group_emails.contains_key(*id)
                    && !known_ids.contains_key(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.name_users(&unknown)?;
        let mut groups = BTreeMap::new();
        for (id, group) in work {
            let Some(email) = group_emails.get(&id).cloned() else { continue };
            let mut members = BTreeMap::new();
            for (member_id, (known, kind)) in group.members {
                let member = match known {
                    Some(member) => member,
                    None => self.delta_member(&member_id, &kind, &group_emails, &known_ids)?,
                };
                lock(&self.objects).entry(member.email.clone()).or_insert_with(|| Some(member_id.clone()));
                members.insert(member_id, member);
            }
            let owned = group.description.contains(OWNER_MARKER);
            let delta = DeltaGroup { id, name: group.name, description: group.description, owned, members };
            // Security groups may share a nickname: keep the owned one, refuse two.
            let delta = match groups.remove(&email) {
                None => delta,
                Some(kept) => {
                    let known = |g: &DeltaGroup| KnownGroup { id: g.id.clone(), owned: g.owned };
                    let chosen = pick_group(&email, known(&kept), known(&delta))?;
                    if chosen.id == kept.id {
                        kept
                    } else {
                        delta
                    }
                }
            };
            groups.insert(email, delta);
        }
        for (email, group) in &groups {
            self.remember_group(email, KnownGroup { id: group.id.clone(), owned: group.owned });
        }
        // What this run made stays in the state until the feed shows it (new objects reach the
        // feed late), so the next run neither misses nor re-creates it.
        for (email, group) in lock(&self.created).iter() {
            groups.entry(email.clone()).or_insert_with(|| group.clone());
        }
        Ok(DeltaState { link, groups })
    }

    /// Names users known only by object id, 20 to a `$batch` of `GET /users/{id}`; what each
    /// is called lands in the run's caches. A sub-request that fails fails the round, which the
    /// sync retries without asking again for those already named.
    fn name_users(&self, ids: &BTreeSet<String>) -> Result<(), DirectoryError> {
        let unnamed: Vec<&String> = ids.iter().filter(|id| !lock(&self.user_emails).contains_key(*id)).collect();
        for chunk in unnamed.chunks(AZURE_BATCH_SIZE) {
            let requests: Vec<(&str, String)> =
                chunk.iter().map(|id| ("GET", format!("/users/{id}?$select=id,userPrincipalName,mail"))).collect();
            let answers = self.batch(&requests).map_err(|e| self.error(e, "$batch users.get", ""))?;
            for (id, answer) in chunk.iter().zip(answers) {
                let Some(answer) = answer else { continue };
                match answer.status {
                    200 => {
                        if let Some(email) = self.user_email(id, &answer.body) {
                            lock(&self.objects).entry(email).or_insert_with(|| Some(id.to_string()));
                        }
                    }
                    // Not a user (a device, a service principal): named by its id when met.
                    404 => {}
                    _ => return Err(self.error(answer.error(), "$batch users.get", id)),
                }
            }
        }
        Ok(())
    }

    /// Names a member a delta round reported by id only: a group of the round, a person this run
    /// or `people.toml` knows, else the user's own principal name or mail (one request).
    fn delta_member(
        &self,
        id: &str,
        kind: &str,
        group_emails: &HashMap<String, String>,
        known_ids: &HashMap<String, String>,
    ) -> Result<DeltaMember, DirectoryError> {
        if let Some(email) = group_emails.get(id) {
            return Ok(DeltaMember { email: email.clone(), kind: MemberKind::Group });
        }
        if kind == "#microsoft.graph.group" {
            return Ok(DeltaMember { email: id.to_owned(), kind: MemberKind::Other });
        }
        if kind == SERVICE_PRINCIPAL_TYPE {
            // One of our managed identities, else a service principal we never add.
            return Ok(match lock(&self.identity_names).get(id) {
                Some(name) => DeltaMember { email: name.clone(), kind: MemberKind::Account },
                None => DeltaMember { email: id.to_owned(), kind: MemberKind::Other },
            });
        }
        let known = lock(&self.user_emails).get(id).cloned().or_else(|| known_ids.get(id).cloned());
        let known = known.or_else(|| {
            self.people.iter().find(|(_, azure)| azure.eq_ignore_ascii_case(id)).map(|(email, _)| email.clone())
        });
        if let Some(email) = known {
            return Ok(DeltaMember { email, kind: MemberKind::Account });
        }
        let url = format!("{}/users/{id}?$select=id,userPrincipalName,mail", self.api_root);
        let request = self.request_to(Method::GET, &url, None).map_err(|e| self.error(e, "users.get", id))?;
        match self.call(request) {
            Ok(user) => {
                let email = self.user_email(id, &user).unwrap_or_else(|| id.to_owned());
                Ok(DeltaMember { email, kind: MemberKind::Account })
            }
            // Not a user: a device, service principal or contact; never desired.
            Err(error) if error.status == Some(404) => {
                Ok(DeltaMember { email: id.to_owned(), kind: MemberKind::Other })
            }
            Err(error) => Err(self.error(error, "users.get", id)),
        }
    }
}

impl Directory for AzureDirectory {
    fn describe(&self) -> String {
        format!("Azure AD tenant {} at {}", self.tenant_id, self.api_root)
    }

    fn list_groups(&self) -> Result<Vec<LiveGroup>, DirectoryError> {
        let request =
            self.client.groups().list_group().filter(&["securityEnabled eq true"]).select(GROUP_FIELDS).top(PAGE_SIZE);
        let items =
            self.list_all(request, "groups.list", &self.tenant_id).map_err(|(e, call)| self.error(e, &call, ""))?;
        // Email → (id, group): security groups may share a nickname.
        let mut groups: BTreeMap<String, (KnownGroup, LiveGroup)> = BTreeMap::new();
        for group in items {
            let Some(nickname) = group["mailNickname"].as_str() else { continue };
            let email = self.email_of_nickname(nickname);
            let owned = is_owned(&group);
            let known = KnownGroup { id: group["id"].as_str().unwrap_or_default().to_owned(), owned };
            let live = LiveGroup {
                name: group["displayName"].as_str().unwrap_or_default().to_owned(),
                email: email.clone(),
                description: group["description"].as_str().unwrap_or_default().to_owned(),
                owned,
            };
            let entry = match groups.remove(&email) {
                None => (known, live),
                Some((kept, kept_live)) => {
                    let keep_first = kept.owned || !owned;
                    let chosen = pick_group(&email, kept, known)?;
                    if keep_first {
                        (chosen, kept_live)
                    } else {
                        (chosen, live)
                    }
                }
            };
            groups.insert(email, entry);
        }
        Ok(groups
            .into_iter()
            .map(|(email, (known, live))| {
                self.remember_group(&email, known);
                live
            })
            .collect())
    }

    fn list_members(&self, group_email: &str) -> Result<Vec<LiveMember>, DirectoryError> {
        let id = self.known_group(group_email)?.id;
        let request = self.client.group(&id).list_members().select(MEMBER_FIELDS).top(PAGE_SIZE);
        let items = self.list_all(request, "groups.members.list", group_email).map_err(|(error, call)| {
            // The listing just returned the group: a read that has not caught up yet.
            if error.status == Some(404) {
                lagging("groups.members.list", group_email)
            } else {
                self.error(error, &call, "")
            }
        })?;
        self.name_service_principals(
            items.iter().map(|o| (o["id"].as_str().unwrap_or_default(), o["@odata.type"].as_str().unwrap_or_default())),
        )?;
        Ok(items.iter().filter_map(|object| self.live_member(object)).collect())
    }

    fn create_group(&self, group: &NewGroup) -> Result<(), DirectoryError> {
        let Some(nickname) = group.email.strip_suffix(&self.domain_suffix) else {
            return Err(DirectoryError::Rejected(format!("{}: not in the groups domain", group.email)));
        };
        let description = owned_description(&group.description);
        // A security group's mailNickname need not be unique, so a POST is never repeated
        // blindly: before every attempt (a first one too, since the change feed may not show a
        // group an earlier run made yet) the directory itself is asked for the nickname.
        match self.fetch_group(&group.email)? {
            Some(known) if known.owned => {
                self.record_created(&group.email, &known.id, nickname, &description);
                self.remember_group(&group.email, known);
                return Ok(());
            }
            Some(_) => return Err(DirectoryError::NotOwned(group.email.clone())),
            None => {}
        }
        let body = json!({
            "displayName": nickname,
            "mailNickname": nickname,
            "description": description,
            "mailEnabled": false,
            "securityEnabled": true,
        });
        match self.call(self.client.groups().create_group(&body)) {
            Ok(created) => {
                let id = created["id"].as_str().unwrap_or_default().to_owned();
                self.record_created(&group.email, &id, nickname, &description);
                self.remember_group(&group.email, KnownGroup { id, owned: true });
                Ok(())
            }
            Err(error) => Err(self.error(error, "groups.create", &group.email)),
        }
    }

    fn adopt_group(&self, group_email: &str, description: &str) -> Result<(), DirectoryError> {
        let id = self.known_group(group_email)?.id;
        let body = json!({ "description": owned_description(description) });
        self.call(self.client.group(&id).update_group(&body))
            .map_err(|e| self.error(e, "groups.update", group_email))?;
        self.remember_group(group_email, KnownGroup { id, owned: true });
        Ok(())
    }

    fn add_member(&self, group_email: &str, member_email: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        let group_id = self.owned_group_id(group_email)?;
        self.add_one(&group_id, group_email, member_email)
    }

    /// Graph keeps no expiry with a membership; nothing to change.
    fn set_expiry(&self, group_email: &str, _member_email: &str, _expires: Option<Date>) -> Result<(), DirectoryError> {
        self.owned_group_id(group_email).map(|_| ())
    }

    fn remove_member(&self, group_email: &str, member_email: &str) -> Result<(), DirectoryError> {
        self.remove_members(group_email, &[member_email.to_owned()]).pop().unwrap_or(Ok(()))
    }

    fn delete_group(&self, group_email: &str) -> Result<(), DirectoryError> {
        let id = self.owned_group_id(group_email)?;
        match self.call(self.client.group(&id).delete_group()) {
            Ok(_) => {
                lock(&self.groups).remove(group_email);
                lock(&self.created).remove(group_email);
                Ok(())
            }
            Err(error) if error.status == Some(404) => Ok(()),
            Err(error) => Err(self.error(error, "groups.delete", group_email)),
        }
    }

    fn batch_size(&self) -> usize {
        AZURE_BATCH_SIZE
    }

    /// Everyone the additions name, 20 look-ups to a `$batch`, before any group's chunk asks.
    fn prepare_members(&self, member_emails: &[&str]) {
        self.prefetch_people(member_emails);
    }

    /// One `members@odata.bind` PATCH per 20 members; a refused PATCH (all or nothing) is
    /// retried member by member, so only the member at fault fails.
    fn add_members(&self, group_email: &str, members: &[(String, Option<Date>)]) -> Vec<Result<(), DirectoryError>> {
        let group_id = match self.owned_group_id(group_email) {
            Ok(id) => id,
            Err(error) => return vec![Err(error); members.len()],
        };
        let mut results: Vec<Option<Result<(), DirectoryError>>> = vec![None; members.len()];
        self.prefetch_people(&members.iter().map(|(member, _)| member.as_str()).collect::<Vec<_>>());
        let mut resolved = Vec::new();
        for (index, (member, _)) in members.iter().enumerate() {
            match self.object_id(member) {
                Ok(id) => resolved.push((index, id)),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        for chunk in resolved.chunks(AZURE_BATCH_SIZE) {
            let binds: Vec<String> = chunk.iter().map(|(_, id)| format!("{DIRECTORY_OBJECTS}{id}")).collect();
            let body = json!({ "members@odata.bind": binds });
            match self.call(self.client.group(&group_id).update_group(&body)) {
                Ok(_) => chunk.iter().for_each(|(index, _)| {
                    self.record_added(group_email, &members[*index].0);
                    results[*index] = Some(Ok(()));
                }),
                Err(error)
                    if error.status.is_some_and(|s| s == 400 || s == 404) && !error.message.contains(&group_id) =>
                {
                    for (index, _) in chunk {
                        results[*index] = Some(self.add_one(&group_id, group_email, &members[*index].0));
                    }
                }
                Err(error) => {
                    let error = if error.status == Some(404) {
                        lagging("groups.update", group_email)
                    } else {
                        self.error(error, "groups.update members@odata.bind", group_email)
                    };
                    chunk.iter().for_each(|(index, _)| results[*index] = Some(Err(error.clone())));
                }
            }
        }
        results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
    }

    /// One `$batch` of up to 20 `DELETE …/members/{id}/$ref`; each answer (in any order) is
    /// judged on its own, with its own status and `Retry-After`.
    fn remove_members(&self, group_email: &str, members: &[String]) -> Vec<Result<(), DirectoryError>> {
        let group_id = match self.owned_group_id(group_email) {
            Ok(id) => id,
            Err(error) => return vec![Err(error); members.len()],
        };
        let mut results: Vec<Option<Result<(), DirectoryError>>> = vec![None; members.len()];
        // (member index, DELETE of its membership)
        let mut requests: Vec<(usize, (&str, String))> = Vec::new();
        for (index, member) in members.iter().enumerate() {
            match self.find_object(member) {
                Ok(Some(id)) => requests.push((index, ("DELETE", format!("/groups/{group_id}/members/{id}/$ref")))),
                // Nobody in the tenant by that name: nobody to remove.
                Ok(None) => results[index] = Some(Ok(())),
                Err(error) => results[index] = Some(Err(error)),
            }
        }
        for chunk in requests.chunks(AZURE_BATCH_SIZE) {
            let indexes: Vec<usize> = chunk.iter().map(|(index, _)| *index).collect();
            let deletes: Vec<(&str, String)> = chunk.iter().map(|(_, request)| request.clone()).collect();
            let answers = match self.batch(&deletes) {
                Ok(answers) => answers,
                Err(error) => {
                    let error = self.error(error, "$batch", group_email);
                    indexes.iter().for_each(|index| results[*index] = Some(Err(error.clone())));
                    continue;
                }
            };
            for (index, answer) in indexes.into_iter().zip(answers) {
                let Some(answer) = answer else { continue };
                let subject = format!("{} in {group_email}", members[index]);
                results[index] = Some(match answer.status {
                    200..=299 | 404 => Ok(()),
                    _ => Err(self.error(answer.error(), "$batch groups.members.remove", &subject)),
                });
            }
        }
        results
            .into_iter()
            .zip(members)
            .map(|(result, member)| {
                result.unwrap_or_else(|| {
                    Err(DirectoryError::Unavailable(format!(
                        "$batch {member} in {group_email}: no answer in the batch"
                    )))
                })
            })
            .collect()
    }

    fn read_delta(&self, since: Option<&DeltaState>) -> Option<Result<DeltaState, DirectoryError>> {
        Some(self.delta_round(since))
    }

    fn audit_log(&self) -> Option<&dyn super::AuditLog> {
        Some(self)
    }

    fn api_calls(&self) -> Option<u64> {
        Some(self.calls.load(Ordering::Relaxed))
    }
}

impl CallError {
    fn from_answer(status: u16, body: &Value, retry_after: Option<Duration>) -> CallError {
        CallError {
            status: Some(status),
            code: body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_owned(),
            message: body.pointer("/error/message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            retry_after,
        }
    }

    /// A failure before anything was sent that no retry fixes.
    fn local(message: String) -> CallError {
        CallError { status: Some(400), code: "clientError".to_owned(), message, retry_after: None }
    }

    fn is_already_member(&self) -> bool {
        self.status == Some(400) && self.message.contains("already exist")
    }
}

/// A token endpoint that refused the credentials is about the credentials; anything else that
/// kept a request from being answered (connection, timeout, dropped answer) is an outage.
fn transport_error(error: GraphFailure) -> CallError {
    let credentials = matches!(
        error,
        GraphFailure::SilentTokenAuth { .. } | GraphFailure::PreFlightError { .. } | GraphFailure::JsonWebToken(_)
    );
    let status = credentials.then_some(401);
    CallError { status, code: String::new(), message: error.to_string(), retry_after: None }
}

/// What an identity look-up asks for.
const IDENTITY_FIELDS: &[&str] = &["id", "alternativeNames"];

/// The member a managed identity's ARM id stands for (lowercased, like every member).
fn identity_member(arm_id: &str) -> String {
    format!("{AZURE_IDENTITY_PREFIX}{}", arm_id.to_ascii_lowercase())
}

/// The service principal in a look-up answer that lists `arm_id` among its alternative names,
/// compared without regard to case (ARM ids are case-insensitive; Graph keeps them as written).
fn identity_match(page: &Value, arm_id: &str) -> Option<String> {
    page["value"]
        .as_array()?
        .iter()
        .find(|principal| {
            principal["alternativeNames"]
                .as_array()
                .is_some_and(|names| names.iter().filter_map(Value::as_str).any(|n| n.eq_ignore_ascii_case(arm_id)))
        })
        .and_then(|principal| principal["id"].as_str())
        .map(str::to_owned)
}

/// A user-assigned identity's ARM id with its fixed segments in the case Azure writes them
/// (names such as the resource group's keep the case given).
fn as_azure_writes(arm_id: &str) -> String {
    arm_id.replace("/resourcegroups/", "/resourceGroups/").replace(
        "/providers/microsoft.managedidentity/userassignedidentities/",
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/",
    )
}

/// The ARM ids once each, first spelling kept.
fn unique_ignoring_case(ids: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    ids.iter().filter(|id| seen.insert(id.to_ascii_lowercase())).cloned().collect()
}

/// Of two groups with one mailNickname, the one the tool owns; two owned ones are an error
/// that names both.
fn pick_group(email: &str, kept: KnownGroup, other: KnownGroup) -> Result<KnownGroup, DirectoryError> {
    match (kept.owned, other.owned) {
        (true, true) => Err(duplicate_groups(email, &kept.id, &other.id)),
        (false, true) => Ok(other),
        _ => Ok(kept),
    }
}

fn duplicate_groups(email: &str, first: &str, second: &str) -> DirectoryError {
    DirectoryError::Rejected(format!(
        "{email}: two groups managed by cpg-infra share this mailNickname (ids {first} and {second}); keep one: \
         move any members only the other has, delete it (`az ad group delete --group <id>`), and sync again"
    ))
}

/// The service principal of a managed identity lists the identity's ARM id among its
/// alternative names (whether Graph compares them without regard to case is not documented).
fn identity_filter(arm_id: &str) -> String {
    format!("alternativeNames/any(x:x eq '{}')", arm_id.replace('\'', "''"))
}

/// One answer inside a `$batch`.
struct SubResponse {
    status: u16,
    body: Value,
    retry_after: Option<Duration>,
}

impl SubResponse {
    /// The failure a non-success answer stands for.
    fn error(&self) -> CallError {
        CallError::from_answer(self.status, &self.body, self.retry_after)
    }
}

/// The users whose principal name or mail is `key`.
fn user_filter(key: &str) -> String {
    let quoted = key.replace('\'', "''");
    format!("userPrincipalName eq '{quoted}' or mail eq '{quoted}'")
}

/// The id of the first object of a collection answer.
fn first_id(page: &Value) -> Option<String> {
    page["value"].as_array().and_then(|items| items.first()).and_then(|item| item["id"].as_str()).map(str::to_owned)
}

/// Object ids are GUIDs; anything else in `people.toml`'s `azure` field is a principal name.
fn looks_like_object_id(value: &str) -> bool {
    value.len() == 36
        && value
            .chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

fn unresolvable(member_email: &str) -> DirectoryError {
    if let Some(arm_id) = member_email.strip_prefix(AZURE_IDENTITY_PREFIX) {
        return DirectoryError::Rejected(format!(
            "{member_email}: no service principal in the tenant has the alternative name {arm_id} (is the managed identity deployed? `cpg-infra infra up` makes it)"
        ));
    }
    DirectoryError::Rejected(format!(
        "{member_email}: no user in the tenant with that principal name or mail (set `azure` for this person in people.toml)"
    ))
}

/// A read that does not find what the directory just reported or accepted: replication lag.
fn lagging(method: &str, subject: &str) -> DirectoryError {
    DirectoryError::Unavailable(format!("{method} {subject}: not found yet (the directory has not caught up)"))
}

fn is_owned(group: &Value) -> bool {
    group["description"].as_str().is_some_and(|d| d.contains(OWNER_MARKER))
}

fn owned_description(description: &str) -> String {
    if description.is_empty() {
        format!("[{OWNER_MARKER}]")
    } else {
        format!("{description} [{OWNER_MARKER}]")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_answers_match_the_arm_id_without_regard_to_case() {
        let rendered =
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hail";
        let page = json!({ "value": [
            { "id": "other", "alternativeNames": ["isExplicit=True", "/subscriptions/s/resourceGroups/rg2/x"] },
            { "id": "ours", "alternativeNames": ["isExplicit=True", rendered.to_lowercase()] },
        ] });
        assert_eq!(identity_match(&page, rendered).as_deref(), Some("ours"));
        assert_eq!(identity_match(&json!({ "value": [] }), rendered), None);
        assert_eq!(
            as_azure_writes(&rendered.to_lowercase()),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hail"
        );
    }

    #[test]
    fn object_ids_are_guids() {
        assert!(looks_like_object_id("0d3f7c1e-0000-4000-8000-00000000002a"));
        assert!(!looks_like_object_id("alice@example.org"));
    }

    #[test]
    fn ownership_is_the_description_marker() {
        assert!(is_owned(&json!({ "description": owned_description("Analysts") })));
        assert!(!is_owned(&json!({ "description": "Analysts" })));
    }
}
