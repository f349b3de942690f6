//! The Graph emulator driven by the real `graph-rs-sdk` client over HTTP on 127.0.0.1: wire
//! format, paging, all-or-nothing binds, `$batch`, errors, credentials and injected faults.

use std::collections::BTreeSet;
use std::time::Duration;

use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions, SeedGroup, SeedServicePrincipal, SeedUser};
use cpg_infra::emulator::FaultPlan;
use graph_rs_sdk::http::Url;
use graph_rs_sdk::{GraphClient, GraphClientConfiguration, ODataQuery};
use serde_json::{json, Value};

const TOKEN: &str = "test-token";

fn emulator(max_page_size: usize) -> AzureEmulator {
    let options =
        AzureEmulatorOptions { token: Some(TOKEN.to_owned()), max_page_size, ..AzureEmulatorOptions::default() };
    AzureEmulator::start(options).expect("start the emulator")
}

fn client(emulator: &AzureEmulator, token: &str) -> GraphClient {
    let mut client = GraphClient::from(GraphClientConfiguration::new().access_token(token).https_only(false));
    client.use_test_endpoint(&Url::parse(&format!("{}/v1.0", emulator.base_url())).unwrap());
    client
}

/// Status, Retry-After and JSON body of one request (`Err` for a transport failure).
fn send(request: graph_http::api_impl::RequestHandler) -> Result<(u16, Option<String>, Value), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Ok((status, retry_after, body))
    })
}

fn users(emulator: &AzureEmulator, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let upn = format!("u{i:02}@example.org");
            emulator.insert_user(SeedUser {
                user_principal_name: upn.clone(),
                mail: Some(upn),
                display_name: format!("U{i}"),
            })
        })
        .collect()
}

fn bind(ids: &[String]) -> Value {
    let urls: Vec<String> =
        ids.iter().map(|id| format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")).collect();
    json!({ "members@odata.bind": urls })
}

#[test]
fn groups_are_created_listed_with_filter_select_and_next_links() {
    let emulator = emulator(2);
    let graph = client(&emulator, TOKEN);
    for name in ["a", "b", "c", "d", "e"] {
        let body = json!({"displayName": name, "mailNickname": name, "mailEnabled": false, "securityEnabled": true, "description": "d"});
        let (status, _, created) = send(graph.groups().create_group(&body)).unwrap();
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["securityEnabled"], true);
    }
    let missing = json!({"displayName": "x"});
    let (status, _, error) = send(graph.groups().create_group(&missing)).unwrap();
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "Request_BadRequest", "{error}");
    assert!(error["error"]["message"].is_string());

    let request =
        graph.groups().list_group().filter(&["securityEnabled eq true"]).select(&["id", "mailNickname"]).top("999");
    let (status, _, page) = send(request).unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 2, "pages are capped: {page}");
    assert!(page["value"][0].get("description").is_none(), "$select keeps only what was asked: {page}");
    let next = page["@odata.nextLink"].as_str().expect("a next link");
    assert!(next.starts_with(&emulator.base_url()) && next.contains("$skiptoken="), "{next}");
    let mut seen = 2;
    let mut next = Some(next.to_owned());
    while let Some(link) = next {
        let mut request = graph.custom(graph_rs_sdk::http::Method::GET, None);
        *request.as_mut() = Url::parse(&link).unwrap();
        let (_, _, page) = send(request).unwrap();
        seen += page["value"].as_array().unwrap().len();
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, 5);
    let (_, _, one) = send(graph.groups().list_group().filter(&["mailNickname eq 'C'"])).unwrap();
    assert_eq!(one["value"].as_array().unwrap().len(), 1, "{one}");
}

