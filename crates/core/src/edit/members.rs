//! One grant added to or removed from a role's list in `datasets/<name>/members.toml`.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use super::EditError;
use crate::definitions::Date;

/// A grant to write: who, until when, and why (written as a comment above the entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant<'a> {
    pub role: &'a str,
    /// The member as the file writes it: a person key, `group:<name>` or an email.
    pub member: &'a str,
    pub expires: Option<Date>,
    pub reason: Option<&'a str>,
}

/// Adds `grant` at the end of its role's list (creating the role's line if missing). An entry
/// for the same member with another expiry date has its date replaced in place; the same
/// entry again is an error.
pub fn add_grant(path: &str, text: &str, grant: &NewGrant) -> Result<String, EditError> {
    let mut document = parse(path, text)?;
    let entry = entry_value(grant.member, grant.expires);
    let Some(item) = document.get_mut(grant.role) else {
        let mut array = Array::new();
        array.push_formatted(entry);
        if let Some(reason) = grant.reason {
            make_multiline(&mut array, "    ");
            set_comment(array.get_mut(0).expect("one entry"), "    ", reason);
        }
        let mut value = Value::Array(array);
        value.decor_mut().set_prefix(" ");
        document.insert(grant.role, Item::Value(value));
        return Ok(ensure_separated(document.to_string()));
    };
    let array = as_array(path, grant.role, item)?;
    if let Some(index) = position(array, grant.member) {
        let existing = array.get(index).expect("found entry");
        if expiry(existing) == grant.expires {
            let until = grant.expires.map(|d| format!(" until {d}")).unwrap_or_default();
            return Err(EditError::AlreadyGranted {
                path: path.to_owned(),
                member: grant.member.to_owned(),
                role: grant.role.to_owned(),
                until,
            });
        }
        let mut replacement = entry;
        *replacement.decor_mut() = existing.decor().clone();
        array.replace_formatted(index, replacement);
        if let Some(reason) = grant.reason {
            // The new reason goes below any comment already on the entry.
            let indent = multiline_indent(array).unwrap_or_else(|| {
                move_last_suffix_to_trailing(array);
                make_multiline(array, "    ");
                "    ".to_owned()
            });
            let value = array.get_mut(index).expect("replaced entry");
            let prefix = value.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default().to_owned();
            let kept = &prefix[..prefix.rfind('\n').unwrap_or(0)];
            set_comment(value, &indent, reason);
            let comment = value.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default().to_owned();
            value.decor_mut().set_prefix(format!("{kept}{comment}"));
        }
        return Ok(document.to_string());
    }
    move_last_suffix_to_trailing(array);
    let indent = match multiline_indent(array) {
        Some(indent) => indent,
        None if grant.reason.is_some() => {
            make_multiline(array, "    ");
            "    ".to_owned()
        }
        None => {
            let mut entry = entry;
            if array.is_empty() {
                // `[\n]` with one entry is `["x"]`.
                array.set_trailing("");
                array.set_trailing_comma(false);
            }
            entry.decor_mut().set_prefix(if array.is_empty() { "" } else { " " });
            array.push_formatted(entry);
            return Ok(document.to_string());
        }
    };
    // A comment on the last entry's line (`"x", # note`) is held after the list's last comma;
    // it stays on that line, before the new entry.
    let trailing = array.trailing().as_str().unwrap_or_default().to_owned();
    let (same_line, rest) = match trailing.find('\n') {
        Some(newline) => (trailing[..newline].to_owned(), trailing[newline..].to_owned()),
        None => (trailing.clone(), "\n".to_owned()),
    };
    let mut entry = entry;
    entry.decor_mut().set_prefix(format!("{same_line}\n{indent}"));
    if let Some(reason) = grant.reason {
        set_comment(&mut entry, &indent, reason);
        let comment = entry.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default().to_owned();
        entry.decor_mut().set_prefix(format!("{same_line}{comment}"));
    }
    array.push_formatted(entry);
    array.set_trailing_comma(true);
    array.set_trailing(rest);
    Ok(document.to_string())
}

/// Whether `role`'s list has an entry for `member` written exactly so (case aside), e.g. to
/// find whether a person is listed by key or by email.
pub fn has_entry(text: &str, role: &str, member: &str) -> bool {
    let Ok(document) = text.parse::<DocumentMut>() else { return false };
    document.get(role).and_then(Item::as_array).is_some_and(|array| position(array, member).is_some())
}

/// Removes `member`'s entry (and the comment lines written above it) from `role`'s list.
pub fn remove_grant(path: &str, text: &str, role: &str, member: &str) -> Result<String, EditError> {
    let mut document = parse(path, text)?;
    let not_granted =
        || EditError::NotGranted { path: path.to_owned(), member: member.to_owned(), role: role.to_owned() };
    let Some(item) = document.get_mut(role) else {
        return Err(not_granted());
    };
    let array = as_array(path, role, item)?;
    let index = position(array, member).ok_or_else(not_granted)?;
    let removed = array.remove(index);
    let removed_prefix = removed.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default().to_owned();
    if index == 0 && !removed_prefix.contains('\n') {
        // `["a", "b"]` without `a` is `["b"]`, not `[ "b"]`.
        if let Some(first) = array.get_mut(0) {
            first.decor_mut().set_prefix(removed_prefix);
        }
    }
    if array.is_empty() {
        array.set_trailing("");
        array.set_trailing_comma(false);
    }
    Ok(document.to_string())
}

