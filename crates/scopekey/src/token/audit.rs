//! The audit event and the sink trait the token layer records decisions through.
//!
//! The issuer, the verifier and grants call [`AuditSink`]; the sinks themselves (memory, JSON
//! Lines, tracing, summaries) are in the lifecycle layer. The public paths are in
//! [`crate::audit`].

use crate::codec::rfc3339;
use crate::key::KeyId;
use crate::scope::{Action, Resource, ScopeSet};
use crate::token::claims::{Claims, Environment, FamilyId, TokenId, TokenType};
use crate::token::error::VerifyErrorKind;
use serde::Serialize;
use std::fmt;
use time::OffsetDateTime;

/// What happened.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditKind {
    /// A token was minted.
    Issued {
        /// `access` or `refresh`.
        token_type: &'static str,
        /// The scopes it grants.
        scope: ScopeSet,
        /// When it expires (RFC 3339).
        exp: String,
        /// Whether it grants more than `read` (write, delete, admin, a custom action or `*`):
        /// an escalation, allowed by a consumer's ceiling or an explicit opt-in.
        escalated: bool,
    },
    /// A refresh token was exchanged; this event names the new refresh token.
    Refreshed {
        /// The refresh token that was presented and is now used up.
        previous_jti: TokenId,
    },
    /// A token verified.
    Verified,
    /// A token was refused.
    Refused {
        /// The [`VerifyErrorKind`], in snake case (`expired`, `bad_signature`, …).
        reason: &'static str,
    },
    /// An action on a resource was allowed.
    Authorized {
        /// The resource.
        resource: Resource,
        /// The action.
        action: Action,
    },
    /// An action on a resource was denied.
    Denied {
        /// The resource.
        resource: Resource,
        /// The action.
        action: Action,
    },
    /// Something was revoked.
    Revoked {
        /// `token`, `family`, `subject`, `issued_before` or `key`.
        target: &'static str,
        /// What exactly, in words.
        covers: String,
        /// Who revoked it.
        by: String,
        /// Why.
        reason: String,
        /// When the revocation was made (RFC 3339).
        revoked_at: String,
    },
    /// An operator acted through an admin interface (the token service's admin API or console).
    /// The event's `jti` and `sub` are the admin token's: who did it.
    AdminAction {
        /// What was done, as `area.verb` (`consumers.create`, `tokens.revoke`, `keys.retire`, …).
        action: &'static str,
        /// What it was done to (a consumer name, a token id, a key id, a query), at most 200
        /// characters; never a secret.
        target: String,
    },
    /// A used refresh token was presented again; its whole family was revoked.
    RefreshReuseDetected {
        /// The refresh token presented a second time.
        presented_jti: TokenId,
    },
    /// One token's `verified`, `authorized` and `denied` decisions over one interval, folded
    /// into one event by a [`SummarizingSink`](crate::audit::SummarizingSink). The counts are exact.
    TokenUsed {
        /// The first decision's time (RFC 3339).
        first_use: String,
        /// The last decision's time (RFC 3339).
        last_use: String,
        /// How many times the token verified.
        verified: u64,
        /// How many actions it was allowed, in all.
        authorized: u64,
        /// How many actions it was denied, in all.
        denied: u64,
        /// Each resource and action it asked for, with its own counts (at most
        /// [`SummaryConfig::max_touched`](crate::audit::SummaryConfig::max_touched) of them; the rest are only in the totals).
        touched: Vec<Touched>,
        /// Up to [`SummaryConfig::max_samples`](crate::audit::SummaryConfig::max_samples) distinct client addresses it was used from
        /// (from the events' [`RequestContext`]; empty when no HTTP layer recorded one).
        clients: Vec<std::net::IpAddr>,
    },
    /// The decisions of tokens beyond [`SummaryConfig::max_tokens`](crate::audit::SummaryConfig::max_tokens) in one interval, counted
    /// together (no `jti`): the counts stay exact when more distinct tokens arrive than a
    /// summary window tracks one by one.
    OtherTokensUsed {
        /// The first decision's time (RFC 3339).
        first_use: String,
        /// The last decision's time (RFC 3339).
        last_use: String,
        /// Verifications, in all.
        verified: u64,
        /// Allowed actions, in all.
        authorized: u64,
        /// Denied actions, in all.
        denied: u64,
    },
    /// Every refusal for one reason over one interval, folded into one event by a
    /// [`SummarizingSink`](crate::audit::SummarizingSink). The count is exact; the samples are the first distinct ones seen.
    RefusedSummary {
        /// The [`VerifyErrorKind`], in snake case.
        reason: &'static str,
        /// How many tokens were refused for this reason.
        count: u64,
        /// The first refusal's time (RFC 3339).
        first: String,
        /// The last refusal's time (RFC 3339).
        last: String,
        /// Up to [`SummaryConfig::max_samples`](crate::audit::SummaryConfig::max_samples) distinct subjects of refused tokens whose
        /// signature had verified (a forged token names no one worth listing).
        sample_subjects: Vec<String>,
        /// Up to [`SummaryConfig::max_samples`](crate::audit::SummaryConfig::max_samples) distinct key ids of those tokens.
        sample_key_ids: Vec<KeyId>,
        /// Up to [`SummaryConfig::max_samples`](crate::audit::SummaryConfig::max_samples) distinct client addresses the refused tokens
        /// came from.
        sample_clients: Vec<std::net::IpAddr>,
    },
}

