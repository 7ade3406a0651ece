//! The console's pages: consumers, one consumer with its usage chart, tokens with filters, one
//! token's blast radius, the audit trail; revoke and disable with a confirmation step.

use super::{Operator, error_page, esc, login, login_form, logout, page};
use crate::service::TokenService;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use scopekey::inventory::{InventoryQuery, TokenRecord};
use scopekey::revocation::{RevocationCheck as _, RevocationStatus, Revoker as _};
use scopekey::{ScopeSet, TokenId};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24}\
header{background:#1b1f24;color:#fff;padding:.6em 1.2em}header a{color:#9cd;margin-left:1em}\
main{padding:1em 1.5em}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}\
code{font-size:90%}.error{color:#b00020}.escalated{color:#b35c00;font-weight:600}\
.tree ul{list-style:none;padding-left:1.4em;border-left:1px dotted #999}.tree li{margin:.2em 0}\
.act{display:inline-block;background:#e8f0fe;border-radius:3px;padding:0 .4em;margin-left:.4em;font-size:85%}\
.act.write,.act.delete,.act.admin,.act.any{background:#fde2c8}\
textarea{display:block;font-family:monospace;margin:.4em 0}button{margin-top:.5em}svg{background:#fafafa}";

pub(super) fn router(service: TokenService) -> Router {
    Router::new()
        .route("/console", get(consumers))
        .route("/console/style.css", get(style))
        .route("/console/login", get(login_page).post(login_post))
        .route("/console/logout", axum::routing::post(logout_post))
        .route("/console/consumers/{name}", get(consumer))
        .route(
            "/console/consumers/{name}/disable",
            get(disable_confirm).post(disable),
        )
        .route("/console/tokens", get(tokens))
        .route("/console/tokens/{jti}", get(token))
        .route(
            "/console/tokens/{jti}/revoke",
            get(revoke_confirm).post(revoke),
        )
        .route("/console/audit", get(audit))
        .with_state(service)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        STYLE,
    )
        .into_response()
}

async fn login_page(State(s): State<TokenService>) -> Response {
    login_form(&s, None)
}

async fn login_post(State(s): State<TokenService>, request: Request) -> Response {
    login(s, request).await
}

async fn logout_post(State(s): State<TokenService>, request: Request) -> Response {
    logout(s, request).await
}

/// `text` as one URL path segment (everything but letters and digits percent-encoded), so a
/// consumer name with `/`, `?`, `#` or `..` stays one segment naming that consumer.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn fmt(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn logout_form(op: &Operator) -> String {
    format!(
        "<form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Log out ({})</button></form>",
        esc(&op.csrf),
        esc(op.grant.subject())
    )
}

/// Runs a blocking store call; a failure is an error page.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, scopekey_store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable",
        )),
    }
}

