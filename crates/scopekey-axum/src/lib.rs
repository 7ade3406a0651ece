//! # scopekey-axum
//!
//! axum extractors for [scopekey] tokens, built on `axum-core` only.
//!
//! - [`Authorized`]: the verified grant in a handler signature. It takes the
//!   [`Grant`] that [`AuthLayer`] put in the request's extensions, or verifies
//!   the token itself with the [`AuthState`] found in the router state (via `FromRef`).
//!   `Option<Authorized>` is the optional variant: `None` without credentials, but a request
//!   with a bad token is still refused. Under a layer, a route opts in to anonymous requests
//!   with [`AuthLayer::allow_anonymous`] (e.g. through `Router::route_layer`).
//! - [`Require<R>`]: a requirement whose scope is fixed at compile time, declared with
//!   [`required_scope!`]; an invalid scope literal does not compile, and the scope is parsed
//!   once per type. It refuses with a [`RequireRejection`] (401, or 403 `insufficient_scope`).
//! - [`Authorized::authorize`]: the point-of-action check, e.g. `projects/{id}` for `read` with
//!   `id` from the path. An id that would escape its segment is refused (400); a missing scope
//!   answers 403 `insufficient_scope` with `scope="…"` (RFC 6750).
//! - [`RequireTemplateLayer`]: a per-route requirement templated from path parameters
//!   (`projects/{id}:write`) for `Router::route_layer`; `RequireScopeLayer::requiring` and
//!   [`Authorized::require`] take composed [`Requirement`]s (all of, any of).
//! - Every refusal is an RFC 9457 `application/problem+json` body beside the RFC 6750
//!   challenge, or the format of [`AuthState::render_rejections_with`].
//!
//! ```
//! use axum::{Router, extract::Path, routing::get};
//! use scopekey::Action;
//! use scopekey_axum::{AuthState, Authorized, Forbidden, Require, required_scope};
//!
//! required_scope!(
//!     /// Reading invoices.
//!     pub struct InvoicesRead = "billing/invoices:read";
//! );
//!
//! async fn project(auth: Authorized, Path(id): Path<String>) -> Result<String, Forbidden> {
//!     auth.authorize(["projects", id.as_str()], Action::read())?;
//!     Ok(format!("project {id}"))
//! }
//!
//! async fn invoices(_: Require<InvoicesRead>) -> &'static str {
//!     "invoices"
//! }
//!
//! fn app(state: AuthState) -> Router {
//!     Router::new()
//!         .route("/projects/{id}", get(project))
//!         .route("/billing/invoices", get(invoices))
//!         .with_state(state)
//! }
//! # let _ = app;
//! ```
//!
//! ## Testing handler policy
//!
//! With the `test-util` feature (in `[dev-dependencies]` only), [`Authorized::for_tests`] builds
//! a grant from a scope string, without keys, servers or clocks:
//!
//! ```
//! # #[cfg(feature = "test-util")] {
//! use scopekey::Action;
//! use scopekey_axum::Authorized;
//!
//! let auth = Authorized::for_tests("report-bot", "projects:read").unwrap();
//! assert!(auth.authorize(["projects", "42"], Action::read()).is_ok());
//! assert!(auth.authorize(["projects", "42"], Action::delete()).is_err());
//! # }
//! ```

use axum_core::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use scopekey::{Action, Grant, Requirement, Resource, ScopeError};
use std::fmt;

mod require;
mod template;

pub use require::{Require, RequireRejection, RequiredScope};
pub use template::{RequireTemplate, RequireTemplateLayer};

pub use scopekey_tower::{
    Anonymous, AuthLayer, AuthState, DescribeRequest, KeyRefresh, Realm, RefreshingAuthLayer,
    Rejection, RejectionBody, RejectionRenderer, RenderRejection, RequireScopeLayer, TokenSource,
    describe_request,
};

/// A request refused before the handler ran: 400, 401 or 503 per RFC 6750.
#[derive(Debug, Clone)]
pub struct AuthRejection {
    rejection: Rejection,
    realm: Realm,
    renderer: Option<RejectionRenderer>,
}

