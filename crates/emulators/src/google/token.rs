//! Google's token endpoints, as a credentials file reaches them (its `token_uri`, `token_url`
//! and `service_account_impersonation_url` name these paths on the emulator):
//! - `POST /token` (oauth2.googleapis.com): a service-account key's signed JWT, the
//!   `urn:ietf:params:oauth:grant-type:jwt-bearer` grant
//!   (<https://developers.google.com/identity/protocols/oauth2/service-account#httprest>);
//!   the signature is checked with the public half of the key Google issued, RS256.
//! - `POST /v1/token` (sts.googleapis.com): workload identity federation's token exchange
//!   (<https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token>): the pool's
//!   audience and the subject token it trusts.
//! - `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken` (iamcredentials):
//!   impersonation with the federated token
//!   (<https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken>).
//!
//! Token errors are `{"error","error_description"}` with the OAuth codes Google answers
//! (`invalid_grant`, `invalid_target`, ...); IAM Credentials answers the Google API error shape.
//! Every endpoint issues the access token the Cloud Identity routes take.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use ring::signature::{KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use super::{json_response, ApiError, Code, EmulatorOptions};
use crate::server::{has_bearer, url_form};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Google refuses assertions that live longer than an hour or are far from its clock.
const MAX_ASSERTION_SECONDS: i64 = 3600;
const CLOCK_SKEW_SECONDS: i64 = 300;
/// JWT segments are base64url; Google also takes them padded, as yup-oauth2 sends them.
const JWT_SEGMENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which token endpoint a request is for, with its call name; `None` for every other path.
pub(super) fn route(method: &axum::http::Method, path: &str) -> Option<(&'static str, Endpoint)> {
    if method != axum::http::Method::POST {
        return None;
    }
    if path == "/token" {
        return Some(("oauth2.token", Endpoint::ServiceAccount));
    }
    if path == "/v1/token" {
        return Some(("sts.token", Endpoint::TokenExchange));
    }
    let email = path.strip_prefix("/v1/projects/-/serviceAccounts/")?.strip_suffix(":generateAccessToken")?;
    Some(("iamcredentials.generateAccessToken", Endpoint::Impersonate(email.replace("%40", "@"))))
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    ServiceAccount,
    TokenExchange,
    Impersonate(String),
}

/// The public halves of the service-account keys, by client email.
pub(super) struct Keys(HashMap<String, Vec<u8>>);

impl Keys {
    /// # Panics
    /// If a key is not an RSA PKCS#8 PEM: the emulator's own configuration is wrong.
    pub(super) fn from_options(options: &EmulatorOptions) -> Keys {
        let public = |pem: &str| {
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = STANDARD.decode(body).expect("service-account key: base64 PEM");
            let pair = RsaKeyPair::from_pkcs8(&der).expect("service-account key: RSA PKCS#8");
            pair.public_key().as_ref().to_vec()
        };
        Keys(options.service_account_keys.iter().map(|(email, pem)| (email.to_lowercase(), public(pem))).collect())
    }
}

pub(super) fn answer(
    options: &EmulatorOptions,
    keys: &Keys,
    endpoint: Endpoint,
    parts: &Parts,
    body: &[u8],
) -> Response {
    let issued = options.token.clone().unwrap_or_else(|| "emulator-token".to_owned());
    match endpoint {
        Endpoint::ServiceAccount => match check_assertion(keys, &url_form(body)) {
            Ok(()) => granted(&issued),
            Err(refusal) => refusal.into_response(),
        },
        Endpoint::TokenExchange => match check_exchange(options, &url_form(body)) {
            Ok(()) => {
                let mut body = token_body(&issued);
                body["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
                json_response(StatusCode::OK, &body)
            }
            Err(refusal) => refusal.into_response(),
        },
        Endpoint::Impersonate(email) => {
            if !has_bearer(&parts.headers, &issued) {
                let message = "Request had invalid authentication credentials.";
                return ApiError { code: Code::Unauthenticated, message: message.to_owned() }.into_response();
            }
            if !options.impersonable.contains(&email.to_lowercase()) {
                let message = format!(
                    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist): {email}"
                );
                return ApiError { code: Code::PermissionDenied, message }.into_response();
            }
            let scopes = serde_json::from_slice::<Value>(body).ok().and_then(|b| b["scope"].as_array().cloned());
            if scopes.is_none_or(|s| s.is_empty()) {
                return ApiError::invalid("Scope required.").into_response();
            }
            json_response(StatusCode::OK, &json!({ "accessToken": issued, "expireTime": "2099-01-01T00:00:00Z" }))
        }
    }
}

