//! [`Require<R>`]: a requirement whose scope is fixed at compile time ([`RequiredScope`],
//! declared with [`required_scope!`](crate::required_scope)), parsed once per type, and the
//! typed [`RequireRejection`] it refuses with.
//!
//! Accept: a verified grant that allows `R::SCOPE` reaches the handler as `Require<R>`.
//! Reject: no credentials (401, bare challenge), a bad token (401 `invalid_token`), a grant
//! without the scope (403 `insufficient_scope` with `scope="…"`), each with a fixed RFC 9457
//! problem-details body (or the state's renderer's).

use crate::{AuthState, Authorized, Realm, Rejection, RejectionRenderer};
use axum_core::extract::{FromRef, FromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use scopekey::{Scope, ScopeError};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// A scope fixed at compile time, for [`Require`]. Declare with
/// [`required_scope!`](crate::required_scope).
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope, e.g. `"billing/invoices:read"`.
    const SCOPE: &'static str;

    /// [`SCOPE`](Self::SCOPE), parsed.
    ///
    /// [`required_scope!`](crate::required_scope) implements this with a `static` parsed on
    /// first use, so requests borrow one parsed scope and never parse it again. This default,
    /// for a hand-written impl, parses `SCOPE` on every call.
    ///
    /// # Errors
    /// When `SCOPE` is not a valid scope (impossible through the macro, which refuses such a
    /// literal at compile time).
    fn scope() -> Result<Cow<'static, Scope>, ScopeError> {
        Self::SCOPE.parse().map(Cow::Owned)
    }
}

/// Declares a unit type implementing [`RequiredScope`]. The scope literal is checked when the
/// program compiles, and parsed once, on first use.
///
/// ```
/// scopekey_axum::required_scope!(
///     /// Revoking tokens.
///     pub struct TokensRevoke = "tokens:revoke";
/// );
/// ```
///
/// ```compile_fail
/// scopekey_axum::required_scope!(pub struct Bad = "billing/:read";);
/// ```
#[macro_export]
macro_rules! required_scope {
    ($(#[$meta:meta])* $vis:vis struct $name:ident = $scope:literal;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        $vis struct $name;

        const _: () = ::core::assert!(
            $crate::__private::is_valid_scope_literal($scope),
            ::core::concat!("invalid scope literal: ", $scope)
        );

        impl $crate::RequiredScope for $name {
            const SCOPE: &'static str = $scope;

            fn scope() -> ::core::result::Result<
                ::std::borrow::Cow<'static, $crate::__private::Scope>,
                $crate::__private::ScopeError,
            > {
                static PARSED: $crate::__private::ParsedScope =
                    $crate::__private::ParsedScope::new($scope);
                PARSED.get()
            }
        }
    };
}

/// A scope literal parsed on first use and kept for the life of the process: the `static`
/// behind each [`required_scope!`](crate::required_scope) type.
#[doc(hidden)]
#[derive(Debug)]
pub struct ParsedScope {
    literal: &'static str,
    parsed: OnceLock<Result<Scope, ScopeError>>,
}

impl ParsedScope {
    /// Holds `literal` until its first use.
    pub const fn new(literal: &'static str) -> Self {
        Self {
            literal,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed scope, parsing the literal on the first call only.
    ///
    /// # Errors
    /// When the literal is not a valid scope (the macro refuses such a literal at compile
    /// time, so this is unreachable through it).
    pub fn get(&'static self) -> Result<Cow<'static, Scope>, ScopeError> {
        match self.parsed.get_or_init(|| self.literal.parse()) {
            Ok(scope) => Ok(Cow::Borrowed(scope)),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A verified grant that allows the compile-time scope of `R`; otherwise the request is
/// refused with a [`RequireRejection`]: 401 (no or bad token) or 403 `insufficient_scope`.
#[derive(Debug, Clone)]
pub struct Require<R: RequiredScope> {
    authorized: Authorized,
    _scope: PhantomData<R>,
}

impl<R: RequiredScope> Require<R> {
    /// The verified grant.
    pub fn authorized(&self) -> &Authorized {
        &self.authorized
    }

    /// Unwraps the grant.
    pub fn into_inner(self) -> Authorized {
        self.authorized
    }
}

impl<S, R> FromRequestParts<S> for Require<R>
where
    S: Send + Sync,
    AuthState: FromRef<S>,
    R: RequiredScope,
{
    type Rejection = RequireRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authorized = <Authorized as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map_err(|r| RequireRejection {
                rejection: r.rejection,
                realm: r.realm,
                renderer: r.renderer,
            })?;
        let refuse = |rejection| RequireRejection {
            rejection,
            realm: authorized.realm.clone(),
            renderer: authorized.renderer.clone(),
        };
        // `required_scope!` checked the literal at compile time with the same grammar, so this
        // fails only for a hand-written `RequiredScope` with a bad `SCOPE` (or a grammar drift):
        // refused as unavailable (503), never allowed.
        let scope = R::scope().map_err(|_| {
            refuse(Rejection::Unavailable(
                scopekey::VerifyErrorKind::InvalidClaims,
            ))
        })?;
        authorized
            .grant
            .authorize(scope.resource(), scope.action())
            .map_err(|d| refuse(Rejection::from_denied(&d)))?;
        Ok(Self {
            authorized,
            _scope: PhantomData,
        })
    }
}

/// Why [`Require<R>`] refused a request, answered per RFC 6750 with a fixed RFC 9457
/// problem-details body (`application/problem+json`; the state's renderer's when set):
///
/// | case | [`status`](Self::status) | [`body`](Self::body) `error` member |
/// |---|---|---|
/// | no bearer credentials | 401, bare `WWW-Authenticate` challenge | `unauthorized` |
/// | malformed `Authorization` header | 400 | `invalid_request` |
/// | the token does not verify | 401 | `invalid_token` |
/// | the grant lacks `R::SCOPE` | 403, `scope="…"` in the challenge and the body | `insufficient_scope` |
/// | revocation state stale, audit down | 503 | `temporarily_unavailable` |
///
/// Every answer carries `Cache-Control: no-store`; none echoes the token.
#[derive(Debug, Clone)]
pub struct RequireRejection {
    rejection: Rejection,
    realm: Realm,
    renderer: Option<RejectionRenderer>,
}

impl RequireRejection {
    /// What was wrong, for matching.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.rejection.status()
    }

    /// The default body of the answer, problem details ([`Rejection::body`]):
    /// `{"type":"about:blank","title":"…","status":…,"detail":"…","error":"…"}`, with
    /// `"scope"` on 403. Fixed for each case; it never contains token bytes.
    pub fn body(&self) -> String {
        self.rejection.body()
    }
}

impl IntoResponse for RequireRejection {
    fn into_response(self) -> Response {
        self.rejection
            .into_response_with(&self.realm, self.renderer.as_ref())
    }
}

impl fmt::Display for RequireRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.rejection, f)
    }
}

impl std::error::Error for RequireRejection {}
