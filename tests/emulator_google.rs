//! The Cloud Identity emulator driven by the real `google-cloudidentity1` client over HTTP on
//! 127.0.0.1: wire format, paging, errors, credentials, injected faults and call counts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator, MemberInfo, SeedGroup};
use cpg_infra::emulator::FaultPlan;
use google_cloudidentity1::api::{
    EntityKey, ExpiryDetail, Group, Membership, MembershipRole, ModifyMembershipRolesRequest, Operation,
    UpdateMembershipRolesParams,
};
use google_cloudidentity1::common::{Delegate, Response, Retry};
use google_cloudidentity1::hyper_rustls::HttpsConnector;
use google_cloudidentity1::hyper_util::client::legacy::connect::HttpConnector;
use google_cloudidentity1::{hyper_rustls, hyper_util, CloudIdentity, Error, FieldMask};

const TOKEN: &str = "test-token";
const CUSTOMER: &str = "C03example";
const PARENT: &str = "customers/C03example";
const FORUM_LABEL: &str = "cloudidentity.googleapis.com/groups.discussion_forum";

type Hub = CloudIdentity<HttpsConnector<HttpConnector>>;

fn start(options: EmulatorOptions) -> GoogleEmulator {
    GoogleEmulator::start(options).expect("start the emulator")
}

/// A premium customer (membership expiry available), as most tests need.
fn emulator() -> GoogleEmulator {
    start(EmulatorOptions {
        customer: CUSTOMER.to_owned(),
        token: Some(TOKEN.to_owned()),
        premium: true,
        ..EmulatorOptions::default()
    })
}

/// The client exactly as a provider builds it, pointed at the emulator.
fn connect(base_url: &str, token: &str) -> Hub {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .expect("TLS root certificates")
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let mut hub = CloudIdentity::new(client, token.to_owned());
    hub.base_url(base_url.to_owned());
    hub.root_url(base_url.to_owned());
    hub
}

fn seed(emulator: &GoogleEmulator, email: &str, members: &[&str]) {
    emulator.insert_group(SeedGroup {
        email: email.to_owned(),
        display_name: email.split('@').next().unwrap_or_default().to_owned(),
        members: members.iter().map(|m| m.to_string()).collect(),
        ..SeedGroup::default()
    });
}

fn group_request(email: &str, parent: &str) -> Group {
    Group {
        group_key: Some(EntityKey { id: Some(email.to_owned()), namespace: None }),
        parent: Some(parent.to_owned()),
        display_name: Some("Analysts".to_owned()),
        description: Some("Made by cpg-infra".to_owned()),
        labels: Some(HashMap::from([(FORUM_LABEL.to_owned(), String::new())])),
        ..Group::default()
    }
}

fn membership_request(email: &str) -> Membership {
    Membership {
        preferred_member_key: Some(EntityKey { id: Some(email.to_owned()), namespace: None }),
        roles: Some(vec![MembershipRole { name: Some("MEMBER".to_owned()), ..MembershipRole::default() }]),
        ..Membership::default()
    }
}

/// The HTTP status and Google status of a failed call. With a JSON error body the client
/// returns `Error::BadRequest(body)` whatever the status; headers are only seen by a delegate.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> (u64, String) {
    match result {
        Err(Error::BadRequest(body)) => {
            let code = body["error"]["code"].as_u64().expect("error.code");
            (code, body["error"]["status"].as_str().expect("error.status").to_owned())
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn operation_response(operation: &Operation) -> &HashMap<String, serde_json::Value> {
    assert_eq!(operation.done, Some(true));
    operation.response.as_ref().expect("a finished operation carries its response")
}

/// Lists every group of the customer; returns the emails and the number of pages.
async fn list_groups(hub: &Hub, page_size: Option<i32>) -> (Vec<String>, usize) {
    let mut emails = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut call = hub.groups().list().parent(PARENT).view("BASIC");
        if let Some(size) = page_size {
            call = call.page_size(size);
        }
        if let Some(token) = &token {
            call = call.page_token(token);
        }
        let (_, page) = call.doit().await.expect("groups.list");
        pages += 1;
        emails.extend(page.groups.unwrap_or_default().into_iter().map(|g| g.group_key.unwrap().id.unwrap()));
        token = page.next_page_token;
        if token.is_none() {
            return (emails, pages);
        }
    }
}

/// Lists every membership of `group` (`groups/ID`); returns the member emails and the pages.
async fn list_members(hub: &Hub, group: &str, page_size: i32) -> (Vec<Membership>, usize) {
    let mut members = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut call = hub.groups().memberships_list(group).view("FULL").page_size(page_size);
        if let Some(token) = &token {
            call = call.page_token(token);
        }
        let (_, page) = call.doit().await.expect("memberships.list");
        pages += 1;
        members.extend(page.memberships.unwrap_or_default());
        token = page.next_page_token;
        if token.is_none() {
            return (members, pages);
        }
    }
}

