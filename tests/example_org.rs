//! The live example organisation shipped in `groups/` and `datasets/` must always load cleanly.
//! Only its validity is checked here: its content changes with every access request, so every
//! other test runs on the frozen copy in `tests/fixtures/org/`.

use cpg_infra::definitions::{load, DirSource};

#[test]
fn example_organisation_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    if let Err(e) = load(&DirSource::new(root)) {
        panic!("{e}");
    }
}