/// A JWT-bearer grant: header RS256, a known issuer, a scope, an hour at most, and a
/// signature the issuer's key verifies.
fn check_assertion(keys: &Keys, form: &HashMap<String, String>) -> Result<(), Refusal> {
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(refused("unsupported_grant_type", "Invalid grant_type."));
    }
    let assertion = form.get("assertion").map(String::as_str).unwrap_or_default();
    let mut pieces = assertion.split('.');
    let (Some(head), Some(claims), Some(signature), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(refused("invalid_grant", "Invalid JWT: not a signed JWT."));
    };
    let decode = |part: &str| JWT_SEGMENT.decode(part).ok();
    let json = |part: &str| decode(part).and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let (Some(head_json), Some(claims), Some(signature)) = (json(head), json(claims), decode(signature)) else {
        return Err(refused("invalid_grant", "Invalid JWT: not a signed JWT."));
    };
    if head_json["alg"] != "RS256" {
        return Err(refused("invalid_grant", "Invalid JWT: the algorithm must be RS256."));
    }
    let issuer = claims["iss"].as_str().unwrap_or_default().to_lowercase();
    let Some(public_key) = keys.0.get(&issuer) else {
        return Err(refused("invalid_grant", "Invalid grant: account not found"));
    };
    // The signed input is everything before the last dot: `head.claims`.
    let signed = &assertion[..assertion.rfind('.').unwrap_or(0)];
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key).verify(signed.as_bytes(), &signature).is_err() {
        return Err(refused("invalid_grant", "Invalid JWT Signature."));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (issued, expires) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    if expires <= issued || expires - issued > MAX_ASSERTION_SECONDS || (issued - now).abs() > CLOCK_SKEW_SECONDS {
        return Err(refused(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    if claims["scope"].as_str().is_none_or(str::is_empty) {
        return Err(refused("invalid_scope", "Invalid OAuth scope or ID token audience provided."));
    }
    Ok(())
}

/// A token exchange: a pool the project has, and the subject token its provider trusts.
fn check_exchange(options: &EmulatorOptions, form: &HashMap<String, String>) -> Result<(), Refusal> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != TOKEN_EXCHANGE {
        return Err(refused("unsupported_grant_type", "Unsupported grant_type."));
    }
    let Some(trusted) = options.workload_identity.get(field("audience")) else {
        return Err(refused(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
        ));
    };
    if field("subject_token").trim() != trusted {
        return Err(refused("invalid_grant", "The subject token is invalid or was not issued to this provider."));
    }
    if field("scope").is_empty() {
        return Err(refused("invalid_scope", "The scope is required."));
    }
    Ok(())
}

fn token_body(token: &str) -> Value {
    json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" })
}

fn granted(token: &str) -> Response {
    json_response(StatusCode::OK, &token_body(token))
}

/// A refused grant: 400 with the OAuth error code and Google's description.
#[derive(Debug)]
struct Refusal {
    error: &'static str,
    description: &'static str,
}

impl Refusal {
    fn into_response(self) -> Response {
        json_response(StatusCode::BAD_REQUEST, &json!({ "error": self.error, "error_description": self.description }))
    }
}

fn refused(error: &'static str, description: &'static str) -> Refusal {
    Refusal { error, description }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn the_three_token_paths_are_routed_and_nothing_else() {
        assert_eq!(route(&Method::POST, "/token"), Some(("oauth2.token", Endpoint::ServiceAccount)));
        assert_eq!(route(&Method::POST, "/v1/token"), Some(("sts.token", Endpoint::TokenExchange)));
        assert_eq!(
            route(&Method::POST, "/v1/projects/-/serviceAccounts/sync%40p.iam.gserviceaccount.com:generateAccessToken"),
            Some((
                "iamcredentials.generateAccessToken",
                Endpoint::Impersonate("sync@p.iam.gserviceaccount.com".to_owned())
            ))
        );
        assert_eq!(route(&Method::GET, "/token"), None);
        assert_eq!(route(&Method::POST, "/v1/groups"), None);
    }

    #[test]
    fn a_malformed_or_unknown_assertion_is_an_invalid_grant() {
        let keys = Keys(HashMap::new());
        let form = |assertion: &str| {
            HashMap::from([
                ("grant_type".to_owned(), JWT_BEARER.to_owned()),
                ("assertion".to_owned(), assertion.to_owned()),
            ])
        };
        for assertion in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert_eq!(check_assertion(&keys, &form(assertion)).unwrap_err().error, "invalid_grant");
        }
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"nobody@p.iam.gserviceaccount.com"}"#);
        let unknown = format!("{head}.{claims}.{}", URL_SAFE_NO_PAD.encode("sig"));
        let refusal = check_assertion(&keys, &form(&unknown)).unwrap_err();
        assert_eq!(refusal.description, "Invalid grant: account not found");
    }
}
