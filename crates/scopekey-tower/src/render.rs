//! [`RenderRejection`]: a service's own error bodies for refusals, set with
//! [`AuthState::render_rejections_with`](crate::AuthState::render_rejections_with).

use crate::rejection::Rejection;
use http::HeaderValue;
use std::fmt;
use std::sync::Arc;

/// Renders the body of a refusal. The layer keeps the status, the RFC 6750 `WWW-Authenticate`
/// challenge and `Cache-Control: no-store`; a renderer chooses only the body and its
/// `Content-Type`, from the typed reason: [`Rejection::status`], [`Rejection::error_code`],
/// and the variant's [`VerifyErrorKind`](scopekey::VerifyErrorKind) or denied
/// [`Scope`](scopekey::Scope).
///
/// Implemented for every `Fn(&Rejection) -> RejectionBody + Send + Sync + 'static`:
///
/// ```
/// use scopekey_tower::{Rejection, RejectionBody};
/// # fn state(state: scopekey_tower::AuthState) -> scopekey_tower::AuthState {
/// // Keep the OAuth-style JSON body of earlier releases.
/// let state = state.render_rejections_with(|r: &Rejection| RejectionBody::json(r.json_body()));
/// # state }
/// ```
///
/// # Security
/// The rejection holds nothing of the token; a renderer should not add anything taken from the
/// request either.
pub trait RenderRejection: Send + Sync + 'static {
    /// The body answering `rejection`.
    fn render(&self, rejection: &Rejection) -> RejectionBody;
}

impl<F> RenderRejection for F
where
    F: Fn(&Rejection) -> RejectionBody + Send + Sync + 'static,
{
    fn render(&self, rejection: &Rejection) -> RejectionBody {
        self(rejection)
    }
}

/// A rendered refusal body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionBody {
    content_type: HeaderValue,
    body: String,
}

impl RejectionBody {
    /// `body`, sent as `content_type`.
    pub fn new(content_type: HeaderValue, body: impl Into<String>) -> Self {
        Self {
            content_type,
            body: body.into(),
        }
    }

    /// `body`, sent as `application/json`.
    pub fn json(body: impl Into<String>) -> Self {
        Self::new(HeaderValue::from_static("application/json"), body)
    }

    /// The default: [`Rejection::body`] as `application/problem+json`.
    pub fn problem(rejection: &Rejection) -> Self {
        Self::new(
            HeaderValue::from_static("application/problem+json"),
            rejection.body(),
        )
    }

    /// The `Content-Type`.
    pub fn content_type(&self) -> &HeaderValue {
        &self.content_type
    }

    /// The body.
    pub fn body(&self) -> &str {
        &self.body
    }

    pub(crate) fn into_parts(self) -> (HeaderValue, String) {
        (self.content_type, self.body)
    }
}

/// A shared [`RenderRejection`]. [`AuthLayer`](crate::AuthLayer) puts the one of its state in
/// the request's extensions, so that [`RequireScopeLayer`](crate::RequireScopeLayer) and
/// framework extractors answer in the same format.
#[derive(Clone)]
pub struct RejectionRenderer(Arc<dyn RenderRejection>);

impl RejectionRenderer {
    /// Shares `render`.
    pub fn new(render: impl RenderRejection) -> Self {
        Self(Arc::new(render))
    }

    /// The body answering `rejection`.
    pub fn render(&self, rejection: &Rejection) -> RejectionBody {
        self.0.render(rejection)
    }
}

impl fmt::Debug for RejectionRenderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectionRenderer").finish_non_exhaustive()
    }
}
