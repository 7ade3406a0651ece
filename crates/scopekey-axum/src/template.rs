//! [`RequireTemplateLayer`]: a per-route requirement templated from the route's path
//! parameters, `projects/{id}:write`, for axum's `Router::route_layer`.

use crate::{Realm, Rejection, RejectionRenderer};
use axum::extract::RawPathParams;
use axum::extract::rejection::RawPathParamsRejection;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Request, StatusCode};
use scopekey::requirement::TemplateErrorKind;
use scopekey::{Grant, RequirementTemplate};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Requires the request's [`Grant`] (put there by the [`AuthLayer`](crate::AuthLayer)) to meet
/// a [`RequirementTemplate`] filled in from the route's path parameters: with
/// `projects/{id}:write` on `/projects/{id}`, a request to `/projects/42` needs
/// `projects/42:write`.
///
/// | request | answer |
/// |---|---|
/// | the grant meets the resolved requirement | the route's handler |
/// | no grant (no auth layer ran, or an anonymous request) | 401, bare challenge |
/// | a path parameter that cannot be one resource segment (`a/b`, `..`, `*`, `x:y`, not UTF-8, …) | 400, [`Rejection::InvalidResource`]: never a broader scope |
/// | the grant does not meet it | 403 `insufficient_scope` |
/// | the template names a parameter the route does not have | 500 (a programming error; fail closed) |
///
/// Apply it with `Router::route_layer`, so that it runs after routing (which is when the path
/// parameters exist), under the [`AuthLayer`](crate::AuthLayer):
///
/// ```
/// use axum::{Router, routing::put};
/// use scopekey_axum::{Realm, RequireTemplateLayer};
///
/// async fn update() -> &'static str { "updated" }
///
/// let app: Router = Router::new()
///     .route("/projects/{id}", put(update))
///     .route_layer(RequireTemplateLayer::new("projects/{id}:write".parse()?, Realm::new("api")?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequireTemplateLayer {
    template: Arc<RequirementTemplate>,
    realm: Realm,
}

impl RequireTemplateLayer {
    /// Requires `template`, resolved per request, answering refusals for `realm`.
    pub fn new(template: RequirementTemplate, realm: Realm) -> Self {
        Self {
            template: Arc::new(template),
            realm,
        }
    }
}

impl<S> Layer<S> for RequireTemplateLayer {
    type Service = RequireTemplate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTemplate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RequireTemplateLayer`].
#[derive(Debug, Clone)]
pub struct RequireTemplate<S> {
    inner: S,
    layer: RequireTemplateLayer,
}

impl<S, B> Service<Request<B>> for RequireTemplate<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is ready only after `poll_ready`; the ready one goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match decide(&layer, &mut parts).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(response) => Ok(response),
            }
        })
    }
}

/// The decision for one request, or the answer refusing it.
async fn decide(layer: &RequireTemplateLayer, parts: &mut Parts) -> Result<(), Response> {
    let renderer = parts.extensions.get::<RejectionRenderer>().cloned();
    let refuse = |r: Rejection| r.into_response_with(&layer.realm, renderer.as_ref());
    let Some(grant) = parts.extensions.get::<Grant>().cloned() else {
        return Err(refuse(Rejection::MissingCredentials));
    };
    let params = match RawPathParams::from_request_parts(parts, &()).await {
        Ok(params) => params,
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
            return Err(refuse(Rejection::InvalidResource));
        }
        Err(_) => return Err(misconfigured()),
    };
    let requirement = layer
        .template
        .resolve(|name| params.iter().find(|(n, _)| *n == name).map(|(_, v)| v))
        .map_err(|e| match e.kind() {
            TemplateErrorKind::InvalidValue => refuse(Rejection::InvalidResource),
            _ => misconfigured(),
        })?;
    requirement
        .authorize(&grant)
        .map_err(|d| refuse(Rejection::from_denied(&d)))
}

/// 500: the route and its requirement disagree about the path parameters.
fn misconfigured() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(http::header::CONTENT_TYPE, "application/problem+json")],
        r#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"the route's scope requirement names a path parameter the route does not have"}"#,
    )
        .into_response()
}
