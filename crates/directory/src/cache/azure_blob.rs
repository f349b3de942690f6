//! The members cache in an Azure Blob container, through the Blob service REST API: List Blobs
//! (paged by marker, names with their `Content-MD5`), Put Blob, Delete Blob; an Entra ID bearer
//! token for `https://storage.azure.com/`. Plain HTTP only to loopback (the emulator).

use std::collections::BTreeMap;

use base64::Engine as _;
use hyper::{Method, StatusCode};

use super::{CacheStore, Md5Digest, SUFFIX};
use crate::directory::{DirectoryError, GoogleAuth};
use crate::http_api::ApiClient;

/// The Blob service version whose wire format this speaks.
const VERSION: &str = "2021-08-06";

/// A container's `*-members.txt` blobs.
pub struct AzureBlobStore {
    api: ApiClient,
    account: String,
    container: String,
}

impl AzureBlobStore {
    /// `endpoint` defaults to `https://<account>.blob.core.windows.net/`.
    pub fn connect(
        account: &str,
        container: &str,
        endpoint: Option<&str>,
        token: &str,
    ) -> Result<AzureBlobStore, DirectoryError> {
        let endpoint = endpoint.map_or_else(|| format!("https://{account}.blob.core.windows.net/"), str::to_owned);
        let api = ApiClient::connect(&endpoint, &GoogleAuth::AccessToken(token.to_owned()))?;
        Ok(AzureBlobStore { api, account: account.to_owned(), container: container.to_owned() })
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        call: &str,
        blob: bool,
    ) -> Result<(StatusCode, bytes::Bytes), DirectoryError> {
        let mut headers = vec![("x-ms-version", VERSION)];
        if blob {
            headers.push(("x-ms-blob-type", "BlockBlob"));
        }
        self.api.send_with(method, path, body, call, &headers)
    }
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
fn elements<'x>(xml: &'x str, tag: &str) -> Vec<&'x str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    found
}

impl CacheStore for AzureBlobStore {
    fn describe(&self) -> String {
        format!("members cache in Azure container {}/{}", self.account, self.container)
    }

    fn list(&self) -> Result<BTreeMap<String, Md5Digest>, DirectoryError> {
        let mut files = BTreeMap::new();
        let mut marker = String::new();
        loop {
            let mut path = format!("{}?restype=container&comp=list", self.container);
            if !marker.is_empty() {
                path.push_str(&format!("&marker={marker}"));
            }
            let call = format!("List Blobs {}/{}", self.account, self.container);
            let (status, body) = self.send(Method::GET, &path, Vec::new(), &call, false)?;
            if status == StatusCode::NOT_FOUND {
                return Err(DirectoryError::Rejected(format!("{call}: the container does not exist")));
            }
            let xml = String::from_utf8_lossy(&body);
            for blob in elements(&xml, "Blob") {
                let Some(name) = elements(blob, "Name").first().map(|n| n.to_string()) else { continue };
                if !name.ends_with(SUFFIX) {
                    continue;
                }
                let md5 = elements(blob, "Content-MD5").first().copied().unwrap_or_default();
                let digest = base64::engine::general_purpose::STANDARD
                    .decode(md5)
                    .ok()
                    .and_then(|bytes| <Md5Digest>::try_from(bytes.as_slice()).ok())
                    .unwrap_or_default();
                files.insert(name, digest);
            }
            match elements(&xml, "NextMarker").first() {
                Some(next) if !next.is_empty() => marker = (*next).to_owned(),
                _ => return Ok(files),
            }
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), DirectoryError> {
        let path = format!("{}/{name}", self.container);
        let (status, _) = self.send(Method::PUT, &path, bytes.to_vec(), &format!("Put Blob {name}"), true)?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::Rejected(format!(
                "Put Blob {name}: container {} does not exist",
                self.container
            )));
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DirectoryError> {
        let path = format!("{}/{name}", self.container);
        // 404: already gone, which is what was asked.
        self.send(Method::DELETE, &path, Vec::new(), &format!("Delete Blob {name}"), false).map(|_| ())
    }

    fn calls(&self) -> u64 {
        self.api.calls()
    }
}
