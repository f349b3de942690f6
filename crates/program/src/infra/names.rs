//! Cloud resource names: how the clouds build them from the organisation's name prefix and
//! dataset names, and each cloud's rules for them.
//!
//! Owns the naming rules the clouds share and the `NameClaim` a cloud records for every name it
//! creates, which `claims` checks. Never chooses what to create.

use crate::definitions::{Dataset, Definitions, Location};

use super::program::Owner;

/// The organisation's name prefix (empty when it has none, which `claims` reports).
pub fn name_prefix(definitions: &Definitions) -> &str {
    definitions.organisation.name_prefix.as_ref().map_or("", |p| p.name.as_str())
}

/// `base` behind the prefix, joined with `separator`.
pub fn prefixed(prefix: &str, separator: &str, base: &str) -> String {
    if prefix.is_empty() {
        base.to_owned()
    } else {
        format!("{prefix}{separator}{base}")
    }
}

/// Where the part of a name its owner chose is written: the dataset, or for the
/// organisation's own resources `groups/org.toml`.
pub fn owner_source(owner: &Owner, site: &Dataset) -> Location {
    match owner {
        Owner::Organisation => Location::file("groups/org.toml"),
        Owner::Dataset(_) => site.location.clone(),
    }
}

/// A stable 32-bit FNV-1a hash as 8 hex digits (the standard library's hasher may change
/// between releases; names must not).
pub fn stable_hash(text: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// Fits `base` into `min..=max` characters of `allowed`: other characters are dropped (or
/// replaced by `replacement`), and a name of the wrong length is cut and given a hash suffix
/// of the whole base so that distinct bases stay distinct. Only for names made from the design
/// itself (never from what a user wrote, whose names are checked instead).
pub fn fit(base: &str, min: usize, max: usize, allowed: impl Fn(char) -> bool, replacement: Option<char>) -> String {
    let mut name = normalise(base, allowed, replacement);
    if name.len() < min || name.len() > max {
        let suffix = &stable_hash(base)[..6];
        name.truncate(max.saturating_sub(suffix.len()));
        name.push_str(suffix);
    }
    name
}

/// Lowercased, with characters outside `allowed` dropped or replaced.
fn normalise(base: &str, allowed: impl Fn(char) -> bool, replacement: Option<char>) -> String {
    base.chars()
        .map(|c| c.to_ascii_lowercase())
        .filter_map(|c| if allowed(c) { Some(c) } else { replacement })
        .collect()
}

/// Letters and digits only (Azure storage accounts, key vaults, registries).
pub fn alphanumeric(base: &str) -> String {
    normalise(base, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), None)
}

