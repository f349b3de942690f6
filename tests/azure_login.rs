//! Signing in to Graph as an app, as in production: the tool's own client-credentials exchange
//! at the token endpoint (here the emulator's), with a client secret or a federated token.
//! Success, a refused credential (exit 3, the variable named, the secret never printed) and an
//! unreachable endpoint (exit 1).

mod common;

use std::collections::BTreeMap;

use cpg_infra::emulator::azure::{AzureEmulator, AzureEmulatorOptions};

use common::azure::{example, seed_people};
use common::google::TOKEN;
use common::{cpg_with_env, Run, FAILURE, INVALID_INPUT, SUCCESS};

const CLIENT: &str = "5f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d5e";
const SECRET: &str = "s3cret~value-never-printed";
const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.github-oidc.signature";

fn emulator() -> AzureEmulator {
    let options = AzureEmulatorOptions {
        token: Some(TOKEN.to_owned()),
        client_secrets: BTreeMap::from([(CLIENT.to_owned(), SECRET.to_owned())]),
        federated_tokens: BTreeMap::from([(CLIENT.to_owned(), FEDERATED.to_owned())]),
        ..AzureEmulatorOptions::default()
    };
    let emulator = AzureEmulator::start(options).expect("start the emulator");
    let (desired, aliases) = example();
    seed_people(&emulator, &desired, &aliases);
    emulator
}

fn dry_sync(emulator: &AzureEmulator, org: &tempfile::TempDir, authority: &str, credentials: &[(&str, &str)]) -> Run {
    let endpoint = emulator.base_url();
    let mut env = vec![("CPG_INFRA_AZURE_ENDPOINT", endpoint.as_str()), ("CPG_INFRA_AZURE_AUTHORITY", authority)];
    env.extend_from_slice(credentials);
    cpg_with_env(org.path(), &["groups", "sync", "--provider", "azure", "--no-cache"], &env)
}

#[test]
fn a_client_secret_and_a_federated_token_sign_in_once() {
    let emulator = emulator();
    let org = common::org_with_provider("azure");
    let authority = emulator.base_url();
    for credentials in [
        [("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)],
        [("AZURE_CLIENT_ID", CLIENT), ("AZURE_FEDERATED_TOKEN", FEDERATED)],
    ] {
        emulator.reset_calls();
        let run = dry_sync(&emulator, &org, &authority, &credentials);
        run.expect_code(SUCCESS);
        assert!(run.stdout.contains("group(s) to create"), "{run}");
        let calls = emulator.calls();
        assert_eq!(calls.get("oauth2.token"), Some(&1), "one sign-in per run: {calls:?}");
        assert!(calls.contains_key("groups.delta"), "Graph took the token: {calls:?}");
    }
}

#[test]
fn a_refused_credential_is_exit_3_naming_the_variables_and_never_the_secret() {
    let emulator = emulator();
    let org = common::org_with_provider("azure");
    let authority = emulator.base_url();
    let wrong = "wr0ng~secret-value";
    let run = dry_sync(&emulator, &org, &authority, &[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", wrong)]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("AZURE_CLIENT_SECRET"), "{run}");
    assert!(run.stderr.contains("AADSTS7000215"), "{run}");
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong), "{run}");
    let run =
        dry_sync(&emulator, &org, &authority, &[("AZURE_CLIENT_ID", CLIENT), ("AZURE_FEDERATED_TOKEN", "forged")]);
    run.expect_code(INVALID_INPUT);
    assert!(run.stderr.contains("AZURE_FEDERATED_TOKEN") && run.stderr.contains("AADSTS70021"), "{run}");
    assert!(!run.stderr.contains("forged"), "{run}");
    assert_eq!(emulator.calls().get("groups.delta"), None, "nothing read with refused credentials");
}

#[test]
fn an_unreachable_token_endpoint_is_an_outage_and_foreign_ones_are_refused() {
    let emulator = emulator();
    let org = common::org_with_provider("azure");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = format!("http://{closed}");
    let credentials = [("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)];
    let run = dry_sync(&emulator, &org, &unreachable, &credentials);
    run.expect_code(FAILURE);
    assert!(run.stderr.contains("unreachable"), "{run}");
    assert!(!run.stderr.contains(SECRET), "{run}");
    for foreign in ["http://10.0.0.5:8090", "http://user@127.0.0.1:8090", "https://localhost.example.org"] {
        let run = dry_sync(&emulator, &org, foreign, &credentials);
        run.expect_code(INVALID_INPUT);
        assert!(run.stderr.contains("azure authority"), "{run}");
    }
}
