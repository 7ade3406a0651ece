//! The token endpoint's grants beyond `client_credentials`: `refresh_token` (RFC 6749 §6,
//! rotated with reuse detection) and token exchange (RFC 8693), and what every grant shares:
//! the answer, the last look at the consumer before a token is sent, and the lineage that
//! ties an exchanged token to its parent.
//!
//! **Lineage.** A token has one family claim (`fam`). A token made by exchange carries its
//! parent's family when the parent has one (a refresh family, or the lineage of an earlier
//! exchange), and otherwise the parent's *lineage*, `lin:<parent jti>`: so every descendant of
//! a root token shares one family id, and revoking that family (which revoking the parent
//! does, see [`lineage_targets`]) refuses all of them at every verifier that reads the store.

pub(crate) mod exchange;
pub(crate) mod refresh;

use crate::config::{ServerConfig, ServerError, ServerErrorKind};
use crate::metadata::json;
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use crate::service::{Inner, TokenService};
use axum::response::Response;
use scopekey::consumer::Consumer;
use scopekey::inventory::InventoryQuery;
use scopekey::refresh::Refresher;
use scopekey::revocation::{RevocationTarget, Revoker as _};
use scopekey::{FamilyId, IssueError, IssueErrorKind, Minted, SigningKey, TokenId, TokenType};
use scopekey_store::{Replica, Store, StoreAuditSink, StoreInventory};
use std::sync::Arc;
use std::time::Duration;

/// `grant_type` of the refresh grant (RFC 6749 §6).
pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
/// `grant_type` of token exchange (RFC 8693 §2.1).
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The one token type exchanged and issued (RFC 8693 §3).
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The prefix of a lineage family id: `lin:` and the root token's `jti`. Generated family ids
/// are base64url and never hold `:`, so a lineage is never a refresh family.
const LINEAGE_PREFIX: &str = "lin:";

/// The family that the tokens exchanged from a token without a family share: `lin:<jti>`.
/// `None` for a `jti` too long to prefix (never one this server generated).
pub fn lineage_of(token_id: &TokenId) -> Option<FamilyId> {
    format!("{LINEAGE_PREFIX}{}", token_id.as_str())
        .parse()
        .ok()
}

/// What the grants need besides the service's issuer: one refresher per audience (in the
/// configured order).
pub(crate) struct Grants {
    refreshers: Vec<Refresher>,
}

impl Grants {
    /// Refreshers over the store's families, revoking through `replica`, each with its own
    /// issuer of the same key as the service's.
    pub(crate) fn new(
        store: &Store,
        key: &SigningKey,
        config: &ServerConfig,
        replica: &Arc<Replica>,
        audit: &Arc<StoreAuditSink>,
        inventory: &Arc<StoreInventory>,
    ) -> Result<Self, ServerError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ServerError::new(ServerErrorKind::Config, format!("{what}: {e}"))
        };
        let mut refreshers = Vec::new();
        for audience in config.audiences() {
            let copy = SigningKey::from_paserk(&key.to_paserk())
                .map_err(|e| bad("copying the signing key", &e))?;
            let issuer =
                scopekey::Issuer::new(copy, config.issuer.clone(), config.environment.clone())
                    .map_err(|e| bad("issuer", &e))?
                    .with_default_ttl(config.access_ttl)
                    .with_max_ttl(config.access_ttl)
                    .with_inventory(inventory.clone())
                    .with_audit(audit.clone());
            let revocations: Arc<dyn scopekey::refresh::Revocations> = replica.clone();
            let refresher = Refresher::new(
                issuer,
                audience,
                replica.keys(),
                revocations,
                Arc::new(store.families()),
            )
            .map_err(|e| bad("refresher", &e))?
            .with_audit(audit.clone())
            .with_consumers(Arc::new(store.clone()))
            .with_refresh_ttl(config.refresh_ttl)
            .with_family_lifetime(config.family_lifetime);
            refreshers.push(refresher);
        }
        Ok(Self { refreshers })
    }

    /// The refresher for `audience`.
    pub(crate) fn refresher(&self, config: &ServerConfig, audience: &str) -> Option<&Refresher> {
        let i = config.audiences().iter().position(|a| a == audience)?;
        self.refreshers.get(i)
    }

    /// Whose refresh token `token` is and for which audience: `(sub, aud)` of a refresh token
    /// that a key of the store signed for this issuer and environment. Only to pick the
    /// refresher and check the owner before the token reaches its family; the refresher
    /// verifies it fully (expiry, revocation) before anything rotates.
    pub(crate) fn refresh_owner(service: &TokenService, token: &str) -> Option<(String, String)> {
        let config = service.config();
        let unverified = scopekey::danger::decode_unverified(token).ok()?;
        let keys = service.inner.replica.keys().snapshot();
        let entry = keys.get(unverified.key_id()?)?;
        unverified
            .check_signature(entry.key(), config.environment(), TokenType::Refresh)
            .ok()?;
        if unverified.claim_str("iss") != Some(config.issuer()) {
            return None;
        }
        Some((
            unverified.claim_str("sub")?.to_owned(),
            unverified.claim_str("aud")?.to_owned(),
        ))
    }
}

/// What a grant issued: an access token, and a refresh token of the same family when the
/// grant rotates one.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access: Minted,
    pub(crate) refresh: Option<Minted>,
    /// An RFC 8693 answer, with `issued_token_type`.
    pub(crate) exchanged: bool,
}

