//! The admin routes: consumers, tokens and revocations, keys, audit.

use super::{Problem, blocking, read_json};
use crate::service::TokenService;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scopekey::consumer::Consumer;
use scopekey::inventory::{InventoryQuery, TokenRecord};
use scopekey::revocation::{RevocationCheck as _, RevocationTarget, Revoker as _};
use scopekey::{PublicKey, ScopeSet, TokenId};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(super) fn router(service: TokenService) -> Router {
    Router::new()
        .route(
            "/admin/consumers",
            get(list_consumers).post(create_consumer),
        )
        .route(
            "/admin/consumers/{name}",
            get(show_consumer).patch(edit_consumer),
        )
        .route("/admin/consumers/{name}/disable", post(disable_consumer))
        .route("/admin/consumers/{name}/enable", post(enable_consumer))
        .route(
            "/admin/consumers/{name}/credentials",
            post(rotate_credentials),
        )
        .route(
            "/admin/consumers/{name}/operator",
            axum::routing::put(set_operator).delete(remove_operator),
        )
        .route("/admin/tokens", get(list_tokens))
        .route("/admin/tokens/{jti}", get(show_token))
        .route("/admin/revocations", post(revoke))
        .route("/admin/keys", get(list_keys).post(add_key))
        .route("/admin/keys/{kid}/retire", post(retire_key))
        .route("/admin/audit", get(audit))
        .with_state(service)
}

type Answer = Result<Response, Problem>;

/// A query string, or why it does not parse (answered as a problem, after authorization).
type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn fmt(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn parse_time(name: &str, text: &str) -> Result<OffsetDateTime, Problem> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| Problem::invalid(format!("{name} is not an RFC 3339 time")))
}

