//! Cloud resource names derived from dataset names: sanitised, shortened with a stable hash
//! when too long, never random.
//!
//! Owns the naming rules the clouds share. Never chooses what to create.

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
/// of the whole base so that distinct bases stay distinct.
pub fn fit(base: &str, min: usize, max: usize, allowed: impl Fn(char) -> bool, replacement: Option<char>) -> String {
    let mut name: String = base
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter_map(|c| if allowed(c) { Some(c) } else { replacement })
        .collect();
    if name.len() < min || name.len() > max {
        let suffix = &stable_hash(base)[..6];
        name.truncate(max.saturating_sub(suffix.len()));
        name.push_str(suffix);
    }
    name
}

/// Letters and digits only (Azure storage accounts, key vaults, registries).
pub fn alphanumeric(base: &str, min: usize, max: usize) -> String {
    fit(base, min, max, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), None)
}

/// A label value (GCP labels: lowercase letters, digits, `-` and `_`, at most 63).
pub fn label_value(text: &str) -> String {
    fit(text, 0, 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_', Some('_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_stay_distinct() {
        assert_eq!(alphanumeric("tob-wgs", 3, 24), "tobwgs");
        let long = alphanumeric("a-very-long-dataset-name-indeed", 3, 24);
        assert_eq!(long.len(), 24);
        assert_ne!(long, alphanumeric("a-very-long-dataset-name-indeed-2", 3, 24));
        assert_eq!(alphanumeric("ab", 3, 24).len(), 8, "too short gets a hash");
        assert_eq!(label_value("ds.one"), "ds_one");
        assert_eq!(stable_hash("x"), stable_hash("x"));
    }
}
