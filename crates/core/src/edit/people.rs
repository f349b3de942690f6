//! One person added to `groups/people.toml`.

use toml_edit::{DocumentMut, Key, Value};

use super::EditError;

/// Appends `[people.<key>] email = "..."` at the end of the file, leaving the rest as it is.
pub fn add_person(path: &str, text: &str, key: &str, email: &str) -> Result<String, EditError> {
    add_person_with_note(path, text, key, email, None)
}

/// `add_person`, with a comment line above the new table (e.g. that it needs a review).
pub fn add_person_with_note(
    path: &str,
    text: &str,
    key: &str,
    email: &str,
    note: Option<&str>,
) -> Result<String, EditError> {
    let document = text
        .parse::<DocumentMut>()
        .map_err(|e| EditError::Unparsable { path: path.to_owned(), problem: e.message().to_owned() })?;
    if document.get("people").and_then(|people| people.get(key)).is_some() {
        return Err(EditError::PersonExists { path: path.to_owned(), key: key.to_owned() });
    }
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let key = Key::new(key).display_repr().into_owned();
    let email = Value::from(email).to_string();
    if let Some(note) = note {
        out.push_str(&format!("# {note}\n"));
    }
    out.push_str(&format!("[people.{key}]\nemail = {email}\n"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_a_table() {
        let text = "# People.\n\n[people.amara]\nemail = \"amara@example.org\"\n";
        let edited = add_person("p", text, "wei", "wei@example.org").unwrap();
        assert_eq!(edited, format!("{text}\n[people.wei]\nemail = \"wei@example.org\"\n"));
        assert!(add_person("p", text, "amara", "a@example.org").is_err());
    }
}
