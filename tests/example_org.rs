//! The live example organisation shipped in `groups/` and `datasets/` must always load cleanly,
//! infrastructure design included (its name prefix, its imports).
//! Only its validity is checked here: its content changes with every access request, so every
//! other test runs on the frozen copy in `tests/fixtures/org/`.

use cpg_infra::definitions::{Date, DirSource};
use cpg_infra::infra;
use cpg_infra::load::load_expanded;

#[test]
fn example_organisation_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    let today = Date { year: 2026, month: 11, day: 26 };
    let expanded = load_expanded(&DirSource::new(root), today).unwrap_or_else(|e| panic!("{e}"));
    if let Err(errors) = infra::build(&expanded.definitions, &expanded.hierarchy) {
        panic!("{}", infra::diagnostics(&errors));
    }
}
