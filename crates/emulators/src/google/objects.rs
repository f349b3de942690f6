//! Cloud Storage objects of the fake Google APIs (the JSON API the members cache uses):
//! `GET storage/v1/b/{bucket}/o` (paged, names with base64 MD5 hashes), media uploads to
//! `POST upload/storage/v1/b/{bucket}/o?uploadType=media&name=…`, and
//! `DELETE storage/v1/b/{bucket}/o/{object}` (204; 404 when absent). A bucket exists only once
//! it is created through the emulator's handle, as buckets are Pulumi's, not the cache's.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{ApiError, Context};

#[derive(Debug, Default)]
pub(super) struct Objects {
    buckets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    /// Secret Manager: (project, secret) → versions, oldest first.
    secrets: BTreeMap<(String, String), Vec<Vec<u8>>>,
}

impl Objects {
    pub(super) fn add_secret_version(&mut self, project: &str, secret: &str, bytes: &[u8]) {
        self.secrets.entry((project.to_owned(), secret.to_owned())).or_default().push(bytes.to_vec());
    }

    /// `versions/{version}:access`: `latest` or a 1-based version number.
    pub(super) fn access_secret(&self, project: &str, secret: &str, version: &str) -> Result<Value, ApiError> {
        let versions = self
            .secrets
            .get(&(project.to_owned(), secret.to_owned()))
            .ok_or_else(|| ApiError::not_found(&format!("Secret [projects/{project}/secrets/{secret}]")))?;
        let number = match version {
            "latest" => versions.len(),
            other => other.parse::<usize>().map_err(|_| ApiError::invalid("bad version"))?,
        };
        let bytes = number.checked_sub(1).and_then(|index| versions.get(index)).ok_or_else(|| {
            ApiError::not_found(&format!("Secret Version [projects/{project}/secrets/{secret}/versions/{version}]"))
        })?;
        Ok(json!({
            "name": format!("projects/{project}/secrets/{secret}/versions/{number}"),
            "payload": { "data": base64::engine::general_purpose::STANDARD.encode(bytes) },
        }))
    }

    pub(super) fn create_bucket(&mut self, bucket: &str) {
        self.buckets.entry(bucket.to_owned()).or_default();
    }

    pub(super) fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        self.buckets.get(bucket).cloned().unwrap_or_default()
    }

    pub(super) fn put_directly(&mut self, bucket: &str, name: &str, bytes: &[u8]) {
        self.buckets.entry(bucket.to_owned()).or_default().insert(name.to_owned(), bytes.to_vec());
    }

    fn bucket(&mut self, bucket: &str) -> Result<&mut BTreeMap<String, Vec<u8>>, ApiError> {
        self.buckets.get_mut(bucket).ok_or_else(|| ApiError::not_found(&format!("bucket {bucket}")))
    }

    /// One page of a bucket's objects, in name order; the page token is the last name sent.
    pub(super) fn list(&mut self, bucket: &str, context: &Context, max_page_size: usize) -> Result<Value, ApiError> {
        let requested = context.param("maxResults").and_then(|n| n.parse::<usize>().ok()).unwrap_or(1000);
        let size = requested.clamp(1, 1000).min(max_page_size.max(1));
        let after = context.param("pageToken").unwrap_or_default().to_owned();
        let objects = self.bucket(bucket)?;
        let page: Vec<(&String, &Vec<u8>)> = objects
            .iter()
            .filter(|(name, _)| after.is_empty() || name.as_str() > after.as_str())
            .take(size + 1)
            .collect();
        let more = page.len() > size;
        let items: Vec<Value> = page.iter().take(size).map(|(name, bytes)| object_json(bucket, name, bytes)).collect();
        let mut answer = json!({ "kind": "storage#objects", "items": items });
        if more {
            answer["nextPageToken"] = json!(page[size - 1].0);
        }
        Ok(answer)
    }

    pub(super) fn insert(&mut self, bucket: &str, context: &Context) -> Result<Value, ApiError> {
        if context.param("uploadType") != Some("media") {
            return Err(ApiError::invalid("only uploadType=media is served"));
        }
        let name =
            context.param("name").filter(|n| !n.is_empty()).ok_or_else(|| ApiError::invalid("name is required"))?;
        let name = name.to_owned();
        self.bucket(bucket)?.insert(name.clone(), context.body.to_vec());
        Ok(object_json(bucket, &name, context.body))
    }

    pub(super) fn delete(&mut self, bucket: &str, name: &str) -> Result<Value, ApiError> {
        match self.bucket(bucket)?.remove(name) {
            Some(_) => Ok(Value::Null),
            None => Err(ApiError::not_found(&format!("object {name}"))),
        }
    }
}

fn object_json(bucket: &str, name: &str, bytes: &[u8]) -> Value {
    let md5 = base64::engine::general_purpose::STANDARD.encode(crate::md5_digest(bytes));
    json!({
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "size": bytes.len().to_string(),
        "md5Hash": md5,
        "contentType": "text/plain; charset=utf-8",
    })
}
