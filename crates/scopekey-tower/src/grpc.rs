//! gRPC: the same verification for a gRPC service (tonic, or any tower-based gRPC server),
//! with refusals answered as gRPC statuses instead of RFC 6750 HTTP responses.
//!
//! - [`GrpcAuthLayer`] reads the token from the `authorization` metadata entry
//!   (`authorization: Bearer <token>`, the same HTTP/2 header), verifies it exactly as
//!   [`AuthLayer`](crate::AuthLayer) does (signature, claims, revocation, audit, cache, token
//!   sources, client address), and puts the [`Grant`] into the request's extensions, where a
//!   tonic handler finds it with `request.extensions().get::<Grant>()`.
//! - A refusal is a trailers-only gRPC response: HTTP 200, `content-type: application/grpc`,
//!   `grpc-status` and a fixed, percent-encoded `grpc-message`, the RFC 6750 challenge in the
//!   `www-authenticate` metadata entry when there is one, and no body (see [`GrpcStatus`]).
//! - Per-method decisions are the handler's: `grant.authorize(resource, action)`, and a
//!   [`Denied`](scopekey::Denied) answered with [`status_of`]`(&Rejection::from_denied(&d))`
//!   (`PERMISSION_DENIED`). [`GrpcRequireScopeLayer`] requires one fixed scope for a whole
//!   service.
//!
//! No gRPC library is a dependency: the response body only needs [`Default`] (tonic's
//! `tonic::body::Body` is), and [`GrpcStatus`] carries the numeric code a handler turns into
//! its library's status type.
//!
//! ```
//! use http::{Request, Response};
//! use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
//! use scopekey_tower::grpc::GrpcAuthLayer;
//! use scopekey_tower::{AuthState, Realm};
//! use std::sync::Arc;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//! let verifier = Verifier::new(keys, VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?))?;
//! let state = AuthState::new(Arc::new(verifier), Realm::new("api")?);
//!
//! let service = ServiceBuilder::new()
//!     .layer(GrpcAuthLayer::new(state))
//!     .service(service_fn(|request: Request<()>| async move {
//!         let subject = request.extensions().get::<scopekey::Grant>().map(|g| g.subject().to_owned());
//!         Ok::<_, std::convert::Infallible>(Response::new(subject))
//!     }));
//!
//! // Accepted: the handler sees the grant.
//! let token = issuer.issue(&TokenRequest::new("billing-ui", "https://api.example", "billing:read".parse()?))?;
//! let request = Request::builder()
//!     .header("authorization", format!("Bearer {}", token.token().as_str()))
//!     .body(())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.body().as_deref(), Some("billing-ui"));
//!
//! // Refused: no credentials, UNAUTHENTICATED (16), no body.
//! let response = service.oneshot(Request::new(())).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "16");
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! assert_eq!(response.body(), &None);
//! # Ok(())
//! # }
//! ```

use crate::auth::{AuthState, admit};
use crate::future::ResponseFuture;
use crate::rejection::{Realm, Rejection};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response};
use scopekey::{Grant, Scope};
use std::fmt;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// The gRPC status codes a refusal uses (the numbers of the gRPC specification's
/// `google.rpc.Code`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcCode {
    /// 3: a malformed request (two `authorization` entries, not `Bearer <token>`, two
    /// different tokens in two sources, a resource id that cannot name a resource).
    InvalidArgument,
    /// 7: the token does not grant the scope.
    PermissionDenied,
    /// 14: the decision could not be made safely (revocation state stale, audit sink down,
    /// uses not countable): fail closed, and the client may retry.
    Unavailable,
    /// 16: no credentials, or a token that does not verify.
    Unauthenticated,
}

impl GrpcCode {
    /// The code's number, as sent in `grpc-status` (tonic: `tonic::Code::from_i32`).
    pub fn as_i32(self) -> i32 {
        match self {
            Self::InvalidArgument => 3,
            Self::PermissionDenied => 7,
            Self::Unavailable => 14,
            Self::Unauthenticated => 16,
        }
    }

    /// The `grpc-status` value.
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::InvalidArgument => "3",
            Self::PermissionDenied => "7",
            Self::Unavailable => "14",
            Self::Unauthenticated => "16",
        })
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Unauthenticated => "UNAUTHENTICATED",
        })
    }
}

