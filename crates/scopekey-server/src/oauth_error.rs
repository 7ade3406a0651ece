//! RFC 6749 §5.2 error answers: `{"error": …, "error_description": …}` with the status the
//! RFC gives, `Cache-Control: no-store`, and `WWW-Authenticate: Basic` when a client that
//! authenticated with HTTP Basic is refused.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// An OAuth error code (RFC 6749 §5.2, RFC 8707 §2, RFC 7009 §2.2.1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    /// A parameter is missing, repeated, malformed, or the body is not a form.
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong secret, no authentication,
    /// disabled client).
    InvalidClient,
    /// The grant (a refresh token, an assertion) is invalid, expired or revoked.
    InvalidGrant,
    /// The client may not use this grant, or the token is not its own.
    UnauthorizedClient,
    /// The `grant_type` is not one this server supports.
    UnsupportedGrantType,
    /// The scope is malformed or beyond what the client may hold.
    InvalidScope,
    /// The `resource` is not an audience this server issues for (RFC 8707).
    InvalidTarget,
    /// Too many failed authentications from this source for this client: retry later.
    SlowDown,
    /// The server is busy or could not record the token: retry later.
    TemporarilyUnavailable,
    /// The `DPoP` proof of a token request was refused (RFC 9449 §5): malformed, not for this
    /// endpoint, stale or replayed.
    InvalidDpopProof,
}

impl OAuthErrorCode {
    /// The code as the `error` member spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::SlowDown => "slow_down",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error answer.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub(crate) code: OAuthErrorCode,
    description: String,
    status: Option<StatusCode>,
    basic_challenge: bool,
    retry_after: Option<Duration>,
}

impl OAuthError {
    /// `code`, described by `description` (which names nothing secret).
    pub(crate) fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        let mut description: String = description.into();
        // RFC 6749 §5.2: error_description is printable ASCII without `"` and `\`.
        description.retain(|c| {
            c.is_ascii() && (c == ' ' || c.is_ascii_graphic()) && c != '"' && c != '\\'
        });
        description.truncate(300);
        Self {
            code,
            description,
            status: None,
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// The description, as sent.
    pub(crate) fn description(&self) -> String {
        self.description.clone()
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    /// With another status than the code's (413 for an oversized body, 415 for a wrong
    /// content type).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// Answers with `WWW-Authenticate: Basic` (the client tried HTTP Basic).
    pub(crate) fn challenging(mut self, basic: bool) -> Self {
        self.basic_challenge = basic;
        self
    }

    pub(crate) fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        })
        .to_string();
        let mut response = (
            self.status.unwrap_or(self.code.status()),
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scopekey\", charset=\"UTF-8\""),
            );
        }
        if let Some(after) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}
