//! Diagnostics: one error about one place in one definitions file.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A position in a definitions file, 1-based like editors show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub path: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The start of a file, for errors about a file as a whole.
    pub fn file(path: &str) -> Location {
        Location { path: Arc::from(path), line: 1, column: 1 }
    }

    /// Converts a byte offset in `text` to a line and a column counted in characters.
    pub fn at_offset(path: &Arc<str>, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { path: Arc::clone(path), line, column }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.column)
    }
}

/// One validation error, printed as `path:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub location: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every diagnostic found while loading, sorted by file and position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, location: Location, message: impl Into<String>) {
        self.0.push(Diagnostic { location, message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// The same diagnostics about the files of a Git revision: each path becomes `rev:path`,
    /// as `git show rev:path` names the file, so no location reads as the working tree's.
    pub fn in_revision(mut self, revision: &str) -> Diagnostics {
        for diagnostic in &mut self.0 {
            let path = &diagnostic.location.path;
            diagnostic.location.path = Arc::from(format!("{revision}:{path}"));
        }
        self
    }

    /// Sorts and removes repeats so output is stable.
    pub fn finish(mut self) -> Diagnostics {
        self.0.sort();
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A loaded file's text, used to turn spans into locations.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: Arc<str>,
    pub text: String,
    /// Byte offset where each line starts, so a location costs a binary search, not a scan.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: &str, text: String) -> SourceFile {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        SourceFile { path: Arc::from(path), text, line_starts }
    }

    pub fn location(&self, span: Range<usize>) -> Location {
        let offset = floor_char_boundary(&self.text, span.start.min(self.text.len()));
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        Location { path: Arc::clone(&self.path), line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbb = \"é2\"\n";
        let f: Arc<str> = Arc::from("f");
        assert_eq!(Location::at_offset(&f, text, 0).to_string(), "f:1:1");
        assert_eq!(Location::at_offset(&f, text, 6).to_string(), "f:2:1");
        // The column counts characters, not bytes.
        let quote_after_e = text.find('2').unwrap();
        assert_eq!(Location::at_offset(&f, text, quote_after_e).to_string(), "f:2:8");
        let file = SourceFile::new("f", text.to_owned());
        for offset in [0, 5, 6, quote_after_e, text.len()] {
            assert_eq!(file.location(offset..offset), Location::at_offset(&f, text, offset), "offset {offset}");
        }
    }

    #[test]
    fn diagnostics_of_a_revision_name_it_before_the_path() {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(Location { path: Arc::from("datasets/x/members.toml"), line: 3, column: 5 }, "unknown person");
        let shown = diagnostics.in_revision("origin/main").to_string();
        assert_eq!(shown, "origin/main:datasets/x/members.toml:3:5: unknown person\n");
    }
}