/// How a [`Rejection`] is answered over gRPC: [`status_of`].
///
/// | rejection | code | `www-authenticate` |
/// |---|---|---|
/// | no credentials | `UNAUTHENTICATED` (16) | `Bearer realm="…"` |
/// | a token that does not verify (malformed, expired, revoked, other environment, …) | `UNAUTHENTICATED` (16) | `… error="invalid_token"` |
/// | two `authorization` entries, not `Bearer <token>` | `INVALID_ARGUMENT` (3) | `… error="invalid_request"` |
/// | the token lacks the scope | `PERMISSION_DENIED` (7) | `… error="insufficient_scope", scope="…"` |
/// | revocation state stale, audit sink down | `UNAVAILABLE` (14) | none |
/// | a resource id that cannot name a resource | `INVALID_ARGUMENT` (3) | none |
///
/// The message is [`Rejection::description`], a fixed text that never holds token bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcStatus {
    code: GrpcCode,
    rejection: Rejection,
}

/// The gRPC status answering `rejection`, for a handler that refuses at the point of action:
///
/// ```
/// use scopekey::{Action, Grant, Resource};
/// use scopekey_tower::Rejection;
/// use scopekey_tower::grpc::{GrpcCode, status_of};
///
/// fn delete(grant: &Grant, resource: &Resource) -> Result<(), (i32, &'static str)> {
///     let delete: Action = "delete".parse().map_err(|_| (13, "bad action"))?;
///     grant.authorize(resource, &delete).map_err(|denied| {
///         let status = status_of(&Rejection::from_denied(&denied));
///         // tonic: tonic::Status::new(tonic::Code::from_i32(status.code().as_i32()), status.message())
///         (status.code().as_i32(), status.message())
///     })
/// }
/// # let _ = delete;
/// # let _ = GrpcCode::PermissionDenied;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn status_of(rejection: &Rejection) -> GrpcStatus {
    let code = match rejection {
        Rejection::InvalidRequest(_) | Rejection::InvalidResource => GrpcCode::InvalidArgument,
        Rejection::InsufficientScope(_) => GrpcCode::PermissionDenied,
        Rejection::Unavailable(_) => GrpcCode::Unavailable,
        // DPoP proofs are HTTP headers; over gRPC they are refusals of the credential.
        Rejection::MissingCredentials
        | Rejection::InvalidToken(_)
        | Rejection::InvalidDpopProof(_)
        | Rejection::UseDpopNonce(_) => GrpcCode::Unauthenticated,
    };
    GrpcStatus {
        code,
        rejection: rejection.clone(),
    }
}

impl GrpcStatus {
    /// The code.
    pub fn code(&self) -> GrpcCode {
        self.code
    }

    /// The message: [`Rejection::description`], fixed for each case.
    pub fn message(&self) -> &'static str {
        self.rejection.description()
    }

    /// The RFC 6750 challenge sent in the `www-authenticate` metadata entry, if any
    /// ([`Rejection::challenge`]).
    pub fn challenge(&self, realm: &Realm) -> Option<HeaderValue> {
        self.rejection.challenge(realm)
    }

    /// The rejection answered.
    pub fn rejection(&self) -> &Rejection {
        &self.rejection
    }

    /// The trailers-only gRPC response: HTTP 200, `content-type: application/grpc`,
    /// `grpc-status`, the percent-encoded `grpc-message`, `www-authenticate` when there is a
    /// challenge, and an empty body (`B::default()`).
    pub fn into_response<B: Default>(self, realm: &Realm) -> Response<B> {
        let mut response = Response::new(B::default());
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert("grpc-status", self.code.header());
        if let Ok(message) = HeaderValue::from_str(&percent_encode(self.message())) {
            headers.insert("grpc-message", message);
        }
        if let Some(challenge) = self.challenge(realm) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// `grpc-message` encoding (gRPC over HTTP/2): every byte outside printable ASCII, and `%`,
/// as `%XX`.
fn percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// [`AuthLayer`](crate::AuthLayer) for gRPC services: the same verification, refusals as
/// gRPC statuses ([`GrpcStatus`]) with no body. Inserts the [`Grant`] and the [`Realm`]
/// into the request's extensions.
///
/// With tonic: `Server::builder().layer(GrpcAuthLayer::new(state)).add_service(…)`; see
/// `examples/grpc_service.rs` and `docs/grpc.md`.
#[derive(Debug, Clone)]
pub struct GrpcAuthLayer {
    state: AuthState,
    anonymous: bool,
}

impl GrpcAuthLayer {
    /// A layer verifying with `state`; every request needs a valid token.
    pub fn new(state: AuthState) -> Self {
        Self {
            state,
            anonymous: false,
        }
    }

    /// As [`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous): a request without
    /// any credentials goes through with an [`Anonymous`](crate::Anonymous) marker instead of a [`Grant`]; a bad
    /// token is still refused.
    pub fn allow_anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
}

impl<S> Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            state: self.state.clone(),
            anonymous: self.anonymous,
        }
    }
}