/// A GCS bucket name part: dots (which would make the name a domain) become `-`.
pub fn bucket_part(base: &str) -> String {
    normalise(base, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'), Some('-'))
}

/// A label value (GCP labels: lowercase letters, digits, `-` and `_`, at most 63).
pub fn label_value(text: &str) -> String {
    fit(text, 0, 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_', Some('_'))
}

/// The kinds of names cpg-infra creates, each with its cloud's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameKind {
    GcsBucket,
    GcpProject,
    GcpServiceAccount,
    GcpRepository,
    GcpSecret,
    AzureStorageAccount,
    AzureKeyVault,
    AzureRegistry,
    AzureResourceGroup,
}

impl NameKind {
    /// How a message names it, e.g. "GCS bucket".
    pub fn label(self) -> &'static str {
        match self {
            NameKind::GcsBucket => "GCS bucket",
            NameKind::GcpProject => "GCP project",
            NameKind::GcpServiceAccount => "GCP service account",
            NameKind::GcpRepository => "Artifact Registry repository",
            NameKind::GcpSecret => "Secret Manager secret",
            NameKind::AzureStorageAccount => "Azure storage account",
            NameKind::AzureKeyVault => "Azure Key Vault",
            NameKind::AzureRegistry => "Azure container registry",
            NameKind::AzureResourceGroup => "Azure resource group",
        }
    }

    /// What a message calls such a name, e.g. "GCS bucket name".
    pub fn what(self) -> String {
        match self {
            NameKind::GcpProject => "GCP project id".to_owned(),
            other => format!("{} name", other.label()),
        }
    }

    /// The longest name the cloud accepts.
    pub fn max_len(self) -> usize {
        self.rules().max
    }

    /// Why `name` is not a valid name of this kind, or `None` if it is.
    pub fn problem(self, name: &str) -> Option<String> {
        let rules = self.rules();
        let length = name.chars().count();
        if length < rules.min || length > rules.max {
            return Some(format!("is {length} characters; {}s have {} to {}", self.what(), rules.min, rules.max));
        }
        if let Some(bad) = name.chars().find(|c| !(rules.allowed)(*c)) {
            return Some(format!("contains `{bad}`; {}s use {}", self.what(), rules.allowed_words));
        }
        let first = name.chars().next().unwrap_or_default();
        let last = name.chars().last().unwrap_or_default();
        if !(rules.first)(first) || !(rules.last)(last) {
            return Some(format!("must {}", rules.ends_words));
        }
        if rules.no_double_hyphen && name.contains("--") {
            return Some("must not contain `--`".to_owned());
        }
        if let Some(word) = rules.forbidden_start.iter().find(|w| name.starts_with(**w)) {
            return Some(format!("must not start with `{word}`"));
        }
        if let Some(word) = rules.forbidden_inside.iter().find(|w| name.contains(**w)) {
            return Some(format!("must not contain `{word}`"));
        }
        None
    }

    fn rules(self) -> Rules {
        let lower_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let letter = |c: char| c.is_ascii_lowercase();
        let hyphenated = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let plain = Rules {
            min: 1,
            max: 63,
            allowed: lower_digit,
            allowed_words: "lowercase letters and digits",
            first: |_| true,
            last: |_| true,
            ends_words: "",
            no_double_hyphen: false,
            forbidden_start: &[],
            forbidden_inside: &[],
        };
        let starts_letter = Rules {
            allowed: hyphenated,
            allowed_words: "lowercase letters, digits and `-`",
            first: letter,
            last: lower_digit,
            ends_words: "start with a letter and end with a letter or digit",
            ..plain
        };
        match self {
            // Dots are allowed by GCS only for verified domain owners; the design never uses them.
            NameKind::GcsBucket => Rules {
                min: 3,
                max: 63,
                allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'),
                allowed_words: "lowercase letters, digits, `-` and `_` (no dots)",
                first: lower_digit,
                last: lower_digit,
                ends_words: "start and end with a letter or digit",
                forbidden_start: &["goog"],
                forbidden_inside: &["google", "g00gle"],
                ..plain
            },
            NameKind::GcpProject => Rules { min: 6, max: 30, forbidden_inside: &["google"], ..starts_letter },
            NameKind::GcpServiceAccount => Rules { min: 6, max: 30, ..starts_letter },
            NameKind::GcpRepository => Rules { min: 1, max: 63, ..starts_letter },
            NameKind::GcpSecret => Rules {
                min: 1,
                max: 255,
                allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'),
                allowed_words: "letters, digits, `-` and `_`",
                ..plain
            },
            NameKind::AzureStorageAccount => Rules { min: 3, max: 24, ..plain },
            NameKind::AzureKeyVault => Rules {
                min: 3,
                max: 24,
                allowed: |c| c.is_ascii_alphanumeric() || c == '-',
                allowed_words: "letters, digits and `-`",
                first: |c| c.is_ascii_alphabetic(),
                last: |c| c.is_ascii_alphanumeric(),
                ends_words: "start with a letter and end with a letter or digit",
                no_double_hyphen: true,
                ..plain
            },
            NameKind::AzureRegistry => Rules {
                min: 5,
                max: 50,
                allowed: |c| c.is_ascii_alphanumeric(),
                allowed_words: "letters and digits",
                ..plain
            },
            NameKind::AzureResourceGroup => Rules {
                min: 1,
                max: 90,
                allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'),
                allowed_words: "letters, digits, `-`, `_`, `.`, `(` and `)`",
                last: |c| c != '.',
                ends_words: "not end with `.`",
                ..plain
            },
        }
    }
}