fn member_email(membership: &Membership) -> String {
    membership.preferred_member_key.as_ref().and_then(|k| k.id.clone()).expect("preferredMemberKey.id")
}

async fn group_name(hub: &Hub, email: &str) -> String {
    hub.groups().lookup().group_key_id(email).doit().await.expect("groups.lookup").1.name.expect("name")
}

/// Records what the client's error value loses (status, Retry-After) and retries a few times,
/// waiting as the server asked.
#[derive(Default)]
struct RetryingObserver {
    retries_left: u32,
    failures: Vec<(u16, Option<String>)>,
}

impl Delegate for RetryingObserver {
    fn http_failure(&mut self, response: &Response, _body: Option<&serde_json::Value>) -> Retry {
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().expect("ASCII header").to_owned());
        self.failures.push((response.status().as_u16(), retry_after.clone()));
        if self.retries_left == 0 {
            return Retry::Abort;
        }
        self.retries_left -= 1;
        let seconds = retry_after.and_then(|v| v.parse().ok()).unwrap_or(0);
        Retry::After(Duration::from_secs(seconds))
    }
}

#[tokio::test]
async fn groups_are_created_read_patched_looked_up_and_deleted() {
    let emulator = emulator();
    let hub = connect(&emulator.base_url(), TOKEN);

    let (_, operation) = hub
        .groups()
        .create(group_request("Analysts@Groups.Example.org", PARENT))
        .initial_group_config("EMPTY")
        .doit()
        .await
        .expect("groups.create");
    let created = operation_response(&operation);
    assert_eq!(created["@type"], "type.googleapis.com/google.apps.cloudidentity.groups.v1.Group");
    let name = created["name"].as_str().expect("name").to_owned();
    let id = name.strip_prefix("groups/").expect("groups/ID");
    assert!(!id.is_empty() && !id.contains("analysts"), "ids are opaque: {name}");
    assert_eq!(created["groupKey"]["id"], "analysts@groups.example.org");
    assert_eq!(created["parent"], PARENT);
    assert_eq!(created["labels"][FORUM_LABEL], "");

    // Lookups ignore case; get returns the full group.
    assert_eq!(group_name(&hub, "ANALYSTS@groups.example.org").await, name);
    let (_, group) = hub.groups().get(&name).doit().await.expect("groups.get");
    assert_eq!(group.display_name.as_deref(), Some("Analysts"));
    assert_eq!(group.description.as_deref(), Some("Made by cpg-infra"));
    assert!(group.create_time.is_some());

    // The same email again is a conflict; another customer or no key is refused.
    let again = hub.groups().create(group_request("analysts@groups.example.org", PARENT)).doit().await;
    assert_eq!(api_error(again), (409, "ALREADY_EXISTS".to_owned()));
    let elsewhere = hub.groups().create(group_request("x@groups.example.org", "customers/C0other")).doit().await;
    assert_eq!(api_error(elsewhere), (400, "INVALID_ARGUMENT".to_owned()));
    let keyless = Group { group_key: None, ..group_request("x@groups.example.org", PARENT) };
    assert_eq!(api_error(hub.groups().create(keyless).doit().await), (400, "INVALID_ARGUMENT".to_owned()));

    let patch = Group { description: Some("Changed".to_owned()), ..Group::default() };
    let (_, operation) = hub
        .groups()
        .patch(patch, &name)
        .update_mask(FieldMask::new(&["description"]))
        .doit()
        .await
        .expect("groups.patch");
    assert_eq!(operation_response(&operation)["description"], "Changed");
    let stored = &emulator.groups()["analysts@groups.example.org"];
    assert_eq!((stored.name.as_str(), stored.description.as_str()), (name.as_str(), "Changed"));
    assert_eq!(stored.display_name, "Analysts", "fields outside the mask stay");

    let (_, operation) = hub.groups().delete(&name).doit().await.expect("groups.delete");
    assert_eq!(operation.done, Some(true));
    assert!(emulator.groups().is_empty());
    let gone = hub.groups().lookup().group_key_id("analysts@groups.example.org").doit().await;
    assert_eq!(api_error(gone), (403, "PERMISSION_DENIED".to_owned()));
    assert_eq!(api_error(hub.groups().get(&name).doit().await), (403, "PERMISSION_DENIED".to_owned()));
}

