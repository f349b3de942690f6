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
        Ok(Some(parse_payload(&String::from_utf8_lossy(&bytes))))
    }

    pub fn calls(&self) -> u64 {
        self.api.calls()
    }
}

/// Emails from a cache payload: a JSON list of strings, or entries separated by commas or new
/// lines; lowercased, blanks dropped.
pub fn parse_payload(payload: &str) -> BTreeSet<String> {
    let trimmed = payload.trim();
    if trimmed.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed) {
            return list.iter().map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect();
        }
    }
    trimmed.split([',', '\n']).map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_in_every_old_format_give_the_same_emails() {
        let expected: BTreeSet<String> = ["a@example.org".to_owned(), "b@example.org".to_owned()].into();
        assert_eq!(parse_payload("a@example.org,B@example.org"), expected);
        assert_eq!(parse_payload("a@example.org\nb@example.org\n"), expected);
        assert_eq!(parse_payload(r#"["a@example.org", "b@example.org"]"#), expected);
        assert_eq!(parse_payload(" a@example.org , \n b@example.org ,"), expected);
        assert!(parse_payload("").is_empty());
    }
}
