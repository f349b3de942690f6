//! The members cache written by the sync: `<group>-members.txt` on the local folder and in a
//! GCS bucket (the real client over HTTP against the emulator's Cloud Storage JSON API), only
//! changed files written, stale ones removed, nothing written when the groups sync is refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::google::{emulator, TOKEN};
use common::{cpg, cpg_with_env, example_org, REFUSED, SUCCESS};
use cpg_infra::cache::desired_files;
use cpg_infra::definitions::{Date, DirSource};
use cpg_infra::emulator::google::GoogleEmulator;
use cpg_infra::emulator::FaultPlan;
use cpg_infra::load::load_expanded;

const TODAY: Date = Date { year: 2026, month: 11, day: 26 };

/// The files the cache should hold for the organisation under `root`.
fn expected_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let expanded = load_expanded(&DirSource::new(root), TODAY).expect("valid definitions");
    desired_files(&expanded.definitions, &expanded.hierarchy).into_iter().map(|(k, v)| (k, v.into_bytes())).collect()
}

fn bucket(root: &Path) -> String {
    let expanded = load_expanded(&DirSource::new(root), TODAY).expect("valid definitions");
    cpg_infra::infra::members_cache_bucket(&expanded.definitions)
}

fn use_gcs(root: &Path) {
    let org = root.join("groups/org.toml");
    let text = fs::read_to_string(&org).unwrap();
    fs::write(org, format!("{text}\n[cache]\ndestinations = [\"gcs\"]\n")).unwrap();
}

