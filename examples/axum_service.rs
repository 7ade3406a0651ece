//! An axum service protected by scopekey: the tower layer validates on the way in, handlers
//! authorize the specific action on the specific resource on the way through.
//!
//! ```sh
//! # With your own issuer's public key:
//! cargo run --example axum_service -- --public-key public.paserk \
//!     --issuer https://auth.example --audience https://api.example --env production \
//!     --listen 127.0.0.1:3000
//!
//! # Or a self-contained demo: generates a key and writes ready-made tokens to DIR.
//! cargo run --example axum_service -- --demo target/scopekey-demo --listen 127.0.0.1:3000
//!
//! # Either, with durable shared state (revocations, keys, inventory, audit, the use counts of
//! # use-limited tokens; without a store those are counted in this process only):
//! cargo run --example axum_service -- --demo target/scopekey-demo --store sqlite://target/scopekey-demo/state.db
//!
//! # Behind a reverse proxy at 10.0.0.2 that appends to Forwarded or X-Forwarded-For:
//! cargo run --example axum_service -- --demo target/scopekey-demo --trusted-proxy 10.0.0.2/32
//! ```
//!
//! The token is read from `Authorization: Bearer` or from the cookie `scopekey_token` (for
//! browsers: set it `HttpOnly; Secure; SameSite=Strict`; a service with cookie-authenticated
//! unsafe methods also needs a CSRF defence). Two different tokens in the two are a 400.
//! Every refusal is RFC 9457 problem details (`application/problem+json`) beside the RFC 6750
//! `WWW-Authenticate` challenge.
//!
//! Routes and what they need:
//!
//! | route | scope |
//! |---|---|
//! | `GET /healthz` | none |
//! | `GET /.well-known/jwks.json` | none: the public keys as a JWKS, for JWT gateways |
//! | `GET /public/projects/{id}` | none (public view); `projects/{id}:read` for the full view; a bad token is 401 |
//! | `GET /projects/{id}` | `projects/{id}:read` |
//! | `POST /projects/{id}/comments` | `projects/{id}/comments:write` (201) |
//! | `DELETE /projects/{id}` | `projects/{id}:delete` (204) |
//! | `PUT /projects/{id}` | `projects/{id}:write` or `projects/{id}:admin` (templated, any of; 400 for a malformed id) |
//! | `GET /projects/{id}/report` | `projects/{id}:read` and `reports:read` (templated, all of) |
//! | `GET /users/{id}` | `users/{id}:read` |
//! | `GET /billing/invoices` | `billing/invoices:read` |
//! | `POST /admin/revocations` | `tokens:revoke`; body `{"jti": "…"}` or `{"sub": "…"}` |
//!
//! See `docs/axum.md` for a walk-through with curl.

use axum::extract::{ConnectInfo, FromRef, MatchedPath, Path, Request, State};
use axum::handler::Handler as _;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use scopekey::audit::{AuditSink, JsonLinesSink, RequestContext, SummarizingSink, SummaryConfig};
use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::usage::MemoryUsageCounter;
use scopekey::{
    Action, Environment, Issuer, KeySet, Network, PublicKey, RequirementTemplate, SigningKey,
    TokenRequest, Verifier, VerifierConfig,
};
use scopekey_axum::{
    AuthLayer, AuthState, Authorized, Forbidden, Realm, Require, RequireScopeLayer,
    RequireTemplateLayer, TokenSource, describe_request, required_scope,
};
use scopekey_store::{Replica, ReplicaOptions, Store};
use serde::Deserialize;
use serde_json::json;
use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The realm every refusal names.
pub(crate) const REALM: &str = "scopekey-example";

/// The cookie a browser front end keeps the token in.
pub(crate) const TOKEN_COOKIE: &str = "scopekey_token";

/// Issuer, audience and environment of `--demo` mode.
pub(crate) const DEMO_ISSUER: &str = "https://auth.scopekey.example";
/// See [`DEMO_ISSUER`].
pub(crate) const DEMO_AUDIENCE: &str = "https://api.scopekey.example";
/// See [`DEMO_ISSUER`].
pub(crate) const DEMO_ENV: &str = "dev";