#[test]
fn binds_are_all_or_nothing_and_at_most_twenty() {
    let emulator = emulator(999);
    let ids = users(&emulator, 22);
    let group = emulator.insert_group(SeedGroup {
        display_name: "g".into(),
        mail_nickname: "g".into(),
        ..SeedGroup::default()
    });
    let graph = client(&emulator, TOKEN);

    let (status, _, error) = send(graph.group(&group).update_group(&bind(&ids[..21]))).unwrap();
    assert_eq!(status, 400, "{error}");
    assert!(emulator.groups()["g"].members.is_empty());

    let (status, _, _) = send(graph.group(&group).update_group(&bind(&ids[..2]))).unwrap();
    assert_eq!(status, 204);
    // One existing member fails the whole request: nobody else is added.
    let (status, _, error) = send(graph.group(&group).update_group(&bind(&ids[1..5]))).unwrap();
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("already exist"), "{error}");
    assert_eq!(emulator.groups()["g"].members.len(), 2);

    let reference = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", ids[3]) });
    assert_eq!(send(graph.group(&group).create_ref_members(&reference)).unwrap().0, 204);
    assert_eq!(send(graph.group(&group).create_ref_members(&reference)).unwrap().0, 400);
    assert_eq!(send(graph.group(&group).delete_ref_members(&ids[3])).unwrap().0, 204);
    assert_eq!(send(graph.group(&group).delete_ref_members(&ids[3])).unwrap().0, 404);

    let (status, _, page) = send(graph.group(&group).list_members().top("999")).unwrap();
    assert_eq!(status, 200);
    let types: BTreeSet<&str> =
        page["value"].as_array().unwrap().iter().map(|m| m["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(types, BTreeSet::from(["#microsoft.graph.user"]));
}

#[test]
fn batches_answer_each_request_on_its_own_in_a_shuffled_order() {
    let emulator = emulator(999);
    let ids = users(&emulator, 20);
    let members: Vec<String> = (0..10).map(|i| format!("u{i:02}@example.org")).collect();
    let group = emulator.insert_group(SeedGroup {
        display_name: "g".into(),
        mail_nickname: "g".into(),
        members,
        ..SeedGroup::default()
    });
    let graph = client(&emulator, TOKEN);

    let requests: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| json!({"id": i.to_string(), "method": "DELETE", "url": format!("/groups/{group}/members/{id}/$ref")}))
        .collect();
    let (status, _, answer) = send(graph.batch(&json!({ "requests": requests }))).unwrap();
    assert_eq!(status, 200);
    let responses = answer["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    let order: Vec<usize> = responses.iter().map(|r| r["id"].as_str().unwrap().parse().unwrap()).collect();
    assert_ne!(order, (0..20).collect::<Vec<_>>(), "answers come in any order");
    for response in responses {
        let index: usize = response["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(response["status"], if index < 10 { 204 } else { 404 }, "{response}");
    }
    assert!(emulator.groups()["g"].members.is_empty());
    assert_eq!(emulator.calls().get("$batch/groups.members.remove"), Some(&20));

    // A request whose dependency failed is not run.
    let chained = json!({"requests": [
        {"id": "1", "method": "DELETE", "url": format!("/groups/{group}/members/{}/$ref", ids[0])},
        {"id": "2", "method": "DELETE", "url": format!("/groups/{group}/$ref-nothing"), "dependsOn": ["1"]},
        {"id": "3", "method": "DELETE", "url": format!("/groups/{group}"), "dependsOn": ["2"]},
    ]});
    let (_, _, answer) = send(graph.batch(&chained)).unwrap();
    let status =
        |id: &str| answer["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["status"].clone();
    assert_eq!((status("1"), status("3")), (json!(404), json!(424)), "{answer}");
    assert!(emulator.groups().contains_key("g"), "a request after a failed dependency ran");

    let too_many: Vec<Value> =
        (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/groups"})).collect();
    assert_eq!(send(graph.batch(&json!({ "requests": too_many }))).unwrap().0, 400);

    // A throttled sub-request carries its own Retry-After.
    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(3),
        methods: Some(BTreeSet::from(["$batch/groups.list".to_owned()])),
        ..FaultPlan::default()
    });
    let one = json!({"requests": [{"id": "1", "method": "GET", "url": "/groups"}]});
    let (_, _, answer) = send(graph.batch(&one)).unwrap();
    assert_eq!(answer["responses"][0]["status"], 429, "{answer}");
    assert_eq!(answer["responses"][0]["headers"]["Retry-After"], "3", "{answer}");
}

#[test]
fn faults_credentials_and_lag_look_like_graph() {
    let emulator = emulator(999);
    let graph = client(&emulator, TOKEN);
    let (status, _, error) = send(client(&emulator, "wrong").groups().list_group()).unwrap();
    assert_eq!(status, 401);
    assert_eq!(error["error"]["code"], "InvalidAuthenticationToken");

    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        retry_after: Duration::from_secs(2),
        max_faults: Some(1),
        ..FaultPlan::default()
    });
    let (status, retry_after, error) = send(graph.groups().list_group()).unwrap();
    assert_eq!((status, retry_after.as_deref()), (429, Some("2")));
    assert_eq!(error["error"]["code"], "TooManyRequests");
    emulator.set_faults(FaultPlan {
        rate_429: 1.0,
        omit_retry_after: true,
        max_faults: Some(1),
        ..FaultPlan::default()
    });
    assert_eq!(send(graph.groups().list_group()).unwrap().1, None);
    emulator.set_faults(FaultPlan { rate_503: 1.0, max_faults: Some(1), ..FaultPlan::default() });
    assert_eq!(send(graph.groups().list_group()).unwrap().0, 503);
    emulator.set_faults(FaultPlan { rate_drop: 1.0, max_faults: Some(1), ..FaultPlan::default() });
    assert!(send(graph.groups().list_group()).is_err(), "the connection is dropped");
    assert_eq!(send(graph.groups().list_group()).unwrap().0, 200);

    // A new group is missing from the next listing and answers 404 to its next two reads.
    emulator.set_faults(FaultPlan { group_listing_lag: 1, group_read_lag: 2, ..FaultPlan::default() });
    let body = json!({"displayName": "n", "mailNickname": "n", "mailEnabled": false, "securityEnabled": true});
    let (_, _, created) = send(graph.groups().create_group(&body)).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, _, page) = send(graph.groups().list_group()).unwrap();
    assert!(page["value"].as_array().unwrap().is_empty());
    assert_eq!(send(graph.group(&id).get_group()).unwrap().0, 404);
    assert_eq!(send(graph.group(&id).list_members()).unwrap().0, 404);
    assert_eq!(send(graph.group(&id).get_group()).unwrap().0, 200);
    assert_eq!(send(graph.groups().list_group()).unwrap().2["value"].as_array().unwrap().len(), 1);
}