fn or_page(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

async fn consumers(State(s): State<TokenService>, headers: HeaderMap) -> Response {
    or_page(consumers_inner(s, headers).await)
}

async fn consumers_inner(s: TokenService, headers: HeaderMap) -> Result<Response, Response> {
    let op = s
        .viewer(&headers, "consumers:read", "console.consumers", "")
        .await?;
    let store = s.inner.store.clone();
    let now = OffsetDateTime::now_utc();
    let (all, live) = blocking(move || {
        Ok((
            store.consumers()?,
            store.tokens(&InventoryQuery::all().live_at(now))?,
        ))
    })
    .await?;
    let mut rows = String::new();
    for c in &all {
        let mine: Vec<&TokenRecord> = live.iter().filter(|r| r.subject() == c.name()).collect();
        let last = mine
            .iter()
            .filter_map(|r| r.last_used())
            .max()
            .map_or("never".into(), fmt);
        rows.push_str(&format!(
            "<tr><td><a href=\"/console/consumers/{u}\">{n}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c.owner()),
            esc(c.purpose()),
            esc(c.ceiling().as_str()),
            mine.len(),
            esc(&last),
            if c.is_enabled() { "enabled" } else { "<span class=\"error\">disabled</span>" },
            n = esc(c.name()),
            u = esc(&segment(c.name())),
        ));
    }
    let body = format!(
        "{}<table id=\"consumers\"><tr><th>Consumer</th><th>Owner</th><th>Purpose</th><th>Ceiling</th><th>Live tokens</th><th>Last used</th><th>State</th></tr>{rows}</table>",
        logout_form(&op)
    );
    Ok(page(StatusCode::OK, "Consumers", true, &body))
}

async fn consumer(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    or_page(consumer_inner(s, name, headers).await)
}

async fn consumer_inner(
    s: TokenService,
    name: String,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let _op = s
        .viewer(&headers, "consumers:read", "console.consumer", &name)
        .await?;
    let (store, n) = (s.inner.store.clone(), name.clone());
    let now = OffsetDateTime::now_utc();
    let since = now - time::Duration::days(14);
    let (found, live, usage) = blocking(move || {
        let c = store.consumer(&n)?;
        let live = store.tokens(&InventoryQuery::all().subject(n.clone()).live_at(now))?;
        let q = scopekey_store::AuditQuery::new()
            .subject(&n)
            .since(since)
            .limit(scopekey_store::MAX_AUDIT_PAGE);
        Ok((c, live, store.audit_events(&q)?))
    })
    .await?;
    let Some(c) = found else {
        return Err(error_page(StatusCode::NOT_FOUND, "no such consumer"));
    };
    let disable = if c.is_enabled() {
        format!(
            "<p><a id=\"disable\" href=\"/console/consumers/{}/disable\">Disable this consumer…</a></p>",
            esc(&segment(c.name()))
        )
    } else {
        "<p class=\"error\">Disabled: it gets no tokens.</p>".into()
    };
    let body = format!(
        "<table><tr><th>Owner</th><td>{}</td></tr><tr><th>Purpose</th><td>{}</td></tr><tr><th>Environment</th><td>{}</td></tr>\
         <tr><th>Ceiling</th><td><code>{}</code></td></tr><tr><th>Created</th><td>{}</td></tr></table>{disable}\
         <h2>Usage, last 14 days</h2>{}<h2>Live tokens</h2>{}",
        esc(c.owner()),
        esc(c.purpose()),
        esc(c.environment().as_str()),
        esc(c.ceiling().as_str()),
        esc(&fmt(c.created_at())),
        usage_chart(&usage, now),
        token_table(&live),
    );
    Ok(page(StatusCode::OK, c.name(), true, &body))
}

/// A bar per day: the verifications and authorizations the trail counted for the consumer
/// (`token_used` summaries, and single `verified`/`authorized` events).
fn usage_chart(events: &[(i64, String)], now: OffsetDateTime) -> String {
    let mut per_day = [0u64; 14];
    for (_, text) in events {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        let Some(t) = e["time"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        else {
            continue;
        };
        let count = match e["event"].as_str() {
            Some("token_used") => e["verified"].as_u64().unwrap_or(0),
            Some("verified") => 1,
            _ => 0,
        };
        let age = (now - t).whole_days();
        if (0..14).contains(&age) {
            per_day[13 - age as usize] = per_day[13 - age as usize].saturating_add(count);
        }
    }
    let max = per_day.iter().copied().max().unwrap_or(0).max(1);
    let mut bars = String::new();
    for (i, n) in per_day.iter().enumerate() {
        let h = usize::try_from(n.saturating_mul(80) / max).unwrap_or(80);
        bars.push_str(&format!(
            "<rect x=\"{}\" y=\"{}\" width=\"16\" height=\"{h}\" fill=\"#3b6fd8\"><title>{} days ago: {n}</title></rect>",
            i * 20 + 4,
            90 - h,
            13 - i
        ));
    }
    let total = per_day.iter().fold(0u64, |a, n| a.saturating_add(*n));
    format!(
        "<svg id=\"usage\" width=\"284\" height=\"96\" role=\"img\" aria-label=\"{total} verifications in 14 days\">{bars}</svg><p>{total} verifications in 14 days (oldest left).</p>"
    )
}

fn token_table(records: &[TokenRecord]) -> String {
    if records.is_empty() {
        return "<p>None.</p>".into();
    }
    let mut rows = String::new();
    for r in records {
        let escalated = !r.scopes().is_read_only();
        rows.push_str(&format!(
            "<tr><td><a class=\"jti\" href=\"/console/tokens/{j}\">{j}</a></td><td>{}</td><td><code{}>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(r.subject()),
            if escalated { " class=\"escalated\"" } else { "" },
            esc(r.scopes().as_str()),
            esc(&fmt(r.expires_at())),
            esc(&r.last_used().map_or("never".into(), fmt)),
            j = esc(r.token_id().as_str()),
        ));
    }
    format!(
        "<table id=\"tokens\"><tr><th>Token</th><th>Consumer</th><th>Scopes</th><th>Expires</th><th>Last used</th></tr>{rows}</table>"
    )
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFilter {
    show: Option<String>,
    days: Option<u32>,
    hours: Option<u32>,
}

async fn tokens(
    State(s): State<TokenService>,
    filter: Result<Query<TokenFilter>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    or_page(tokens_inner(s, filter, headers).await)
}

async fn tokens_inner(
    s: TokenService,
    filter: Result<Query<TokenFilter>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let _op = s
        .viewer(&headers, "tokens:read", "console.tokens", "")
        .await?;
    let Query(f) = filter.map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.body_text()))?;
    let now = OffsetDateTime::now_utc();
    let days = f.days.unwrap_or(7).min(3650);
    let hours = f.hours.unwrap_or(24).min(24 * 365);
    let mut q = InventoryQuery::all().live_at(now);
    let title = match f.show.as_deref() {
        None | Some("live") => "Live tokens".to_owned(),
        Some("unused") => {
            q = q.unused_since(now - time::Duration::days(i64::from(days)));
            format!("Unused for {days} days")
        }
        Some("expiring") => {
            q = q.expiring_before(now + time::Duration::hours(i64::from(hours)));
            format!("Expiring within {hours} hours")
        }
        Some("escalated") => "Escalated (beyond read)".to_owned(),
        Some(_) => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "show is live, unused, expiring or escalated",
            ));
        }
    };
    let escalated_only = f.show.as_deref() == Some("escalated");
    let store = s.inner.store.clone();
    let records: Vec<TokenRecord> = blocking(move || store.tokens(&q))
        .await?
        .into_iter()
        .filter(|r| !escalated_only || !r.scopes().is_read_only())
        .collect();
    let body = format!(
        "<p><a href=\"/console/tokens\">live</a> · <a href=\"/console/tokens?show=unused&amp;days=7\">unused 7 days</a> · \
         <a href=\"/console/tokens?show=expiring&amp;hours=24\">expiring in 24 h</a> · <a href=\"/console/tokens?show=escalated\">escalated</a></p>\
         <h2>{}</h2>{}",
        esc(&title),
        token_table(&records)
    );
    Ok(page(StatusCode::OK, "Tokens", true, &body))
}

