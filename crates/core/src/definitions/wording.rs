//! Turning what the TOML parser and serde say into messages a person can act on.
//!
//! Owns the wording of syntax and type errors (no Rust type names, the place where the mistake
//! is rather than where the parser gave up) and the naming of characters that cannot be seen.
//! Never decides whether something is an error: that is the parser's and `validate`'s job.

use std::ops::Range;

use super::diagnostic::SourceFile;

/// A parse error in words, and the byte range it is about.
pub struct Worded {
    pub span: Range<usize>,
    pub message: String,
}

/// Characters that make a file look right while being wrong, each reported where it is, before
/// parsing: an error about them would otherwise point somewhere else or not exist at all.
pub fn hidden_characters(text: &str) -> Vec<Worded> {
    text.char_indices()
        .filter(|&(offset, c)| !(offset == 0 && c == '\u{feff}'))
        .filter_map(|(offset, c)| {
            let name = hidden_character_name(c)?;
            Some(Worded {
                span: offset..offset + c.len_utf8(),
                message: format!("{} ({name}) cannot be seen in an editor; delete it", code_point(c)),
            })
        })
        .collect()
}

/// `U+200B`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

fn hidden_character_name(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{0}' => "NUL",
        '\t' | '\n' | '\r' => return None,
        '\u{1}'..='\u{1f}' | '\u{7f}' => "a control character",
        '\u{80}'..='\u{9f}' => "a control character",
        '\u{ad}' => "SOFT HYPHEN",
        '\u{200b}' => "ZERO WIDTH SPACE",
        '\u{200c}' => "ZERO WIDTH NON-JOINER",
        '\u{200d}' => "ZERO WIDTH JOINER",
        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => "a text direction mark",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{2060}' => "WORD JOINER",
        '\u{feff}' => "BYTE ORDER MARK, allowed only at the very start of a file",
        _ => return None,
    })
}

/// For a name or email that is not what it looks like: the first character outside ASCII,
/// e.g. a Cyrillic `а` in a domain.
pub fn non_ascii_note(text: &str) -> Option<String> {
    let (position, c) = text.chars().enumerate().find(|(_, c)| !c.is_ascii())?;
    Some(format!(
        "character {} (`{c}`, {}) is not an ASCII letter, though it may look like one",
        position + 1,
        code_point(c)
    ))
}

/// `invalid email `x``, naming a character that only looks like ASCII.
pub fn invalid_email(email: &str) -> String {
    match non_ascii_note(email) {
        Some(note) => format!("invalid email `{email}`: {note}"),
        None => format!("invalid email `{email}`"),
    }
}

/// `unknown role `analyis`; did you mean `analysis`?`, then the known names when `list` is set
/// (short lists only: roles, not people).
pub fn unknown<'a>(kind: &str, name: &str, known: impl IntoIterator<Item = &'a str>, list: bool) -> String {
    let known: Vec<&str> = known.into_iter().collect();
    let mut message = format!("unknown {kind} `{name}`");
    if let Some(note) = non_ascii_note(name) {
        message.push_str(&format!(": {note}"));
    }
    let nearest = known
        .iter()
        .map(|candidate| (strsim::jaro(name, candidate), *candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, nearest)) = nearest {
        message.push_str(&format!("; did you mean `{nearest}`?"));
    }
    if list && !known.is_empty() {
        message.push_str(&format!(" ({kind}s: {})", known.join(", ")));
    }
    message
}