#[tokio::test]
async fn groups_list_pages_in_order_without_duplicates() {
    let emulator = emulator();
    for index in [4, 0, 6, 2, 5, 1, 3] {
        seed(&emulator, &format!("g{index}@groups.example.org"), &[]);
    }
    let hub = connect(&emulator.base_url(), TOKEN);
    let expected: Vec<String> = (0..7).map(|i| format!("g{i}@groups.example.org")).collect();

    let (emails, pages) = list_groups(&hub, Some(3)).await;
    assert_eq!((emails.as_slice(), pages), (expected.as_slice(), 3));
    assert_eq!(emulator.calls()["groups.list"], 3);

    // The emulator's cap wins over a larger request, and over the default.
    let capped = start(EmulatorOptions { max_page_size: 2, ..EmulatorOptions::default() });
    for email in &expected {
        seed(&capped, email, &[]);
    }
    let capped_hub = connect(&capped.base_url(), "any token: none is required");
    assert_eq!(list_groups(&capped_hub, Some(500)).await, (expected.clone(), 4));
    assert_eq!(list_groups(&capped_hub, None).await, (expected, 4));

    // Another customer's groups are not ours to list; a token from elsewhere is refused.
    let other = hub.groups().list().parent("customers/C0other").doit().await;
    assert_eq!(api_error(other), (403, "PERMISSION_DENIED".to_owned()));
    let forged = hub.groups().list().parent(PARENT).page_token("0123").doit().await;
    assert_eq!(api_error(forged), (400, "INVALID_ARGUMENT".to_owned()));
}

#[tokio::test]
async fn memberships_are_created_listed_looked_up_and_deleted() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    seed(&emulator, "nested@groups.example.org", &[]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;

    let people = [
        "Alice@Example.org",
        "bob@example.org",
        "carol@example.org",
        "first.last+tag@example.org",
        "nested@groups.example.org",
        "robot@project.iam.gserviceaccount.com",
        "zed@example.org",
    ];
    for person in people {
        let (_, operation) =
            hub.groups().memberships_create(membership_request(person), &team).doit().await.expect("create");
        let created = operation_response(&operation);
        assert_eq!(created["@type"], "type.googleapis.com/google.apps.cloudidentity.groups.v1.Membership");
        assert!(created["name"].as_str().unwrap().starts_with(&format!("{team}/memberships/")));
    }
    let (members, pages) = list_members(&hub, &team, 3).await;
    assert_eq!(pages, 3);
    let emails: Vec<String> = members.iter().map(member_email).collect();
    let mut expected: Vec<String> = people.iter().map(|p| p.to_ascii_lowercase()).collect();
    expected.sort();
    assert_eq!(emails, expected, "lowercased, sorted, each once");
    let types: BTreeMap<String, String> =
        members.iter().map(|m| (member_email(m), m.type_.clone().unwrap_or_default())).collect();
    assert_eq!(types["alice@example.org"], "USER");
    assert_eq!(types["nested@groups.example.org"], "GROUP");
    assert_eq!(types["robot@project.iam.gserviceaccount.com"], "SERVICE_ACCOUNT");
    assert!(members.iter().all(|m| m.roles.as_ref().unwrap()[0].name.as_deref() == Some("MEMBER")));

    // Already a member (whatever the case), unknown group, unknown member.
    let twice = hub.groups().memberships_create(membership_request("BOB@example.org"), &team).doit().await;
    assert_eq!(api_error(twice), (409, "ALREADY_EXISTS".to_owned()));
    let nowhere =
        hub.groups().memberships_create(membership_request("bob@example.org"), "groups/0missing").doit().await;
    assert_eq!(api_error(nowhere), (403, "PERMISSION_DENIED".to_owned()));
    let no_list = hub.groups().memberships_list("groups/0missing").doit().await;
    assert_eq!(api_error(no_list), (403, "PERMISSION_DENIED".to_owned()));

    // Lookup (the `+` survives query encoding), delete by the returned name, then it is gone.
    let (_, found) = hub
        .groups()
        .memberships_lookup(&team)
        .member_key_id("first.last+tag@example.org")
        .doit()
        .await
        .expect("memberships.lookup");
    let membership = found.name.expect("name");
    let (_, operation) = hub.groups().memberships_delete(&membership).doit().await.expect("memberships.delete");
    assert_eq!(operation.done, Some(true));
    let again = hub.groups().memberships_delete(&membership).doit().await;
    assert_eq!(api_error(again), (404, "NOT_FOUND".to_owned()));
    let lookup = hub.groups().memberships_lookup(&team).member_key_id("first.last+tag@example.org").doit().await;
    assert_eq!(api_error(lookup), (404, "NOT_FOUND".to_owned()));
    assert!(!emulator.groups()["team@groups.example.org"].members.contains_key("first.last+tag@example.org"));
}

