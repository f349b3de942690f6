//! A fake Azure Blob service (one storage account) on 127.0.0.1: List Blobs
//! (`GET /{container}?restype=container&comp=list`, XML pages of `maxresults` with `NextMarker`
//! and each blob's `Content-MD5`), Put Blob (`PUT /{container}/{blob}`, `x-ms-blob-type`
//! required, 201) and Delete Blob (202; 404 `BlobNotFound`). Requests need the bearer token
//! and `x-ms-version`, and are counted per operation; with `fault_each_request_once` every
//! distinct request is first answered 503 (a faulted request changes nothing).

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;

use super::requests::{lock, request_log_handle, serve, RequestLog};
use super::server::{ConnectionKiller, Request, Server};

request_log_handle!(BlobEmulator, "`List Blobs`, `Put Blob`, `Delete Blob`");

/// A running fake Blob service; dropping it stops the server.
pub struct BlobEmulator {
    server: Server,
    shared: Arc<Shared>,
}

struct Shared {
    token: String,
    page_size: usize,
    containers: Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
    requests: RequestLog,
}

impl BlobEmulator {
    /// Serves on 127.0.0.1:`port` (0 picks one), listing at most `page_size` blobs a page.
    pub fn start(port: u16, token: &str, page_size: usize) -> io::Result<BlobEmulator> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            page_size: page_size.max(1),
            containers: Mutex::new(BTreeMap::new()),
            requests: RequestLog::default(),
        });
        let server = serve(port, "blob-emulator", &shared, handle)?;
        Ok(BlobEmulator { server, shared })
    }

    pub fn create_container(&self, container: &str) {
        lock(&self.shared.containers).entry(container.to_owned()).or_default();
    }

    pub fn blobs(&self, container: &str) -> BTreeMap<String, Vec<u8>> {
        lock(&self.shared.containers).get(container).cloned().unwrap_or_default()
    }

    /// Writes a blob without a request, e.g. a file changed by hand.
    pub fn put_directly(&self, container: &str, name: &str, bytes: &[u8]) {
        lock(&self.shared.containers).entry(container.to_owned()).or_default().insert(name.to_owned(), bytes.to_vec());
    }
}

async fn handle(shared: Arc<Shared>, request: Request, _killer: ConnectionKiller) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(Body::new(body), 1 << 20).await else {
        return error(StatusCode::BAD_REQUEST, "InvalidInput");
    };
    let path = parts.uri.path().trim_start_matches('/').to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let param =
        |name: &str| query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}="))).map(str::to_owned);
    let (container, blob) = match path.split_once('/') {
        Some((container, blob)) => (container.to_owned(), Some(blob.to_owned())),
        None => (path.clone(), None),
    };
    let operation = match (&parts.method, &blob) {
        (&Method::GET, None) if param("comp").as_deref() == Some("list") => "List Blobs",
        (&Method::PUT, Some(_)) => "Put Blob",
        (&Method::DELETE, Some(_)) => "Delete Blob",
        _ => "unknown",
    };
    shared.requests.count(operation);
    let header_value =
        |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if header_value("authorization").strip_prefix("Bearer ") != Some(shared.token.as_str()) {
        return error(StatusCode::FORBIDDEN, "AuthenticationFailed");
    }
    if header_value("x-ms-version").is_empty() {
        return error(StatusCode::BAD_REQUEST, "MissingRequiredHeader");
    }
    if shared.requests.should_fault(&format!("{} {}", parts.method, parts.uri)) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy");
    }
    let mut containers = lock(&shared.containers);
    let Some(blobs) = containers.get_mut(&container) else {
        return error(StatusCode::NOT_FOUND, "ContainerNotFound");
    };
    match operation {
        "List Blobs" => {
            let after = param("marker").unwrap_or_default();
            let page: Vec<(&String, &Vec<u8>)> = blobs
                .iter()
                .filter(|(name, _)| after.is_empty() || name.as_str() >= after.as_str())
                .take(shared.page_size + 1)
                .collect();
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>");
            for (name, bytes) in page.iter().take(shared.page_size) {
                let md5 = base64::engine::general_purpose::STANDARD.encode(crate::md5_digest(bytes));
                xml.push_str(&format!(
                    "<Blob><Name>{name}</Name><Properties><Content-Length>{}</Content-Length><Content-MD5>{md5}</Content-MD5><BlobType>BlockBlob</BlobType></Properties></Blob>",
                    bytes.len()
                ));
            }
            xml.push_str("</Blobs>");
            match page.get(shared.page_size) {
                Some((next, _)) => xml.push_str(&format!("<NextMarker>{next}</NextMarker>")),
                None => xml.push_str("<NextMarker />"),
            }
            xml.push_str("</EnumerationResults>");
            answer(StatusCode::OK, xml)
        }
        "Put Blob" => {
            if header_value("x-ms-blob-type").is_empty() {
                return error(StatusCode::BAD_REQUEST, "MissingRequiredHeader");
            }
            blobs.insert(blob.unwrap_or_default(), body.to_vec());
            answer(StatusCode::CREATED, String::new())
        }
        "Delete Blob" => match blobs.remove(&blob.unwrap_or_default()) {
            Some(_) => answer(StatusCode::ACCEPTED, String::new()),
            None => error(StatusCode::NOT_FOUND, "BlobNotFound"),
        },
        _ => error(StatusCode::BAD_REQUEST, "UnsupportedHttpVerb"),
    }
}

fn error(status: StatusCode, code: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    );
    let mut response = answer(status, xml);
    response.headers_mut().insert(
        "x-ms-error-code",
        header::HeaderValue::from_str(code).unwrap_or(header::HeaderValue::from_static("Error")),
    );
    response
}

fn answer(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/xml"));
    response
}
