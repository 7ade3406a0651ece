//! `grant_type=refresh_token` (RFC 6749 §6), served with [`ServerConfig::refresh_tokens`]
//! (crate::ServerConfig::refresh_tokens): the authenticated client presents a refresh token
//! of its own (and optionally a narrower `scope`); the core [`Refresher`] rotates it in the
//! store's families, so a used refresh token presented again revokes the whole family
//! (RFC 9700 §4.14) and is `invalid_grant`.

use super::{Issued, invalid_grant, requested_scope, settle, unavailable};
use crate::form::Form;
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use crate::service::{Inner, TokenService};
use crate::throttle::Source;
use axum::http::HeaderMap;
use axum::response::Response;
use scopekey::consumer::Consumer;
use scopekey::refresh::{RefreshError, RefreshErrorKind, Refresher};
use scopekey::{ScopeSet, TokenRequest};
use zeroize::Zeroizing;

/// The refresh grant: authenticate, check the token is the client's, rotate, answer.
pub(crate) async fn grant(
    service: TokenService,
    headers: HeaderMap,
    form: Form,
    source: Source,
) -> Result<Response, OAuthError> {
    let token = Zeroizing::new(form.require("refresh_token")?.to_owned());
    let narrow = requested_scope(&form)?;
    let resource = form.get("resource").map(str::to_owned);
    let client = service.inner.authenticate(&headers, &form, source).await?;
    let id = client.client_id.clone();
    let s = service.clone();
    let issued = tokio::task::spawn_blocking(move || {
        let issued = rotate(&s, &id, &token, narrow, resource.as_deref())?;
        settle(&s.inner, &id, &issued)?;
        Ok::<_, OAuthError>(issued)
    })
    .await
    .map_err(|_| unavailable("the token could not be issued"))??;
    Ok(super::token_response(&issued))
}

/// Rotates `token` for `client` (blocking).
fn rotate(
    service: &TokenService,
    client: &str,
    token: &str,
    narrow: Option<ScopeSet>,
    resource: Option<&str>,
) -> Result<Issued, OAuthError> {
    // Verified (and its owner checked) before it reaches its family: another client's
    // presentation neither rotates it nor counts as reuse, so it cannot be used to end the
    // owner's family. (Without the owner's client credentials it is of no use anyway.)
    let Some((subject, audience)) = super::Grants::refresh_owner(service, token) else {
        return Err(invalid_grant(
            "the refresh token is invalid, expired, revoked or not from this server",
        ));
    };
    if subject != client {
        return Err(invalid_grant(
            "the refresh token was not issued to this client",
        ));
    }
    if resource.is_some_and(|r| r != audience) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidTarget,
            "a refresh keeps the refresh token's audience",
        ));
    }
    let inner = &service.inner;
    let refresher = inner
        .grants
        .refresher(&inner.config, &audience)
        .ok_or_else(|| invalid_grant("the refresh token's audience is not served here"))?;
    let pair = refresher
        .exchange(token, narrow.as_ref())
        .map_err(|e| refused_refresh(&e))?;
    let (access, refresh) = (pair.access().clone(), pair.refresh().clone());
    Ok(Issued {
        access,
        refresh: Some(refresh),
        exchanged: false,
    })
}

/// Starts a refresh family for a `client_credentials` answer (blocking): `request` was checked
/// against `consumer` (enabled, ceiling, broad scopes) by the caller.
pub(crate) fn start(
    inner: &Inner,
    consumer: &Consumer,
    request: TokenRequest,
    audience: &str,
) -> Result<Issued, OAuthError> {
    if consumer.environment() != inner.config.environment() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client is registered for another environment than this server's",
        ));
    }
    let refresher: &Refresher =
        inner
            .grants
            .refresher(&inner.config, audience)
            .ok_or_else(|| {
                OAuthError::new(
                    OAuthErrorCode::InvalidTarget,
                    "the resource is not an audience this server issues tokens for",
                )
            })?;
    // As `issue_for` does: the ceiling was the deliberate escalation, and the consumer's
    // owner and purpose describe its tokens.
    let mut request = request.owner(consumer.owner()).purpose(consumer.purpose());
    if !request.scopes().is_read_only() {
        request = request.escalate();
    }
    let pair = refresher.start(&request).map_err(|e| refused_refresh(&e))?;
    Ok(Issued {
        access: pair.access().clone(),
        refresh: Some(pair.refresh().clone()),
        exchanged: false,
    })
}

/// A refused exchange as RFC 6749 §5.2 answers it.
fn refused_refresh(e: &RefreshError) -> OAuthError {
    match e.kind() {
        RefreshErrorKind::Invalid | RefreshErrorKind::Reused | RefreshErrorKind::FamilyExpired => {
            invalid_grant(e.to_string())
        }
        RefreshErrorKind::Widening | RefreshErrorKind::BeyondCeiling => {
            OAuthError::new(OAuthErrorCode::InvalidScope, e.to_string())
        }
        RefreshErrorKind::ConsumerDisabled => super::disabled(),
        _ => unavailable("no tokens issued"),
    }
}
