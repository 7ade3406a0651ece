//! Discovery: the RFC 8414 metadata document and the JWKS of the store's keys.

use crate::endpoints::{INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::service::TokenService;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

/// Where the metadata is served (RFC 8414 §3, for an issuer without a path).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Where the key set is served.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The client authentication methods every endpoint takes.
const AUTH_METHODS: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];
/// The one algorithm a `private_key_jwt` assertion is signed with.
const ASSERTION_ALGS: [&str; 1] = ["EdDSA"];

pub(crate) async fn metadata(State(service): State<TokenService>) -> Response {
    let c = service.config();
    let body = serde_json::json!({
        "issuer": c.issuer(),
        "token_endpoint": c.endpoint(TOKEN_PATH),
        "jwks_uri": c.endpoint(JWKS_PATH),
        "introspection_endpoint": c.endpoint(INTROSPECT_PATH),
        "revocation_endpoint": c.endpoint(REVOKE_PATH),
        "grant_types_supported": grant_types(c),
        // No authorization endpoint: no response type is served.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        // RFC 9449 §5.1: client_credentials with a `DPoP` proof issues a DPoP-bound token.
        "dpop_signing_alg_values_supported": scopekey::dpop::ALGORITHMS.split(' ').collect::<Vec<_>>(),
    });
    json(body.to_string(), "public, max-age=300")
}

/// The grants the token endpoint serves: `refresh_token` only when it issues refresh tokens.
fn grant_types(c: &crate::ServerConfig) -> Vec<&'static str> {
    let mut grants = vec!["client_credentials"];
    if c.refresh_tokens {
        grants.push(crate::grants::REFRESH_TOKEN);
    }
    grants.push(crate::grants::TOKEN_EXCHANGE);
    grants
}

pub(crate) async fn jwks(State(service): State<TokenService>) -> Response {
    let keys = service.inner.replica.keys().snapshot();
    json(
        keys.to_jwks(OffsetDateTime::now_utc()),
        "public, max-age=300",
    )
}

pub(crate) fn json(body: String, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}
