//! Reading the old members caches: Secret Manager secrets through
//! `projects/{p}/secrets/{s}/versions/latest:access`, whose payload is a list of emails
//! (comma-separated, one per line, or a JSON list).

use std::collections::BTreeSet;

use base64::Engine as _;
use hyper::{Method, StatusCode};

use crate::directory::{DirectoryError, GoogleAuth};
use crate::http_api::ApiClient;

const PRODUCTION_ENDPOINT: &str = "https://secretmanager.googleapis.com/";

/// Reads secrets' latest versions.
pub struct SecretReader {
    api: ApiClient,
}

impl SecretReader {
    pub fn connect(endpoint: Option<&str>, auth: &GoogleAuth) -> Result<SecretReader, DirectoryError> {
        Ok(SecretReader { api: ApiClient::connect(endpoint.unwrap_or(PRODUCTION_ENDPOINT), auth)? })
    }

    /// The emails in the secret's latest version; `None` when the secret does not exist.
    pub fn read_emails(&self, project: &str, secret: &str) -> Result<Option<BTreeSet<String>>, DirectoryError> {
        let path = format!("v1/projects/{project}/secrets/{secret}/versions/latest:access");
        let call = format!("secrets.versions.access {project}/{secret}");
        let (status, body) = self.api.send(Method::GET, &path, Vec::new(), &call)?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| DirectoryError::Storage(format!("{call}: unreadable answer: {e}")))?;
        let data = answer["payload"]["data"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| DirectoryError::Storage(format!("{call}: payload is not base64: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        parse_payload(&text).map(Some).map_err(|problem| {
            DirectoryError::Rejected(format!("secret projects/{project}/secrets/{secret}: {problem}"))
        })
    }

    pub fn calls(&self) -> u64 {
        self.api.calls()
    }
}

/// Emails from a cache payload: a JSON list of strings, or entries separated by commas or new
/// lines; lowercased, blanks dropped. Anything else is not a cache: an error saying why.
pub fn parse_payload(payload: &str) -> Result<BTreeSet<String>, String> {
    let trimmed = payload.trim();
    let entries: Vec<String> = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(trimmed)
            .map_err(|e| format!("the payload starts like a JSON list but is not a list of strings ({e})"))?
    } else {
        trimmed.split([',', '\n']).map(str::to_owned).collect()
    };
    let emails: BTreeSet<String> =
        entries.iter().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect();
    match emails.iter().find(|e| !crate::definitions::is_valid_email(e)) {
        Some(bad) => Err(format!("the payload holds `{bad}`, which is not an email; expected emails separated by commas or lines, or a JSON list")),
        None => Ok(emails),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_in_every_old_format_give_the_same_emails() {
        let expected: BTreeSet<String> = ["a@example.org".to_owned(), "b@example.org".to_owned()].into();
        assert_eq!(parse_payload("a@example.org,B@example.org").unwrap(), expected);
        assert_eq!(parse_payload("a@example.org\nb@example.org\n").unwrap(), expected);
        assert_eq!(parse_payload(r#"["a@example.org", "b@example.org"]"#).unwrap(), expected);
        assert_eq!(parse_payload(" a@example.org , \n b@example.org ,").unwrap(), expected);
        assert!(parse_payload("").unwrap().is_empty());
        assert!(parse_payload(r#"["a@example.org", 3]"#).unwrap_err().contains("not a list of strings"));
        assert!(parse_payload("a@example.org;b@example.org").unwrap_err().contains("`a@example.org;b@example.org`"));
    }
}