impl AuditKind {
    /// The event's name, as in its JSON `event` member (`verified`, `token_used`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Issued { .. } => "issued",
            Self::Refreshed { .. } => "refreshed",
            Self::Verified => "verified",
            Self::Refused { .. } => "refused",
            Self::Authorized { .. } => "authorized",
            Self::Denied { .. } => "denied",
            Self::Revoked { .. } => "revoked",
            Self::RefreshReuseDetected { .. } => "refresh_reuse_detected",
            Self::AdminAction { .. } => "admin_action",
            Self::TokenUsed { .. } => "token_used",
            Self::OtherTokensUsed { .. } => "other_tokens_used",
            Self::RefusedSummary { .. } => "refused_summary",
        }
    }
}

/// One resource and action a token asked for within a [`AuditKind::TokenUsed`] summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Touched {
    /// The resource.
    pub resource: Resource,
    /// The action.
    pub action: Action,
    /// How many times it was allowed.
    pub authorized: u64,
    /// How many times it was denied.
    pub denied: u64,
}

/// The request a decision was made for, as the HTTP layer saw it: recorded in the `verified`,
/// `refused`, `authorized` and `denied` events of that request (JSON member `request`).
///
/// Every part is bounded and checked when set, so a hostile request cannot put an unbounded
/// or unprintable string in the trail: the method is at most 16 bytes and the path at most
/// [`RequestContext::MAX_PATH_LEN`] (longer ones are cut on a character boundary and end in
/// `…`); a request id that is not 1 to 128 visible ASCII characters is left out. The query
/// string is never recorded (it may carry secrets).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RequestContext {
    /// The HTTP method.
    pub method: String,
    /// The route's path template when the framework knows it (`/projects/{id}`), otherwise the
    /// request path, without the query.
    pub path: String,
    /// The client's address, when the server knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<std::net::IpAddr>,
    /// The request id (an `x-request-id` header, or one the layer made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl RequestContext {
    /// The longest path recorded, in bytes.
    pub const MAX_PATH_LEN: usize = 256;
    /// The longest request id recorded, in bytes.
    pub const MAX_REQUEST_ID_LEN: usize = 128;

    /// A request with `method` to `path` (bounded as the type says).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: bounded(method, 16),
            path: bounded(path, Self::MAX_PATH_LEN),
            client: None,
            request_id: None,
        }
    }

    /// Records the route's path template (`/projects/{id}`) instead of the request path.
    pub fn path_template(mut self, template: &str) -> Self {
        self.path = bounded(template, Self::MAX_PATH_LEN);
        self
    }

    /// The client's address.
    pub fn client(mut self, client: std::net::IpAddr) -> Self {
        self.client = Some(client);
        self
    }

    /// The request id, kept only if it is 1 to [`MAX_REQUEST_ID_LEN`](Self::MAX_REQUEST_ID_LEN)
    /// visible ASCII characters.
    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = is_request_id(id).then(|| id.to_owned());
        self
    }
}

