//! The members cache in a Google Cloud Storage bucket, through the JSON API: one paged
//! `objects.list` (names and MD5 hashes), a media upload per written file, a delete per stale
//! file. Plain HTTP only to loopback (the emulator).

use std::collections::BTreeMap;

use base64::Engine as _;
use hyper::{Method, StatusCode};

use super::{CacheStore, Md5Digest, SUFFIX};
use crate::directory::{DirectoryError, GoogleAuth};
use crate::http_api::ApiClient;

const PRODUCTION_ENDPOINT: &str = "https://storage.googleapis.com/";

/// A bucket's `*-members.txt` objects.
pub struct GcsStore {
    api: ApiClient,
    bucket: String,
}

impl GcsStore {
    /// Connects lazily: nothing is sent before the first call.
    pub fn connect(bucket: &str, endpoint: Option<&str>, auth: &GoogleAuth) -> Result<GcsStore, DirectoryError> {
        let api = ApiClient::connect(endpoint.unwrap_or(PRODUCTION_ENDPOINT), auth)?;
        Ok(GcsStore { api, bucket: bucket.to_owned() })
    }
}

impl CacheStore for GcsStore {
    fn describe(&self) -> String {
        format!("members cache in gs://{}", self.bucket)
    }

    fn list(&self) -> Result<BTreeMap<String, Md5Digest>, DirectoryError> {
        let mut files = BTreeMap::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = format!("storage/v1/b/{}/o?fields=items(name,md5Hash),nextPageToken", self.bucket);
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={token}"));
            }
            let call = format!("objects.list gs://{}", self.bucket);
            let (status, body) = self.api.send(Method::GET, &url, Vec::new(), &call)?;
            if status == StatusCode::NOT_FOUND {
                return Err(DirectoryError::Rejected(format!("{call}: the bucket does not exist")));
            }
            let page: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| DirectoryError::Storage(format!("{call}: unreadable answer: {e}")))?;
            for item in page["items"].as_array().into_iter().flatten() {
                let Some(name) = item["name"].as_str().filter(|n| n.ends_with(SUFFIX)) else { continue };
                let hash = item["md5Hash"].as_str().unwrap_or_default();
                let digest = base64::engine::general_purpose::STANDARD
                    .decode(hash)
                    .ok()
                    .and_then(|bytes| <Md5Digest>::try_from(bytes.as_slice()).ok())
                    .unwrap_or_default();
                files.insert(name.to_owned(), digest);
            }
            match page["nextPageToken"].as_str() {
                Some(token) if !token.is_empty() => page_token = Some(token.to_owned()),
                _ => return Ok(files),
            }
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), DirectoryError> {
        let url = format!("upload/storage/v1/b/{}/o?uploadType=media&name={name}", self.bucket);
        let (status, _) = self.api.send(Method::POST, &url, bytes.to_vec(), &format!("objects.insert {name}"))?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::Rejected(format!(
                "objects.insert {name}: bucket gs://{} does not exist",
                self.bucket
            )));
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DirectoryError> {
        let url = format!("storage/v1/b/{}/o/{name}", self.bucket);
        // 404: already gone, which is what was asked.
        self.api.send(Method::DELETE, &url, Vec::new(), &format!("objects.delete {name}")).map(|_| ())
    }

    fn calls(&self) -> u64 {
        self.api.calls()
    }
}