impl AuthRejection {
    /// What was wrong.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> http::StatusCode {
        self.rejection.status()
    }

    /// The default body of the answer, RFC 9457 problem details ([`Rejection::body`]); fixed
    /// for each case, it never contains token bytes. The response itself uses the state's
    /// renderer when one is set.
    pub fn body(&self) -> String {
        self.rejection.body()
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.rejection
            .into_response_with(&self.realm, self.renderer.as_ref())
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.rejection, f)
    }
}

impl std::error::Error for AuthRejection {}

/// A verified grant, extracted in a handler signature.
///
/// | request | `Authorized` | `Option<Authorized>` |
/// |---|---|---|
/// | a valid token | the grant | `Some` |
/// | no credentials (or let through by [`AuthLayer::allow_anonymous`]) | 401 | `None` |
/// | a bad, malformed or doubled token | 400 or 401 | the same refusal |
#[derive(Debug, Clone)]
pub struct Authorized {
    grant: Grant,
    realm: Realm,
    renderer: Option<RejectionRenderer>,
}

impl Authorized {
    /// Wraps a grant (a grant is already proof of verification).
    pub fn new(grant: Grant, realm: Realm) -> Self {
        Self {
            grant,
            realm,
            renderer: None,
        }
    }

    /// Answers refusals of [`authorize`](Self::authorize) with `renderer` instead of problem
    /// details (the extractor sets the auth layer's or the state's).
    pub fn with_renderer(mut self, renderer: RejectionRenderer) -> Self {
        self.renderer = Some(renderer);
        self
    }

    /// The verified grant.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// The consumer the token was issued to.
    pub fn subject(&self) -> &str {
        self.grant.subject()
    }

    /// Authorizes `action` on the resource made of `segments`, typically with ids from the
    /// request path: `auth.authorize(["projects", &id], Action::read())?`.
    ///
    /// # Errors
    /// [`Forbidden`]: 400 when a segment is not a valid concrete segment (an id with `/`, `:`,
    /// `*`, whitespace, control or non-ASCII characters, `.` or `..`); 403 `insufficient_scope`
    /// when the grant does not cover the action; 503 when the decision could not be audited.
    pub fn authorize<I, S>(&self, segments: I, action: Action) -> Result<(), Forbidden>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let resource = Resource::from_segments(segments).map_err(|e| Forbidden {
            kind: ForbiddenKind::InvalidResource(e),
            realm: self.realm.clone(),
            renderer: self.renderer.clone(),
        })?;
        self.authorize_resource(&resource, &action)
    }

    /// Authorizes `action` on an already-built `resource`.
    ///
    /// # Errors
    /// [`Forbidden`] as in [`Authorized::authorize`].
    pub fn authorize_resource(
        &self,
        resource: &Resource,
        action: &Action,
    ) -> Result<(), Forbidden> {
        self.grant
            .authorize(resource, action)
            .map_err(|d| Forbidden {
                kind: ForbiddenKind::Refused(Rejection::from_denied(&d)),
                realm: self.realm.clone(),
                renderer: self.renderer.clone(),
            })
    }

    /// Authorizes a composed [`Requirement`] (all of, any of several scopes; see
    /// [`Requirement::authorize`] for what is recorded), e.g. one resolved from a
    /// [`RequirementTemplate`](scopekey::RequirementTemplate) in the handler.
    ///
    /// # Errors
    /// [`Forbidden`]: 403 `insufficient_scope`, or 503 when the decision could not be recorded.
    pub fn require(&self, requirement: &Requirement) -> Result<(), Forbidden> {
        requirement.authorize(&self.grant).map_err(|d| Forbidden {
            kind: ForbiddenKind::Refused(Rejection::from_denied(&d)),
            realm: self.realm.clone(),
            renderer: self.renderer.clone(),
        })
    }

    /// A grant of `scopes` to `subject` without keys, servers or clocks, for unit tests of
    /// handler policy.
    ///
    /// # Errors
    /// When `scopes` is not a valid scope string.
    ///
    /// # Security
    /// Exists only with the `test-util` feature in builds with debug assertions (test builds),
    /// so no release build has it; never enable the feature outside `[dev-dependencies]`.
    #[cfg(all(feature = "test-util", debug_assertions))]
    pub fn for_tests(subject: &str, scopes: &str) -> Result<Self, ScopeError> {
        let grant = Grant::for_tests(subject, scopes.parse()?);
        Ok(Self::new(grant, Realm::test()))
    }
}