/// The parser's error about `file`, reworded and relocated where the mistake is.
pub fn parse_error(file: &SourceFile, error: &toml::de::Error) -> Worded {
    let span = error.span().unwrap_or(0..0);
    let raw = error.message().trim();
    let text = file.text.as_str();
    match unclosed_string(text) {
        Some(Unclosed { at, multi_line: true }) if raw.contains("multi-line") && raw.contains("string") => {
            let quotes = &text[at..at + 3];
            return Worded {
                span: at..at,
                message: format!("this multi-line string is never closed: add {quotes} where it should end"),
            };
        }
        // The parser reads on past the end of the line and gives up later, where the lines after
        // it stop making sense (in a list, a "missing comma" some lines below).
        Some(Unclosed { at, multi_line: false }) if at <= span.start => {
            let quote = &text[at..at + 1];
            return Worded {
                span: at..at,
                message: format!("this string is never closed: add {quote} where it should end, on the same line"),
            };
        }
        _ => {}
    }
    // A dotted key with too many parts, which the parser reports without a place.
    if raw.starts_with("recursion limit") && error.span().is_none() {
        if let Some((start, parts)) = longest_dotted_key(text) {
            return Worded {
                span: start..start,
                message: format!(
                    "the dotted key `{}` has {} parts: it is nested too deeply (tables inside each other)",
                    key_preview(&parts),
                    parts.len()
                ),
            };
        }
    }
    if raw.contains("recursion") || raw.contains("recurse") {
        let start = line_start(text, span.start);
        let key = key_before(text, span.start).unwrap_or_default();
        return Worded {
            span: start..start,
            message: format!("the value of `{key}` is nested too deeply (lists or tables inside each other)"),
        };
    }
    if raw.starts_with("duplicate key") {
        return duplicate_key(file, span);
    }
    if raw.starts_with("invalid boolean") || raw.starts_with("invalid string") || raw.contains("expected `true`") {
        let word = bare_word(text, span.start);
        if !word.is_empty() {
            let key = key_before(text, span.start).unwrap_or_default();
            return Worded { span: span.clone(), message: bare_word_message(&key, &word) };
        }
    }
    let key = key_before(text, span.start).unwrap_or_default();
    let members_file = file.path.ends_with("members.toml") || key == "members";
    Worded { span, message: serde_message(raw, members_file) }
}

/// A bare word where a value belongs: the one thing it could have meant, in words.
fn bare_word_message(key: &str, word: &str) -> String {
    if DATE_KEYS.contains(&key) {
        return format!("`{word}` is not a date; write a date like 2027-03-31 (without quotes)");
    }
    format!("`{word}` is not a value: put text in quotes (\"{word}\"); write true or false, numbers and dates like 2027-03-31 as they are")
}

/// Keys whose value is a date.
const DATE_KEYS: &[&str] = &["expires", "fixed_start"];

/// Rewrites serde's "invalid type: string \"x\", expected usize" in plain words.
fn serde_message(raw: &str, members_file: bool) -> String {
    let (found, expected) = if let Some(rest) = raw.strip_prefix("invalid type: ") {
        match rest.rsplit_once(", expected ") {
            Some(parts) => parts,
            None => return raw.to_owned(),
        }
    } else if let Some(rest) = raw.strip_prefix("invalid value: ") {
        match rest.rsplit_once(", expected ") {
            Some(parts) => parts,
            None => return raw.to_owned(),
        }
    } else {
        return raw.to_owned();
    };
    let found = found_in_words(found);
    if expected.contains("datetime") {
        let quoted_date = found.strip_prefix("the text \"").and_then(|s| s.strip_suffix('"'));
        if let Some(date) = quoted_date.filter(|d| d.parse::<super::Date>().is_ok()) {
            return format!("write the date without quotes: {date}");
        }
        return format!("expected a date like 2027-03-31 (without quotes), found {found}");
    }
    let expected = expected_in_words(expected, members_file);
    format!("expected {expected}, found {found}")
}

fn expected_in_words(expected: &str, members_file: bool) -> String {
    let words = match expected {
        "usize" | "u64" | "u32" | "u16" => "a whole number (0 or more)",
        "u8" => "a whole number from 0 to 255",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "string" => "text in quotes",
        "a sequence" | "sequence" if members_file => "a list of members, like [\"alice\", \"group:team\"]",
        "a sequence" | "sequence" => "a list, like [\"a\", \"b\"]",
        "a map" | "map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    words.to_owned()
}

fn found_in_words(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    for (prefix, words) in [("integer ", "the number "), ("floating point ", "the number "), ("boolean ", "")] {
        if let Some(value) = found.strip_prefix(prefix) {
            return format!("{words}{}", value.trim_matches('`'));
        }
    }
    match found {
        "sequence" => "a list".to_owned(),
        "map" => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// A key given twice, with where it was first given.
fn duplicate_key(file: &SourceFile, span: Range<usize>) -> Worded {
    let text = file.text.as_str();
    let start = line_start(text, span.start);
    let line = text[start..].lines().next().unwrap_or_default().trim();
    if line.starts_with('[') {
        let header = table_header(line);
        let first = header_lines(text).find(|(offset, h)| *h == header && *offset < start).map(|(offset, _)| offset);
        let at = first.map(|o| format!("; it was first defined at {}", file.location(o..o))).unwrap_or_default();
        return Worded { span: start..start, message: format!("table [{header}] is defined twice{at}") };
    }
    let key = key_of_line(&text[start..]).unwrap_or_else(|| text[span.clone()].trim().to_owned());
    // The first definition is in the same table: between the last header before this line and it.
    let section = header_lines(text).filter(|&(offset, _)| offset < start).last().map_or(0, |(offset, _)| offset);
    let first = line_offsets(text)
        .filter(|&o| o >= section && o < start)
        .find(|&o| key_of_line(&text[o..]).as_deref() == Some(key.as_str()));
    let at = first.map(|o| format!("; it was first set at {}", file.location(o..o))).unwrap_or_default();
    Worded { span: start..start, message: format!("`{key}` is set twice in the same table{at}") }
}

/// Byte offsets where lines start.
fn line_offsets(text: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1))
}

/// Table headers (`[a.b]`, `[[a]]`) and the offset of their line.
fn header_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    line_offsets(text).filter_map(move |offset| {
        let line = text[offset..].lines().next()?.trim();
        line.starts_with('[').then(|| (offset, table_header(line)))
    })
}

