//! Parsed files shared by several loads, so a text is parsed once however often it is read.
//!
//! `groups diff` loads two revisions that share almost every file. Entries are keyed by the
//! file's exact text (and the shape it is parsed into), never by path or revision, so a hit
//! gives the same value or error that parsing would: a cached load equals an uncached one.
//! Owns no I/O and never looks at what the files mean.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::DeserializeOwned;

/// What parsing one text gave, for every text parsed so far. Safe to share between the
/// threads that load each revision: a second reader of a text being parsed waits for it.
#[derive(Default)]
pub struct ParseCache {
    /// Shape → text → its parse, filled once.
    entries: Mutex<HashMap<TypeId, HashMap<String, Arc<Slot>>>>,
}

/// One text's parse; `OnceLock` makes a concurrent reader wait instead of parsing it again.
type Slot = OnceLock<Box<dyn Any + Send + Sync>>;

impl ParseCache {
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    /// How many distinct texts have been parsed.
    pub fn parsed_count(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.values().flat_map(|texts| texts.values()).filter(|slot| slot.get().is_some()).count()
    }

    /// `text` parsed as TOML into `T`: the kept result if this text was parsed into `T` before.
    pub(super) fn parse<T>(&self, text: &str) -> Result<T, toml::de::Error>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let texts = entries.entry(TypeId::of::<T>()).or_default();
            match texts.get(text) {
                Some(slot) => Arc::clone(slot),
                None => Arc::clone(texts.entry(text.to_owned()).or_default()),
            }
        };
        let parsed = slot.get_or_init(|| Box::new(toml::from_str::<T>(text)));
        match parsed.downcast_ref::<Result<T, toml::de::Error>>() {
            Some(result) => result.clone(),
            // Unreachable: slots are keyed by the type they hold.
            None => toml::from_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Deserialize)]
    struct Shape {
        name: String,
    }

    #[test]
    fn each_text_is_parsed_once_and_errors_are_kept_too() {
        let cache = ParseCache::new();
        let first: Shape = cache.parse("name = \"a\"").expect("parses");
        let again: Shape = cache.parse("name = \"a\"").expect("parses");
        assert_eq!(first, again);
        assert_eq!(cache.parsed_count(), 1);
        let broken = cache.parse::<Shape>("name = ").expect_err("does not parse");
        assert_eq!(cache.parse::<Shape>("name = ").expect_err("does not parse"), broken);
        assert_eq!(broken, toml::from_str::<Shape>("name = ").expect_err("does not parse"));
        assert_eq!(cache.parsed_count(), 2);
    }

    #[test]
    fn the_same_text_parsed_into_another_shape_is_another_entry() {
        let cache = ParseCache::new();
        let shape: Shape = cache.parse("name = \"a\"").expect("parses");
        let table: toml::Table = cache.parse("name = \"a\"").expect("parses");
        assert_eq!(shape.name, "a");
        assert_eq!(table["name"].as_str(), Some("a"));
        assert_eq!(cache.parsed_count(), 2);
    }

    #[test]
    fn threads_sharing_a_cache_parse_each_text_once() {
        let cache = ParseCache::new();
        let texts: Vec<String> = (0..50).map(|i| format!("name = \"n{i}\"")).collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for text in &texts {
                        let parsed: Shape = cache.parse(text).expect("parses");
                        assert_eq!(format!("name = \"{}\"", parsed.name), *text);
                    }
                });
            }
        });
        assert_eq!(cache.parsed_count(), texts.len());
    }
}
