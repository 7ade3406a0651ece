//! The OAuth endpoints: token (client credentials here; the other grants dispatched to
//! [`crate::grants`]), introspection and revocation.

use crate::form::Form;
use crate::grants;
use crate::metadata::json;
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use crate::service::TokenService;
use crate::throttle::Source;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scopekey::consumer::Consumer;
use scopekey::revocation::{RevocationTarget, Revoker as _};
use scopekey::{Grant, Scope, ScopeSet, TokenRequest, TokenType};
use std::net::SocketAddr;
use std::time::Duration;

/// The token endpoint (RFC 6749 §3.2).
pub const TOKEN_PATH: &str = "/oauth/token";
/// The introspection endpoint (RFC 7662).
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// The revocation endpoint (RFC 7009).
pub const REVOKE_PATH: &str = "/oauth/revoke";

/// The form and the source of a request.
async fn read(request: Request) -> Result<(axum::http::HeaderMap, Form, Source), OAuthError> {
    let (parts, body) = request.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let form = Form::read(&parts.headers, body).await?;
    Ok((parts.headers, form, Source::of(peer)))
}

fn unavailable(what: &str) -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        format!("{what}: retry shortly"),
    )
    .retry_after(Duration::from_secs(1))
}

pub(crate) async fn token(State(service): State<TokenService>, request: Request) -> Response {
    match token_inner(service, request).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(service: TokenService, request: Request) -> Result<Response, OAuthError> {
    let (headers, form, source) = read(request).await?;
    let grant_type = form.require("grant_type")?;
    if grant_type != "client_credentials" && headers.contains_key("dpop") {
        // Never a silent downgrade: a client asking for a bound token gets one or a refusal.
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidDpopProof,
            "this server issues DPoP-bound tokens by the client_credentials grant only; send \
             this grant without a DPoP header, or get a bound token by client_credentials",
        ));
    }
    match grant_type {
        "client_credentials" => {}
        grants::REFRESH_TOKEN if service.config().refresh_tokens => {
            return grants::refresh::grant(service, headers, form, source).await;
        }
        grants::TOKEN_EXCHANGE => {
            return grants::exchange::grant(service, headers, form, source).await;
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!(
                    "grant type {shown} is not supported (see grant_types_supported in the metadata)"
                ),
            ));
        }
    }
    let inner = &service.inner;
    let client = inner.authenticate(&headers, &form, source).await?;
    let jkt = dpop_proof(&service, &headers)?;
    let audience = match form.get("resource") {
        None => inner.config.audiences()[0].clone(),
        Some(r) if inner.config.audiences().iter().any(|a| a == r) => r.to_owned(),
        // The admin API's own audience: tokens for operators only, with their operator
        // scopes (`admin::issue_admin`), never through an API ceiling.
        Some(r) if r == crate::admin::admin_audience(&inner.config) => r.to_owned(),
        Some(_) => {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                "the resource is not an audience this server issues tokens for",
            ));
        }
    };
    let requested: Option<ScopeSet> = form
        .get("scope")
        .map(|s| {
            s.parse().map_err(|e: scopekey::ScopeError| {
                OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    format!("malformed scope: {e}"),
                )
            })
        })
        .transpose()?;
    let service2 = service.clone();
    let id = client.client_id.clone();
    let issued =
        tokio::task::spawn_blocking(move || issue(&service2, &id, requested, audience, jkt))
            .await
            .map_err(|_| unavailable("the token could not be issued"))??;
    Ok(grants::token_response(&issued))
}