#[tokio::test]
async fn member_expiry_is_stored_and_shown_in_the_full_view() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let expires = "2027-01-31T00:00:00Z".parse().unwrap();
    let request = Membership {
        roles: Some(vec![MembershipRole {
            name: Some("MEMBER".to_owned()),
            expiry_detail: Some(ExpiryDetail { expire_time: Some(expires) }),
            ..MembershipRole::default()
        }]),
        ..membership_request("temp@example.org")
    };
    hub.groups().memberships_create(request, &team).doit().await.expect("create");

    let stored = &emulator.groups()["team@groups.example.org"].members["temp@example.org"];
    assert_eq!(
        stored,
        &MemberInfo {
            roles: vec!["MEMBER".to_owned()],
            expire_time: Some("2027-01-31T00:00:00Z".to_owned()),
            kind: "USER".to_owned()
        }
    );
    let (_, full) = hub.groups().memberships_list(&team).view("FULL").doit().await.expect("list");
    let memberships = full.memberships.unwrap();
    let role = &memberships[0].roles.as_ref().unwrap()[0];
    assert_eq!(role.expiry_detail.as_ref().and_then(|d| d.expire_time), Some(expires));
    let (_, basic) = hub.groups().memberships_list(&team).doit().await.expect("list");
    assert!(basic.memberships.unwrap()[0].roles.as_ref().unwrap()[0].expiry_detail.is_none());
}

#[tokio::test]
async fn paging_continues_after_members_added_between_pages() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &["b@x.org", "d@x.org", "f@x.org", "h@x.org"]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let (_, first) = hub.groups().memberships_list(&team).page_size(2).doit().await.expect("page 1");
    let token = first.next_page_token.expect("more pages");
    emulator.add_member_directly("team@groups.example.org", "a@x.org");
    emulator.add_member_directly("team@groups.example.org", "e@x.org");
    let (_, second) = hub.groups().memberships_list(&team).page_size(2).page_token(&token).doit().await.expect("2");
    let seen: Vec<String> =
        first.memberships.unwrap().iter().chain(&second.memberships.unwrap()).map(member_email).collect();
    assert_eq!(seen, ["b@x.org", "d@x.org", "e@x.org", "f@x.org"]);
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_unauthenticated() {
    let emulator = emulator();
    let wrong = connect(&emulator.base_url(), "stolen");
    let refused = wrong.groups().list().parent(PARENT).doit().await;
    assert_eq!(api_error(refused), (401, "UNAUTHENTICATED".to_owned()));
    let mut observer = RetryingObserver::default();
    let refused = wrong.groups().lookup().group_key_id("a@b.org").delegate(&mut observer).doit().await;
    assert!(refused.is_err());
    assert_eq!(observer.failures, [(401, None)]);
    assert_eq!(emulator.calls(), BTreeMap::from([("groups.list".to_owned(), 1), ("groups.lookup".to_owned(), 1)]));
    let right = connect(&emulator.base_url(), TOKEN);
    assert!(right.groups().list().parent(PARENT).doit().await.is_ok());
}

#[tokio::test]
async fn throttling_carries_retry_after_and_the_client_retries_only_through_a_delegate() {
    let emulator = emulator();
    let hub = connect(&emulator.base_url(), TOKEN);
    let throttle = |retry_after: u64| FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(retry_after),
        max_faults: Some(1),
        ..FaultPlan::default()
    };

    // Without a delegate the client gives up at once: one request, the JSON body, no headers.
    emulator.set_faults(throttle(7));
    let throttled = hub.groups().list().parent(PARENT).doit().await;
    assert_eq!(api_error(throttled), (429, "RESOURCE_EXHAUSTED".to_owned()));
    assert_eq!(emulator.calls()["groups.list"], 1, "the client retried by itself");

    // A delegate sees the status and Retry-After, and can ask the client to try again.
    emulator.set_faults(throttle(7));
    let mut observer = RetryingObserver::default();
    let aborted = hub.groups().list().parent(PARENT).delegate(&mut observer).doit().await;
    assert!(aborted.is_err());
    assert_eq!(observer.failures, [(429, Some("7".to_owned()))]);

    emulator.set_faults(throttle(0));
    emulator.reset_calls();
    let mut observer = RetryingObserver { retries_left: 3, ..RetryingObserver::default() };
    let retried = hub.groups().list().parent(PARENT).delegate(&mut observer).doit().await;
    assert!(retried.is_ok(), "{retried:?}");
    assert_eq!(observer.failures, [(429, Some("0".to_owned()))]);
    assert_eq!(emulator.calls()["groups.list"], 2);
}