/// `[ people . alice ] # x` → `people.alice`.
fn table_header(line: &str) -> String {
    let inner = line.trim_start_matches('[');
    let inner = inner.split(']').next().unwrap_or_default();
    inner.split('.').map(|part| part.trim().trim_matches('"')).collect::<Vec<_>>().join(".")
}

/// The key a line sets, for `key = value` lines.
fn key_of_line(line: &str) -> Option<String> {
    let line = line.lines().next()?.trim();
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_owned())
}

fn line_start(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text[..floor(text, offset)].rfind('\n').map_or(0, |i| i + 1)
}

fn floor(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The key whose value contains `offset`: the last `key =` before it (inline tables included).
fn key_before(text: &str, offset: usize) -> Option<String> {
    let before = &text[..floor(text, offset.min(text.len()))];
    let equals = before.rfind('=')?;
    let key_end = before[..equals].trim_end();
    let key_start =
        key_end.rfind(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '"' | '.'))).map_or(0, |i| i + 1);
    let key = key_end[key_start..].trim_matches('"');
    (!key.is_empty()).then(|| key.to_owned())
}

/// The run of letters, digits, `-` and `_` at `offset`.
fn bare_word(text: &str, offset: usize) -> String {
    let rest = &text[floor(text, offset.min(text.len()))..];
    rest.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_')).collect()
}

/// A string that never closes, and where it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unclosed {
    at: usize,
    /// `"""` or `'''`, which may go on for lines; any other string ends on the line it starts.
    multi_line: bool,
}

/// The first string that never closes. Follows TOML's lexical rules: comments cannot open a
/// string, escapes cannot close a basic one, and only a multi-line string goes past its line.
fn unclosed_string(text: &str) -> Option<Unclosed> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = text[i..].find('\n').map_or(bytes.len(), |n| i + n),
            quote @ (b'"' | b'\'') if text[i..].starts_with(if quote == b'"' { "\"\"\"" } else { "'''" }) => {
                let close = if quote == b'"' { "\"\"\"" } else { "'''" };
                let mut j = i + 3;
                loop {
                    let Some(found) = text[j..].find(close) else {
                        return Some(Unclosed { at: i, multi_line: true });
                    };
                    let at = j + found;
                    let escaped = quote == b'"' && text[..at].chars().rev().take_while(|&c| c == '\\').count() % 2 == 1;
                    if !escaped {
                        // Up to two more quotes may belong to the content (`""""` ends with one in it).
                        i = at + 3;
                        while i < bytes.len() && bytes[i] == quote {
                            i += 1;
                        }
                        break;
                    }
                    j = at + 1;
                }
            }
            quote @ (b'"' | b'\'') => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != quote && bytes[j] != b'\n' {
                    let escape = quote == b'"' && bytes[j] == b'\\' && bytes.get(j + 1).is_some_and(|&b| b != b'\n');
                    j += if escape { 2 } else { 1 };
                }
                if bytes.get(j) != Some(&quote) {
                    return Some(Unclosed { at: i, multi_line: false });
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The key with the most dotted parts, of a `key = value` line or a table header: where it
/// starts, and its parts.
fn longest_dotted_key(text: &str) -> Option<(usize, Vec<&str>)> {
    let mut longest: Option<(usize, Vec<&str>)> = None;
    for offset in line_offsets(text) {
        let line = text[offset..].lines().next().unwrap_or_default();
        let start = line.len() - line.trim_start().len();
        let brackets = line[start..].len() - line[start..].trim_start_matches('[').len();
        let start = start + brackets;
        let Some(parts) = key_parts(&line[start..], if brackets > 0 { ']' } else { '=' }) else {
            continue;
        };
        if parts.len() > longest.as_ref().map_or(1, |(_, parts)| parts.len()) {
            longest = Some((offset + start, parts));
        }
    }
    longest
}

/// The parts of the key at the start of `text`, which ends at `end` outside quotes:
/// `a."b.c" =` has two.
fn key_parts(text: &str, end: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut part_start = 0;
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '.' || c == end => {
                parts.push(text[part_start..i].trim());
                if c == end {
                    return Some(parts);
                }
                part_start = i + 1;
            }
            None if c == '#' => return None,
            None => {}
        }
    }
    None
}

