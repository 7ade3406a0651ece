//! The admin API under `/admin/`: JSON in and out, RFC 9457 problem details on error, every
//! request authorized by an admin token (a token of this issuer for the admin audience,
//! `ISSUER/admin`) holding the route's scope, and every change recorded as an
//! `admin_action` audit event naming that token.
//!
//! The admin scopes: `consumers:read`, `consumers:write`, `tokens:read`, `tokens:revoke`,
//! `keys:read`, `keys:write`, `audit:read`.

mod routes;

use crate::config::{ServerConfig, ServerError, ServerErrorKind};
use crate::service::TokenService;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use scopekey::audit::{AuditEvent, AuditSink as _};
use scopekey::{Grant, Scope, Verifier, VerifierConfig};
use scopekey_store::Replica;
use std::net::SocketAddr;
use std::time::Duration;

/// Every admin scope, as a bootstrap admin holds them.
pub const ADMIN_SCOPES: &str =
    "audit:read consumers:read consumers:write keys:read keys:write tokens:read tokens:revoke";

/// The admin audience of a service whose issuer is `issuer`.
pub(crate) fn admin_audience(config: &ServerConfig) -> String {
    format!("{}/admin", config.issuer())
}

/// What the admin API holds: the verifier of admin tokens.
pub(crate) struct Admin {
    verifier: Verifier,
}

impl Admin {
    pub(crate) fn new(replica: &Replica, config: &ServerConfig) -> Result<Self, ServerError> {
        let c = VerifierConfig::new(
            config.issuer(),
            admin_audience(config),
            config.environment().clone(),
        );
        let verifier = replica.verifier(c).map_err(|e| {
            ServerError::new(ServerErrorKind::Config, format!("admin verifier: {e}"))
        })?;
        Ok(Self { verifier })
    }
}

impl TokenService {
    /// On a store with no consumer at all, registers the consumer `admin` (owner `bootstrap`)
    /// as an operator holding [`ADMIN_SCOPES`] and returns an admin token for it, to be shown once: the first
    /// operator logs in with it and gives themselves proper credentials. On any other store,
    /// `None` (an existing operator mints admin tokens; no second bootstrap is possible).
    ///
    /// The token lives as long as the service's access tokens and is recorded in the inventory
    /// and the audit trail like any other. Blocks on the store.
    ///
    /// # Errors
    /// [`ServerErrorKind::Store`] when the store cannot be read or written, or the token not
    /// recorded.
    pub fn bootstrap_admin(&self) -> Result<Option<String>, ServerError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            ServerError::new(
                ServerErrorKind::Store,
                format!("bootstrap admin: {what}: {e}"),
            )
        };
        let inner = &self.inner;
        if !inner
            .store
            .consumers()
            .map_err(|e| failed("reading consumers", &e))?
            .is_empty()
        {
            return Ok(None);
        }
        let scopes: scopekey::ScopeSet = ADMIN_SCOPES
            .parse()
            .map_err(|e| failed("admin scopes", &e))?;
        // Its API ceiling is a placeholder no service names: it is an operator, not an API
        // consumer.
        let ceiling: scopekey::ScopeSet = "scopekey-operator:read"
            .parse()
            .map_err(|e| failed("the admin ceiling", &e))?;
        let consumer = scopekey::consumer::Consumer::new(
            "admin",
            "bootstrap",
            "first operator (scopekey serve --bootstrap-admin)",
            inner.config.environment().clone(),
            ceiling,
        )
        .map_err(|e| failed("the admin consumer", &e))?;
        inner
            .store
            .add_consumer(&consumer)
            .map_err(|e| failed("registering the admin consumer", &e))?;
        inner
            .store
            .set_operator_scopes("admin", Some(&scopes))
            .map_err(|e| failed("registering the operator", &e))?;
        let issued = issue_admin(inner, &consumer, Some(scopes))
            .map_err(|e| failed("minting", &e.description()))?;
        let minted = issued.access;
        if !inner.audit.flush(Duration::from_secs(5)) {
            return Err(failed(
                "the issued event",
                &"not written; the token is withheld",
            ));
        }
        Ok(Some(minted.token().as_str().to_owned()))
    }
}