/// Issues for the authenticated `client` (blocking: reads the store, records the token and
/// waits for its `issued` event to be written; the token is withheld if it cannot be).
fn issue(
    service: &TokenService,
    client: &str,
    requested: Option<ScopeSet>,
    audience: String,
    jkt: Option<scopekey::dpop::Jkt>,
) -> Result<grants::Issued, OAuthError> {
    let inner = &service.inner;
    let consumer: Consumer = inner
        .store
        .consumer(client)
        .map_err(|_| unavailable("the consumer registry is unavailable"))?
        .ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication failed",
            )
        })?;
    if !consumer.is_enabled() {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "this client is disabled",
        ));
    }
    if audience == crate::admin::admin_audience(&inner.config) {
        let issued = crate::admin::issue_admin(inner, &consumer, requested)?;
        grants::settle(inner, client, &issued)?;
        return Ok(issued);
    }
    let scopes = match requested {
        Some(s) => s,
        None => default_scopes(consumer.ceiling()).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "this client has no read-only default scope: ask for a scope",
            )
        })?,
    };
    if let Err(beyond) = consumer.check_ceiling(&scopes) {
        let named: Vec<String> = beyond
            .offending()
            .iter()
            .take(8)
            .map(ToString::to_string)
            .collect();
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!(
                "beyond what this client may be granted: {}",
                named.join(" ")
            ),
        ));
    }
    // Within the ceiling, escalations were the deliberate choice; broad scopes need the
    // server's own opt-in as well (as `mint --allow-broad` does).
    if scopes.is_broad() && !inner.config.allow_broad {
        let named: Vec<String> = scopes.broad().take(8).map(ToString::to_string).collect();
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!(
                "broad scopes are not issued by this server: {}",
                named.join(" ")
            ),
        ));
    }
    let mut request = TokenRequest::new(client, audience.clone(), scopes);
    if let Some(jkt) = jkt {
        request = request.bind_dpop(jkt);
    }
    if inner.config.allow_broad {
        request = request.allow_broad();
    }
    // A network-limited consumer gets access tokens only: a refresh exchange has no client
    // address to check its tokens' caveat against (RFC 6749 makes refresh tokens optional).
    let issued = if inner.config.refresh_tokens && consumer.networks().is_empty() {
        grants::refresh::start(inner, &consumer, request, &audience)?
    } else {
        grants::Issued {
            access: inner
                .issuer
                .issue_for(&consumer, &request)
                .map_err(|e| grants::refused_issue(&e))?,
            refresh: None,
            exchanged: false,
        }
    };
    grants::settle(inner, client, &issued)?;
    Ok(issued)
}

/// The key a `client_credentials` request's `DPoP` proof (RFC 9449 §5) binds the token to:
/// `None` without a proof; the proof must be for `POST` at this token endpoint (as the
/// configured issuer names it, never the `Host` header), fresh and not replayed.
fn dpop_proof(
    service: &TokenService,
    headers: &axum::http::HeaderMap,
) -> Result<Option<scopekey::dpop::Jkt>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let refuse = |why: String| OAuthError::new(OAuthErrorCode::InvalidDpopProof, why);
    if values.next().is_some() {
        return Err(refuse("more than one DPoP header".into()));
    }
    let proof = value
        .to_str()
        .map_err(|_| refuse("the DPoP header is not ASCII".into()))?;
    let htu = service.config().endpoint(TOKEN_PATH);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    service
        .inner
        .dpop
        .check_token_request(
            &scopekey::dpop::DpopRequest::new(Some(proof), "POST", &htu),
            now,
        )
        .map(Some)
        .map_err(|e| match e.kind() {
            scopekey::VerifyErrorKind::DpopUnavailable => {
                unavailable("the DPoP proof could not be checked for replay")
            }
            kind => refuse(format!(
                "the DPoP proof was refused ({}): {e}",
                kind.as_str()
            )),
        })
}