#[tokio::test]
async fn outages_and_dropped_connections_are_errors_and_change_nothing() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let always = |plan: FaultPlan| FaultPlan { max_faults: Some(1), ..plan };

    emulator.set_faults(always(FaultPlan { rate_503: 1.0, ..FaultPlan::default() }));
    let unavailable = hub.groups().memberships_create(membership_request("a@x.org"), &team).doit().await;
    assert_eq!(api_error(unavailable), (503, "UNAVAILABLE".to_owned()));

    emulator.set_faults(always(FaultPlan { rate_500: 1.0, ..FaultPlan::default() }));
    let internal = hub.groups().create(group_request("new@groups.example.org", PARENT)).doit().await;
    assert_eq!(api_error(internal), (500, "INTERNAL".to_owned()));

    emulator.set_faults(always(FaultPlan { rate_drop: 1.0, ..FaultPlan::default() }));
    let dropped = hub.groups().memberships_create(membership_request("b@x.org"), &team).doit().await;
    assert!(matches!(dropped, Err(Error::HttpError(_))), "{dropped:?}");

    let groups = emulator.groups();
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["team@groups.example.org"]);
    assert!(groups["team@groups.example.org"].members.is_empty(), "a faulted write changed state");
    assert_eq!(emulator.calls()["groups.memberships.create"], 2);
    // The plan is spent: the same writes now go through, on a fresh connection after the drop.
    hub.groups().memberships_create(membership_request("b@x.org"), &team).doit().await.expect("after the drop");
}

#[tokio::test]
async fn seeded_faults_are_reproducible_and_limited_to_the_chosen_methods() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &["a@x.org"]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let plan = |seed: u64| FaultPlan {
        seed,
        rate_429: 0.25,
        rate_503: 0.25,
        rate_500: 0.2,
        methods: Some(BTreeSet::from(["groups.memberships.list".to_owned()])),
        ..FaultPlan::default()
    };
    let outcomes = |seed: u64| {
        emulator.set_faults(plan(seed));
        let (hub, team) = (&hub, &team);
        async move {
            let mut outcomes = Vec::new();
            for _ in 0..24 {
                // Not in `methods`: never faulted, and it does not move the sequence along.
                hub.groups().lookup().group_key_id("team@groups.example.org").doit().await.expect("lookup");
                let listed = hub.groups().memberships_list(team).doit().await;
                outcomes.push(if listed.is_ok() { 200 } else { api_error(listed).0 });
            }
            outcomes
        }
    };
    let first = outcomes(42).await;
    assert_eq!(outcomes(42).await, first);
    assert_ne!(outcomes(43).await, first);
    let kinds: BTreeSet<u64> = first.iter().copied().collect();
    assert_eq!(kinds, BTreeSet::from([200, 429, 500, 503]), "{first:?}");
}

#[tokio::test]
async fn a_fresh_membership_is_missing_from_the_next_listings_of_its_group() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &["old@x.org"]);
    emulator.set_faults(FaultPlan { membership_listing_lag: 2, ..FaultPlan::default() });
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    hub.groups().memberships_create(membership_request("new@x.org"), &team).doit().await.expect("create");
    assert!(emulator.groups()["team@groups.example.org"].members.contains_key("new@x.org"));

    let listed = |hub: &Hub, team: &str| {
        let (hub, team) = (hub.clone(), team.to_owned());
        async move { list_members(&hub, &team, 100).await.0.iter().map(member_email).collect::<Vec<_>>() }
    };
    assert_eq!(listed(&hub, &team).await, ["old@x.org"]);
    assert_eq!(listed(&hub, &team).await, ["old@x.org"]);
    assert_eq!(listed(&hub, &team).await, ["new@x.org", "old@x.org"]);
}

#[tokio::test]
async fn a_fresh_group_lags_behind_in_listings_and_reads_but_not_in_writes() {
    let emulator = emulator();
    emulator.set_faults(FaultPlan { group_listing_lag: 1, group_read_lag: 2, ..FaultPlan::default() });
    let hub = connect(&emulator.base_url(), TOKEN);
    let (_, operation) =
        hub.groups().create(group_request("late@groups.example.org", PARENT)).doit().await.expect("groups.create");
    let name = operation_response(&operation)["name"].as_str().expect("name").to_owned();

    // Creating it again is a conflict, yet the lookup does not find it for two reads.
    let again = hub.groups().create(group_request("late@groups.example.org", PARENT)).doit().await;
    assert_eq!(api_error(again), (409, "ALREADY_EXISTS".to_owned()));
    assert_eq!(list_groups(&hub, None).await.0, Vec::<String>::new());
    let lookup = hub.groups().lookup().group_key_id("late@groups.example.org").doit().await;
    assert_eq!(api_error(lookup), (403, "PERMISSION_DENIED".to_owned()));
    let members = hub.groups().memberships_list(&name).doit().await;
    assert_eq!(api_error(members), (403, "PERMISSION_DENIED".to_owned()));
    // Writes see it at once; reads after the lag see it too.
    hub.groups().memberships_create(membership_request("a@x.org"), &name).doit().await.expect("create");
    assert_eq!(list_groups(&hub, None).await.0, ["late@groups.example.org"]);
    assert_eq!(group_name(&hub, "late@groups.example.org").await, name);
    assert_eq!(list_members(&hub, &name, 10).await.0.iter().map(member_email).collect::<Vec<_>>(), ["a@x.org"]);
}