#[derive(Parser, Debug)]
#[command(about = "An axum service protected by scopekey tokens", long_about = None)]
struct Args {
    /// The issuer's public key (PASERK k4.public file); repeat during a key rotation.
    #[arg(
        long = "public-key",
        value_name = "FILE",
        required_unless_present = "demo"
    )]
    public_keys: Vec<PathBuf>,
    /// Expected `iss`.
    #[arg(long, required_unless_present = "demo")]
    issuer: Option<String>,
    /// Expected `aud`: this service.
    #[arg(long, required_unless_present = "demo")]
    audience: Option<String>,
    /// Expected environment.
    #[arg(long, required_unless_present = "demo")]
    env: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Append audit events (JSON Lines) to this file.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Keep revocations, keys, the token inventory and the audit trail in this store
    /// (`sqlite://PATH` or `postgres://…`); shared by every instance given the same URL.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Accept JWT access tokens too (by default only PASETO v4.public verifies).
    #[arg(long)]
    accept_jwt: bool,
    /// A reverse proxy in front of the service that appends its peer's address to `Forwarded`
    /// or `X-Forwarded-For`, as a CIDR block (repeatable; none by default). The headers are read
    /// only from a peer in one of these networks, and the client checked against network
    /// caveats is the rightmost entry outside them all. Without any: the TCP peer, headers
    /// ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    trusted_proxy_networks: Vec<Network>,
    /// Demo mode: generate a key, write its public key and demo tokens to DIR, and serve.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["public_keys", "issuer", "audience", "env"])]
    demo: Option<PathBuf>,
}

/// The router's state: the auth state the extractors use and where the admin route writes
/// revocations (the in-memory list, or the store through its replica).
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    auth: AuthState,
    revocations: Arc<dyn Revoker>,
}

impl FromRef<AppState> for AuthState {
    fn from_ref(s: &AppState) -> Self {
        s.auth.clone()
    }
}

required_scope!(
    /// `GET /billing/invoices`.
    pub(crate) struct BillingInvoicesRead = "billing/invoices:read";
);

/// Builds the service: `verifier` must already check what `revocations` writes (and carry any
/// audit sink); the client is the TCP peer (axum's `ConnectInfo`), or, for a peer in
/// `trusted_proxy_networks`, the address the outermost trusted proxy forwarded.
pub(crate) fn app(
    verifier: Arc<Verifier>,
    revocations: Arc<dyn Revoker>,
    trusted_proxy_networks: Vec<Network>,
) -> Router {
    // `REALM` is a valid realm literal.
    let realm = Realm::new(REALM).unwrap_or_else(|_| unreachable!());
    // `TOKEN_COOKIE` is a valid cookie name.
    let cookie = TokenSource::cookie(TOKEN_COOKIE).unwrap_or_else(|_| unreachable!());
    let auth = AuthState::new(verifier, realm.clone())
        .token_sources([TokenSource::bearer(), cookie])
        .describe_requests_with(describe)
        .client_address_with(|parts| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        })
        .trusted_proxy_networks(trusted_proxy_networks);
    let state = AppState {
        auth: auth.clone(),
        revocations,
    };
    let revoke_scope = "tokens:revoke".parse().unwrap_or_else(|_| unreachable!());
    // Templated from the path, composed: literals that parse.
    let template = |t: &str| {
        t.parse::<RequirementTemplate>()
            .unwrap_or_else(|_| unreachable!())
    };
    let compose = |r: Result<RequirementTemplate, _>| r.unwrap_or_else(|_| unreachable!());
    let update = compose(RequirementTemplate::any_of([
        template("projects/{id}:write"),
        template("projects/{id}:admin"),
    ]));
    let report = compose(RequirementTemplate::all_of([
        template("projects/{id}:read"),
        template("reports:read"),
    ]));
    let protected = Router::new()
        .route(
            "/projects/{id}",
            get(get_project)
                .delete(delete_project)
                .put(put_project.layer(RequireTemplateLayer::new(update, realm.clone()))),
        )
        .route(
            "/projects/{id}/report",
            get(get_report.layer(RequireTemplateLayer::new(report, realm.clone()))),
        )
        .route("/projects/{id}/comments", post(post_comment))
        .route("/users/{id}", get(get_user))
        .route("/billing/invoices", get(get_invoices))
        .route(
            "/admin/revocations",
            post(post_revocation).layer(RequireScopeLayer::new(revoke_scope, realm)),
        )
        .layer(AuthLayer::new(auth.clone()));
    // Anonymous requests allowed here only; a token, if any, must still be valid.
    let public = Router::new()
        .route("/public/projects/{id}", get(get_public_project))
        .route_layer(AuthLayer::new(auth).allow_anonymous());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/.well-known/jwks.json", get(jwks))
        .merge(public)
        .merge(protected)
        .layer(middleware::from_fn(log_decision))
        .with_state(state)
}

/// How a request appears in the audit trail: the route's template (`/projects/{id}`, not the
/// id), which only axum knows, on top of the default description. The client is the layer's
/// (the peer, or the one the trusted proxies forwarded).
fn describe(parts: &axum::http::request::Parts) -> RequestContext {
    let described = describe_request(parts);
    match parts.extensions.get::<MatchedPath>() {
        Some(route) => described.path_template(route.as_str()),
        None => described,
    }
}