impl<S> FromRequestParts<S> for Authorized
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // What an auth layer decided: a grant, or an anonymous request it let through.
        let decided = parts.extensions.get::<Grant>().cloned();
        if decided.is_some() || parts.extensions.get::<Anonymous>().is_some() {
            let realm = match parts.extensions.get::<Realm>() {
                Some(r) => r.clone(),
                None => AuthState::from_ref(state).realm().clone(),
            };
            let renderer = parts.extensions.get::<RejectionRenderer>().cloned();
            return match decided {
                Some(grant) => Ok(Self {
                    grant,
                    realm,
                    renderer,
                }),
                None => Err(AuthRejection {
                    rejection: Rejection::MissingCredentials,
                    realm,
                    renderer,
                }),
            };
        }
        let auth = AuthState::from_ref(state);
        let renderer = auth.renderer().cloned();
        match auth.authenticate_request(parts) {
            Ok(grant) => Ok(Self {
                grant,
                realm: auth.realm().clone(),
                renderer,
            }),
            Err(rejection) => Err(AuthRejection {
                rejection,
                realm: auth.realm().clone(),
                renderer,
            }),
        }
    }
}

impl<S> OptionalFromRequestParts<S> for Authorized
where
    S: Send + Sync,
    AuthState: FromRef<S>,
{
    type Rejection = AuthRejection;

    /// `None` when the request carries no credentials in any configured source (or an
    /// [`AuthLayer::allow_anonymous`] let it through as [`Anonymous`]); a request with
    /// credentials that do not verify is still refused, never downgraded to anonymous.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <Self as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(a) => Ok(Some(a)),
            Err(r) if r.rejection == Rejection::MissingCredentials => Ok(None),
            Err(r) => Err(r),
        }
    }
}

/// An action refused at the point of action.
#[derive(Debug, Clone)]
pub struct Forbidden {
    kind: ForbiddenKind,
    realm: Realm,
    renderer: Option<RejectionRenderer>,
}

#[derive(Debug, Clone)]
enum ForbiddenKind {
    InvalidResource(ScopeError),
    Refused(Rejection),
}

impl Forbidden {
    /// The RFC 6750 rejection, when the action itself was refused (not a malformed id).
    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.kind {
            ForbiddenKind::Refused(r) => Some(r),
            ForbiddenKind::InvalidResource(_) => None,
        }
    }

    /// The parse error, when an id from the request was not a valid segment.
    pub fn invalid_resource(&self) -> Option<&ScopeError> {
        match &self.kind {
            ForbiddenKind::InvalidResource(e) => Some(e),
            ForbiddenKind::Refused(_) => None,
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ForbiddenKind::InvalidResource(e) => write!(f, "invalid resource id: {e}"),
            ForbiddenKind::Refused(r) => fmt::Display::fmt(r, f),
        }
    }
}

impl std::error::Error for Forbidden {}

impl IntoResponse for Forbidden {
    /// Refused actions per RFC 6750; a malformed id is [`Rejection::InvalidResource`] (400, no
    /// challenge; the id is not echoed: it came from the request and may be anything).
    fn into_response(self) -> Response {
        let rejection = match self.kind {
            ForbiddenKind::Refused(r) => r,
            ForbiddenKind::InvalidResource(_) => Rejection::InvalidResource,
        };
        rejection.into_response_with(&self.realm, self.renderer.as_ref())
    }
}

// The guide's code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/axum.md")]
mod docs_axum_md {}

#[doc(hidden)]
pub mod __private {
    pub use crate::require::ParsedScope;
    pub use scopekey::is_valid_scope_literal;
    pub use scopekey::{Scope, ScopeError};
}
