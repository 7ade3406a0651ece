//! The capability a verification produces, [`Grant`], and the refusal of an action,
//! [`Denied`].

use crate::clock::Clock;
use crate::key::KeyId;
use crate::scope::{Action, Resource, Scope};
use crate::token::audit::{AuditEvent, AuditKind, AuditSink, RequestContext};
use crate::token::cache::Verified;
use crate::token::claims::Claims;
use std::sync::Arc;

/// A verified token: proof that its signature, key, environment, issuer, audience, times and
/// revocation status were checked. Only [`Verifier::verify`](crate::Verifier::verify) creates one.
#[derive(Debug, Clone)]
pub struct Grant {
    pub(crate) verified: Arc<Verified>,
    pub(crate) audit: Option<Arc<dyn AuditSink>>,
    /// The request it was verified for, for the audit events of its decisions.
    pub(crate) request: Option<Arc<RequestContext>>,
    /// The clock its audit events are dated by: `None` when nothing is audited (so that a
    /// grant made on the request path shares no reference count across threads).
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl Grant {
    /// A grant of `scopes` to `subject` made without keys, tokens or clocks, so application
    /// authors can unit-test their handlers' policy in a plain `#[test]`.
    ///
    /// # Security
    /// This builds the proof of verification without verifying anything. It exists only with
    /// the `test-util` feature, and only in builds with debug assertions (test builds): a
    /// release build never has it, even if some crate in the graph turns the feature on.
    /// Enable the feature in `[dev-dependencies]` only.
    #[cfg(all(feature = "test-util", debug_assertions))]
    pub fn for_tests(subject: &str, scopes: crate::ScopeSet) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let claims = Claims {
            issuer: "test".into(),
            subject: subject.into(),
            audience: "test".into(),
            environment: crate::token::claims::Environment("test".into()),
            expires_at: now + time::Duration::hours(1),
            not_before: Some(now),
            issued_at: now,
            token_id: crate::TokenId(Box::from("test")),
            scopes,
            owner: None,
            purpose: None,
            family: None,
            other: serde_json::Map::new(),
        };
        Self {
            verified: Arc::new(Verified {
                claims,
                key_id: crate::KeyId::of_key_bytes(&[0; 32]),
                networks: None,
                max_uses: None,
                dpop_jkt: None,
                not_revoked_at: std::sync::atomic::AtomicU64::new(
                    crate::token::cache::NO_GENERATION,
                ),
            }),
            audit: None,
            request: None,
            clock: None,
        }
    }

    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.verified.claims
    }

    /// The consumer the token was issued to (`sub`).
    pub fn subject(&self) -> &str {
        self.verified.claims.subject()
    }

    /// The key that signed the token.
    pub fn key_id(&self) -> &KeyId {
        &self.verified.key_id
    }

    /// Authorizes `action` on `resource`, at the point of action, and records the decision
    /// when the verifier has an audit sink.
    ///
    /// # Errors
    /// [`Denied`], naming the scope that would have been needed; also when the decision could
    /// not be recorded ([`DenyReason::AuditUnavailable`]).
    pub fn authorize(&self, resource: &Resource, action: &Action) -> Result<(), Denied> {
        let allowed = self.verified.claims.scopes.allows(resource, action);
        let denied = |reason| Denied {
            scope: Scope::new(resource.clone(), action.clone()),
            reason,
        };
        if let Some(sink) = &self.audit {
            let (resource, action) = (resource.clone(), action.clone());
            let kind = if allowed {
                AuditKind::Authorized { resource, action }
            } else {
                AuditKind::Denied { resource, action }
            };
            let now = self
                .clock
                .as_ref()
                .map_or_else(time::OffsetDateTime::now_utc, |c| c.now());
            let event = AuditEvent::for_token(
                now,
                kind,
                &self.verified.claims,
                Some(&self.verified.key_id),
            )
            .in_request(self.request.clone());
            if sink.record(&event).is_err() {
                return Err(denied(DenyReason::AuditUnavailable));
            }
        }
        if allowed {
            Ok(())
        } else {
            Err(denied(DenyReason::MissingScope))
        }
    }
}

/// Why an action was denied.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The token's scopes do not cover the action.
    MissingScope,
    /// The decision could not be recorded in the audit trail, so it is refused.
    AuditUnavailable,
}

/// An action that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .reason {
    DenyReason::MissingScope => format!("token does not grant `{}`", .scope),
    DenyReason::AuditUnavailable => format!("`{}` refused: the audit sink failed", .scope),
})]
pub struct Denied {
    scope: Scope,
    reason: DenyReason,
}

impl Denied {
    /// Why, for matching (the same as [`reason`](Self::reason)).
    pub fn kind(&self) -> DenyReason {
        self.reason
    }

    /// Why.
    pub fn reason(&self) -> DenyReason {
        self.reason
    }

    /// The scope that would have allowed the action, for an RFC 6750 `scope=` answer.
    pub fn required_scope(&self) -> &Scope {
        &self.scope
    }
}