/// `a.b.c…`: a long key by its first parts, each cut short when long.
fn key_preview(parts: &[&str]) -> String {
    const PARTS_SHOWN: usize = 3;
    const CHARACTERS_SHOWN: usize = 20;
    let shorten = |part: &&str| match part.char_indices().nth(CHARACTERS_SHOWN) {
        Some((cut, _)) => format!("{}…", &part[..cut]),
        None => (*part).to_owned(),
    };
    let shown: Vec<String> = parts.iter().take(PARTS_SHOWN).map(shorten).collect();
    let more = if parts.len() > PARTS_SHOWN { "…" } else { "" };
    format!("{}{more}", shown.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_where_an_unclosed_string_opened() {
        let text = "a = \"\"\"closed\"\"\"\nb = 'x \"\"\"'\n# \"\"\" comment\nc = \"\"\"open\nmore\n";
        let at = text.find("\"\"\"open").unwrap();
        assert_eq!(unclosed_string(text), Some(Unclosed { at, multi_line: true }));
        assert_eq!(unclosed_string("a = '''x'''\nb = \"\"\"y \\\"\"\" z\"\"\"\n"), None);
        let text = "a = [\"x\", 'y\\', \"z \\\" # \"]\nb = [\"david]\nc = \"d\"\n";
        let at = text.find("\"david").unwrap();
        assert_eq!(unclosed_string(text), Some(Unclosed { at, multi_line: false }));
        assert_eq!(unclosed_string("a = 'x\"'\n# it's \"\nb = \"\"\n"), None);
        assert_eq!(unclosed_string("a = \"x \\\nb = \"y\"\n"), Some(Unclosed { at: 4, multi_line: false }));
    }

    #[test]
    fn a_long_dotted_key_is_named_by_its_first_parts() {
        let text = "x.y = 1\n[t]\n  a.\"b.c\".d.e = 1\n";
        let (start, parts) = longest_dotted_key(text).unwrap();
        assert_eq!(start, text.find("a.").unwrap());
        assert_eq!(parts, ["a", "\"b.c\"", "d", "e"]);
        assert_eq!(key_preview(&parts), "a.\"b.c\".d…");
        assert_eq!(key_preview(&["a", "b"]), "a.b");
        assert_eq!(key_preview(&["abcdefghijklmnopqrstuvwxyz"]), "abcdefghijklmnopqrst…");
        let (start, parts) = longest_dotted_key("a = 1\n[[p.q.r]]\n").unwrap();
        assert_eq!((start, parts), ("a = 1\n[[".len(), vec!["p", "q", "r"]));
    }

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            serde_message("invalid type: string \"many\", expected usize", false),
            "expected a whole number (0 or more), found the text \"many\""
        );
        assert_eq!(
            serde_message("invalid type: string \"alice\", expected a sequence", true),
            "expected a list of members, like [\"alice\", \"group:team\"], found the text \"alice\""
        );
        assert_eq!(
            serde_message("invalid type: string \"2027-03-31\", expected a TOML datetime", false),
            "write the date without quotes: 2027-03-31"
        );
        assert_eq!(
            serde_message("invalid type: map, expected a string", false),
            "expected text in quotes, found a table"
        );
    }

    #[test]
    fn hidden_characters_are_named_by_code_point() {
        let found = hidden_characters("\u{feff}a = \"x\u{200b}\"\n");
        assert_eq!(found.len(), 1, "a BOM at the start is allowed");
        assert!(found[0].message.starts_with("U+200B (ZERO WIDTH SPACE)"), "{}", found[0].message);
        assert_eq!(
            non_ascii_note("b@ex\u{430}mple.org").unwrap(),
            "character 5 (`\u{430}`, U+0430) is not an ASCII letter, though it may look like one"
        );
    }
}
