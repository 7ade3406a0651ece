//! The operator console at `/console`: server-rendered HTML that works without JavaScript.
//!
//! - **Login** by an admin token (the admin API's), which becomes a session: a random session
//!   id in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/console`, `Secure` when the issuer
//!   is `https://`), the token kept server-side in memory (cleared on drop), the session
//!   ending when the token expires, is revoked, or the operator logs out. Every page checks
//!   the token again, with the scope it needs.
//! - **CSRF**: every form carries a per-session token (the login form a per-visit one, also
//!   in a cookie: double submit), compared in constant time; `SameSite=Strict` besides.
//! - **Headers**: a strict Content-Security-Policy (no script at all), `no-store`,
//!   `nosniff`, `no-referrer`, and no framing.

// A page's early answer (the login redirect, an error page) is the `Err` of its steps: a whole
// response, built once per request, not worth boxing.
#![allow(clippy::result_large_err)]

mod pages;

use crate::form::Form;
use crate::service::TokenService;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The session cookie's name.
const SESSION_COOKIE: &str = "scopekey_console";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "scopekey_console_login";
/// The most sessions held at once (only a valid admin token opens one).
const MAX_SESSIONS: usize = 1024;

/// An operator's session.
struct Session {
    token: Zeroizing<String>,
    /// The admin token's id: one session per token.
    jti: String,
    csrf: String,
    until: Instant,
}

/// The live sessions, by id.
#[derive(Default)]
pub(crate) struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

/// 32 random bytes, base64url.
fn random_id() -> Option<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

impl Sessions {
    /// Opens a session for `token`, valid for `lifetime`; returns its id and CSRF token.
    fn open(&self, token: &str, jti: &str, lifetime: Duration) -> Option<(String, String)> {
        let (id, csrf) = (random_id()?, random_id()?);
        let now = Instant::now();
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A new login with the same token replaces its earlier session: one token cannot
        // fill the table.
        table.retain(|_, s| s.jti != jti);
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| s.until > now);
            if table.len() >= MAX_SESSIONS {
                return None;
            }
        }
        table.insert(
            id.clone(),
            Session {
                token: Zeroizing::new(token.to_owned()),
                jti: jti.to_owned(),
                csrf: csrf.clone(),
                until: now + lifetime,
            },
        );
        Some((id, csrf))
    }

    /// The token and CSRF token of a live session.
    fn get(&self, id: &str) -> Option<(Zeroizing<String>, String)> {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match table.get(id) {
            Some(s) if s.until > Instant::now() => Some((s.token.clone(), s.csrf.clone())),
            Some(_) => {
                table.remove(id);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.remove(id);
    }
}

/// The value of cookie `name`, if the request carries exactly one.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let text = value.to_str().ok()?;
        if text.len() > 8192 {
            return None;
        }
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v);
            }
        }
    }
    found
}

