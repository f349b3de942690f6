//! Signing in to Microsoft Graph as an app: the OAuth2 client-credentials exchange at the
//! Microsoft identity platform's token endpoint (`POST {authority}/{tenant}/oauth2/v2.0/token`,
//! form-encoded), with a client secret or a signed client assertion (a federated token such as
//! GitHub's OIDC token, `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
//! The Graph client then takes the access token. The authority is Microsoft's unless overridden,
//! and an override must be Microsoft's or loopback (an emulator).

use std::time::Duration;

use graph_rs_sdk::http::Url;
use serde_json::Value;

use super::DirectoryError;

pub const PRODUCTION_AUTHORITY: &str = "https://login.microsoftonline.com";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What proves the app's identity.
pub(super) enum Proof<'a> {
    Secret(&'a str),
    Assertion(&'a str),
}

/// Exchanges the app's proof for a Graph access token. A refusal names `source` (never the
/// secret); an unreachable endpoint is an outage.
pub(super) async fn access_token(
    authority: &Url,
    tenant: &str,
    client_id: &str,
    proof: Proof<'_>,
    source: &str,
) -> Result<String, DirectoryError> {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", authority.as_str().trim_end_matches('/'));
    let mut form = vec![("client_id", client_id), ("scope", GRAPH_SCOPE), ("grant_type", "client_credentials")];
    let secret = match proof {
        Proof::Secret(secret) => {
            form.push(("client_secret", secret));
            secret
        }
        Proof::Assertion(assertion) => {
            form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
            assertion
        }
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| DirectoryError::Storage(format!("cannot build the login client: {e}")))?;
    let response = client.post(&url).form(&form).send().await.map_err(|e| {
        DirectoryError::Unavailable(format!("azure login: the token endpoint {url} is unreachable: {e}"))
    })?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status == 200 {
        if let Some(token) = body["access_token"].as_str() {
            return Ok(token.to_owned());
        }
    }
    if status >= 500 || status == 429 {
        return Err(DirectoryError::Unavailable(format!("azure login: the token endpoint answered {status}")));
    }
    let code = body["error"].as_str().unwrap_or("no error code");
    // The identity platform does not echo secrets, but a message is never trusted to keep one out.
    let description = body["error_description"].as_str().unwrap_or_default().replace(secret, "***");
    Err(DirectoryError::Rejected(format!(
        "azure login refused the credentials from {source} ({status} {code}): {description}"
    )))
}