/// The read-only part of a ceiling: `read` on every resource it names, broad ones left out
/// (RFC 6749 §3.3: the default when a client asks for no scope). `None` when that is empty.
pub(crate) fn default_scopes(ceiling: &ScopeSet) -> Option<ScopeSet> {
    let reads: Vec<Scope> = ceiling
        .iter()
        .map(|s| Scope::read(s.resource().clone()))
        .filter(|s| ceiling.allows_scope(s) && !s.is_broad())
        .collect();
    let mut unique: Vec<Scope> = Vec::new();
    for s in reads {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    ScopeSet::from_scopes(unique).ok().filter(|s| !s.is_empty())
}

/// A token this server issued that is live, whatever its audience among the configured
/// ones; its network caveat is not checked (it belongs to the request a token is used with).
pub(crate) fn verify_any(service: &TokenService, token: &str) -> Option<Grant> {
    service
        .inner
        .verifiers
        .iter()
        .find_map(|v| v.verify_ignoring_network(token).ok())
}

/// What revocation needs of a token that does not verify as live here (another audience, a
/// longer lifetime, expired, already revoked): that a key in the store signed it as a token of
/// this issuer and environment, whose it is and its id.
fn authentic(
    service: &TokenService,
    token: &str,
) -> Option<(String, scopekey::TokenId, Option<scopekey::FamilyId>)> {
    let config = service.config();
    let unverified = scopekey::danger::decode_unverified(token).ok()?;
    let keys = service.inner.replica.keys().snapshot();
    let entry = keys.get(unverified.key_id()?)?;
    let signed = [TokenType::Access, TokenType::Refresh]
        .into_iter()
        .any(|t| {
            unverified
                .check_signature(entry.key(), config.environment(), t)
                .is_ok()
        });
    if !signed || unverified.claim_str("iss") != Some(config.issuer()) {
        return None;
    }
    let subject = unverified.claim_str("sub")?.to_owned();
    let token_id = unverified.claim_str("jti")?.parse().ok()?;
    let family = unverified.claim_str("fam").and_then(|f| f.parse().ok());
    Some((subject, token_id, family))
}

pub(crate) async fn introspect(State(service): State<TokenService>, request: Request) -> Response {
    let answer = async {
        let (headers, form, source) = read(request).await?;
        let client = service.inner.authenticate(&headers, &form, source).await?;
        let token = form.require("token")?;
        let body = match verify_any(&service, token) {
            // RFC 7662 §2.2: for a token that is not active, or not the caller's to see,
            // nothing but `active: false`.
            Some(grant) if grant.subject() == client.client_id => {
                let c = grant.claims();
                let mut body = serde_json::json!({
                    "active": true,
                    "scope": c.scopes().as_str(),
                    "client_id": c.subject(),
                    "sub": c.subject(),
                    "aud": c.audience(),
                    "iss": c.issuer(),
                    "exp": c.expires_at().unix_timestamp(),
                    "iat": c.issued_at().unix_timestamp(),
                    "jti": c.token_id().as_str(),
                    "token_type": "Bearer",
                    "env": c.environment().as_str(),
                });
                if let Some(net) = c.other().get("net") {
                    // The caveat is the caller's to enforce: say it.
                    body["net"] = net.clone();
                }
                if let Some(nbf) = c.not_before() {
                    body["nbf"] = nbf.unix_timestamp().into();
                }
                body
            }
            _ => serde_json::json!({ "active": false }),
        };
        Ok::<_, OAuthError>(json(body.to_string(), "no-store"))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn revoke(State(service): State<TokenService>, request: Request) -> Response {
    let answer = async {
        let (headers, form, source) = read(request).await?;
        let client = service.inner.authenticate(&headers, &form, source).await?;
        let token = form.require("token")?;
        // RFC 7009 §2.2: a token that is invalid, expired or already revoked is answered 200
        // (there is nothing left to revoke).
        let (subject, target, family) = match verify_any(&service, token) {
            Some(grant) => (
                grant.subject().to_owned(),
                RevocationTarget::Token {
                    token_id: grant.claims().token_id().clone(),
                    expires_at: Some(grant.claims().expires_at()),
                },
                grant.claims().family().cloned(),
            ),
            None => match authentic(&service, token) {
                // Authentic but not live here (a refresh token, another audience, …):
                // revoked all the same (a service with other rules may still accept it),
                // kept until pruned.
                Some((subject, token_id, family)) => (
                    subject,
                    RevocationTarget::Token {
                        token_id,
                        expires_at: None,
                    },
                    family,
                ),
                // RFC 7009 §2.2: an invalid token is answered 200; there is nothing to revoke.
                None => return Ok(StatusCode::OK.into_response()),
            },
        };
        if subject != client.client_id {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "the token was not issued to this client",
            ));
        }
        let by = format!("client {}", client.client_id);
        let service2 = service.clone();
        tokio::task::spawn_blocking(move || {
            let failed = |_| unavailable("the revocation could not be recorded");
            let RevocationTarget::Token { token_id, .. } = &target else {
                return Err(unavailable("the revocation could not be recorded"));
            };
            let token_id = token_id.clone();
            let replica = &service2.inner.replica;
            // The token first, then its family or the lineage exchanged from it: an exchange
            // running meanwhile looks at its parent again once its child is recorded.
            replica
                .revoke(target, &by, "revoked by its client (RFC 7009)")
                .map_err(failed)?;
            for also in grants::lineage_targets(&service2, &subject, &token_id, family)? {
                replica
                    .revoke(also, &by, "revoked with its parent or family (RFC 7009)")
                    .map_err(failed)?;
            }
            Ok(())
        })
        .await
        .map_err(|_| unavailable("the revocation could not be recorded"))??;
        Ok::<_, OAuthError>(StatusCode::OK.into_response())
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}