/// Constant-time equality of two CSRF tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// HTML-escapes `text`.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A page: the console's frame around `body`, with its security headers.
pub(crate) fn page(status: StatusCode, title: &str, nav: bool, body: &str) -> Response {
    let nav = if nav {
        r#"<nav><a href="/console">Consumers</a> <a href="/console/tokens">Tokens</a> <a href="/console/audit">Audit</a></nav>"#
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · scopekey</title>\
         <link rel=\"stylesheet\" href=\"/console/style.css\"></head><body><header><strong>scopekey console</strong> {nav}</header>\
         <main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An error page.
pub(crate) fn error_page(status: StatusCode, detail: &str) -> Response {
    page(
        status,
        status.canonical_reason().unwrap_or("Error"),
        true,
        &format!("<p class=\"error\">{}</p>", esc(detail)),
    )
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A logged-in operator on a request: the admin grant (with the page's scope) and the
/// session's CSRF token.
pub(crate) struct Operator {
    pub(crate) grant: scopekey::Grant,
    pub(crate) csrf: String,
}

impl TokenService {
    fn secure_cookies(&self) -> bool {
        self.config().issuer().starts_with("https://")
    }

    /// The operator of a request, holding `scope`; otherwise the response to send (the login
    /// page for no or an ended session, 403 for a missing scope).
    pub(crate) fn operator(
        &self,
        headers: &HeaderMap,
        scope: &'static str,
    ) -> Result<Operator, Response> {
        let Some(id) = session_cookie(headers, self.secure_cookies()) else {
            return Err(redirect("/console/login"));
        };
        let Some((token, csrf)) = self.inner.sessions.get(id) else {
            return Err(redirect("/console/login"));
        };
        match self.admit_token(&token, None, scope) {
            Ok(grant) => Ok(Operator { grant, csrf }),
            Err(p) if p.status() == StatusCode::FORBIDDEN => Err(error_page(
                StatusCode::FORBIDDEN,
                &format!("your admin token does not hold {scope}"),
            )),
            Err(_) => {
                // Expired or revoked: the session ends with it.
                self.inner.sessions.close(id);
                Err(redirect("/console/login"))
            }
        }
    }

    /// [`operator`](Self::operator), with the page view recorded in the audit trail first (no
    /// trail, no page).
    pub(crate) async fn viewer(
        &self,
        headers: &HeaderMap,
        scope: &'static str,
        action: &'static str,
        target: &str,
    ) -> Result<Operator, Response> {
        let operator = self.operator(headers, scope)?;
        self.record(&operator.grant, action, target)
            .await
            .map_err(|p| error_page(p.status(), p.detail()))?;
        Ok(operator)
    }

    /// A form POST of a logged-in operator: its form, after the CSRF check.
    pub(crate) async fn operator_form(
        &self,
        request: axum::extract::Request,
        scope: &'static str,
    ) -> Result<(Operator, Form), Response> {
        let (parts, body) = request.into_parts();
        let operator = self.operator(&parts.headers, scope)?;
        let form = Form::read(&parts.headers, body)
            .await
            .map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.description()))?;
        match form.get("csrf") {
            Some(c) if same(c, &operator.csrf) => Ok((operator, form)),
            _ => Err(error_page(
                StatusCode::FORBIDDEN,
                "the form's CSRF token is missing or wrong: reload the page and try again",
            )),
        }
    }
}

/// The `/console` routes.
pub(crate) fn router(service: &TokenService) -> Router {
    pages::router(service.clone())
}

/// `GET /console/login`: the form, with a fresh double-submit token.
pub(crate) fn login_form(service: &TokenService, message: Option<&str>) -> Response {
    let Some(nonce) = random_id() else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, "no randomness");
    };
    let note = message.map_or(String::new(), |m| {
        format!("<p class=\"error\">{}</p>", esc(m))
    });
    let body = format!(
        "{note}<form method=\"post\" action=\"/console/login\"><input type=\"hidden\" name=\"csrf\" value=\"{nonce}\">\
         <label for=\"token\">Admin token</label><textarea id=\"token\" name=\"token\" rows=\"4\" cols=\"80\" autocomplete=\"off\" required></textarea>\
         <button type=\"submit\" id=\"login\">Log in</button></form>\
         <p>An admin token is a token of this issuer for <code>{}/admin</code> (for instance from <code>scopekey serve --bootstrap-admin</code>).</p>",
        esc(service.config().issuer())
    );
    let mut r = page(StatusCode::OK, "Log in", false, &body);
    set_cookie(&mut r, LOGIN_COOKIE, &nonce, 600, service.secure_cookies());
    r
}

/// A cookie's name: with the `__Host-` prefix under TLS (the browser then refuses it unless it
/// is `Secure`, for the whole origin and set by this host, so a sibling subdomain cannot plant
/// one), bare on plain-HTTP loopback (where the prefix cannot be used).
fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The session id cookie of a request.
fn session_cookie(headers: &HeaderMap, secure: bool) -> Option<&str> {
    cookie(headers, &cookie_name(SESSION_COOKIE, secure))
}

