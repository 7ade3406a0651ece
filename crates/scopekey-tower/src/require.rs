//! [`RequireScopeLayer`]: a route-level requirement: one fixed scope, or a composed
//! [`Requirement`] (all of, any of).

use crate::future::ResponseFuture;
use crate::rejection::{Realm, Rejection};
use crate::render::RejectionRenderer;
use http::{Request, Response};
use scopekey::{Grant, Requirement, Scope};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Requires the request's [`Grant`] (inserted by [`AuthLayer`](crate::AuthLayer)) to allow one
/// fixed scope, or to meet a composed [`Requirement`]
/// ([`requiring`](Self::requiring)); answers 403 `insufficient_scope` with `scope="…"`
/// otherwise (for any-of, a scope of the first alternative), and 401 when no
/// grant is present (the auth layer did not run, or let the request through as
/// [`Anonymous`](crate::Anonymous): fail closed). Refusals use the renderer the auth layer put
/// in the request's extensions, if any.
///
/// ```
/// use scopekey_tower::{Realm, RequireScopeLayer};
///
/// let layer = RequireScopeLayer::new("tokens:revoke".parse()?, Realm::new("api")?);
/// # let _ = layer;
///
/// // Either of two scopes.
/// use scopekey::{Requirement, Scope};
/// let either = Requirement::any_of(["reports:read".parse::<Scope>()?, "reports:admin".parse()?])?;
/// let layer = RequireScopeLayer::requiring(either, Realm::new("api")?);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequireScopeLayer {
    requirement: Requirement,
    realm: Realm,
}

impl RequireScopeLayer {
    /// Requires `scope`, answering refusals for `realm`.
    pub fn new(scope: Scope, realm: Realm) -> Self {
        Self::requiring(scope, realm)
    }

    /// Requires `requirement` (a scope, or all or any of several), answering refusals for
    /// `realm`. Its decisions are recorded as [`Requirement::authorize`] says.
    pub fn requiring(requirement: impl Into<Requirement>, realm: Realm) -> Self {
        Self {
            requirement: requirement.into(),
            realm,
        }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScope {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RequireScopeLayer`].
#[derive(Debug, Clone)]
pub struct RequireScope<S> {
    inner: S,
    layer: RequireScopeLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let decision = match request.extensions().get::<Grant>() {
            None => Err(Rejection::MissingCredentials),
            Some(grant) => self
                .layer
                .requirement
                .authorize(grant)
                .map_err(|d| Rejection::from_denied(&d)),
        };
        match decision {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(r) => {
                let renderer = request.extensions().get::<RejectionRenderer>();
                ResponseFuture::rejected(r.into_response_with(&self.layer.realm, renderer))
            }
        }
    }
}
