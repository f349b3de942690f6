//! A synthetic large organisation for benchmarks: files in memory, deterministic per seed.
//!
//! The shape follows the example organisation (same roles file), scaled up: thousands of
//! people, hundreds of datasets with dependencies, a few hundred members per dataset.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::definitions::{Entry, EntryKind, Source, SourceError};

/// How big to make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticShape {
    pub datasets: usize,
    pub people: usize,
    /// Changes a few percent of memberships; 0 is the base organisation.
    pub variant: u64,
}

impl SyntheticShape {
    /// 500 datasets: about 10,000 groups and 200,000 memberships.
    pub fn large() -> SyntheticShape {
        SyntheticShape { datasets: 500, people: 5_000, variant: 0 }
    }
}

/// The role template shipped with the example organisation.
pub const ROLES_TOML: &str = include_str!("../groups/roles.toml");

/// Files of the organisation, by path.
pub fn generate(shape: SyntheticShape) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    files.insert(
        "groups/org.toml".to_owned(),
        "[organisation]\nname = \"Synthetic\"\ndomain = \"example.org\"\ngroups_domain = \"groups.example.org\"\n\
         common_dataset = \"ds0000\"\nallowed_member_domains = [\"iam.gserviceaccount.com\"]\n\n\
         [services]\nanalysis-runner = \"analysis-runner@synthetic.iam.gserviceaccount.com\"\n\
         web-server = \"web-server@synthetic.iam.gserviceaccount.com\"\n\n\
         [infra]\nname_prefix = \"syn\"\n"
            .to_owned(),
    );
    files.insert("groups/roles.toml".to_owned(), ROLES_TOML.to_owned());
    let mut people = String::new();
    for p in 0..shape.people {
        let _ = writeln!(people, "[people.p{p:05}]\nemail = \"p{p:05}@example.org\"");
    }
    files.insert("groups/people.toml".to_owned(), people);
    files.insert(
        "groups/org-groups.toml".to_owned(),
        "[groups.platform-admins]\nmembers = [\"p00000\", \"p00001\"]\n".to_owned(),
    );
    let mut random = Lcg(0x5eed);
    let mut variant = Lcg(shape.variant.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let sizes = [("data-manager", 4), ("analysis", 120), ("metadata-access", 150), ("web-access", 100)];
    for d in 0..shape.datasets {
        let name = format!("ds{d:04}");
        let mut dataset = String::from(
            "components = [\"storage\", \"test-storage\", \"analysis-runner\", \"registry\", \"upload\", \"release\"]\n",
        );
        if d > 1 {
            let dependency = 1 + random.below(d as u64 - 1) as usize;
            let _ = writeln!(dataset, "depends_on = [\"ds{dependency:04}\"]");
        }
        let _ = writeln!(dataset, "[gcp]\nproject = \"{name}\"");
        files.insert(format!("datasets/{name}/dataset.toml"), dataset);
        let mut members = String::new();
        for (role, size) in sizes {
            let mut chosen = std::collections::BTreeSet::new();
            for _ in 0..size {
                let mut person = random.below(shape.people as u64);
                // A variant moves about 0.2% of grants (~400 of 200,000) to someone else:
                // a large pull request.
                if shape.variant != 0 && variant.below(500) == 0 {
                    person = variant.below(shape.people as u64);
                }
                chosen.insert(person);
            }
            let _ = write!(members, "{role} = [");
            for person in chosen {
                let _ = write!(members, "\"p{person:05}\", ");
            }
            members.push_str("]\n");
        }
        for level in ["test", "standard", "full"] {
            let _ = writeln!(members, "{level} = [\"{name}-{level}@{name}.iam.gserviceaccount.com\"]");
        }
        files.insert(format!("datasets/{name}/members.toml"), members);
    }
    files
}

/// A tiny deterministic generator (Knuth's MMIX constants); benchmarks need repeatability,
/// not quality.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Definitions held in memory, for benchmarks and tests that should not touch the disk.
pub struct MemorySource {
    files: BTreeMap<String, String>,
}

impl MemorySource {
    pub fn new(files: BTreeMap<String, String>) -> MemorySource {
        MemorySource { files }
    }
}

impl Source for MemorySource {
    fn list(&self, dir: &str) -> Result<Vec<Entry>, SourceError> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut entries: Vec<Entry> = self
            .files
            .keys()
            .filter_map(|path| path.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((dir, _)) => Entry { name: dir.to_owned(), kind: EntryKind::Dir },
                None => Entry { name: rest.to_owned(), kind: EntryKind::File },
            })
            .collect();
        entries.dedup();
        Ok(entries)
    }

    fn read(&self, path: &str) -> Result<Option<String>, SourceError> {
        Ok(self.files.get(path).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::Date;
    use crate::load::load_expanded;

    #[test]
    fn small_synthetic_organisation_is_valid_and_variants_differ() {
        let today = Date { year: 2026, month: 11, day: 26 };
        let shape = SyntheticShape { datasets: 8, people: 200, variant: 0 };
        let base = load_expanded(&MemorySource::new(generate(shape)), today).unwrap();
        assert_eq!(base.definitions.datasets.len(), 8);
        assert!(base.hierarchy.groups.len() > 8 * 20);
        let again = load_expanded(&MemorySource::new(generate(shape)), today).unwrap();
        assert_eq!(base.hierarchy, again.hierarchy, "generation is deterministic");
        let variant = SyntheticShape { variant: 1, ..shape };
        let changed = load_expanded(&MemorySource::new(generate(variant)), today).unwrap();
        assert_ne!(base.hierarchy, changed.hierarchy);
    }
}
