//! [`RefreshingAuthLayer`]: an [`AuthLayer`](crate::AuthLayer) that, when a token names a key
//! the verifier does not know, waits for the key set to be refreshed and verifies once more, so
//! that a key rotation at the issuer costs no failed request.
//!
//! The refresh itself is a [`KeyRefresh`]: `scopekey-jwks`'s `RemoteKeySet` (which rate-limits
//! it), or any closure returning a future. Only a refusal as
//! [`UnknownKey`](scopekey::VerifyErrorKind::UnknownKey) waits for it; every other request takes
//! the same synchronous path as [`AuthLayer`](crate::AuthLayer).
//!
//! A request that waits is verified twice, so a verifier with an audit sink records a `refused`
//! event (`unknown_key`) and then the second outcome.

use crate::auth::{AuthState, admit};
use crate::future::ResponseFuture;
use crate::rejection::Rejection;
use http::{Request, Response};
use pin_project_lite::pin_project;
use scopekey::{Grant, VerifyErrorKind};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// A boxed future that sends.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Refreshes the key set a verifier's [`KeyRing`](scopekey::KeyRing) holds, when a token names
/// a key it does not know.
///
/// The future resolves once the refresh has finished (or was not made: a rate limit, a fetch
/// that failed); the request is then verified once more against whatever the ring holds.
/// Implemented for closures `Fn() -> impl Future` (the future's output is ignored).
///
/// # Security
/// Anyone can send a token with a made-up key id. An implementation must bound what that
/// costs: share one refresh between concurrent callers, allow at most one per interval, and
/// resolve promptly (its own timeout) when the source does not answer.
pub trait KeyRefresh: Send + Sync + 'static {
    /// Refreshes, or joins a refresh under way; resolves when it is over.
    fn refresh(&self) -> BoxFuture<()>;
}

impl<F, Fut> KeyRefresh for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    fn refresh(&self) -> BoxFuture<()> {
        let refreshing = self();
        Box::pin(async move {
            let _ = refreshing.await;
        })
    }
}

impl AuthState {
    /// As [`authenticate_request`](Self::authenticate_request), and when the token is refused
    /// as [`UnknownKey`](VerifyErrorKind::UnknownKey), waits for `refresh` and verifies once
    /// more: for an async extractor or handler that checks tokens itself.
    ///
    /// # Errors
    /// The [`Rejection`] to answer with, from the second verification if there was one.
    pub async fn authenticate_request_refreshing(
        &self,
        parts: &mut http::request::Parts,
        refresh: &dyn KeyRefresh,
    ) -> Result<Grant, Rejection> {
        // A query-parameter token leaves the URI on the first pass: the second reads it again.
        let uri = parts.uri.clone();
        match self.authenticate_request(parts) {
            Err(Rejection::InvalidToken(VerifyErrorKind::UnknownKey)) => {
                refresh.refresh().await;
                parts.uri = uri;
                self.authenticate_request(parts)
            }
            other => other,
        }
    }
}

/// An [`AuthLayer`](crate::AuthLayer) that waits for a key refresh when a token names an
/// unknown key, then verifies once more (see [`KeyRefresh`]).
///
/// Answers as [`AuthLayer`](crate::AuthLayer) does in every other case. Its service needs
/// the inner service to be `Clone` (as axum's are): a request that waits is handed the ready
/// service, and a clone stays behind.
///
/// ```
/// use scopekey::{KeySet, SigningKey, Verifier, VerifierConfig};
/// use scopekey_tower::{AuthState, Realm, RefreshingAuthLayer};
/// use std::sync::Arc;
///
/// let key = SigningKey::generate()?;
/// let verifier = Verifier::new(
///     KeySet::single(key.public_key().clone()),
///     VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?),
/// )?;
/// let ring = verifier.key_ring().clone();
/// let state = AuthState::new(Arc::new(verifier), Realm::new("api")?);
/// // Here, a refresh that changes nothing; `scopekey-jwks`'s `RemoteKeySet` fetches the JWKS.
/// let layer = RefreshingAuthLayer::new(state, move || {
///     let _ = ring.version();
///     async {}
/// });
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RefreshingAuthLayer {
    state: AuthState,
    refresh: Arc<dyn KeyRefresh>,
    anonymous: bool,
}

impl RefreshingAuthLayer {
    /// A layer verifying with `state`, refreshing keys with `refresh` on an unknown key id.
    pub fn new(state: AuthState, refresh: impl KeyRefresh) -> Self {
        Self {
            state,
            refresh: Arc::new(refresh),
            anonymous: false,
        }
    }

    /// As [`AuthLayer::allow_anonymous`](crate::AuthLayer::allow_anonymous).
    pub fn allow_anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }
}

impl fmt::Debug for RefreshingAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingAuthLayer")
            .field("state", &self.state)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RefreshingAuthLayer {
    type Service = RefreshingAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RefreshingAuth {
            inner,
            state: self.state.clone(),
            refresh: self.refresh.clone(),
            anonymous: self.anonymous,
        }
    }
}

/// The service of [`RefreshingAuthLayer`].
#[derive(Clone)]
pub struct RefreshingAuth<S> {
    inner: S,
    state: AuthState,
    refresh: Arc<dyn KeyRefresh>,
    anonymous: bool,
}

impl<S: fmt::Debug> fmt::Debug for RefreshingAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingAuth")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RefreshingAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RefreshingFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        // A query-parameter token leaves the URI on the first pass; a retry reads it again.
        // (A `Uri` clone shares its bytes.)
        let uri = parts.uri.clone();
        let first = self.state.authenticate_request(&mut parts);
        if !matches!(
            first,
            Err(Rejection::InvalidToken(VerifyErrorKind::UnknownKey))
        ) {
            let future = match admit(&self.state, self.anonymous, &mut parts, first) {
                Ok(()) => ResponseFuture::inner(self.inner.call(Request::from_parts(parts, body))),
                Err(rejection) => ResponseFuture::rejected(self.state.reject(rejection)),
            };
            return RefreshingFuture::ready(future);
        }
        // The ready service goes with the request; the clone waits for its own poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        let refresh = self.refresh.refresh();
        let anonymous = self.anonymous;
        RefreshingFuture::waiting(Box::pin(async move {
            refresh.await;
            // The second pass takes the query token out again, whatever its outcome.
            parts.uri = uri;
            let again = state.authenticate_request(&mut parts);
            match admit(&state, anonymous, &mut parts, again) {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(state.reject(rejection)),
            }
        }))
    }
}

pin_project! {
    /// The response future of [`RefreshingAuth`]: as [`ResponseFuture`], or a request waiting
    /// for a key refresh (boxed; only requests with an unknown key id take that path).
    pub struct RefreshingFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Ready { #[pin] future: ResponseFuture<F, B> },
        Waiting { future: BoxFuture<Result<Response<B>, E>> },
    }
}

impl<F, B, E> RefreshingFuture<F, B, E> {
    fn ready(future: ResponseFuture<F, B>) -> Self {
        Self {
            kind: Kind::Ready { future },
        }
    }

    fn waiting(future: BoxFuture<Result<Response<B>, E>>) -> Self {
        Self {
            kind: Kind::Waiting { future },
        }
    }
}

impl<F, B, E> Future for RefreshingFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Ready { future } => future.poll(cx),
            KindProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for RefreshingFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingFuture").finish_non_exhaustive()
    }
}