/// The RFC 6749 §5.1 answer (RFC 8693 §2.2.1 for an exchange), `no-store`.
pub(crate) fn token_response(issued: &Issued) -> Response {
    let claims = issued.access.claims();
    let expires_in = (claims.expires_at() - claims.issued_at())
        .whole_seconds()
        .max(0);
    let mut body = serde_json::json!({
        "access_token": issued.access.token().as_str(),
        // RFC 9449 §5: a token bound to the proof's key.
        "token_type": if claims.other().contains_key("cnf") { "DPoP" } else { "Bearer" },
        "expires_in": expires_in,
        "scope": claims.scopes().as_str(),
    });
    if let Some(refresh) = &issued.refresh {
        body["refresh_token"] = refresh.token().as_str().into();
    }
    if issued.exchanged {
        body["issued_token_type"] = ACCESS_TOKEN_TYPE.into();
    }
    let mut response = json(body.to_string(), "no-store");
    response.headers_mut().insert(
        axum::http::header::PRAGMA,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    response
}

/// The last look before `issued` is sent (blocking): a consumer disabled while it was made,
/// too late for the disabling revocation to cover it, has it revoked (with its family, for a
/// refresh pair) and is refused; and the `issued` events must be written, or it is withheld.
pub(crate) fn settle(inner: &Inner, client: &str, issued: &Issued) -> Result<(), OAuthError> {
    let still = inner.store.consumer(client).ok().flatten();
    if !still.as_ref().is_some_and(Consumer::is_enabled) {
        let access = issued.access.claims();
        let mut targets = vec![RevocationTarget::Token {
            token_id: access.token_id().clone(),
            expires_at: Some(access.expires_at()),
        }];
        if let Some(family) = issued.refresh.as_ref().and_then(|r| r.claims().family()) {
            targets.push(RevocationTarget::Family(family.clone()));
        }
        for target in targets {
            let _ =
                inner
                    .replica
                    .revoke(target, "scopekey-server", "consumer disabled while issuing");
        }
        return Err(disabled());
    }
    if !inner.audit.flush(Duration::from_secs(5)) {
        return Err(unavailable(
            "the issued event could not be written; the token is withheld",
        ));
    }
    Ok(())
}

/// Besides the token itself, what revoking the token `token_id` of `subject` (with family
/// `family`, if any) revokes (blocking): its family — for a refresh token that is RFC 7009
/// §2.1's SHOULD, for an access token of a refresh family its MAY, and for an exchanged token
/// the whole lineage below its root — and, for a token without a family, its lineage when any
/// token was exchanged from it (asked of the inventory, so tokens without descendants add no
/// family revocation, which the list keeps for good).
///
/// # Errors
/// `temporarily_unavailable` when the inventory cannot answer.
pub(crate) fn lineage_targets(
    service: &TokenService,
    subject: &str,
    token_id: &TokenId,
    family: Option<FamilyId>,
) -> Result<Vec<RevocationTarget>, OAuthError> {
    if let Some(f) = family {
        return Ok(vec![RevocationTarget::Family(f)]);
    }
    let Some(lineage) = lineage_of(token_id) else {
        return Ok(Vec::new());
    };
    let now = time::OffsetDateTime::now_utc();
    let records = service
        .inner
        .store
        .tokens(&InventoryQuery::all().subject(subject).live_at(now))
        .map_err(|_| unavailable("the inventory is unavailable"))?;
    Ok(if records.iter().any(|r| r.family() == Some(&lineage)) {
        vec![RevocationTarget::Family(lineage)]
    } else {
        Vec::new()
    })
}

/// An issue refusal as the token endpoint answers it.
pub(crate) fn refused_issue(e: &IssueError) -> OAuthError {
    match e.kind() {
        IssueErrorKind::ConsumerDisabled => disabled(),
        IssueErrorKind::ConsumerEnvironment => OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client is registered for another environment than this server's",
        ),
        IssueErrorKind::BeyondCeiling | IssueErrorKind::NoScope | IssueErrorKind::BroadScope => {
            OAuthError::new(OAuthErrorCode::InvalidScope, e.to_string())
        }
        IssueErrorKind::Record => unavailable("the token could not be recorded"),
        _ => OAuthError::invalid_request(e.to_string()),
    }
}

/// The consumer of an authenticated client, enabled (blocking).
pub(crate) fn enabled_consumer(inner: &Inner, client: &str) -> Result<Consumer, OAuthError> {
    let consumer = inner
        .store
        .consumer(client)
        .map_err(|_| unavailable("the consumer registry is unavailable"))?
        .ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication failed",
            )
        })?;
    if consumer.is_enabled() {
        Ok(consumer)
    } else {
        Err(disabled())
    }
}

/// A `scope` parameter, parsed (`invalid_scope` when malformed).
pub(crate) fn requested_scope(
    form: &crate::form::Form,
) -> Result<Option<scopekey::ScopeSet>, OAuthError> {
    form.get("scope")
        .map(|s| {
            s.parse().map_err(|e: scopekey::ScopeError| {
                OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    format!("malformed scope: {e}"),
                )
            })
        })
        .transpose()
}

pub(crate) fn disabled() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, "this client is disabled")
}

pub(crate) fn invalid_grant(why: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidGrant, why)
}

pub(crate) fn unavailable(what: &str) -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        format!("{what}: retry shortly"),
    )
    .retry_after(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineages_are_prefixed_token_ids_and_never_generated_family_ids() {
        let jti = TokenId::generate().unwrap();
        let lineage = lineage_of(&jti).unwrap();
        assert_eq!(lineage.as_str(), format!("lin:{}", jti.as_str()));
        assert!(!FamilyId::generate().unwrap().as_str().contains(':'));
        let long: TokenId = "x".repeat(128).parse().unwrap();
        assert!(lineage_of(&long).is_none());
    }
}