/// A node of a blast-radius tree: the actions allowed at this resource, and its children.
#[derive(Default)]
struct Node {
    actions: BTreeSet<String>,
    children: BTreeMap<String, Node>,
}

/// The resource tree `scopes` can touch, with the actions at each node.
fn blast_radius(scopes: &ScopeSet) -> String {
    let mut root = Node::default();
    for scope in scopes.iter() {
        let mut node = &mut root;
        for segment in scope.resource().segments() {
            node = node.children.entry(segment.to_owned()).or_default();
        }
        node.actions.insert(scope.action().as_str().to_owned());
    }
    fn render(name: &str, node: &Node, out: &mut String) {
        out.push_str("<li><code>");
        out.push_str(&esc(name));
        out.push_str("</code>");
        for a in &node.actions {
            let class = if a == "*" { "any" } else { a.as_str() };
            out.push_str(&format!(
                "<span class=\"act {}\">{}</span>",
                esc(class),
                esc(a)
            ));
        }
        if !node.children.is_empty() {
            out.push_str("<ul>");
            for (child, n) in &node.children {
                render(child, n, out);
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>");
    }
    let mut out = String::from("<div class=\"tree\" id=\"blast-radius\"><ul>");
    for (name, node) in &root.children {
        render(name, node, &mut out);
    }
    out.push_str("</ul></div>");
    out
}

async fn token(
    State(s): State<TokenService>,
    Path(jti): Path<String>,
    headers: HeaderMap,
) -> Response {
    or_page(token_inner(s, jti, headers).await)
}

async fn find_token(s: &TokenService, jti: &str) -> Result<(TokenRecord, bool), Response> {
    let id: TokenId = jti
        .parse()
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "not a token id"))?;
    let store = s.inner.store.clone();
    let record = blocking(move || store.token(&id))
        .await?
        .ok_or_else(|| error_page(StatusCode::NOT_FOUND, "no such token in the inventory"))?;
    let revoked = !matches!(
        s.inner.replica.revocations().status_of(&record.facts()),
        RevocationStatus::NotRevoked
    );
    Ok((record, revoked))
}