fn set_cookie(r: &mut Response, base: &str, value: &str, max_age: i64, secure: bool) {
    let name = cookie_name(base, secure);
    let attributes = if secure {
        "Path=/; Secure"
    } else {
        "Path=/console"
    };
    let text =
        format!("{name}={value}; {attributes}; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&text) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /console/login`.
pub(crate) async fn login(service: TokenService, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let form = match Form::read(&parts.headers, body).await {
        Ok(f) => f,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.description()),
    };
    let csrf_ok = matches!(
        (
            form.get("csrf"),
            cookie(&parts.headers, &cookie_name(LOGIN_COOKIE, service.secure_cookies()))
        ),
        (Some(a), Some(b)) if same(a, b)
    );
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "the login form's CSRF token is missing or wrong: reload the login page",
        );
    }
    let Some(token) = form.get("token").map(str::trim) else {
        return login_form(&service, Some("paste an admin token"));
    };
    // Any admin scope opens a session; each page checks its own.
    let grant = match service
        .admit_token(token, None, "consumers:read")
        .or_else(|_| service.admit_token(token, None, "tokens:read"))
        .or_else(|_| service.admit_token(token, None, "audit:read"))
    {
        Ok(g) => g,
        Err(p) => return login_form(&service, Some(&format!("refused: {}", p.detail()))),
    };
    let left = (grant.claims().expires_at() - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .max(1);
    let Some((id, _)) = service.inner.sessions.open(
        token,
        grant.claims().token_id().as_str(),
        Duration::from_secs(left.unsigned_abs()),
    ) else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sessions: try again later",
        );
    };
    if let Err(p) = service
        .record(&grant, "console.login", grant.subject())
        .await
    {
        service.inner.sessions.close(&id);
        return error_page(p.status(), p.detail());
    }
    let mut r = redirect("/console");
    set_cookie(&mut r, SESSION_COOKIE, &id, left, service.secure_cookies());
    set_cookie(&mut r, LOGIN_COOKIE, "", 0, service.secure_cookies());
    r
}

/// `POST /console/logout`.
pub(crate) async fn logout(service: TokenService, request: axum::extract::Request) -> Response {
    let headers = request.headers().clone();
    let (parts, body) = request.into_parts();
    let Some(id) = session_cookie(&headers, service.secure_cookies()) else {
        return redirect("/console/login");
    };
    let Some((_, csrf)) = service.inner.sessions.get(id) else {
        return redirect("/console/login");
    };
    let form = match Form::read(&parts.headers, body).await {
        Ok(f) => f,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.description()),
    };
    if !form.get("csrf").is_some_and(|c| same(c, &csrf)) {
        return error_page(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong",
        );
    }
    service.inner.sessions.close(id);
    let mut r = redirect("/console/login");
    set_cookie(&mut r, SESSION_COOKIE, "", 0, service.secure_cookies());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_cookies_read_strictly() {
        assert_eq!(
            esc("<a href=\"x\">&'\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;?"
        );
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; scopekey_console=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("scopekey_console=other"),
        );
        assert_eq!(
            cookie(&h, SESSION_COOKIE),
            None,
            "two session cookies: none"
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn sessions_are_bounded_and_expire() {
        let s = Sessions::default();
        let (id, csrf) = s.open("t", "j", Duration::from_millis(30)).unwrap();
        assert_eq!(id.len(), 43);
        assert_eq!(s.get(&id).unwrap().1, csrf);
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.get(&id).is_none());
        // One session per token: logging in again replaces it.
        let (first, _) = s.open("t", "j", Duration::from_secs(60)).unwrap();
        let (second, _) = s.open("t", "j", Duration::from_secs(60)).unwrap();
        assert!(s.get(&first).is_none() && s.get(&second).is_some());
        for i in 1..MAX_SESSIONS {
            s.open("t", &i.to_string(), Duration::from_secs(60))
                .unwrap();
        }
        assert!(s.open("t", "one more", Duration::from_secs(60)).is_none());
    }
}