#[tokio::test]
async fn chosen_groups_cannot_be_created() {
    let emulator = emulator();
    emulator.set_faults(FaultPlan {
        reject_groups: BTreeSet::from(["broken@groups.example.org".to_owned()]),
        ..FaultPlan::default()
    });
    let hub = connect(&emulator.base_url(), TOKEN);
    let refused = hub.groups().create(group_request("Broken@groups.example.org", PARENT)).doit().await;
    assert_eq!(api_error(refused), (400, "INVALID_ARGUMENT".to_owned()));
    hub.groups().create(group_request("fine@groups.example.org", PARENT)).doit().await.expect("groups.create");
    assert_eq!(emulator.groups().keys().collect::<Vec<_>>(), ["fine@groups.example.org"]);
}

#[tokio::test]
async fn a_membership_keeps_the_type_it_was_created_with() {
    let emulator = emulator();
    seed(&emulator, "outer@groups.example.org", &[]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let outer = group_name(&hub, "outer@groups.example.org").await;
    // Added before the group exists: a user, and still a user once the group is created.
    hub.groups().memberships_create(membership_request("inner@groups.example.org"), &outer).doit().await.expect("add");
    hub.groups().create(group_request("inner@groups.example.org", PARENT)).doit().await.expect("groups.create");
    hub.groups().create(group_request("other@groups.example.org", PARENT)).doit().await.expect("groups.create");
    hub.groups().memberships_create(membership_request("other@groups.example.org"), &outer).doit().await.expect("add");
    let (members, _) = list_members(&hub, &outer, 10).await;
    let types: Vec<(String, String)> =
        members.iter().map(|m| (member_email(m), m.type_.clone().expect("type"))).collect();
    assert_eq!(
        types,
        [
            ("inner@groups.example.org".to_owned(), "USER".to_owned()),
            ("other@groups.example.org".to_owned(), "GROUP".to_owned())
        ]
    );
    assert_eq!(emulator.groups()["outer@groups.example.org"].members["inner@groups.example.org"].kind, "USER");
}

#[tokio::test]
async fn membership_expiry_is_updated_and_cleared_in_place() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let (_, operation) =
        hub.groups().memberships_create(membership_request("a@x.org"), &team).doit().await.expect("create");
    let membership = operation_response(&operation)["name"].as_str().expect("name").to_owned();
    let update = |expire_time: Option<&str>| ModifyMembershipRolesRequest {
        update_roles_params: Some(vec![UpdateMembershipRolesParams {
            field_mask: Some(FieldMask::new(&["expiry_detail.expire_time"])),
            membership_role: Some(MembershipRole {
                name: Some("MEMBER".to_owned()),
                expiry_detail: expire_time.map(|t| ExpiryDetail { expire_time: Some(t.parse().expect("time")) }),
                ..MembershipRole::default()
            }),
        }]),
        ..ModifyMembershipRolesRequest::default()
    };
    let expiry =
        |emulator: &GoogleEmulator| emulator.groups()["team@groups.example.org"].members["a@x.org"].expire_time.clone();

    let (_, answer) = hub
        .groups()
        .memberships_modify_membership_roles(update(Some("2027-04-01T00:00:00Z")), &membership)
        .doit()
        .await
        .expect("modifyMembershipRoles");
    let roles = answer.membership.and_then(|m| m.roles).expect("roles");
    assert_eq!(
        roles[0].expiry_detail.as_ref().and_then(|d| d.expire_time).map(|t| t.to_rfc3339()).as_deref(),
        Some("2027-04-01T00:00:00+00:00")
    );
    assert_eq!(expiry(&emulator).as_deref(), Some("2027-04-01T00:00:00Z"));

    hub.groups().memberships_modify_membership_roles(update(None), &membership).doit().await.expect("clear");
    assert_eq!(expiry(&emulator), None);

    // Only the MEMBER role's expiry can be updated, and a missing membership is not found.
    let mut other_field = update(None);
    other_field.update_roles_params.as_mut().unwrap()[0].field_mask = Some(FieldMask::new(&["name"]));
    let refused = hub.groups().memberships_modify_membership_roles(other_field, &membership).doit().await;
    assert_eq!(api_error(refused), (400, "INVALID_ARGUMENT".to_owned()));
    let missing = format!("{team}/memberships/1ffffffffffffff");
    let absent = hub.groups().memberships_modify_membership_roles(update(None), &missing).doit().await;
    assert_eq!(api_error(absent), (404, "NOT_FOUND".to_owned()));
    assert_eq!(emulator.calls()["groups.memberships.modifyMembershipRoles"], 4);
}