/// The keys this service verifies with (retired ones left out), for gateways that verify JWTs
/// before requests reach it. Public by nature; cacheable for a few minutes.
async fn jwks(State(auth): State<AuthState>) -> Response {
    let body = auth
        .verifier()
        .keys()
        .to_jwks(time::OffsetDateTime::now_utc());
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn get_project(auth: Authorized, Path(id): Path<String>) -> Result<Response, Forbidden> {
    auth.authorize(["projects", id.as_str()], Action::read())?;
    Ok(Json(json!({ "id": id, "name": format!("project {id}") })).into_response())
}

/// The public view for everyone; the full one for a token that may read the project. A valid
/// token without that scope gets the public view; a bad one never reaches this handler (401).
async fn get_public_project(auth: Option<Authorized>, Path(id): Path<String>) -> Response {
    let full = auth.as_ref().filter(|a| {
        a.authorize(["projects", id.as_str()], Action::read())
            .is_ok()
    });
    match full {
        Some(a) => Json(json!({
            "id": id,
            "name": format!("project {id}"),
            "view": "full",
            "viewer": a.subject(),
        })),
        None => Json(json!({ "id": id, "name": format!("project {id}"), "view": "public" })),
    }
    .into_response()
}

/// Reached only when the route's requirement (write or admin on this project) was met.
async fn put_project(auth: Authorized, Path(id): Path<String>) -> Response {
    Json(json!({ "id": id, "updated_by": auth.subject() })).into_response()
}

/// Reached only with read on this project and on reports.
async fn get_report(Path(id): Path<String>) -> Response {
    Json(json!({ "project": id, "report": "weekly" })).into_response()
}

async fn delete_project(auth: Authorized, Path(id): Path<String>) -> Result<StatusCode, Forbidden> {
    auth.authorize(["projects", id.as_str()], Action::delete())?;
    Ok(StatusCode::NO_CONTENT)
}

async fn post_comment(auth: Authorized, Path(id): Path<String>) -> Result<Response, Forbidden> {
    auth.authorize(["projects", id.as_str(), "comments"], Action::write())?;
    let body = Json(json!({ "project": id, "author": auth.subject() }));
    Ok((StatusCode::CREATED, body).into_response())
}

async fn get_user(auth: Authorized, Path(id): Path<String>) -> Result<Response, Forbidden> {
    auth.authorize(["users", id.as_str()], Action::read())?;
    Ok(Json(json!({ "id": id })).into_response())
}

async fn get_invoices(_: Require<BillingInvoicesRead>) -> Json<serde_json::Value> {
    Json(json!({ "invoices": [] }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationBody {
    jti: Option<String>,
    sub: Option<String>,
    reason: Option<String>,
}

async fn post_revocation(
    State(state): State<AppState>,
    auth: Authorized,
    body: Result<Json<RevocationBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    // Problem details, as the layer's refusals.
    let bad = |why: &str| {
        let body = json!({
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": why,
            "error": "invalid_request",
        });
        (
            StatusCode::BAD_REQUEST,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    };
    let Ok(Json(body)) = body else {
        return bad("the body must be {\"jti\": \"...\"} or {\"sub\": \"...\"}");
    };
    let target = match (body.jti, body.sub) {
        (Some(jti), None) => match jti.parse() {
            Ok(token_id) => RevocationTarget::Token {
                token_id,
                expires_at: None,
            },
            Err(_) => return bad("jti is not a valid token id"),
        },
        (None, Some(sub)) => RevocationTarget::Subject {
            subject: sub,
            issued_before: None,
        },
        _ => return bad("give exactly one of jti and sub"),
    };
    let reason = body
        .reason
        .unwrap_or_else(|| "revoked through the admin API".into());
    match state.revocations.revoke(target, auth.subject(), &reason) {
        Ok(record) => Json(json!({
            "revoked": record.target().to_string(),
            "by": record.by(),
            "at": record.at().unix_timestamp(),
        }))
        .into_response(),
        Err(e) => bad(&e.to_string()),
    }
}

/// One line per request: method, path, status and the decision.
async fn log_decision(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let decision = match status.as_u16() {
        200..=299 => "allowed",
        400 => "refused: bad request",
        401 => "refused: no valid token",
        403 => "denied: insufficient scope",
        503 => "refused: authorization unavailable",
        _ => "other",
    };
    println!("{method} {path} -> {} {decision}", status.as_u16());
    response
}

fn read_public_key(path: &FsPath) -> Result<PublicKey, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read public key {}: {e}", path.display()))?;
    Ok(PublicKey::from_paserk(text.trim()).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// What the router checks tokens with, and where the admin route writes revocations.
pub(crate) type Backing = (Arc<Verifier>, Arc<dyn Revoker>);

/// Verifier and revocation writer backed by `store`: a replica keeps keys and revocations
/// current; last uses and audit events go to the store, and so do the use counts of
/// use-limited tokens (shared by every instance on the store). Keys in `extra` are added to
/// the store.
pub(crate) fn with_store(
    store: &Store,
    extra: &KeySet,
    config: VerifierConfig,
) -> Result<Backing, Box<dyn Error>> {
    for entry in extra.iter() {
        store.add_key(entry.key(), None)?;
    }
    let replica = Arc::new(Replica::start(store, ReplicaOptions::default())?);
    let verifier = replica
        .verifier(config)?
        .with_inventory(Arc::new(store.inventory()?))
        .with_audit(summarized(Arc::new(store.audit_sink()?))?)
        .with_usage_counter(Arc::new(store.usage_counter()));
    Ok((Arc::new(verifier), replica))
}

/// The request path's audit sink: each token's decisions, and each refusal reason, folded into
/// one exact summary a second, so no volume of requests can fill `inner` (see
/// `scopekey::audit::SummarizingSink`).
pub(crate) fn summarized(inner: Arc<dyn AuditSink>) -> Result<Arc<dyn AuditSink>, Box<dyn Error>> {
    let config = SummaryConfig::default().interval(Duration::from_secs(1));
    Ok(Arc::new(SummarizingSink::new(inner, config)?))
}

/// Demo mode: a fresh key, its public key and three tokens written to `dir`.
fn demo(dir: &FsPath) -> Result<(KeySet, VerifierConfig), Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate()?;
    std::fs::write(dir.join("public.paserk"), key.public_key().to_paserk())?;
    let keys = KeySet::single(key.public_key().clone());
    let env: Environment = DEMO_ENV.parse()?;
    let issuer = Issuer::new(key, DEMO_ISSUER, env.clone())?;
    let tokens = [
        (
            "reader",
            "projects:read projects/*/comments:write",
            "read projects, write comments",
        ),
        ("billing", "billing/invoices:read", "read invoices"),
        ("admin", "tokens:revoke", "revoke tokens"),
    ];
    println!("demo: issuer {DEMO_ISSUER}, audience {DEMO_AUDIENCE}, env {DEMO_ENV}");
    for (name, scopes, purpose) in tokens {
        let minted = issuer.issue(
            &TokenRequest::new(format!("demo-{name}"), DEMO_AUDIENCE, scopes.parse()?)
                .purpose(purpose)
                .ttl(Duration::from_secs(3600))
                .allow_broad()
                .escalate(),
        )?;
        let path = dir.join(format!("{name}.token"));
        std::fs::write(&path, minted.token().as_str())?;
        println!(
            "demo: {} ({scopes}), jti {}, valid 1 h",
            path.display(),
            minted.claims().token_id()
        );
    }
    Ok((keys, VerifierConfig::new(DEMO_ISSUER, DEMO_AUDIENCE, env)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let (keys, config) = match &args.demo {
        Some(dir) => demo(dir)?,
        None => {
            let mut keys = KeySet::new();
            for path in &args.public_keys {
                keys.insert(read_public_key(path)?);
            }
            let (Some(iss), Some(aud), Some(env)) = (&args.issuer, &args.audience, &args.env)
            else {
                return Err("--issuer, --audience and --env are required".into());
            };
            (
                keys,
                VerifierConfig::new(iss.as_str(), aud.as_str(), env.parse()?),
            )
        }
    };
    let config = config.accept_jwt(args.accept_jwt);
    let (verifier, revocations): Backing = match &args.store {
        Some(url) => {
            if args.audit_log.is_some() {
                return Err(
                    "--audit-log and --store are exclusive: with a store, audit goes there".into(),
                );
            }
            let url = url.clone();
            // Opening the store blocks (it connects and migrates): off the async workers.
            let store = tokio::task::spawn_blocking(move || Store::open(&url)).await??;
            println!("store: {}", store.url());
            with_store(&store, &keys, config)?
        }
        None => {
            let list = Arc::new(RevocationList::new());
            // Without a store, use-limited tokens are counted in this process only.
            let mut verifier = Verifier::new(keys, config)?
                .with_revocations(list.clone())
                .with_usage_counter(Arc::new(MemoryUsageCounter::new()));
            if let Some(path) = &args.audit_log {
                verifier = verifier.with_audit(summarized(Arc::new(JsonLinesSink::open(path)?))?);
            }
            (Arc::new(verifier), list)
        }
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app(verifier, revocations, args.trusted_proxy_networks)
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
