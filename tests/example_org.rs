//! The example organisation shipped in `groups/` and `datasets/` must always load cleanly.

use cpg_infra::definitions::{load, DirSource};

#[test]
fn example_organisation_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    match load(&DirSource::new(root)) {
        Ok(d) => {
            assert!(d.datasets.len() >= 5);
            assert!(d.people.len() >= 15);
        }
        Err(e) => panic!("{e}"),
    }
}
