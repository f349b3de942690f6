//! The live example organisation shipped in `groups/` and `datasets/` must always load cleanly,
//! infrastructure design included (its name prefix, its imports).
//! Only its validity is checked here: its content changes with every access request, so every
//! other test runs on the frozen copy in `tests/fixtures/org/`.

use cpg_infra::definitions::{load, Date, DirSource};
use cpg_infra::infra;
use cpg_infra::load::load_expanded;

#[test]
fn example_organisation_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let today = Date { year: 2026, month: 11, day: 26 };
    let expanded = load_expanded(&DirSource::new(root), today).unwrap_or_else(|e| panic!("{e}"));
    if let Err(errors) = infra::build(&expanded.definitions) {
        panic!("{}", infra::diagnostics(&errors));
    }
}

/// The live `groups/policy.toml` parses against the live definitions. Whether they keep it
/// depends on the day (grant lengths), so that is CI's `policy check`, not a test.
#[test]
fn example_policy_parses() {
    let root = env!("CARGO_MANIFEST_DIR");
    let definitions = load(&DirSource::new(root)).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(std::path::Path::new(root).join(cpg_infra::policy::POLICY_FILE))
        .expect("the example ships groups/policy.toml");
    if let Err(problems) = cpg_infra::policy::parse(&text, &definitions) {
        panic!("{problems}");
    }
}