/// One cloud's rules for one kind of name.
#[derive(Clone, Copy)]
struct Rules {
    min: usize,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_words: &'static str,
    first: fn(char) -> bool,
    last: fn(char) -> bool,
    ends_words: &'static str,
    no_double_hyphen: bool,
    forbidden_start: &'static [&'static str],
    forbidden_inside: &'static [&'static str],
}

/// A name a cloud creates, recorded so that `claims` can check its rules and its uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameClaim {
    pub kind: NameKind,
    /// Where the name must be unique: `Some("")` across the cloud, `Some("project p")`
    /// within something, `None` when it is only checked against the rules.
    pub namespace: Option<String>,
    pub name: String,
    /// The name as it would be without the organisation's name prefix, when it has one: a name
    /// that is valid without the prefix is the prefix's fault.
    pub unprefixed: Option<String>,
    pub owner: Owner,
    /// Where the part of the name the owner chose is written (the dataset, the project).
    pub source: Location,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_names_fit_and_stay_distinct() {
        let fitted = |base: &str| fit(base, 6, 30, |c| c.is_ascii_lowercase() || c == '-', Some('-'));
        assert_eq!(fitted("hail-test"), "hail-test");
        let long = fitted("a-very-long-machine-account-name-indeed");
        assert_eq!(long.len(), 30);
        assert_ne!(long, fitted("a-very-long-machine-account-name-indeed-2"));
        assert_eq!(fitted("ab").len(), 8, "too short gets a hash");
        assert_eq!(label_value("ds.one"), "ds_one");
        assert_eq!(alphanumeric("tob.wgs"), alphanumeric("tobwgs"));
        assert_eq!(bucket_part("tob.wgs"), "tob-wgs");
        assert_eq!(stable_hash("x"), stable_hash("x"));
    }

    #[test]
    fn gcs_bucket_rules() {
        let problem = |name| NameKind::GcsBucket.problem(name);
        assert_eq!(problem("egi-tob-wgs-main"), None);
        assert_eq!(problem("_under-main").unwrap(), "must start and end with a letter or digit");
        assert_eq!(problem("goog-main").unwrap(), "must not start with `goog`");
        assert_eq!(problem("egi-google-health-main").unwrap(), "must not contain `google`");
        assert!(problem("egi.tob").unwrap().contains("contains `.`"));
        assert!(problem("ab").unwrap().starts_with("is 2 characters"));
        assert!(problem(&"a".repeat(64)).unwrap().starts_with("is 64 characters; GCS bucket names have 3 to 63"));
    }

    #[test]
    fn azure_rules() {
        assert_eq!(NameKind::AzureStorageAccount.problem("egitobwgs"), None);
        assert!(NameKind::AzureStorageAccount.problem("egi-tob").unwrap().contains("contains `-`"));
        assert!(NameKind::AzureStorageAccount.problem(&"a".repeat(25)).is_some());
        assert_eq!(NameKind::AzureKeyVault.problem("egi-kv"), None);
        assert!(NameKind::AzureKeyVault.problem("1egikv").unwrap().contains("start with a letter"));
        assert_eq!(NameKind::AzureKeyVault.problem("egi--kv").unwrap(), "must not contain `--`");
        assert!(NameKind::AzureRegistry.problem("egi1").unwrap().starts_with("is 4 characters"));
        assert_eq!(NameKind::AzureRegistry.problem("egitobwgsimages"), None);
        assert_eq!(NameKind::AzureResourceGroup.problem("egi-x.").unwrap(), "must not end with `.`");
        assert_eq!(NameKind::GcpProject.problem("my-google-project").unwrap(), "must not contain `google`");
        assert!(NameKind::GcpProject.problem("proj").unwrap().starts_with("is 4 characters"));
    }
}