fn parse(path: &str, text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::Unparsable { path: path.to_owned(), problem: e.message().to_owned() })
}

fn as_array<'a>(path: &str, role: &str, item: &'a mut Item) -> Result<&'a mut Array, EditError> {
    item.as_array_mut().ok_or_else(|| EditError::NotAList { path: path.to_owned(), key: role.to_owned() })
}

/// `"member"`, or `{ member = "member", expires = YYYY-MM-DD }`.
fn entry_value(member: &str, expires: Option<Date>) -> Value {
    let Some(date) = expires else {
        return Value::from(member);
    };
    let mut table = InlineTable::new();
    table.insert("member", Value::from(member));
    let date = toml_edit::Date { year: date.year, month: date.month, day: date.day };
    table.insert("expires", Value::from(date));
    table.fmt();
    Value::InlineTable(table)
}

/// The member an entry names.
fn member_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s.value()),
        Value::InlineTable(table) => table.get("member").and_then(Value::as_str),
        _ => None,
    }
}

fn expiry(value: &Value) -> Option<Date> {
    let datetime = value.as_inline_table()?.get("expires")?.as_datetime()?;
    let date = datetime.date?;
    Some(Date { year: date.year, month: date.month, day: date.day })
}

fn position(array: &Array, member: &str) -> Option<usize> {
    array.iter().position(|value| member_of(value).is_some_and(|m| m.eq_ignore_ascii_case(member)))
}

/// The indentation of a list written one entry per line, or `None` for a one-line list.
fn multiline_indent(array: &Array) -> Option<String> {
    let prefixes: Vec<&str> =
        array.iter().map(|value| value.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default()).collect();
    let last = prefixes.iter().rev().find(|prefix| prefix.contains('\n'))?;
    let indent = &last[last.rfind('\n').expect("has a newline") + 1..];
    Some(indent.to_owned())
}

/// Without a comma after the last entry, the space before `]` belongs to that entry; it is
/// moved to the list's end so that a new last entry goes before it.
fn move_last_suffix_to_trailing(array: &mut Array) {
    if array.trailing_comma() {
        return;
    }
    let trailing = array.trailing().as_str().unwrap_or_default().to_owned();
    let Some(last) = array.iter_mut().last() else { return };
    let suffix = last.decor().suffix().and_then(|s| s.as_str()).unwrap_or_default().to_owned();
    last.decor_mut().set_suffix("");
    array.set_trailing(suffix + &trailing);
}

/// Puts every entry of a one-line list on its own line.
fn make_multiline(array: &mut Array, indent: &str) {
    for value in array.iter_mut() {
        value.decor_mut().set_prefix(format!("\n{indent}"));
        value.decor_mut().set_suffix("");
    }
    array.set_trailing_comma(true);
    array.set_trailing("\n");
}

/// Writes `reason` as a comment line above the entry.
fn set_comment(value: &mut Value, indent: &str, reason: &str) {
    let reason: String = reason.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    value.decor_mut().set_prefix(format!("\n{indent}# {reason}\n{indent}"));
}

/// A new line at the end of a file that did not end with a newline would join the last line.
fn ensure_separated(text: String) -> String {
    if text.ends_with('\n') {
        text
    } else {
        text + "\n"
    }
}

