//! The members cache in a Google Cloud Storage bucket, through the JSON API: one paged
//! `objects.list` (names and MD5 hashes), a media upload per written file, a delete per stale
//! file. Plain HTTP only to loopback (the emulator).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use super::{CacheStore, Md5Digest, SUFFIX};
use crate::directory::{check_endpoint, DirectoryError};

const PRODUCTION_ENDPOINT: &str = "https://storage.googleapis.com/";
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// How requests are authorised.
pub enum GcsAuth {
    /// A bearer token, e.g. from `gcloud auth print-access-token`.
    AccessToken(String),
    /// Application Default Credentials (service account, authorized user, external account).
    CredentialsFile(std::path::PathBuf),
}

type Authenticator = google_cloudidentity1::yup_oauth2::authenticator::Authenticator<HttpsConnector<HttpConnector>>;

/// A bucket's `*-members.txt` objects.
pub struct GcsStore {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: String,
    bucket: String,
    token: Option<String>,
    authenticator: Option<Authenticator>,
    calls: AtomicU64,
}

impl GcsStore {
    /// Connects lazily: nothing is sent before the first call.
    pub fn connect(bucket: &str, endpoint: Option<&str>, auth: GcsAuth) -> Result<GcsStore, DirectoryError> {
        let endpoint = endpoint.unwrap_or(PRODUCTION_ENDPOINT).to_owned();
        check_endpoint(&endpoint)?;
        let endpoint = if endpoint.ends_with('/') { endpoint } else { format!("{endpoint}/") };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DirectoryError::Storage(format!("cannot start the HTTP runtime: {e}")))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| DirectoryError::Rejected(format!("gcs: no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        let (token, authenticator) = match auth {
            GcsAuth::AccessToken(token) => (Some(token), None),
            GcsAuth::CredentialsFile(path) => {
                let authenticator =
                    runtime.block_on(crate::directory::credentials_file_authenticator(&path, connector))?;
                (None, Some(authenticator))
            }
        };
        Ok(GcsStore {
            runtime,
            client,
            endpoint,
            bucket: bucket.to_owned(),
            token,
            authenticator,
            calls: AtomicU64::new(0),
        })
    }

    /// Sends one request; maps statuses onto the errors sync retries or reports.
    fn send(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        call: &str,
    ) -> Result<(StatusCode, Bytes), DirectoryError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.runtime.block_on(async {
            let token = match (&self.token, &self.authenticator) {
                (Some(token), _) => token.clone(),
                (None, Some(authenticator)) => {
                    let token = authenticator
                        .token(&[SCOPE])
                        .await
                        .map_err(|e| DirectoryError::Unavailable(format!("{call}: cannot get a token: {e}")))?;
                    token.token().unwrap_or_default().to_owned()
                }
                (None, None) => String::new(),
            };
            let request = hyper::Request::builder()
                .method(method)
                .uri(url)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| DirectoryError::Storage(format!("{call}: {e}")))?;
            let response =
                self.client.request(request).await.map_err(|e| DirectoryError::Unavailable(format!("{call}: {e}")))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| DirectoryError::Unavailable(format!("{call}: {e}")))?
                .to_bytes();
            match status.as_u16() {
                200..=299 | 404 => Ok((status, bytes)),
                429 => Err(DirectoryError::Throttled { call: call.to_owned(), retry_after }),
                401 | 403 => Err(DirectoryError::Rejected(format!(
                    "{call}: {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ))),
                500..=599 => Err(DirectoryError::Unavailable(format!("{call}: {status}"))),
                _ => Err(DirectoryError::Storage(format!(
                    "{call}: {status}: {}",
                    String::from_utf8_lossy(&bytes).trim()
                ))),
            }
        })
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
            let mut url =
                format!("{}storage/v1/b/{}/o?fields=items(name,md5Hash),nextPageToken", self.endpoint, self.bucket);
            if let Some(token) = &page_token {
                url.push_str(&format!("&pageToken={token}"));
            }
            let call = format!("objects.list gs://{}", self.bucket);
            let (status, body) = self.send(Method::GET, &url, Vec::new(), &call)?;
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
        let url = format!("{}upload/storage/v1/b/{}/o?uploadType=media&name={name}", self.endpoint, self.bucket);
        let (status, _) = self.send(Method::POST, &url, bytes.to_vec(), &format!("objects.insert {name}"))?;
        if status == StatusCode::NOT_FOUND {
            return Err(DirectoryError::Rejected(format!(
                "objects.insert {name}: bucket gs://{} does not exist",
                self.bucket
            )));
        }
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), DirectoryError> {
        let url = format!("{}storage/v1/b/{}/o/{name}", self.endpoint, self.bucket);
        // 404: already gone, which is what was asked.
        self.send(Method::DELETE, &url, Vec::new(), &format!("objects.delete {name}")).map(|_| ())
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}