pub(crate) fn consumer_json(c: &Consumer) -> Value {
    json!({
        "name": c.name(), "owner": c.owner(), "purpose": c.purpose(),
        "env": c.environment().as_str(), "ceiling": c.ceiling().as_str(),
        "created": fmt(c.created_at()), "disabled": c.disabled_at().map(fmt),
        "networks": c.networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// `networks` of a request body as CIDR blocks, applied to `c` (a bad one is a 400).
fn with_networks(c: Consumer, networks: &[String]) -> Result<Consumer, Problem> {
    let parsed = networks
        .iter()
        .map(|n| n.parse::<scopekey::Network>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::invalid(format!("networks: {e}")))?;
    c.with_networks(parsed)
        .map_err(|e| Problem::invalid(e.to_string()))
}

pub(crate) fn token_json(r: &TokenRecord) -> Value {
    json!({
        "jti": r.token_id().as_str(), "type": r.token_type().as_str(), "subject": r.subject(),
        "owner": r.owner(), "purpose": r.purpose(), "scopes": r.scopes().as_str(),
        "escalated": !r.scopes().is_read_only(),
        "issued": fmt(r.issued_at()), "expires": fmt(r.expires_at()),
        "last_used": r.last_used().map(fmt), "kid": r.key_id().as_str(),
        "family": r.family().map(|f| f.as_str().to_owned()),
    })
}

fn ok(status: StatusCode, body: Value) -> Answer {
    Ok((
        status,
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response())
}

/// A scope list as JSON: a space-separated string or an array of scopes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

impl Scopes {
    fn parse(&self, allow_broad: bool) -> Result<ScopeSet, Problem> {
        let text = match self {
            Self::Text(t) => t.clone(),
            Self::List(l) => l.join(" "),
        };
        let set: ScopeSet = text
            .parse()
            .map_err(|e| Problem::invalid(format!("ceiling: {e}")))?;
        if set.is_broad() && !allow_broad {
            return Err(Problem::invalid(
                "the ceiling holds a broad scope: send \"allow_broad\": true if that is really meant",
            ));
        }
        Ok(set)
    }
}

async fn list_consumers(State(s): State<TokenService>, request: Request) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "consumers:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "consumers.list", "").await?;
    let store = s.inner.store.clone();
    let all = blocking(move || store.consumers()).await?;
    ok(
        StatusCode::OK,
        json!({ "consumers": all.iter().map(consumer_json).collect::<Vec<_>>() }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConsumer {
    name: String,
    owner: String,
    purpose: String,
    env: Option<String>,
    ceiling: Scopes,
    #[serde(default)]
    allow_broad: bool,
    /// CIDR blocks every token of the consumer is limited to.
    #[serde(default)]
    networks: Vec<String>,
}

async fn create_consumer(State(s): State<TokenService>, request: Request) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let new: NewConsumer = read_json(&parts.headers, body).await?;
    let env = match &new.env {
        Some(e) => e
            .parse()
            .map_err(|e| Problem::invalid(format!("env: {e}")))?,
        None => s.config().environment().clone(),
    };
    let ceiling = new.ceiling.parse(new.allow_broad)?;
    let consumer = Consumer::new(&new.name, &new.owner, &new.purpose, env, ceiling)
        .map_err(|e| Problem::invalid(e.to_string()))?;
    let consumer = with_networks(consumer, &new.networks)?;
    let (store, c) = (s.inner.store.clone(), consumer.clone());
    let exists = blocking({
        let store = store.clone();
        let name = new.name.clone();
        move || store.consumer(&name)
    })
    .await?;
    if exists.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("consumer {:?} already exists", new.name),
        ));
    }
    blocking(move || store.add_consumer(&c)).await?;
    s.record(&grant, "consumers.create", consumer.name())
        .await?;
    ok(StatusCode::CREATED, consumer_json(&consumer))
}

async fn find(s: &TokenService, name: &str) -> Result<Consumer, Problem> {
    let (store, n) = (s.inner.store.clone(), name.to_owned());
    blocking(move || store.consumer(&n)).await?.ok_or_else(|| {
        Problem::not_found(format!(
            "no consumer {:?}",
            name.chars().take(60).collect::<String>()
        ))
    })
}

async fn show_consumer(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "consumers:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "consumers.show", &name).await?;
    let c = find(&s, &name).await?;
    let now = OffsetDateTime::now_utc();
    let (store, n) = (s.inner.store.clone(), name.clone());
    let live =
        blocking(move || store.tokens(&InventoryQuery::all().subject(n).live_at(now))).await?;
    let (store, n) = (s.inner.store.clone(), name.clone());
    let operator = blocking(move || store.operator_scopes(&n)).await?;
    let mut body = consumer_json(&c);
    body["operator_scopes"] = operator.map(|o| o.as_str().to_owned()).into();
    body["live_tokens"] = live.iter().map(token_json).collect::<Vec<_>>().into();
    ok(StatusCode::OK, body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumerEdit {
    owner: Option<String>,
    purpose: Option<String>,
    ceiling: Option<Scopes>,
    #[serde(default)]
    allow_broad: bool,
    /// Replaces the consumer's networks (`[]` lifts the limit); absent, they are kept.
    networks: Option<Vec<String>>,
}

async fn edit_consumer(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let edit: ConsumerEdit = read_json(&parts.headers, body).await?;
    let c = find(&s, &name).await?;
    let ceiling = match &edit.ceiling {
        Some(sc) => sc.parse(edit.allow_broad)?,
        None => c.ceiling().clone(),
    };
    let updated = Consumer::from_parts(
        c.name(),
        edit.owner.as_deref().unwrap_or(c.owner()),
        edit.purpose.as_deref().unwrap_or(c.purpose()),
        c.environment().clone(),
        ceiling,
        c.created_at(),
        c.disabled_at(),
    )
    .map_err(|e| Problem::invalid(e.to_string()))?;
    let kept: Vec<String> = c.networks().iter().map(ToString::to_string).collect();
    let updated = with_networks(updated, edit.networks.as_deref().unwrap_or(&kept))?;
    let (store, u) = (s.inner.store.clone(), updated.clone());
    blocking(move || store.update_consumer(&u)).await?;
    s.record(&grant, "consumers.edit", c.name()).await?;
    ok(StatusCode::OK, consumer_json(&updated))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

async fn disable_consumer(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let Reason { reason } = read_json(&parts.headers, body).await?;
    let (store, n, who) = (
        s.inner.store.clone(),
        name.clone(),
        super::by_operator(&grant),
    );
    let record = blocking(move || store.disable_consumer(&n, &who, &reason))
        .await?
        .ok_or_else(|| Problem::not_found("no such consumer"))?;
    // Effective here at once, not at the replica's next sync.
    let _ = s.inner.replica.adopt(record.clone());
    s.record(&grant, "consumers.disable", &name).await?;
    ok(
        StatusCode::OK,
        json!({ "disabled": name, "revoked": record.target().to_string() }),
    )
}

async fn enable_consumer(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let (store, n) = (s.inner.store.clone(), name.clone());
    if !blocking(move || store.enable_consumer(&n)).await? {
        return Err(Problem::not_found("no such consumer"));
    }
    s.record(&grant, "consumers.enable", &name).await?;
    ok(StatusCode::OK, json!({ "enabled": name }))
}

async fn rotate_credentials(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let (store, n) = (s.inner.store.clone(), name.clone());
    let secret = blocking(move || store.rotate_client_secret(&n)).await?;
    s.record(&grant, "consumers.credentials", &name).await?;
    let mut response = ok(
        StatusCode::OK,
        json!({ "client_id": secret.client_id(), "client_secret": secret.expose_secret() }),
    )?;
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFilters {
    subject: Option<String>,
    owner: Option<String>,
    unused_since: Option<String>,
    expiring_before: Option<String>,
    live: Option<bool>,
}

async fn list_tokens(
    State(s): State<TokenService>,
    f: QueryResult<TokenFilters>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "tokens:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "tokens.list", parts.uri.query().unwrap_or(""))
        .await?;
    let Query(f) = f.map_err(|e| Problem::invalid(e.body_text()))?;
    let mut q = InventoryQuery::all();
    if let Some(v) = f.subject {
        q = q.subject(v);
    }
    if let Some(v) = f.owner {
        q = q.owner(v);
    }
    if let Some(v) = &f.unused_since {
        q = q.unused_since(parse_time("unused_since", v)?);
    }
    if let Some(v) = &f.expiring_before {
        q = q.expiring_before(parse_time("expiring_before", v)?);
    }
    if f.live == Some(true) {
        q = q.live_at(OffsetDateTime::now_utc());
    }
    let store = s.inner.store.clone();
    let records = blocking(move || store.tokens(&q)).await?;
    ok(
        StatusCode::OK,
        json!({ "tokens": records.iter().map(token_json).collect::<Vec<_>>() }),
    )
}

async fn show_token(
    State(s): State<TokenService>,
    Path(jti): Path<String>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "tokens:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "tokens.show", &jti).await?;
    let id: TokenId = jti
        .parse()
        .map_err(|e| Problem::invalid(format!("jti: {e}")))?;
    let store = s.inner.store.clone();
    let record = blocking(move || store.token(&id))
        .await?
        .ok_or_else(|| Problem::not_found("no such token in the inventory"))?;
    let mut body = token_json(&record);
    let status = s.inner.replica.revocations().status_of(&record.facts());
    body["revoked"] =
        (!matches!(status, scopekey::revocation::RevocationStatus::NotRevoked)).into();
    ok(StatusCode::OK, body)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevocationRequest {
    jti: Option<String>,
    family: Option<String>,
    subject: Option<String>,
    key_id: Option<String>,
    issued_before: Option<String>,
    reason: String,
}

async fn revoke(State(s): State<TokenService>, request: Request) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "tokens:revoke")?;
    let r: RevocationRequest = read_json(&parts.headers, body).await?;
    let before = r
        .issued_before
        .as_deref()
        .map(|t| parse_time("issued_before", t))
        .transpose()?;
    let bad = |what: &str, e: &dyn std::fmt::Display| Problem::invalid(format!("{what}: {e}"));
    let target = match (&r.jti, &r.family, &r.subject, &r.key_id, before) {
        (Some(j), None, None, None, None) => RevocationTarget::Token {
            token_id: j.parse().map_err(|e| bad("jti", &e))?,
            expires_at: None,
        },
        (None, Some(f), None, None, None) => {
            RevocationTarget::Family(f.parse().map_err(|e| bad("family", &e))?)
        }
        (None, None, Some(sub), None, before) => RevocationTarget::Subject {
            subject: sub.clone(),
            issued_before: before,
        },
        (None, None, None, Some(k), None) => {
            RevocationTarget::Key(k.parse().map_err(|e| bad("key_id", &e))?)
        }
        (None, None, None, None, Some(t)) => RevocationTarget::IssuedBefore(t),
        _ => {
            return Err(Problem::invalid(
                "give one of jti, family, key_id, subject (optionally with issued_before) or issued_before",
            ));
        }
    };
    let covers = target.to_string();
    let (service, who, reason) = (s.clone(), super::by_operator(&grant), r.reason);
    let record = tokio::task::spawn_blocking(move || match target {
        // One token: with its family or the lineage exchanged from it, as /oauth/revoke does.
        RevocationTarget::Token { token_id, .. } => {
            super::revoke_with_lineage(&service, &token_id, None, &who, &reason)
        }
        other => service
            .inner
            .replica
            .revoke(other, &who, &reason)
            .map_err(|e| e.to_string()),
    })
    .await
    .map_err(|_| Problem::unavailable("the revocation did not finish"))?
    .map_err(|e| Problem::invalid(format!("not revoked: {e}")))?;
    s.record(&grant, "tokens.revoke", &covers).await?;
    ok(
        StatusCode::CREATED,
        json!({ "revoked": record.target().to_string(), "by": record.by(), "reason": record.reason() }),
    )
}

async fn list_keys(State(s): State<TokenService>, request: Request) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "keys:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "keys.list", "").await?;
    let store = s.inner.store.clone();
    let keys = blocking(move || store.key_set()).await?;
    let now = OffsetDateTime::now_utc();
    let list: Vec<Value> = keys
        .iter()
        .map(|e| {
            json!({
                "kid": e.key().key_id().as_str(), "public_key": e.key().to_paserk(),
                "not_before": e.not_before().map(fmt), "retire_at": e.retire_at().map(fmt),
                "active": e.is_active_at(now),
            })
        })
        .collect();
    ok(StatusCode::OK, json!({ "keys": list }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    public_key: String,
    not_before: Option<String>,
}

async fn add_key(State(s): State<TokenService>, request: Request) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "keys:write")?;
    let new: NewKey = read_json(&parts.headers, body).await?;
    let key = PublicKey::from_paserk(new.public_key.trim())
        .map_err(|e| Problem::invalid(format!("public_key: {e}")))?;
    let nb = new
        .not_before
        .as_deref()
        .map(|t| parse_time("not_before", t))
        .transpose()?;
    let (store, k) = (s.inner.store.clone(), key.clone());
    blocking(move || store.add_key(&k, nb)).await?;
    s.record(&grant, "keys.add", key.key_id().as_str()).await?;
    ok(StatusCode::CREATED, json!({ "kid": key.key_id().as_str() }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retire {
    at: Option<String>,
}

async fn retire_key(
    State(s): State<TokenService>,
    Path(kid): Path<String>,
    request: Request,
) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "keys:write")?;
    let retire: Retire = if parts.headers.contains_key(axum::http::header::CONTENT_TYPE) {
        read_json(&parts.headers, body).await?
    } else {
        Retire::default()
    };
    let at = retire
        .at
        .as_deref()
        .map(|t| parse_time("at", t))
        .transpose()?;
    let id: scopekey::KeyId = kid
        .parse()
        .map_err(|e| Problem::invalid(format!("kid: {e}")))?;
    let store = s.inner.store.clone();
    let id2 = id.clone();
    if !blocking(move || store.retire_key(&id2, at)).await? {
        return Err(Problem::not_found("no such key"));
    }
    s.record(&grant, "keys.retire", id.as_str()).await?;
    ok(StatusCode::OK, json!({ "retired": id.as_str() }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFilters {
    jti: Option<String>,
    subject: Option<String>,
    event: Option<String>,
    since: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn audit(
    State(s): State<TokenService>,
    f: QueryResult<AuditFilters>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "audit:read")?;
    // Reads are actions too: recorded before anything is read (no trail, no answer).
    s.record(&grant, "audit.query", parts.uri.query().unwrap_or(""))
        .await?;
    let Query(f) = f.map_err(|e| Problem::invalid(e.body_text()))?;
    let mut q = scopekey_store::AuditQuery::new().limit(f.limit.unwrap_or(100));
    if let Some(v) = &f.jti {
        q = q.jti(v);
    }
    if let Some(v) = &f.subject {
        q = q.subject(v);
    }
    if let Some(v) = &f.event {
        q = q.kind(v);
    }
    if let Some(v) = &f.since {
        q = q.since(parse_time("since", v)?);
    }
    if let Some(v) = f.after {
        q = q.after(v);
    }
    let store = s.inner.store.clone();
    let rows = blocking(move || store.audit_events(&q)).await?;
    let events: Vec<Value> = rows
        .iter()
        .map(|(id, text)| {
            let mut e: Value =
                serde_json::from_str(text).unwrap_or_else(|_| json!({ "unreadable": true }));
            e["id"] = (*id).into();
            e
        })
        .collect();
    let next = rows.last().map(|(id, _)| *id);
    ok(
        StatusCode::OK,
        json!({ "events": events, "next_after": next }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorScopes {
    scopes: Scopes,
}

/// `PUT /admin/consumers/{name}/operator`: the consumer may hold these admin scopes for the
/// admin audience. Only admin scopes the caller holds itself can be given: no admin makes a
/// stronger one.
async fn set_operator(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, body) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let OperatorScopes { scopes } = read_json(&parts.headers, body).await?;
    let scopes = scopes.parse(false)?;
    let admin: ScopeSet = super::ADMIN_SCOPES
        .parse()
        .map_err(|_| Problem::unavailable("the admin scopes do not parse"))?;
    let not_admin: Vec<String> = scopes
        .iter()
        .filter(|x| !admin.contains(x))
        .map(ToString::to_string)
        .collect();
    if !not_admin.is_empty() {
        return Err(Problem::invalid(format!(
            "not admin scopes: {}",
            not_admin.join(" ")
        )));
    }
    let beyond: Vec<String> = scopes
        .iter()
        .filter(|x| !grant.claims().scopes().contains(x))
        .map(ToString::to_string)
        .collect();
    if !beyond.is_empty() {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "an operator can only be given admin scopes you hold: {}",
                beyond.join(" ")
            ),
        ));
    }
    let (store, n, sc) = (s.inner.store.clone(), name.clone(), scopes.clone());
    blocking(move || store.set_operator_scopes(&n, Some(&sc))).await?;
    s.record(
        &grant,
        "consumers.operator",
        &format!("{name}: {}", scopes.as_str()),
    )
    .await?;
    ok(
        StatusCode::OK,
        json!({ "operator": name, "scopes": scopes.as_str() }),
    )
}

/// `DELETE /admin/consumers/{name}/operator`: no more admin tokens for it (those issued stay
/// valid until they expire: revoke them with `POST /admin/revocations` if they must go now).
async fn remove_operator(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Answer {
    let (parts, _) = request.into_parts();
    let grant = s.admit(&parts, "consumers:write")?;
    let (store, n) = (s.inner.store.clone(), name.clone());
    blocking(move || store.set_operator_scopes(&n, None)).await?;
    s.record(&grant, "consumers.operator_removed", &name)
        .await?;
    ok(StatusCode::OK, json!({ "operator_removed": name }))
}