/// The reason written for the grant on `line` (1-based) of a members file: the `# …` comment on
/// the line above, as `groups add --reason` writes it.
pub fn reason_above(text: &str, line: usize) -> Option<&str> {
    let above = text.lines().nth(line.checked_sub(2)?)?;
    above.trim().strip_prefix('#').map(str::trim).filter(|reason| !reason.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# Role → members.

data-manager = [\"amara\", \"ingrid\"]

analysis = [
    \"group:data-science\",
    # Expired: kept to show how expiry works.
    { member = \"olivia\", expires = 2026-06-30 },
]
web-access = [\"david\"] # trailing note
";

    fn grant<'a>(role: &'a str, member: &'a str) -> NewGrant<'a> {
        NewGrant { role, member, expires: None, reason: None }
    }

    #[test]
    fn adds_to_a_one_line_list() {
        let edited = add_grant("m", FILE, &grant("data-manager", "wei")).unwrap();
        assert_eq!(edited, FILE.replace("[\"amara\", \"ingrid\"]", "[\"amara\", \"ingrid\", \"wei\"]"));
    }

    #[test]
    fn adds_to_a_multiline_list_with_expiry_and_reason() {
        let date = "2027-01-31".parse().unwrap();
        let new = NewGrant { role: "analysis", member: "wei", expires: Some(date), reason: Some("ticket 12") };
        let edited = add_grant("m", FILE, &new).unwrap();
        let expected = FILE.replace(
            "2026-06-30 },\n]",
            "2026-06-30 },\n    # ticket 12\n    { member = \"wei\", expires = 2027-01-31 },\n]",
        );
        assert_eq!(edited, expected);
    }

    #[test]
    fn a_reason_turns_a_one_line_list_into_lines() {
        let new = NewGrant { reason: Some("covering leave"), ..grant("web-access", "amara") };
        let edited = add_grant("m", FILE, &new).unwrap();
        let expected = FILE.replace(
            "web-access = [\"david\"] # trailing note",
            "web-access = [\n    \"david\",\n    # covering leave\n    \"amara\",\n] # trailing note",
        );
        assert_eq!(edited, expected);
    }

    #[test]
    fn a_comment_on_the_last_line_stays_there() {
        let text = "analysis = [\n    \"a\",\n    \"b\", # until the move\n]\n";
        let edited = add_grant("m", text, &grant("analysis", "c")).unwrap();
        assert_eq!(edited, "analysis = [\n    \"a\",\n    \"b\", # until the move\n    \"c\",\n]\n");
        let new = NewGrant { reason: Some("why"), ..grant("analysis", "c") };
        let edited = add_grant("m", text, &new).unwrap();
        let expected = "analysis = [\n    \"a\",\n    \"b\", # until the move\n    # why\n    \"c\",\n]\n";
        assert_eq!(edited, expected);
        let edited = add_grant("m", "analysis = [\n]\n", &grant("analysis", "c")).unwrap();
        assert_eq!(edited, "analysis = [\"c\"]\n");
        let edited = add_grant("m", "analysis = [ \"a\" ]\n", &grant("analysis", "c")).unwrap();
        assert_eq!(edited, "analysis = [ \"a\", \"c\" ]\n");
        // Without a trailing comma.
        let text = "analysis = [\n    \"a\"\n]\n";
        let edited = add_grant("m", text, &grant("analysis", "c")).unwrap();
        assert_eq!(edited, "analysis = [\n    \"a\",\n    \"c\",\n]\n");
    }

    #[test]
    fn adds_a_missing_role_at_the_end() {
        let edited = add_grant("m", FILE, &grant("upload", "wei")).unwrap();
        assert_eq!(edited, format!("{FILE}upload = [\"wei\"]\n"));
        let edited = add_grant("m", "", &grant("upload", "wei")).unwrap();
        assert_eq!(edited, "upload = [\"wei\"]\n");
    }

    #[test]
    fn a_new_date_replaces_the_old_one_in_place() {
        let new = NewGrant { expires: Some("2027-06-30".parse().unwrap()), ..grant("analysis", "olivia") };
        let edited = add_grant("m", FILE, &new).unwrap();
        assert_eq!(edited, FILE.replace("expires = 2026-06-30", "expires = 2027-06-30"));
    }

    #[test]
    fn a_new_date_with_a_reason_keeps_the_old_comment_too() {
        let new = NewGrant {
            expires: Some("2027-06-30".parse().unwrap()),
            reason: Some("extended for the rerun"),
            ..grant("analysis", "olivia")
        };
        let edited = add_grant("m", FILE, &new).unwrap();
        let expected = FILE.replace(
            "works.\n    { member = \"olivia\", expires = 2026-06-30 },",
            "works.\n    # extended for the rerun\n    { member = \"olivia\", expires = 2027-06-30 },",
        );
        assert_eq!(edited, expected);
    }

    #[test]
    fn the_same_grant_twice_is_an_error() {
        let error = add_grant("m", FILE, &grant("data-manager", "amara")).unwrap_err();
        assert_eq!(error.to_string(), "m: `amara` already has role `data-manager`");
    }

    #[test]
    fn removes_from_either_kind_of_list() {
        let edited = remove_grant("m", FILE, "data-manager", "amara").unwrap();
        assert_eq!(edited, FILE.replace("[\"amara\", \"ingrid\"]", "[\"ingrid\"]"));
        let edited = remove_grant("m", FILE, "data-manager", "ingrid").unwrap();
        assert_eq!(edited, FILE.replace("[\"amara\", \"ingrid\"]", "[\"amara\"]"));
        let edited = remove_grant("m", FILE, "analysis", "olivia").unwrap();
        let expected = FILE.replace(
            "\n    # Expired: kept to show how expiry works.\n    { member = \"olivia\", expires = 2026-06-30 },",
            "",
        );
        assert_eq!(edited, expected);
        let edited = remove_grant("m", FILE, "web-access", "david").unwrap();
        assert_eq!(edited, FILE.replace("[\"david\"]", "[]"));
    }

    #[test]
    fn removing_what_is_not_there_is_an_error() {
        let error = remove_grant("m", FILE, "analysis", "wei").unwrap_err();
        assert_eq!(error.to_string(), "m: `wei` does not have role `analysis`");
        assert!(remove_grant("m", FILE, "upload", "wei").is_err());
    }
}