#[test]
fn delta_rounds_report_only_what_changed_and_links_expire() {
    let emulator = emulator(2);
    let ids = users(&emulator, 3);
    let members: Vec<String> = (0..2).map(|i| format!("u{i:02}@example.org")).collect();
    emulator.insert_group(SeedGroup {
        display_name: "a".into(),
        mail_nickname: "a".into(),
        members,
        ..SeedGroup::default()
    });
    let b = emulator.insert_group(SeedGroup {
        display_name: "b".into(),
        mail_nickname: "b".into(),
        ..SeedGroup::default()
    });
    emulator.insert_group(SeedGroup { display_name: "c".into(), mail_nickname: "c".into(), ..SeedGroup::default() });
    let graph = client(&emulator, TOKEN);
    let get = |url: &str| {
        let mut request = graph.custom(graph_rs_sdk::http::Method::GET, None);
        *request.as_mut() = Url::parse(url).unwrap();
        send(request).unwrap()
    };

    // The first round: every group with its members, two to a page, then a delta link.
    let (status, _, page) = send(graph.groups().delta().select(&["displayName", "members"])).unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["value"][0]["members@delta"].as_array().unwrap().len(), 2, "{page}");
    let (_, _, last) = get(page["@odata.nextLink"].as_str().expect("a next link"));
    let link = last["@odata.deltaLink"].as_str().expect("a delta link").to_owned();

    // Nothing changed: an empty page.
    let (_, _, quiet) = get(&link);
    assert_eq!(quiet["value"].as_array().unwrap().len(), 0, "{quiet}");
    assert_eq!(quiet["@odata.deltaLink"].as_str(), Some(link.as_str()));

    // One member joins b, one leaves a: only those groups, with only those members.
    emulator.add_member_directly("b", "u02@example.org");
    emulator.remove_member_directly("a", "u00@example.org");
    let (_, _, changed) = get(&link);
    let groups = changed["value"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{changed}");
    let b_entry = groups.iter().find(|g| g["id"] == b.as_str()).unwrap();
    assert_eq!(b_entry["members@delta"], json!([{ "@odata.type": "#microsoft.graph.user", "id": ids[2] }]));
    let a_entry = groups.iter().find(|g| g["id"] != b.as_str()).unwrap();
    assert_eq!(a_entry["members@delta"][0]["id"], ids[0].as_str());
    assert!(a_entry["members@delta"][0].get("@removed").is_some(), "{a_entry}");

    emulator.expire_delta_links();
    let (status, _, error) = get(&link);
    assert_eq!(status, 410);
    assert_eq!(error["error"]["code"], "syncStateNotFound");
}