/// An admin token for the authenticated operator `consumer` (blocking): only a consumer
/// registered as an operator ([`scopekey_store::Store::set_operator_scopes`]) gets one, with
/// exact admin scopes it holds as an operator (never by a broad scope, and never through its
/// API ceiling, which applies to the API audiences only); without `scope`, the read-only part.
/// No refresh token: admin tokens are short and re-obtained.
pub(crate) fn issue_admin(
    inner: &crate::service::Inner,
    consumer: &scopekey::consumer::Consumer,
    requested: Option<scopekey::ScopeSet>,
) -> Result<crate::grants::Issued, crate::oauth_error::OAuthError> {
    use crate::oauth_error::{OAuthError, OAuthErrorCode};
    let allowed = inner
        .store
        .operator_scopes(consumer.name())
        .map_err(|_| crate::grants::unavailable("the operator registry is unavailable"))?
        .ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                "admin tokens are only for consumers registered as operators",
            )
        })?;
    if consumer.environment() != inner.config.environment() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client is registered for another environment than this server's",
        ));
    }
    let scopes = match requested {
        Some(s) => s,
        None => crate::endpoints::default_scopes(&allowed).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "ask for the admin scopes you need",
            )
        })?,
    };
    let admin: scopekey::ScopeSet = ADMIN_SCOPES
        .parse()
        .map_err(|_| crate::grants::unavailable("the admin scopes do not parse"))?;
    let beyond: Vec<String> = scopes
        .iter()
        .filter(|s| s.is_broad() || !admin.contains(s) || !allowed.contains(s))
        .map(ToString::to_string)
        .take(8)
        .collect();
    if !beyond.is_empty() {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!("not admin scopes this operator holds: {}", beyond.join(" ")),
        ));
    }
    let request =
        scopekey::TokenRequest::new(consumer.name(), admin_audience(&inner.config), scopes)
            .escalate()
            .owner(consumer.owner())
            .purpose(consumer.purpose());
    let access = inner
        .issuer
        .issue(&request)
        .map_err(|e| crate::grants::refused_issue(&e))?;
    Ok(crate::grants::Issued {
        access,
        refresh: None,
        exchanged: false,
    })
}

/// Revokes one token and, as `/oauth/revoke` does, what goes with it (blocking): its refresh
/// family, or the lineage of tokens exchanged from it (found through the inventory). Returns
/// the token's revocation.
pub(crate) fn revoke_with_lineage(
    service: &TokenService,
    token_id: &scopekey::TokenId,
    expires_at: Option<time::OffsetDateTime>,
    by: &str,
    reason: &str,
) -> Result<std::sync::Arc<scopekey::revocation::Revocation>, String> {
    use scopekey::revocation::{RevocationTarget, Revoker as _};
    let replica = &service.inner.replica;
    let record = service
        .inner
        .store
        .token(token_id)
        .map_err(|e| format!("the inventory is unavailable: {e}"))?;
    let expires_at = expires_at.or_else(|| {
        record
            .as_ref()
            .map(scopekey::inventory::TokenRecord::expires_at)
    });
    let revoked = replica
        .revoke(
            RevocationTarget::Token {
                token_id: token_id.clone(),
                expires_at,
            },
            by,
            reason,
        )
        .map_err(|e| e.to_string())?;
    if let Some(r) = record {
        let also =
            crate::grants::lineage_targets(service, r.subject(), token_id, r.family().cloned())
                .map_err(|e| e.description())?;
        for target in also {
            replica
                .revoke(target, by, &format!("with its parent or family: {reason}"))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(revoked)
}

/// Who did it, as a revocation records it: the admin token's subject and id.
pub(crate) fn by_operator(grant: &Grant) -> String {
    format!(
        "admin {} (token {})",
        grant.subject(),
        grant.claims().token_id()
    )
}

/// The `/admin/` routes.
pub(crate) fn router(service: &TokenService) -> Router {
    routes::router(service.clone())
}

/// An RFC 9457 problem: `application/problem+json` with `type`, `title`, `status` and
/// `detail`.
#[derive(Debug)]
pub(crate) struct Problem {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    challenge: Option<String>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        let mut detail: String = detail.into();
        detail.retain(|c| !c.is_control());
        detail.truncate(400);
        Self {
            status,
            slug,
            detail,
            challenge: None,
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": format!("urn:scopekey:problem:{}", self.slug),
            "title": self.title(),
            "status": self.status.as_u16(),
            "detail": self.detail,
        })
        .to_string();
        let mut response = (
            self.status,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/problem+json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
        if let Some(c) = self.challenge
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// The bearer token of an admin request: exactly one `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Result<&str, Problem> {
    let unauthorized = |detail: &str| {
        let mut p = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        p.challenge = Some("Bearer realm=\"scopekey-admin\"".into());
        p
    };
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (all.next(), all.next()) else {
        return Err(unauthorized(
            "an admin token is required (Authorization: Bearer)",
        ));
    };
    let text = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            Ok(token.trim())
        }
        _ => Err(unauthorized(
            "an admin token is required (Authorization: Bearer)",
        )),
    }
}