#[tokio::test]
async fn rejected_members_are_invalid_arguments() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    emulator.set_faults(FaultPlan {
        reject_members: BTreeSet::from(["blocked@elsewhere.org".to_owned()]),
        ..FaultPlan::default()
    });
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let refused = hub.groups().memberships_create(membership_request("Blocked@elsewhere.org"), &team).doit().await;
    assert_eq!(api_error(refused), (400, "INVALID_ARGUMENT".to_owned()));
    hub.groups().memberships_create(membership_request("fine@example.org"), &team).doit().await.expect("create");
    let members: Vec<String> = emulator.groups()["team@groups.example.org"].members.keys().cloned().collect();
    assert_eq!(members, ["fine@example.org"]);
}

#[tokio::test]
async fn calls_are_counted_per_method_and_direct_edits_are_not() {
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &["a@x.org"]);
    emulator.add_member_directly("Team@groups.example.org", "B@x.org");
    emulator.remove_member_directly("team@groups.example.org", "a@x.org");
    assert_eq!(emulator.total_calls(), 0);
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    let (members, _) = list_members(&hub, &team, 10).await;
    assert_eq!(members.iter().map(member_email).collect::<Vec<_>>(), ["b@x.org"]);
    hub.groups().memberships_create(membership_request("c@x.org"), &team).doit().await.expect("create");
    let twice = hub.groups().memberships_create(membership_request("c@x.org"), &team).doit().await;
    assert!(twice.is_err());
    let expected = BTreeMap::from([
        ("groups.lookup".to_owned(), 1),
        ("groups.memberships.create".to_owned(), 2),
        ("groups.memberships.list".to_owned(), 1),
    ]);
    assert_eq!(emulator.calls(), expected);
    assert_eq!(emulator.total_calls(), 4);
    emulator.reset_calls();
    assert!(emulator.calls().is_empty());
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let latency = Duration::from_millis(60);
    let emulator = start(EmulatorOptions { latency, ..EmulatorOptions::default() });
    let hub = connect(&emulator.base_url(), TOKEN);
    let started = Instant::now();
    hub.groups().list().parent(PARENT).doit().await.expect("list");
    hub.groups().list().parent(PARENT).doit().await.expect("list");
    assert!(started.elapsed() >= latency * 2, "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_cli_serves_until_killed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpg-infra"))
        .args(["emulator", "google", "--port", "0", "--customer", "C01cli"])
        .args(["--reject-group", "broken@groups.example.org", "--group-listing-lag", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cpg-infra emulator google");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{url}");
    let hub = connect(url, "any");
    let listed = hub.groups().list().parent("customers/C01cli").doit().await;
    // The fault flags apply: a refused creation, and a new group missing from one listing.
    let refused = hub.groups().create(group_request("broken@groups.example.org", "customers/C01cli")).doit().await;
    let created = hub.groups().create(group_request("fine@groups.example.org", "customers/C01cli")).doit().await;
    let lagging = hub.groups().list().parent("customers/C01cli").doit().await;
    let caught_up = hub.groups().list().parent("customers/C01cli").doit().await;
    let still_running = child.try_wait().expect("child status").is_none();
    child.kill().expect("stop the emulator");
    child.wait().expect("reap the emulator");
    assert!(still_running);
    assert!(listed.expect("groups.list").1.groups.is_none());
    assert_eq!(api_error(refused), (400, "INVALID_ARGUMENT".to_owned()));
    created.expect("groups.create");
    assert!(lagging.expect("groups.list").1.groups.is_none());
    assert_eq!(caught_up.expect("groups.list").1.groups.map(|g| g.len()), Some(1));
}

/// The Groups Settings client exactly as the provider builds it, pointed at the emulator.
fn connect_settings(base_url: &str) -> google_groupssettings1::Groupssettings<HttpsConnector<HttpConnector>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .expect("TLS root certificates")
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let mut hub = google_groupssettings1::Groupssettings::new(client, TOKEN.to_owned());
    hub.base_url(format!("{base_url}groups/v1/groups/"));
    hub.root_url(base_url.to_owned());
    hub
}