#[test]
fn service_principals_are_found_by_alternative_name_and_are_members_like_users() {
    let emulator = emulator(999);
    let arm = |rg: &str| {
        format!(
            "/subscriptions/s/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/hail-test"
        )
    };
    // Two identities with one display name, told apart by their ARM ids.
    let principal = |rg: &str| {
        emulator.insert_service_principal(SeedServicePrincipal {
            display_name: "hail-test".into(),
            alternative_names: vec!["isExplicit=True".into(), arm(rg)],
        })
    };
    let (one, two) = (principal("rg-one"), principal("rg-two"));
    let group = emulator.insert_group(SeedGroup {
        display_name: "g".into(),
        mail_nickname: "g".into(),
        ..SeedGroup::default()
    });
    let graph = client(&emulator, TOKEN);

    // `$filter` on the collection, with `$select`. Whether Graph ignores case there is not
    // documented, so the emulator does not: a lowercased id finds nothing.
    let lowercased = format!("alternativeNames/any(x:x eq '{}')", arm("rg-two").to_lowercase());
    let request = graph.service_principals().list_service_principal().filter(&[&lowercased]);
    let (status, _, page) = send(request).unwrap();
    assert_eq!((status, page["value"].as_array().map(Vec::len)), (200, Some(0)), "{page}");
    let filter = format!("alternativeNames/any(x:x eq '{}')", arm("rg-two"));
    let request =
        graph.service_principals().list_service_principal().filter(&[&filter]).select(&["id", "alternativeNames"]);
    let (status, _, page) = send(request).unwrap();
    assert_eq!(status, 200, "{page}");
    let found = page["value"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{page}");
    assert_eq!(found[0]["id"], two.as_str(), "{page}");
    assert_eq!(found[0]["alternativeNames"], json!(["isExplicit=True", arm("rg-two")]), "{page}");
    assert!(found[0].get("displayName").is_none(), "only what was selected: {page}");

    // The same inside a $batch, with its URL encoded; an unknown id finds nothing.
    let encoded = |text: &str| text.replace('/', "%2F").replace(' ', "%20").replace('\'', "%27").replace(':', "%3A");
    let url = |rg: &str| {
        let filter = encoded(&format!("alternativeNames/any(x:x eq '{}')", arm(rg)));
        format!("/servicePrincipals?$filter={filter}&$select=id,alternativeNames")
    };
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": url("rg-one")},
        {"id": "2", "method": "GET", "url": url("rg-none")},
    ]});
    let (_, _, answer) = send(graph.batch(&batch)).unwrap();
    let body =
        |id: &str| answer["responses"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()["body"].clone();
    assert_eq!(body("1")["value"][0]["id"], one.as_str(), "{answer}");
    assert_eq!(body("2")["value"], json!([]), "{answer}");
    assert_eq!(emulator.calls().get("$batch/servicePrincipals.list"), Some(&2));

    // Added by bind and by reference, listed with their type, removed, and in the change feed.
    let (status, _, _) = send(graph.group(&group).update_group(&bind(std::slice::from_ref(&one)))).unwrap();
    assert_eq!(status, 204);
    let reference = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{two}") });
    let custom = |method: graph_rs_sdk::http::Method, path: &str, body: Option<Value>| {
        let body = body.map(|b| graph_rs_sdk::http::BodyRead::from_serialize(&b).unwrap());
        let mut request = graph.custom(method, body);
        *request.as_mut() = Url::parse(&format!("{}/v1.0{path}", emulator.base_url())).unwrap();
        send(request).unwrap()
    };
    let (status, _, _) =
        custom(graph_rs_sdk::http::Method::POST, &format!("/groups/{group}/members/$ref"), Some(reference));
    assert_eq!(status, 204);
    let (_, _, members) = send(graph.group(&group).list_members().select(&["id", "displayName", "mail"])).unwrap();
    let listed = members["value"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{members}");
    for member in listed {
        assert_eq!(member["@odata.type"], "#microsoft.graph.servicePrincipal", "{member}");
        assert_eq!(member["displayName"], "hail-test", "{member}");
    }
    let names = &emulator.groups()["g"].members;
    assert!(
        names.contains(&arm("rg-one").to_lowercase()) && names.contains(&arm("rg-two").to_lowercase()),
        "{names:?}"
    );
    let (_, _, delta) = send(graph.groups().delta().select(&["displayName", "members"])).unwrap();
    let entry = delta["value"].as_array().unwrap().iter().find(|g| g["id"] == group.as_str()).unwrap().clone();
    let kinds: BTreeSet<&str> =
        entry["members@delta"].as_array().unwrap().iter().map(|m| m["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["#microsoft.graph.servicePrincipal"]), "{entry}");
    let (status, _, _) =
        custom(graph_rs_sdk::http::Method::DELETE, &format!("/groups/{group}/members/{one}/$ref"), None);
    assert_eq!(status, 204);
    assert_eq!(emulator.groups()["g"].members.len(), 1);
}

fn security_group(nickname: &str) -> Value {
    json!({ "displayName": nickname, "mailNickname": nickname, "mailEnabled": false, "securityEnabled": true })
}

#[test]
fn security_groups_may_share_a_nickname_but_microsoft_365_groups_may_not() {
    let emulator = emulator(999);
    let graph = client(&emulator, TOKEN);
    for _ in 0..2 {
        let (status, _, body) = send(graph.groups().create_group(&security_group("twin"))).unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let filter = graph.groups().list_group().filter(&["mailNickname eq 'twin'"]);
    let (_, _, page) = send(filter).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(emulator.nickname_counts().get("twin"), Some(&2));

    let unified = |nickname: &str| {
        json!({ "displayName": nickname, "mailNickname": nickname, "mailEnabled": true,
                "securityEnabled": false, "groupTypes": ["Unified"] })
    };
    assert_eq!(send(graph.groups().create_group(&unified("team"))).unwrap().0, 201);
    let (status, _, body) = send(graph.groups().create_group(&unified("team"))).unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("already exists"), "{body}");
}

#[test]
fn a_lost_answer_comes_after_the_write_is_applied() {
    for reset in [false, true] {
        let emulator = emulator(999);
        emulator.set_faults(FaultPlan {
            lose_answers: [("groups.create".to_owned(), 1)].into_iter().collect(),
            lose_by_reset: reset,
            ..FaultPlan::default()
        });
        let graph = client(&emulator, TOKEN);
        match send(graph.groups().create_group(&security_group("lost"))) {
            Ok((status, _, body)) => {
                assert!(!reset, "a reset connection answered {status}");
                assert_eq!(status, 503, "{body}");
            }
            Err(error) => assert!(reset, "a 503 was a transport failure: {error}"),
        }
        assert_eq!(emulator.nickname_counts().get("lost"), Some(&1), "the write was applied");
        // Only the given number of answers is lost; reads never are.
        assert_eq!(send(graph.groups().create_group(&security_group("next"))).unwrap().0, 201);
        assert_eq!(emulator.nickname_counts().get("lost"), Some(&1));
    }
}

#[test]
fn new_groups_reach_the_change_feed_rounds_late_with_all_their_members() {
    let emulator = emulator(999);
    let ids = users(&emulator, 2);
    let graph = client(&emulator, TOKEN);
    let (_, _, first) = send(graph.groups().delta().select(&["mailNickname", "members"])).unwrap();
    let mut link = first["@odata.deltaLink"].as_str().unwrap().to_owned();
    emulator.set_faults(FaultPlan { delta_lag: 2, ..FaultPlan::default() });
    let (_, _, created) = send(graph.groups().create_group(&security_group("late"))).unwrap();
    let group = created["id"].as_str().unwrap().to_owned();
    assert_eq!(send(graph.group(&group).update_group(&bind(&ids))).unwrap().0, 204);
    // Listed and read directly at once; absent from the next two rounds of the feed.
    let (_, _, listed) = send(graph.groups().list_group().filter(&["mailNickname eq 'late'"])).unwrap();
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "{listed}");
    let round = |link: &str| {
        let mut request = graph.groups().delta();
        *request.as_mut() = Url::parse(link).unwrap();
        let (status, _, page) = send(request).unwrap();
        assert_eq!(status, 200, "{page}");
        page
    };
    for _ in 0..2 {
        let page = round(&link);
        assert!(page["value"].as_array().unwrap().iter().all(|g| g["id"] != group.as_str()), "{page}");
        link = page["@odata.deltaLink"].as_str().unwrap().to_owned();
    }
    let page = round(&link);
    let shown = page["value"].as_array().unwrap().iter().find(|g| g["id"] == group.as_str()).cloned();
    let shown = shown.unwrap_or_else(|| panic!("the third round shows the group: {page}"));
    let members: BTreeSet<&str> =
        shown["members@delta"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(members, ids.iter().map(String::as_str).collect(), "{shown}");
}
