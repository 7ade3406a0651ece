//! RFC 8693 token exchange: an authenticated client trades an access token of its own (the
//! `subject_token`) for a narrower one — scopes within the subject token's, the same
//! audience, a lifetime that ends no later than the subject token's — linked to it by family
//! (see [the lineage](super)), so that revoking the parent revokes every descendant.
//!
//! Not served: delegation (`actor_token`), other token types, refresh tokens in the answer (a
//! child must not outlive its parent).

use super::{
    ACCESS_TOKEN_TYPE, Issued, enabled_consumer, invalid_grant, lineage_of, refused_issue,
    requested_scope, settle, unavailable,
};
use crate::endpoints::{default_scopes, verify_any};
use crate::form::Form;
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use crate::service::TokenService;
use crate::throttle::Source;
use axum::http::HeaderMap;
use axum::response::Response;
use scopekey::revocation::{RevocationTarget, Revoker as _};
use scopekey::{ScopeSet, TokenRequest};
use std::time::Duration;
use zeroize::Zeroizing;

/// What an exchange request asks for, its parameters checked.
struct Request {
    subject_token: Zeroizing<String>,
    scopes: Option<ScopeSet>,
    /// `resource` and `audience`: each, if given, must be the subject token's audience.
    targets: Vec<String>,
}

fn invalid_target(why: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidTarget, why)
}

impl Request {
    fn read(form: &Form, service: &TokenService) -> Result<Self, OAuthError> {
        if form.has("actor_token") || form.has("actor_token_type") {
            return Err(OAuthError::invalid_request(
                "delegation (actor_token) is not supported: exchange a token of your own",
            ));
        }
        let subject_token = Zeroizing::new(form.require("subject_token")?.to_owned());
        if form.require("subject_token_type")? != ACCESS_TOKEN_TYPE {
            return Err(OAuthError::invalid_request(format!(
                "the subject_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        if form
            .get("requested_token_type")
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(OAuthError::invalid_request(format!(
                "only {ACCESS_TOKEN_TYPE} is issued"
            )));
        }
        let mut targets = Vec::new();
        for name in ["resource", "audience"] {
            if let Some(t) = form.get(name) {
                if !service.config().audiences().iter().any(|a| a == t) {
                    return Err(invalid_target(
                        "the resource is not an audience this server issues tokens for",
                    ));
                }
                targets.push(t.to_owned());
            }
        }
        Ok(Self {
            subject_token,
            scopes: requested_scope(form)?,
            targets,
        })
    }
}

/// The exchange grant: check the parameters, authenticate, exchange, answer.
pub(crate) async fn grant(
    service: TokenService,
    headers: HeaderMap,
    form: Form,
    source: Source,
) -> Result<Response, OAuthError> {
    let request = Request::read(&form, &service)?;
    let client = service.inner.authenticate(&headers, &form, source).await?;
    let id = client.client_id.clone();
    let s = service.clone();
    let issued = tokio::task::spawn_blocking(move || {
        let issued = exchange(&s, &id, &request)?;
        settle(&s.inner, &id, &issued)?;
        Ok::<_, OAuthError>(issued)
    })
    .await
    .map_err(|_| unavailable("the token could not be issued"))??;
    Ok(super::token_response(&issued))
}

/// Mints the child of `request.subject_token` for `client` (blocking).
fn exchange(service: &TokenService, client: &str, request: &Request) -> Result<Issued, OAuthError> {
    let inner = &service.inner;
    // RFC 8693 §2.2.2: a subject token that is invalid is `invalid_grant`.
    let Some(parent) = verify_any(service, &request.subject_token) else {
        return Err(invalid_grant(
            "the subject_token is invalid, expired, revoked or not from this server",
        ));
    };
    let p = parent.claims();
    if p.subject() != client {
        return Err(invalid_grant(
            "the subject_token was not issued to this client",
        ));
    }
    if p.other().contains_key("net") {
        // The child would have to carry the caveat; refusing is the narrower choice.
        return Err(invalid_grant(
            "a network-limited subject_token cannot be exchanged",
        ));
    }
    if request.targets.iter().any(|t| t != p.audience()) {
        return Err(invalid_target(
            "a token exchange keeps the subject token's audience (ask client_credentials for \
             a token for another)",
        ));
    }
    let scopes = match &request.scopes {
        Some(s) => s.clone(),
        // As the token endpoint's default: the read-only part.
        None => default_scopes(p.scopes()).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "the subject token has no read-only part: ask for a scope",
            )
        })?,
    };
    if scopes.is_empty() || !scopes.is_subset_of(p.scopes()) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!(
                "the scope `{scopes}` is not within the subject token's `{}`",
                p.scopes()
            ),
        ));
    }
    if scopes.is_broad() && !inner.config.allow_broad {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "broad scopes are not issued by this server",
        ));
    }
    // A child never outlives its parent: at most the parent's remaining lifetime, whole
    // seconds, rounded down.
    let now = time::OffsetDateTime::now_utc();
    let left = (p.expires_at() - now).whole_seconds();
    let left = u64::try_from(left).unwrap_or(0);
    if left < 1 {
        return Err(invalid_grant("the subject_token expires within a second"));
    }
    let ttl = inner.config.access_ttl.min(Duration::from_secs(left));
    let family = match p.family() {
        Some(f) => f.clone(),
        None => lineage_of(p.token_id())
            .ok_or_else(|| invalid_grant("the subject_token's jti is too long to exchange"))?,
    };
    let consumer = enabled_consumer(inner, client)?;
    let mut child = TokenRequest::new(client, p.audience(), scopes)
        .ttl(ttl)
        .family(family);
    if inner.config.allow_broad {
        child = child.allow_broad();
    }
    // The consumer's ceiling as it is now (it may have narrowed since the parent) applies too.
    let minted = inner
        .issuer
        .issue_for(&consumer, &child)
        .map_err(|e| refused_issue(&e))?;
    // The parent may have been revoked while the child was made, after the check above and
    // before the child was in the inventory for the revocation to find: look again.
    if verify_any(service, &request.subject_token).is_none() {
        let target = RevocationTarget::Token {
            token_id: minted.claims().token_id().clone(),
            expires_at: Some(minted.claims().expires_at()),
        };
        let _ = inner.replica.revoke(
            target,
            "scopekey-server",
            "subject token revoked (or expired) while exchanging",
        );
        return Err(invalid_grant("the subject_token was revoked"));
    }
    Ok(Issued {
        access: minted,
        refresh: None,
        exchanged: true,
    })
}
