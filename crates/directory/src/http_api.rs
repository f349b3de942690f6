//! Authenticated HTTP calls to APIs the tree has no client crate for (Cloud
//! Storage objects, Secret Manager, Hail Batch, Metamist): a bearer token or Google Application Default Credentials, and
//! statuses mapped onto the errors the sync retries (429, 5xx, transport) or reports (401/403
//! as rejected configuration). Plain HTTP only to loopback, for the emulator. A client given
//! a pacer waits for it before every request and pauses it on a 429's Retry-After.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::directory::{check_endpoint, DirectoryError, GoogleAuth};
use crate::pacing::Pacer;

/// Read and write access to Google Cloud APIs.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

type Authenticator = google_cloudidentity1::yup_oauth2::authenticator::Authenticator<HttpsConnector<HttpConnector>>;

/// One API's endpoint with credentials; counts its requests, and paces them when given a pacer.
pub struct ApiClient {
    runtime: tokio::runtime::Runtime,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Ends with `/`.
    endpoint: String,
    token: Option<String>,
    authenticator: Option<Authenticator>,
    /// The OAuth scope tokens from `authenticator` are asked for.
    scope: &'static str,
    calls: AtomicU64,
    /// The provider's request pacing, shared with its other clients; none for clients outside
    /// a sync's providers (the members cache, Secret Manager, GitHub's token).
    pacer: Option<Arc<Pacer>>,
}

impl ApiClient {
    /// Connects lazily: nothing is sent before the first call.
    pub fn connect(endpoint: &str, auth: &GoogleAuth) -> Result<ApiClient, DirectoryError> {
        ApiClient::connect_scoped(endpoint, auth, SCOPE)
    }

    /// `connect`, asking credentials files for tokens of `scope` instead of cloud-platform.
    pub fn connect_scoped(endpoint: &str, auth: &GoogleAuth, scope: &'static str) -> Result<ApiClient, DirectoryError> {
        check_endpoint(endpoint)?;
        let endpoint = if endpoint.ends_with('/') { endpoint.to_owned() } else { format!("{endpoint}/") };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DirectoryError::Storage(format!("cannot start the HTTP runtime: {e}")))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| DirectoryError::Rejected(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        let (token, authenticator) = match auth {
            GoogleAuth::AccessToken(token) => (Some(token.clone()), None),
            GoogleAuth::CredentialsFile(path) => {
                let authenticator =
                    runtime.block_on(crate::directory::credentials_file_authenticator(path, connector))?;
                (None, Some(authenticator))
            }
        };
        Ok(ApiClient { runtime, client, endpoint, token, authenticator, scope, calls: AtomicU64::new(0), pacer: None })
    }

    /// Every request waits for `pacer` first, and a 429's Retry-After pauses it.
    pub fn paced(self, pacer: Arc<Pacer>) -> ApiClient {
        ApiClient { pacer: Some(pacer), ..self }
    }

    /// The endpoint, ending with `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Sends one request to `path` (relative to the endpoint). 2xx and 404 are answers; 429,
    /// 5xx and transport failures are retryable; 401/403 are rejected configuration.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        call: &str,
    ) -> Result<(StatusCode, Bytes), DirectoryError> {
        self.send_with(method, path, body, call, &[])
    }

    /// `send` with extra request headers (e.g. Azure Storage's `x-ms-version`).
    pub fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        call: &str,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes), DirectoryError> {
        self.send_answering(method, path, body, call, headers, &[])
    }

    /// `send_with` where the statuses in `answers` (e.g. 409 for a create that finds the
    /// object already there) come back as answers instead of errors. A `content-type` among
    /// `headers` replaces the plain-text default.
    pub fn send_answering(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        call: &str,
        headers: &[(&str, &str)],
        answers: &[StatusCode],
    ) -> Result<(StatusCode, Bytes), DirectoryError> {
        if let Some(pacer) = &self.pacer {
            pacer.acquire(1);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}{path}", self.endpoint);
        self.runtime.block_on(async {
            let token = match (&self.token, &self.authenticator) {
                (Some(token), _) => token.clone(),
                (None, Some(authenticator)) => {
                    let token = authenticator
                        .token(&[self.scope])
                        .await
                        .map_err(|e| DirectoryError::Unavailable(format!("{call}: cannot get a token: {e}")))?;
                    token.token().unwrap_or_default().to_owned()
                }
                (None, None) => String::new(),
            };
            let mut request =
                hyper::Request::builder().method(method).uri(url).header("authorization", format!("Bearer {token}"));
            if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
                request = request.header("content-type", "text/plain; charset=utf-8");
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let request = request
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
            let text = || String::from_utf8_lossy(&bytes).trim().to_owned();
            match status.as_u16() {
                _ if answers.contains(&status) => Ok((status, bytes.clone())),
                200..=299 | 404 => Ok((status, bytes.clone())),
                429 => {
                    if let (Some(pacer), Some(wait)) = (&self.pacer, retry_after) {
                        pacer.pause(wait);
                    }
                    Err(DirectoryError::Throttled { call: call.to_owned(), retry_after })
                }
                401 | 403 => Err(DirectoryError::Rejected(format!("{call}: {status}: {}", text()))),
                500..=599 => Err(DirectoryError::Unavailable(format!("{call}: {status}"))),
                _ => Err(DirectoryError::Storage(format!("{call}: {status}: {}", text()))),
            }
        })
    }
}

/// A Google identity token for `audience` from the metadata server at `host` (Cloud Run,
/// GCE, GKE): plain HTTP to a link-local address by design, answered in well under a second
/// there, so a short timeout tells "not on Google Cloud" quickly.
pub fn identity_token(host: &str, audience: &str) -> Result<String, DirectoryError> {
    let url = format!(
        "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity?audience={}&format=full",
        percent_encode(audience)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DirectoryError::Storage(format!("cannot start the HTTP runtime: {e}")))?;
    runtime.block_on(async {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build(HttpConnector::new());
        let request = hyper::Request::get(url)
            .header("metadata-flavor", "Google")
            .body(Full::new(Bytes::new()))
            .map_err(|e| DirectoryError::Storage(e.to_string()))?;
        let response = tokio::time::timeout(Duration::from_secs(3), client.request(request))
            .await
            .map_err(|_| DirectoryError::Unavailable(format!("metadata server {host}: no answer")))?
            .map_err(|e| DirectoryError::Unavailable(format!("metadata server {host}: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| DirectoryError::Unavailable(format!("metadata server {host}: {e}")))?
            .to_bytes();
        let token = String::from_utf8_lossy(&body).trim().to_owned();
        if status.is_success() && !token.is_empty() {
            Ok(token)
        } else {
            Err(DirectoryError::Rejected(format!("metadata server {host}: {status}")))
        }
    })
}

/// Query-string encoding of everything but unreserved characters (RFC 3986).
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn audiences_are_encoded_for_the_query_string() {
        assert_eq!(percent_encode("https://metamist.example.org/"), "https%3A%2F%2Fmetamist.example.org%2F");
        assert_eq!(percent_encode("plain-name_1.~"), "plain-name_1.~");
    }
}