/// The service of [`GrpcAuthLayer`].
#[derive(Debug, Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    state: AuthState,
    anonymous: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let result = self.state.authenticate_request(&mut parts);
        match admit(&self.state, self.anonymous, &mut parts, result) {
            Ok(()) => ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body))),
            Err(rejection) => {
                ResponseFuture::rejected(status_of(&rejection).into_response(self.state.realm()))
            }
        }
    }
}

/// [`RequireScopeLayer`](crate::RequireScopeLayer) for gRPC: every method of the service it
/// wraps needs one fixed scope; `PERMISSION_DENIED` otherwise, and `UNAUTHENTICATED` when no
/// grant is present (fail closed). Scopes that depend on the request message (a project id)
/// are checked by the handler instead (see [`status_of`]).
#[derive(Debug, Clone)]
pub struct GrpcRequireScopeLayer {
    scope: Scope,
    realm: Realm,
}

impl GrpcRequireScopeLayer {
    /// Requires `scope`, answering refusals for `realm`.
    pub fn new(scope: Scope, realm: Realm) -> Self {
        Self { scope, realm }
    }
}

impl<S> Layer<S> for GrpcRequireScopeLayer {
    type Service = GrpcRequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcRequireScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`GrpcRequireScopeLayer`].
#[derive(Debug, Clone)]
pub struct GrpcRequireScope<S> {
    inner: S,
    layer: GrpcRequireScopeLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcRequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let scope = &self.layer.scope;
        let decision = match request.extensions().get::<Grant>() {
            None => Err(Rejection::MissingCredentials),
            Some(grant) => grant
                .authorize(scope.resource(), scope.action())
                .map_err(|d| Rejection::from_denied(&d)),
        };
        match decision {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(r) => ResponseFuture::rejected(status_of(&r).into_response(&self.layer.realm)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scopekey::VerifyErrorKind;

    #[test]
    fn codes_follow_the_table() {
        let scope: Scope = "projects/42:read".parse().unwrap();
        for (rejection, code) in [
            (Rejection::MissingCredentials, 16),
            (Rejection::InvalidToken(VerifyErrorKind::Expired), 16),
            (Rejection::InvalidRequest("two"), 3),
            (Rejection::InvalidResource, 3),
            (Rejection::InsufficientScope(scope), 7),
            (Rejection::Unavailable(VerifyErrorKind::RevocationStale), 14),
        ] {
            let status = status_of(&rejection);
            assert_eq!(status.code().as_i32(), code, "{rejection:?}");
            let response: Response<()> = status.into_response(&Realm::test());
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "application/grpc");
            assert_eq!(response.headers()["grpc-status"], code.to_string().as_str());
            assert_eq!(
                response.headers()["grpc-message"],
                rejection.description(),
                "fixed descriptions need no encoding"
            );
            assert_eq!(
                response.headers().get("www-authenticate"),
                rejection.challenge(&Realm::test()).as_ref()
            );
        }
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("plain text"), "plain text");
        assert_eq!(percent_encode("100% sure"), "100%25 sure");
        assert_eq!(percent_encode("a\nb\u{e9}"), "a%0Ab%C3%A9");
    }
}
