//! Signing in to Google as in production: a service-account key file (a signed JWT sent to
//! the key's `token_uri`) and workload identity federation (an external-account file: the
//! token exchange at `token_url`, then impersonation), against the emulator's token endpoints.
//! Success, a refused credential (exit 3, the variable named, no secret printed) and an
//! unreachable endpoint (exit 1).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cpg_infra::emulator::google::{EmulatorOptions, GoogleEmulator};
use serde_json::json;

use common::google::TOKEN;
use common::{cpg_with_env, Run, FAILURE, INVALID_INPUT, SUCCESS};

const ACCOUNT: &str = "groups-sync@example-org.iam.gserviceaccount.com";
const AUDIENCE: &str =
    "//iam.googleapis.com/projects/1234/locations/global/workloadIdentityPools/github/providers/repo";
const SUBJECT: &str = "eyJhbGciOiJSUzI1NiJ9.github-oidc-subject.signature";

fn key(name: &str) -> String {
    std::fs::read_to_string(common::manifest_dir().join("tests/fixtures").join(name)).expect("test key")
}

fn emulator() -> GoogleEmulator {
    GoogleEmulator::start(EmulatorOptions {
        token: Some(TOKEN.to_owned()),
        service_account_keys: BTreeMap::from([(ACCOUNT.to_owned(), key("google-service-account.test-key.pem"))]),
        workload_identity: BTreeMap::from([(AUDIENCE.to_owned(), SUBJECT.to_owned())]),
        impersonable: BTreeSet::from([ACCOUNT.to_owned()]),
        ..EmulatorOptions::default()
    })
    .expect("start the emulator")
}

/// A key file as the console downloads it, signed with `private_key`, sent to `token_uri`.
fn key_file(dir: &Path, private_key: &str, token_uri: &str) -> String {
    let file = json!({
        "type": "service_account",
        "project_id": "example-org",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": ACCOUNT,
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    });
    write(dir, "key.json", &file)
}

/// An external-account file as `gcloud iam workload-identity-pools create-cred-config` writes
/// it, with the subject token in a file (as google-github-actions/auth leaves it).
fn external_account_file(dir: &Path, base: &str, subject: &str, impersonate: bool) -> String {
    let subject_path = dir.join("subject-token");
    std::fs::write(&subject_path, subject).unwrap();
    let mut file = json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{base}/v1/token"),
        "credential_source": { "file": subject_path.to_str().unwrap() },
    });
    if impersonate {
        file["service_account_impersonation_url"] =
            json!(format!("{base}/v1/projects/-/serviceAccounts/{ACCOUNT}:generateAccessToken"));
    }
    write(dir, "external-account.json", &file)
}

fn write(dir: &Path, name: &str, file: &serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, file.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn dry_sync(emulator: &GoogleEmulator, org: &Path, credentials: &str) -> Run {
    let endpoint = emulator.base_url();
    let env = [("CPG_INFRA_GOOGLE_ENDPOINT", endpoint.as_str()), ("GOOGLE_APPLICATION_CREDENTIALS", credentials)];
    cpg_with_env(org, &["groups", "sync", "--provider", "google", "--no-cache"], &env)
}

/// A line of the key's base64 body: what must never be printed.
fn key_material(pem: &str) -> String {
    pem.lines().nth(3).expect("a PEM body").to_owned()
}

#[test]
fn a_service_account_key_signs_in_once_and_its_token_reads_the_groups() {
    let emulator = emulator();
    let org = common::org_with_provider("google");
    let dir = tempfile::tempdir().unwrap();
    let credentials =
        key_file(dir.path(), &key("google-service-account.test-key.pem"), &format!("{}token", emulator.base_url()));
    let run = dry_sync(&emulator, org.path(), &credentials);
    run.expect_code(SUCCESS);
    assert!(run.stdout.contains("group(s) to create"), "{run}");
    let calls = emulator.calls();
    assert_eq!(calls.get("oauth2.token"), Some(&1), "one sign-in per run: {calls:?}");
    assert!(calls.get("groups.list").is_some_and(|n| *n >= 1), "Cloud Identity took the token: {calls:?}");
}

#[test]
fn workload_identity_exchanges_the_subject_token_with_and_without_impersonation() {
    let emulator = emulator();
    let org = common::org_with_provider("google");
    for impersonate in [true, false] {
        emulator.reset_calls();
        let dir = tempfile::tempdir().unwrap();
        let credentials =
            external_account_file(dir.path(), emulator.base_url().trim_end_matches('/'), SUBJECT, impersonate);
        let run = dry_sync(&emulator, org.path(), &credentials);
        run.expect_code(SUCCESS);
        let calls = emulator.calls();
        assert_eq!(calls.get("sts.token"), Some(&1), "{calls:?}");
        let impersonated = calls.get("iamcredentials.generateAccessToken").copied();
        assert_eq!(impersonated, impersonate.then_some(1), "{calls:?}");
        assert!(calls.contains_key("groups.list"), "{calls:?}");
    }
}

#[test]
fn a_key_google_does_not_know_is_exit_3_naming_the_variable_and_never_the_key() {
    let emulator = emulator();
    let org = common::org_with_provider("google");
    let dir = tempfile::tempdir().unwrap();
    let other = key("google-other.test-key.pem");
    let credentials = key_file(dir.path(), &other, &format!("{}token", emulator.base_url()));
    let run = dry_sync(&emulator, org.path(), &credentials);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{run}");
    assert!(run.stderr.contains("Invalid JWT Signature"), "{run}");
    let material = key_material(&other);
    assert!(!run.stderr.contains(&material) && !run.stdout.contains(&material), "{run}");
    assert_eq!(emulator.calls().get("groups.list"), None, "nothing read without a token");
}

#[test]
fn a_subject_token_the_pool_does_not_trust_is_exit_3_and_never_printed() {
    let emulator = emulator();
    let org = common::org_with_provider("google");
    let dir = tempfile::tempdir().unwrap();
    let forged = "forged-subject-token";
    let credentials = external_account_file(dir.path(), emulator.base_url().trim_end_matches('/'), forged, true);
    let run = dry_sync(&emulator, org.path(), &credentials);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("GOOGLE_APPLICATION_CREDENTIALS") && run.stderr.contains("invalid_grant"), "{run}");
    assert!(!run.stderr.contains(forged) && !run.stdout.contains(forged), "{run}");
    assert_eq!(emulator.calls().get("iamcredentials.generateAccessToken"), None);
}

#[test]
fn an_unreachable_token_uri_is_an_outage_and_a_foreign_one_is_refused() {
    let emulator = emulator();
    let org = common::org_with_provider("google");
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let pem = key("google-service-account.test-key.pem");
    let credentials = key_file(dir.path(), &pem, &format!("http://{closed}/token"));
    let run = dry_sync(&emulator, org.path(), &credentials);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains("token endpoint unreachable"), "{run}");
    let credentials = key_file(dir.path(), &pem, "https://oauth2.googleapis.com.example.net/token");
    let run = dry_sync(&emulator, org.path(), &credentials);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("token_uri"), "{run}");
    assert!(!run.stderr.contains(&key_material(&pem)), "{run}");
    assert_eq!(emulator.total_calls(), 0, "the key was sent nowhere");
}
