//! # scopekey-tower
//!
//! tower middleware for [scopekey] tokens: validate on the way in, authorize on the way
//! through.
//!
//! - [`AuthLayer`] reads `Authorization: Bearer` (RFC 6750 section 2.1), verifies the token
//!   with the core [`Verifier`](scopekey::Verifier) (signature, claims, revocation, audit),
//!   marks the header sensitive, and inserts the [`Grant`](scopekey::Grant) into the request's
//!   extensions. Other [`TokenSource`]s (a cookie, a custom header, a query parameter for
//!   WebSocket upgrades) are opt-in with [`AuthState::token_sources`];
//!   [`AuthLayer::allow_anonymous`] lets requests without credentials through as
//!   [`Anonymous`].
//! - [`RefreshingAuthLayer`] does the same, and when a token names a key the verifier does not
//!   know, waits for a [`KeyRefresh`] (a remote JWKS fetched again, rate-limited) and verifies
//!   once more, so that a key rotation at the issuer costs no failed request.
//! - [`RequireScopeLayer`] requires one fixed scope for a route.
//! - [`grpc`]: the same for gRPC services (tonic): [`grpc::GrpcAuthLayer`] answers refusals
//!   as gRPC statuses (`UNAUTHENTICATED`, `PERMISSION_DENIED`, …) with no body.
//! - With an audit sink on the verifier, every `verified`, `refused`, `authorized` and `denied`
//!   event of a request carries its method, path, client address and request id
//!   ([`describe_request`], replaceable with [`AuthState::describe_requests_with`]).
//! - [`Rejection`] renders every refusal per RFC 6750 section 3: status and `WWW-Authenticate`
//!   challenge, with a fixed RFC 9457 `application/problem+json` body that leaks nothing of
//!   the token ([`AuthState::render_rejections_with`] for a service's own format).
//!
//! Generic over request and response bodies (the response body must be buildable from a
//! `String`); no dependency on any web framework.
//!
//! ## Accept and reject
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use scopekey::{Issuer, KeySet, SigningKey, TokenRequest, Verifier, VerifierConfig};
//! use scopekey_tower::{AuthLayer, AuthState, Realm, RequireScopeLayer};
//! use std::sync::Arc;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate()?;
//! let keys = KeySet::single(key.public_key().clone());
//! let issuer = Issuer::new(key, "https://auth.example", "production".parse()?)?;
//! let verifier = Verifier::new(keys, VerifierConfig::new("https://auth.example", "https://api.example", "production".parse()?))?;
//! let realm = Realm::new("api")?;
//!
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(AuthState::new(Arc::new(verifier), realm.clone())))
//!     .layer(RequireScopeLayer::new("billing/invoices:read".parse()?, realm))
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new("invoices".to_owned()))
//!     }));
//!
//! // Accepted: a token that grants the scope.
//! let token = issuer.issue(&TokenRequest::new("billing-ui", "https://api.example", "billing:read".parse()?))?;
//! let request = Request::builder()
//!     .header("authorization", format!("Bearer {}", token.token().as_str()))
//!     .body(String::new())?;
//! assert_eq!(service.clone().oneshot(request).await?.status(), StatusCode::OK);
//!
//! // Rejected: no credentials.
//! let response = service.oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! # Ok(())
//! # }
//! ```

mod auth;
mod context;
mod dpop;
mod forwarded;
mod future;
pub mod grpc;
mod refresh;
mod rejection;
mod render;
mod require;
mod source;

pub use auth::{Anonymous, Auth, AuthLayer, AuthState};
pub use context::{
    DescribeRequest, PeerAddress, REQUEST_ID_HEADER, describe_request, peer_address,
};
pub use dpop::{DPOP, DPOP_NONCE, DpopConfig, InvalidOrigin};
pub use future::ResponseFuture;
pub use refresh::{BoxFuture, KeyRefresh, RefreshingAuth, RefreshingAuthLayer, RefreshingFuture};
pub use rejection::{InvalidRealm, Realm, Rejection, bearer_token};
pub use render::{RejectionBody, RejectionRenderer, RenderRejection};
pub use require::{RequireScope, RequireScopeLayer};
pub use source::{InvalidTokenSource, MAX_COOKIE_BYTES, MAX_COOKIES, TokenSource};
