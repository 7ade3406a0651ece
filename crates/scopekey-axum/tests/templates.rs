//! A route's templated requirement decided without keys: a grant made with `Grant::for_tests`
//! stands in for the auth layer, and `RequireTemplateLayer` resolves `projects/{id}:write`
//! from the routed path.
#![cfg(feature = "test-util")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::routing::put;
use http::{Request, StatusCode};
use scopekey::{Grant, RequirementTemplate};
use scopekey_axum::{Realm, RequireTemplateLayer};
use tower::ServiceExt;
use tower::util::MapRequestLayer;

fn app(grant: Option<Grant>, template: &str) -> Router {
    let template: RequirementTemplate = template.parse().unwrap();
    Router::new()
        .route("/orgs/{org}/projects/{id}", put(|| async { "updated" }))
        .route_layer(RequireTemplateLayer::new(template, Realm::test()))
        .layer(MapRequestLayer::new(move |mut r: Request<Body>| {
            if let Some(g) = &grant {
                r.extensions_mut().insert(g.clone());
            }
            r
        }))
}

async fn status(app: Router, path: &str) -> StatusCode {
    let request = Request::put(path).body(Body::empty()).unwrap();
    app.oneshot(request).await.unwrap().status()
}

fn grant(scopes: &str) -> Option<Grant> {
    Some(Grant::for_tests("editor", scopes.parse().unwrap()))
}

#[tokio::test]
async fn the_template_is_filled_in_from_the_routed_path() {
    let t = "orgs/{org}/projects/{id}:write";
    let cases = [
        (
            grant("orgs/acme/projects/42:write"),
            "/orgs/acme/projects/42",
            StatusCode::OK,
        ),
        (
            grant("orgs/acme:write"),
            "/orgs/acme/projects/42",
            StatusCode::OK,
        ),
        (
            grant("orgs/acme/projects/42:write"),
            "/orgs/acme/projects/43",
            StatusCode::FORBIDDEN,
        ),
        (
            grant("orgs/acme/projects/42:write"),
            "/orgs/other/projects/42",
            StatusCode::FORBIDDEN,
        ),
        (
            grant("orgs/acme/projects/42:read"),
            "/orgs/acme/projects/42",
            StatusCode::FORBIDDEN,
        ),
        (
            grant("orgs:write"),
            "/orgs/acme/projects/%2A",
            StatusCode::BAD_REQUEST,
        ),
        (
            grant("orgs:write"),
            "/orgs/acme/projects/4%2F2",
            StatusCode::BAD_REQUEST,
        ),
        (
            grant("orgs:write"),
            "/orgs/acme/projects/%FF",
            StatusCode::BAD_REQUEST,
        ),
        (None, "/orgs/acme/projects/42", StatusCode::UNAUTHORIZED),
    ];
    for (g, path, expected) in cases {
        assert_eq!(
            status(app(g.clone(), t), path).await,
            expected,
            "{path} with {g:?}"
        );
    }
}

#[tokio::test]
async fn a_template_naming_a_parameter_the_route_lacks_fails_closed() {
    let app = app(grant("*:*"), "projects/{project}:write");
    assert_eq!(
        status(app, "/orgs/acme/projects/42").await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}