async fn token_inner(
    s: TokenService,
    jti: String,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let _op = s
        .viewer(&headers, "tokens:read", "console.token", &jti)
        .await?;
    let (r, revoked) = find_token(&s, &jti).await?;
    let state = if revoked {
        "<p class=\"error\" id=\"state\">Revoked.</p>".to_owned()
    } else if !r.is_live_at(OffsetDateTime::now_utc()) {
        "<p id=\"state\">Expired.</p>".to_owned()
    } else {
        format!(
            "<p id=\"state\">Live. <a id=\"revoke\" href=\"/console/tokens/{}/revoke\">Revoke this token…</a></p>",
            esc(r.token_id().as_str())
        )
    };
    let body = format!(
        "{state}<table><tr><th>Consumer</th><td><a href=\"/console/consumers/{u}\">{s}</a></td></tr><tr><th>Owner</th><td>{}</td></tr>\
         <tr><th>Purpose</th><td>{}</td></tr><tr><th>Scopes</th><td><code>{}</code></td></tr><tr><th>Issued</th><td>{}</td></tr>\
         <tr><th>Expires</th><td>{}</td></tr><tr><th>Last used</th><td>{}</td></tr><tr><th>Key</th><td><code>{}</code></td></tr></table>\
         <h2>Blast radius</h2><p>What this token can touch, resource by resource, with the actions at each; an action on a resource covers everything below it.</p>{}\
         <p><a href=\"/console/audit?jti={j}\">Its audit trail</a></p>",
        esc(r.owner().unwrap_or("-")),
        esc(r.purpose().unwrap_or("-")),
        esc(r.scopes().as_str()),
        esc(&fmt(r.issued_at())),
        esc(&fmt(r.expires_at())),
        esc(&r.last_used().map_or("never".into(), fmt)),
        esc(r.key_id().as_str()),
        blast_radius(r.scopes()),
        s = esc(r.subject()),
        u = esc(&segment(r.subject())),
        j = esc(r.token_id().as_str()),
    );
    Ok(page(
        StatusCode::OK,
        &format!("Token {}", r.token_id()),
        true,
        &body,
    ))
}

fn confirm_form(action: &str, csrf: &str, what: &str, button: &str) -> String {
    format!(
        "<p>{}</p><form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\"><label for=\"reason\">Reason (recorded)</label>\
         <textarea id=\"reason\" name=\"reason\" rows=\"2\" cols=\"60\" required></textarea>\
         <button type=\"submit\" id=\"confirm\">{}</button></form>",
        esc(what),
        esc(action),
        esc(csrf),
        esc(button)
    )
}

async fn revoke_confirm(
    State(s): State<TokenService>,
    Path(jti): Path<String>,
    headers: HeaderMap,
) -> Response {
    or_page(
        async {
            let op = s
                .viewer(&headers, "tokens:revoke", "console.revoke_form", &jti)
                .await?;
            let (r, _) = find_token(&s, &jti).await?;
            let body = confirm_form(
                &format!("/console/tokens/{}/revoke", r.token_id()),
                &op.csrf,
                &format!(
                    "Revoke token {} of {} ({})? Every service refuses it from its next check on.",
                    r.token_id(),
                    r.subject(),
                    r.scopes()
                ),
                "Revoke",
            );
            Ok(page(StatusCode::OK, "Confirm revocation", true, &body))
        }
        .await,
    )
}

async fn revoke(
    State(s): State<TokenService>,
    Path(jti): Path<String>,
    request: Request,
) -> Response {
    or_page(
        async {
            let (op, form) = s.operator_form(request, "tokens:revoke").await?;
            if form.get("confirm") != Some("yes") {
                return Err(error_page(StatusCode::BAD_REQUEST, "not confirmed"));
            }
            let reason = form
                .get("reason")
                .unwrap_or("revoked from the console")
                .to_owned();
            let (r, _) = find_token(&s, &jti).await?;
            // Recorded first: no trail, no revocation from here.
            s.record(&op.grant, "tokens.revoke", r.token_id().as_str())
                .await
                .map_err(|p| error_page(p.status(), p.detail()))?;
            let (service, who, id, exp) = (
                s.clone(),
                crate::admin::by_operator(&op.grant),
                r.token_id().clone(),
                r.expires_at(),
            );
            // With its family or the lineage exchanged from it, as /oauth/revoke does.
            let done = tokio::task::spawn_blocking(move || {
                crate::admin::revoke_with_lineage(&service, &id, Some(exp), &who, &reason)
            })
            .await;
            if !matches!(done, Ok(Ok(_))) {
                return Err(error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the revocation could not be recorded",
                ));
            }
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/console/tokens/{}", r.token_id())) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        .await,
    )
}