impl TokenService {
    /// The grant of an admin token (from `headers`, or given) that holds `scope`.
    pub(crate) fn admit_token(
        &self,
        token: &str,
        peer: Option<std::net::IpAddr>,
        scope: &'static str,
    ) -> Result<Grant, Problem> {
        let grant = self
            .inner
            .admin
            .verifier
            .verify_from(token, None, peer)
            .map_err(|e| {
                let mut p = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    format!("the admin token is refused: {}", e.kind().as_str()),
                );
                p.challenge = Some(format!(
                    "Bearer realm=\"scopekey-admin\", error=\"invalid_token\", error_description=\"{}\"",
                    e.kind().as_str()
                ));
                p
            })?;
        let needed: Scope = scope
            .parse()
            .map_err(|_| Problem::unavailable("an admin scope does not parse"))?;
        if !grant.claims().scopes().allows_scope(&needed) {
            let mut p = Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this admin token does not hold {scope}"),
            );
            p.challenge = Some(format!(
                "Bearer realm=\"scopekey-admin\", error=\"insufficient_scope\", scope=\"{scope}\""
            ));
            return Err(p);
        }
        Ok(grant)
    }

    /// The grant of the request's admin token that holds `scope`.
    pub(crate) fn admit(&self, parts: &Parts, scope: &'static str) -> Result<Grant, Problem> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        self.admit_token(bearer(&parts.headers)?, peer, scope)
    }

    /// Records that the holder of `grant` did `action` to `target`, and waits for it to be
    /// written.
    pub(crate) async fn record(
        &self,
        grant: &Grant,
        action: &'static str,
        target: &str,
    ) -> Result<(), Problem> {
        let event = AuditEvent::admin_action(
            time::OffsetDateTime::now_utc(),
            action,
            target,
            grant.claims(),
        );
        let audit = self.inner.audit.clone();
        let written = tokio::task::spawn_blocking(move || {
            audit.record(&event).is_ok() && audit.flush(Duration::from_secs(5))
        })
        .await
        .unwrap_or(false);
        if written {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "audit-unavailable",
                format!("{action} was done, but its audit event could not be written"),
            ))
        }
    }
}

/// Reads a JSON body: `application/json`, at most [`MAX_BODY_LEN`](crate::MAX_BODY_LEN) bytes,
/// into `T` (whose fields are strict: unknown and duplicate members refused).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Problem> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "the body must be application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, crate::MAX_BODY_LEN)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("the body is larger than {} bytes", crate::MAX_BODY_LEN),
            )
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::invalid(format!("the body is not valid: {e}")))
}

/// Runs a blocking store call off the async threads; an unknown consumer is a 404 problem,
/// any other failure a 503.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, scopekey_store::StoreError> + Send + 'static,
) -> Result<T, Problem> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind() == scopekey_store::StoreErrorKind::UnknownConsumer => {
            Err(Problem::not_found("no such consumer"))
        }
        Ok(Err(e)) => Err(Problem::unavailable(format!("store: {e}"))),
        Err(_) => Err(Problem::unavailable("the store call did not finish")),
    }
}