fn gcs_env(emulator: &GoogleEmulator) -> Vec<(&'static str, String)> {
    vec![("CPG_INFRA_GCS_ENDPOINT", emulator.base_url()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", TOKEN.to_owned())]
}

fn cache(root: &Path, emulator: &GoogleEmulator, args: &[&str]) -> common::Run {
    let env = gcs_env(emulator);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec!["groups", "cache"];
    all.extend_from_slice(args);
    cpg_with_env(root, &all, &env)
}

fn count(emulator: &GoogleEmulator, method: &str) -> u64 {
    emulator.calls().get(method).copied().unwrap_or(0)
}

#[test]
fn the_bucket_holds_exactly_the_cache_and_a_no_op_refresh_only_lists() {
    let org = example_org();
    let root = org.path();
    use_gcs(root);
    let emulator = emulator(5);
    let bucket = bucket(root);
    emulator.create_bucket(&bucket);
    emulator.put_object_directly(&bucket, "README", b"not a cache file\n");
    emulator.put_object_directly(&bucket, "retired-analysis-members.txt", b"someone@example.org\n");

    // A dry run only reads.
    let dry = cache(root, &emulator, &[]);
    dry.expect_code(SUCCESS);
    assert!(dry.stdout.contains(&format!("members cache in gs://{bucket}")), "{dry}");
    assert!(dry.stdout.contains("- delete retired-analysis-members.txt"), "{dry}");
    assert_eq!(count(&emulator, "storage.objects.insert") + count(&emulator, "storage.objects.delete"), 0);

    let applied = cache(root, &emulator, &["--confirm"]);
    applied.expect_code(SUCCESS);
    let expected = expected_files(root);
    let mut held = emulator.objects(&bucket);
    assert_eq!(held.remove("README").as_deref(), Some(&b"not a cache file\n"[..]), "other objects are left alone");
    assert_eq!(held, expected, "the bucket holds exactly the cache");
    assert!(expected["tob-wgs-analysis-members.txt"].ends_with(b"\n"));
    assert_eq!(count(&emulator, "storage.objects.insert"), expected.len() as u64, "one upload per file");

    // No change: listing only, one request per page (pages of 5 here).
    emulator.reset_calls();
    let again = cache(root, &emulator, &["--confirm"]);
    again.expect_code(SUCCESS);
    let pages = (expected.len() + 1).div_ceil(5) as u64;
    assert_eq!(emulator.calls(), BTreeMap::from([("storage.objects.list".to_owned(), pages)]), "{again}");

    // A file changed by hand is written back; only that one.
    emulator.put_object_directly(&bucket, "tob-wgs-analysis-members.txt", b"intruder@example.org\n");
    emulator.reset_calls();
    cache(root, &emulator, &["--confirm"]).expect_code(SUCCESS);
    assert_eq!(count(&emulator, "storage.objects.insert"), 1);
    assert_eq!(emulator.objects(&bucket)["tob-wgs-analysis-members.txt"], expected["tob-wgs-analysis-members.txt"]);
}

#[test]
fn faults_on_every_request_are_retried_until_the_cache_converges() {
    let org = example_org();
    let root = org.path();
    use_gcs(root);
    let emulator = emulator(200);
    let bucket = bucket(root);
    emulator.create_bucket(&bucket);
    // Every request is answered 503, 429 or a dropped connection once before it is served.
    emulator.set_faults(FaultPlan {
        seed: 7,
        rate_503: 0.4,
        rate_429: 0.3,
        rate_drop: 0.3,
        retry_after: Duration::ZERO,
        max_faults_per_request: Some(1),
        methods: Some(BTreeSet::from([
            "storage.objects.list".to_owned(),
            "storage.objects.insert".to_owned(),
            "storage.objects.delete".to_owned(),
        ])),
        ..FaultPlan::default()
    });
    let run = cache(root, &emulator, &["--confirm"]);
    run.expect_code(SUCCESS);
    assert_eq!(emulator.objects(&bucket), expected_files(root), "{run}");
    assert!(run.stdout.contains("0 failed"), "{run}");
}

#[test]
fn a_missing_bucket_or_rejected_credentials_is_configuration() {
    let org = example_org();
    let root = org.path();
    use_gcs(root);
    let emulator = emulator(200);
    // No bucket: Pulumi has not created it yet.
    let run = cache(root, &emulator, &["--confirm"]);
    run.expect_code(common::INVALID_INPUT);
    assert!(run.stderr.contains("the bucket does not exist"), "{run}");
    // A token the service rejects.
    emulator.create_bucket(&bucket(root));
    let env = [("CPG_INFRA_GCS_ENDPOINT", emulator.base_url()), ("CPG_INFRA_GOOGLE_ACCESS_TOKEN", "wrong".to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = cpg_with_env(root, &["groups", "cache", "--confirm"], &env);
    run.expect_code(common::INVALID_INPUT);
    assert!(emulator.objects(&bucket(root)).is_empty());
}

#[test]
fn the_sync_writes_the_local_cache_and_leaves_it_alone_when_refused() {
    let org = example_org();
    let root = org.path();
    let dir = root.join(".cpg-infra/members-cache");
    cpg(root, &["groups", "sync", "--confirm"]).expect_code(SUCCESS);
    let written: BTreeMap<String, Vec<u8>> = fs::read_dir(&dir)
        .expect("the cache folder")
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap()))
        .collect();
    assert_eq!(written, expected_files(root));

    // Emptying acute-care's analysts is a mass removal: refused, so the cache stays as it was.
    let members = root.join("datasets/acute-care/members.toml");
    let text = fs::read_to_string(&members).unwrap();
    fs::write(&members, text.replace(r#"analysis = ["sofia", "hannah"]"#, "analysis = []")).unwrap();
    let refused = cpg(root, &["groups", "sync", "--confirm"]);
    refused.expect_code(REFUSED);
    assert!(refused.stderr.contains("the members cache was left as it is"), "{refused}");
    let after: BTreeMap<String, Vec<u8>> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap()))
        .collect();
    assert_eq!(after, written, "a refused sync writes no cache file");

    // Allowed, the cache follows.
    cpg(root, &["groups", "sync", "--confirm", "--allow-mass-removal"]).expect_code(SUCCESS);
    let analysts = fs::read_to_string(dir.join("acute-care-analysis-members.txt")).unwrap();
    assert!(!analysts.contains("sofia"), "{analysts}");
}

/// The same cache in an Azure Blob container, through the Blob service REST API.
#[test]
fn the_azure_container_holds_exactly_the_cache_and_a_no_op_only_lists() {
    use cpg_infra::emulator::blob::BlobEmulator;
    let org = example_org();
    let root = org.path();
    let org_toml = root.join("groups/org.toml");
    let text = fs::read_to_string(&org_toml).unwrap();
    fs::write(&org_toml, format!("{text}\n[cache]\ndestinations = [\"azure-blob\"]\n")).unwrap();
    let emulator = BlobEmulator::start(0, "storage-token", 5).expect("emulator");
    let expanded = load_expanded(&DirSource::new(root), TODAY).expect("valid");
    let (_, container) = cpg_infra::infra::members_cache_container(&expanded.definitions);
    emulator.create_container(&container);
    emulator.put_directly(&container, "README", b"not a cache file\n");
    emulator.put_directly(&container, "retired-analysis-members.txt", b"x@example.org\n");
    emulator.fault_each_request_once(true);
    let base = emulator.base_url();
    let env = [("CPG_INFRA_AZURE_BLOB_ENDPOINT", base.as_str()), ("CPG_INFRA_AZURE_STORAGE_TOKEN", "storage-token")];
    let run = cpg_with_env(root, &["groups", "cache", "--confirm"], &env);
    run.expect_code(SUCCESS);
    let expected = expected_files(root);
    let mut held = emulator.blobs(&container);
    assert_eq!(held.remove("README").as_deref(), Some(&b"not a cache file\n"[..]), "other blobs are left alone");
    assert_eq!(held, expected, "{run}");

    // No change: List Blobs only, one request per page (pages of 5 here).
    emulator.fault_each_request_once(false);
    emulator.reset_calls();
    cpg_with_env(root, &["groups", "cache", "--confirm"], &env).expect_code(SUCCESS);
    let pages = (expected.len() + 1).div_ceil(5) as u64;
    assert_eq!(emulator.calls(), BTreeMap::from([("List Blobs".to_owned(), pages)]));
    // One blob changed by hand: one Put Blob.
    emulator.put_directly(&container, "tob-wgs-analysis-members.txt", b"intruder@example.org\n");
    emulator.reset_calls();
    cpg_with_env(root, &["groups", "cache", "--confirm"], &env).expect_code(SUCCESS);
    assert_eq!(emulator.calls().get("Put Blob"), Some(&1));
    assert_eq!(emulator.blobs(&container)["tob-wgs-analysis-members.txt"], expected["tob-wgs-analysis-members.txt"]);
}