async fn disable_confirm(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    or_page(async {
        let op = s.viewer(&headers, "consumers:write", "console.disable_form", &name).await?;
        let (store, n) = (s.inner.store.clone(), name.clone());
        let c = blocking(move || store.consumer(&n))
            .await?
            .ok_or_else(|| error_page(StatusCode::NOT_FOUND, "no such consumer"))?;
        let body = confirm_form(
            &format!("/console/consumers/{}/disable", segment(c.name())),
            &op.csrf,
            &format!(
                "Disable consumer {}? It gets no more tokens, and every token it holds is revoked now.",
                c.name()
            ),
            "Disable",
        );
        Ok(page(StatusCode::OK, "Confirm disabling", true, &body))
    }
    .await)
}

async fn disable(
    State(s): State<TokenService>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    or_page(
        async {
            let (op, form) = s.operator_form(request, "consumers:write").await?;
            if form.get("confirm") != Some("yes") {
                return Err(error_page(StatusCode::BAD_REQUEST, "not confirmed"));
            }
            let reason = form
                .get("reason")
                .unwrap_or("disabled from the console")
                .to_owned();
            s.record(&op.grant, "consumers.disable", &name)
                .await
                .map_err(|p| error_page(p.status(), p.detail()))?;
            let (store, n, who) = (
                s.inner.store.clone(),
                name.clone(),
                crate::admin::by_operator(&op.grant),
            );
            let record = blocking(move || store.disable_consumer(&n, &who, &reason))
                .await?
                .ok_or_else(|| error_page(StatusCode::NOT_FOUND, "no such consumer"))?;
            let _ = s.inner.replica.adopt(record);
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/console/consumers/{}", segment(&name)))
            {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
        .await,
    )
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFilter {
    jti: Option<String>,
    subject: Option<String>,
    event: Option<String>,
}

async fn audit(
    State(s): State<TokenService>,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    or_page(async {
        let _op = s.viewer(&headers, "audit:read", "console.audit", "").await?;
        let Query(f) = filter.map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.body_text()))?;
        let mut q = scopekey_store::AuditQuery::new().limit(200);
        if let Some(v) = f.jti.as_deref().filter(|v| !v.is_empty()) {
            q = q.jti(v);
        }
        if let Some(v) = f.subject.as_deref().filter(|v| !v.is_empty()) {
            q = q.subject(v);
        }
        if let Some(v) = f.event.as_deref().filter(|v| !v.is_empty()) {
            q = q.kind(v);
        }
        let store = s.inner.store.clone();
        let rows = blocking(move || store.audit_events(&q)).await?;
        let mut table = String::new();
        for (_, text) in rows.iter().rev() {
            let e: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            let mut rest = e.clone();
            if let Some(m) = rest.as_object_mut() {
                for k in ["time", "event", "sub", "jti"] {
                    m.remove(k);
                }
            }
            table.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(e["time"].as_str().unwrap_or("")),
                esc(e["event"].as_str().unwrap_or("")),
                esc(e["sub"].as_str().unwrap_or("")),
                esc(e["jti"].as_str().unwrap_or("")),
                esc(&rest.to_string()),
            ));
        }
        let value = |v: &Option<String>| esc(v.as_deref().unwrap_or(""));
        let body = format!(
            "<form method=\"get\" action=\"/console/audit\"><label>Token <input name=\"jti\" value=\"{}\"></label> \
             <label>Consumer <input name=\"subject\" value=\"{}\"></label> <label>Event <input name=\"event\" value=\"{}\"></label> \
             <button type=\"submit\">Filter</button></form><table id=\"audit\"><tr><th>Time</th><th>Event</th><th>Consumer</th><th>Token</th><th>Details</th></tr>{table}</table>",
            value(&f.jti),
            value(&f.subject),
            value(&f.event),
        );
        Ok(page(StatusCode::OK, "Audit trail", true, &body))
    }
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blast_radius_is_the_resource_tree_with_actions() {
        let scopes: ScopeSet = "projects:read projects/42/comments:write billing/invoices:read"
            .parse()
            .unwrap();
        let html = blast_radius(&scopes);
        let projects = html
            .find("<code>projects</code><span class=\"act read\">read</span>")
            .unwrap();
        let comments = html
            .find("<code>comments</code><span class=\"act write\">write</span>")
            .unwrap();
        assert!(projects < comments, "{html}");
        assert!(html.contains("<code>42</code><ul>"), "{html}");
        assert!(
            html.find("<code>billing</code><ul><li><code>invoices</code><span class=\"act read\">")
                .unwrap()
                < projects
        );
    }
}