/// Whether `id` can be recorded as a request id: 1 to 128 visible ASCII characters.
fn is_request_id(id: &str) -> bool {
    (1..=RequestContext::MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `text` with control characters replaced by `?`, cut to at most `max` bytes (ending in `…`
/// when cut).
fn bounded(text: &str, max: usize) -> String {
    let clean = |t: &str| -> String {
        t.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    if text.len() <= max {
        return clean(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = clean(&text[..end]);
    out.push('…');
    out
}

/// One audit event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// When (RFC 3339).
    pub time: String,
    /// What happened, with its own fields.
    #[serde(flatten)]
    pub kind: AuditKind,
    /// The token's id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<TokenId>,
    /// The consumer, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The signing key, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<KeyId>,
    /// The environment, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Environment>,
    /// The refresh family, when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fam: Option<FamilyId>,
    /// The request the decision was made for, when an HTTP layer made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<std::sync::Arc<RequestContext>>,
}

impl AuditEvent {
    /// An event about a token whose claims are known.
    pub fn for_token(
        at: OffsetDateTime,
        kind: AuditKind,
        claims: &Claims,
        key_id: Option<&KeyId>,
    ) -> Self {
        Self {
            time: rfc3339::format(at),
            kind,
            jti: Some(claims.token_id().clone()),
            sub: Some(claims.subject().to_owned()),
            kid: key_id.cloned(),
            env: Some(claims.environment().clone()),
            fam: claims.family().cloned(),
            request: None,
        }
    }

    /// This event, made for `request`.
    pub fn in_request(mut self, request: Option<std::sync::Arc<RequestContext>>) -> Self {
        self.request = request;
        self
    }

    /// An event with no token details (a token refused before its claims were known).
    pub fn bare(at: OffsetDateTime, kind: AuditKind) -> Self {
        Self::bare_at(rfc3339::format(at), kind)
    }

    /// An event with no token details at a time already formatted.
    pub(crate) fn bare_at(time: String, kind: AuditKind) -> Self {
        Self {
            time,
            kind,
            jti: None,
            sub: None,
            kid: None,
            env: None,
            fam: None,
            request: None,
        }
    }

    pub(crate) fn issued(
        at: OffsetDateTime,
        token_type: TokenType,
        claims: &Claims,
        key_id: &KeyId,
    ) -> Self {
        Self::for_token(
            at,
            AuditKind::Issued {
                token_type: token_type.as_str(),
                scope: claims.scopes().clone(),
                exp: rfc3339::format(claims.expires_at()),
                escalated: !claims.scopes().is_read_only(),
            },
            claims,
            Some(key_id),
        )
    }

    /// An [`AuditKind::AdminAction`] by the holder of `admin` (its `jti`, `sub`, `env`; the
    /// target cut to 200 characters, control characters replaced).
    pub fn admin_action(
        at: OffsetDateTime,
        action: &'static str,
        target: &str,
        admin: &Claims,
    ) -> Self {
        Self::for_token(
            at,
            AuditKind::AdminAction {
                action,
                target: bounded(target, 200),
            },
            admin,
            None,
        )
    }

    pub(crate) fn refused(
        at: OffsetDateTime,
        reason: VerifyErrorKind,
        claims: Option<&Claims>,
    ) -> Self {
        let kind = AuditKind::Refused {
            reason: reason.as_str(),
        };
        match claims {
            Some(c) => Self::for_token(at, kind, c, None),
            None => Self::bare(at, kind),
        }
    }

    /// The event as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Every field is a string, a number or a plain enum: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why an audit event was not recorded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditErrorKind {
    /// The sink is down or failing (a write error, a closed store): callers fail closed.
    Unavailable,
    /// The sink is up but cannot take more right now (its backlog is full). A
    /// [`SummarizingSink`](crate::audit::SummarizingSink) keeps its summaries and tries again; other callers fail closed.
    Busy,
}

/// An audit event that could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("audit sink {sink}: {message}")]
pub struct AuditError {
    pub(crate) kind: AuditErrorKind,
    pub(crate) sink: String,
    pub(crate) message: String,
    #[source]
    pub(crate) source: Option<std::io::Error>,
}

impl AuditError {
    /// An error for a custom sink that is down or failing ([`AuditErrorKind::Unavailable`]).
    pub fn new(sink: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: AuditErrorKind::Unavailable,
            sink: sink.into(),
            message: message.into(),
            source: None,
        }
    }

    /// An error for a sink that is up but full for now ([`AuditErrorKind::Busy`]).
    pub fn busy(sink: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: AuditErrorKind::Busy,
            ..Self::new(sink, message)
        }
    }

    /// Why the event was not recorded.
    pub fn kind(&self) -> AuditErrorKind {
        self.kind
    }
}

/// Where audit events go.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Records one event.
    ///
    /// # Errors
    /// [`AuditError`] when the event could not be recorded; callers fail closed.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
}