#[tokio::test]
async fn group_settings_start_at_the_defaults_and_a_patch_changes_only_its_fields() {
    use google_groupssettings1::api::Groups;
    let emulator = emulator();
    seed(&emulator, "team@groups.example.org", &[]);
    let hub = connect_settings(&emulator.base_url());

    let (_, read) = hub.groups().get("team@groups.example.org").doit().await.expect("get");
    assert_eq!(read.email.as_deref(), Some("team@groups.example.org"));
    assert_eq!(read.who_can_join.as_deref(), Some("CAN_REQUEST_TO_JOIN"));
    assert_eq!(read.is_archived.as_deref(), Some("false"));

    let patch = Groups { who_can_join: Some("INVITED_CAN_JOIN".to_owned()), ..Groups::default() };
    let (_, patched) = hub.groups().patch(patch, "team@groups.example.org").doit().await.expect("patch");
    assert_eq!(patched.who_can_join.as_deref(), Some("INVITED_CAN_JOIN"));
    let mut expected = emulator.settings("team@groups.example.org");
    assert_eq!(expected.remove("whoCanJoin").as_deref(), Some("INVITED_CAN_JOIN"));
    assert_eq!(expected.get("whoCanPostMessage").map(String::as_str), Some("ANYONE_CAN_POST"), "{expected:?}");

    // Values the API does not take, and unknown groups, change nothing.
    let bad = Groups { who_can_join: Some("EVERYONE".to_owned()), ..Groups::default() };
    assert_eq!(
        api_error(hub.groups().patch(bad, "team@groups.example.org").doit().await),
        (400, "INVALID_ARGUMENT".into())
    );
    assert_eq!(emulator.settings("team@groups.example.org")["whoCanJoin"], "INVITED_CAN_JOIN");
    assert_eq!(api_error(hub.groups().get("nobody@groups.example.org").doit().await), (404, "NOT_FOUND".into()));
    let patch = Groups { is_archived: Some("true".to_owned()), ..Groups::default() };
    assert_eq!(
        api_error(hub.groups().patch(patch, "nobody@groups.example.org").doit().await),
        (404, "NOT_FOUND".into())
    );

    // Counted per method like every other call; a hand edit is not a request.
    emulator.set_setting_directly("team@groups.example.org", "isArchived", "true");
    let expected =
        BTreeMap::from([("groupsSettings.groups.get".to_owned(), 2), ("groupsSettings.groups.patch".to_owned(), 3)]);
    assert_eq!(emulator.calls(), expected);
}

/// The error message of an API error.
fn api_message<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::BadRequest(body)) => body["error"]["message"].as_str().expect("error.message").to_owned(),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_groups_and_accounts_are_permission_denied_and_expiry_needs_a_premium_customer() {
    let premium = emulator();
    let emulator = start(EmulatorOptions {
        customer: CUSTOMER.to_owned(),
        token: Some(TOKEN.to_owned()),
        ..EmulatorOptions::default()
    });
    seed(&emulator, "team@groups.example.org", &[]);
    emulator.set_faults(FaultPlan { unknown_members: ["ghost@example.org".to_owned()].into(), ..FaultPlan::default() });
    let hub = connect(&emulator.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;

    let lookup = hub.groups().lookup().group_key_id("nobody@groups.example.org").doit().await;
    assert!(api_message(lookup).starts_with("Error(2028): Permission denied for resource"));
    let ghost = hub.groups().memberships_create(membership_request("ghost@example.org"), &team).doit().await;
    let message = api_message(ghost);
    assert!(message.contains("Error(2028)") && message.contains("(or it may not exist)"), "{message}");

    // Not a premium customer: an expiry is refused, the same membership without one is not.
    let mut expiring = membership_request("a@x.org");
    expiring.roles.as_mut().unwrap()[0].expiry_detail =
        Some(ExpiryDetail { expire_time: Some("2027-04-01T00:00:00Z".parse().unwrap()) });
    let refused = hub.groups().memberships_create(expiring.clone(), &team).doit().await;
    assert_eq!(api_error(refused), (403, "PERMISSION_DENIED".to_owned()));
    assert!(emulator.groups()["team@groups.example.org"].members.is_empty(), "a refused request changes nothing");
    hub.groups().memberships_create(membership_request("a@x.org"), &team).doit().await.expect("without expiry");

    seed(&premium, "team@groups.example.org", &[]);
    let hub = connect(&premium.base_url(), TOKEN);
    let team = group_name(&hub, "team@groups.example.org").await;
    hub.groups().memberships_create(expiring, &team).doit().await.expect("a premium customer keeps expiry");
    let stored = premium.groups()["team@groups.example.org"].members["a@x.org"].expire_time.clone();
    assert_eq!(stored.as_deref(), Some("2027-04-01T00:00:00Z"));
}
