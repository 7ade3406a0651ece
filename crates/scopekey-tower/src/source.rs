//! Where the layer finds the token: [`TokenSource`], configured in order with
//! [`AuthState::token_sources`](crate::AuthState::token_sources).
//!
//! Reading is bounded and never panics: cookies are parsed as bytes, at most
//! [`MAX_COOKIE_BYTES`] and [`MAX_COOKIES`]; a query string is read once.

use crate::rejection::{Rejection, bearer_token, is_b64token};
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, Uri};
use std::fmt;
use std::sync::Arc;

/// The most bytes of `Cookie` headers the cookie source reads (all lines together); a request
/// with more is refused with 400 `invalid_request` (the token could be beyond what was read).
pub const MAX_COOKIE_BYTES: usize = 16 * 1024;

/// The most cookies the cookie source reads; a request with more is refused as for
/// [`MAX_COOKIE_BYTES`].
pub const MAX_COOKIES: usize = 128;

/// One place a request may carry its token.
///
/// | source | reads | for |
/// |---|---|---|
/// | [`bearer`](Self::bearer) (the default) | `Authorization: Bearer <token>` (RFC 6750 §2.1) | API clients |
/// | [`cookie`](Self::cookie) | the named cookie of the `Cookie` header | browsers; see its `# Security` |
/// | [`header`](Self::header) | a custom header holding the bare token | gateways with their own header |
/// | [`query`](Self::query) | a query parameter, removed from the URI before the handler | WebSocket upgrades only |
///
/// The token is the same `b64token` in every source. A request may carry it in several
/// configured sources if it is the same token; two different tokens are a 400
/// `invalid_request`, never a guess.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource(pub(crate) SourceKind);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Bearer,
    Cookie(Arc<str>),
    Header(HeaderName),
    Query(Arc<str>),
}

impl TokenSource {
    /// `Authorization: Bearer <token>`: the default source.
    pub fn bearer() -> Self {
        Self(SourceKind::Bearer)
    }

    /// The cookie `name` (case-sensitive, as browsers send it). An empty value counts as no
    /// token (a cleared cookie); a quoted value is unquoted. When several cookies of the name
    /// are sent (different paths), they must hold the same token.
    ///
    /// # Errors
    /// [`InvalidTokenSource`] when `name` is not an RFC 6265 cookie name of 1 to 64 characters.
    ///
    /// # Security
    /// A browser sends a cookie with every request to the site, including those another site
    /// makes it send: set the cookie `HttpOnly; Secure; SameSite=Strict` (or `Lax`), and defend
    /// every unsafe method (POST, PUT, PATCH, DELETE) against cross-site request forgery (a
    /// CSRF token, or a check of `Origin` / `Sec-Fetch-Site`). This layer does neither.
    pub fn cookie(name: &str) -> Result<Self, InvalidTokenSource> {
        let ok = !name.is_empty() && name.len() <= 64 && name.bytes().all(is_tchar);
        if ok {
            Ok(Self(SourceKind::Cookie(name.into())))
        } else {
            Err(InvalidTokenSource(
                "a cookie name is 1 to 64 token characters",
            ))
        }
    }

    /// A custom header `name` holding the bare token (surrounding spaces are ignored), at most
    /// once per request; the header is marked sensitive.
    ///
    /// # Errors
    /// [`InvalidTokenSource`] when `name` is not a header name, or is `Authorization` (use
    /// [`bearer`](Self::bearer)) or `Cookie` (use [`cookie`](Self::cookie)).
    pub fn header(name: &str) -> Result<Self, InvalidTokenSource> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidTokenSource("not a header name"))?;
        if name == AUTHORIZATION || name == COOKIE {
            return Err(InvalidTokenSource(
                "use TokenSource::bearer or TokenSource::cookie for this header",
            ));
        }
        Ok(Self(SourceKind::Header(name)))
    }

    /// The query parameter `name` (`?access_token=…`), opt-in only, for WebSocket upgrades,
    /// where browsers cannot set headers. The value is percent-decoded (`+` is a space, so a
    /// token with `+` must be sent as `%2B`). Every parameter of the name is removed from the
    /// request URI before anything else sees the request: the request's audit description,
    /// the handler and the layers inside this one never see it.
    ///
    /// # Errors
    /// [`InvalidTokenSource`] when `name` is not 1 to 64 unreserved characters (ALPHA, DIGIT,
    /// `-`, `.`, `_`, `~`).
    ///
    /// # Security
    /// URLs end up in proxy logs, browser history and `Referer` headers: use a short-lived token,
    /// only on the upgrade route, and put logging layers inside the auth layer (a layer outside
    /// it sees the URI before the parameter is removed).
    pub fn query(name: &str) -> Result<Self, InvalidTokenSource> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(Self(SourceKind::Query(name.into())))
        } else {
            Err(InvalidTokenSource(
                "a query parameter name is 1 to 64 unreserved characters",
            ))
        }
    }
}

/// A token source that cannot be configured: the name is not valid for its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTokenSource(&'static str);

impl fmt::Display for InvalidTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidTokenSource {}

const TWO_TOKENS: Rejection = Rejection::InvalidRequest("the request carries two different tokens");

/// RFC 9110 `tchar`, which is also what RFC 6265 allows in a cookie name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Marks every header a configured source reads sensitive.
pub(crate) fn mark_sensitive(headers: &mut HeaderMap, sources: &[TokenSource]) {
    for source in sources {
        let name = match &source.0 {
            SourceKind::Bearer => AUTHORIZATION,
            SourceKind::Cookie(_) => COOKIE,
            SourceKind::Header(name) => name.clone(),
            SourceKind::Query(_) => continue,
        };
        if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

/// Whether any source reads the query string.
pub(crate) fn reads_query(sources: &[TokenSource]) -> bool {
    sources.iter().any(|s| matches!(s.0, SourceKind::Query(_)))
}

/// Keeps the first token found, and refuses a second, different one.
fn keep<'a>(found: &mut Option<&'a str>, token: Option<&'a str>) -> Result<(), Rejection> {
    match (*found, token) {
        (_, None) => Ok(()),
        (None, Some(t)) => {
            *found = Some(t);
            Ok(())
        }
        // Both came from the request itself: no secret is compared here.
        (Some(f), Some(t)) if f == t => Ok(()),
        (Some(_), Some(_)) => Err(TWO_TOKENS),
    }
}

/// The one token the request carries across `sources`, `query` being what
/// [`take_query_token`] removed from its URI.
///
/// # Errors
/// [`Rejection::MissingCredentials`] when no source holds a token; [`Rejection::InvalidRequest`]
/// when one holds a malformed value, or two hold different tokens.
pub(crate) fn find_token<'a>(
    sources: &[TokenSource],
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Result<&'a str, Rejection> {
    let mut found = None;
    for source in sources {
        let token = match &source.0 {
            SourceKind::Bearer => match bearer_token(headers) {
                Ok(token) => Some(token),
                Err(Rejection::MissingCredentials) => None,
                Err(e) => return Err(e),
            },
            SourceKind::Cookie(name) => cookie_token(headers, name)?,
            SourceKind::Header(name) => header_token(headers, name)?,
            SourceKind::Query(_) => query,
        };
        keep(&mut found, token)?;
    }
    found.ok_or(Rejection::MissingCredentials)
}

fn header_token<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest(
            "the token header appears more than once",
        ));
    }
    let token = value.as_bytes().trim_ascii();
    as_token(token).map(Some).ok_or(Rejection::InvalidRequest(
        "the token header must hold one token",
    ))
}

fn cookie_token<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Rejection> {
    const TOO_MANY: Rejection = Rejection::InvalidRequest("too many cookies to read");
    let (mut bytes, mut count) = (0usize, 0usize);
    let mut found = None;
    for line in headers.get_all(COOKIE) {
        bytes = bytes.saturating_add(line.len());
        if bytes > MAX_COOKIE_BYTES {
            return Err(TOO_MANY);
        }
        for pair in line.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_COOKIES {
                return Err(TOO_MANY);
            }
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            let mut value = pair[eq + 1..].trim_ascii();
            if let [b'"', inner @ .., b'"'] = value {
                value = inner;
            }
            if value.is_empty() {
                continue; // a cleared cookie
            }
            let token = as_token(value).ok_or(Rejection::InvalidRequest(
                "the token cookie must hold one token",
            ))?;
            keep(&mut found, Some(token))?;
        }
    }
    Ok(found)
}

/// `bytes` as a token when it is a `b64token`.
fn as_token(bytes: &[u8]) -> Option<&str> {
    if is_b64token(bytes) {
        // A b64token is ASCII.
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// Removes every parameter a query source names from `uri` and returns the token they carry.
/// The URI is left as it was only when none is present.
///
/// # Errors
/// [`Rejection::InvalidRequest`] for a value that is not a token once decoded, two different
/// tokens, or a URI that cannot be rebuilt (the request is then refused, never forwarded).
pub(crate) fn take_query_token(
    uri: &mut Uri,
    sources: &[TokenSource],
) -> Result<Option<String>, Rejection> {
    const BAD: Rejection = Rejection::InvalidRequest("the token parameter must hold one token");
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let is_source = |name: &str| {
        sources
            .iter()
            .any(|s| matches!(&s.0, SourceKind::Query(n) if **n == *name))
    };
    let mut kept = String::new();
    let mut token: Option<String> = None;
    let mut removed = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !is_source(name) {
            if !kept.is_empty() {
                kept.push('&');
            }
            kept.push_str(pair);
            continue;
        }
        removed = true;
        let value = percent_decode(value).ok_or(BAD)?;
        if !is_b64token(value.as_bytes()) {
            return Err(BAD);
        }
        match &token {
            None => token = Some(value),
            Some(t) if *t == value => {}
            Some(_) => return Err(TWO_TOKENS),
        }
    }
    if removed {
        let path_and_query = if kept.is_empty() {
            uri.path().to_owned()
        } else {
            format!("{}?{kept}", uri.path())
        };
        let mut parts = std::mem::take(uri).into_parts();
        parts.path_and_query = Some(path_and_query.parse().map_err(|_| BAD)?);
        *uri = Uri::from_parts(parts).map_err(|_| BAD)?;
    }
    Ok(token)
}

/// `application/x-www-form-urlencoded` decoding of one value; `None` for a bad escape or a
/// result that is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = char::from(*bytes.get(i + 1)?).to_digit(16)?;
                let lo = char::from(*bytes.get(i + 2)?).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cookies(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(COOKIE, HeaderValue::from_str(l).unwrap());
        }
        h
    }

    #[test]
    fn names_are_checked_once() {
        assert!(TokenSource::cookie("scopekey_token").is_ok());
        assert!(TokenSource::cookie("").is_err());
        assert!(TokenSource::cookie("a=b").is_err());
        assert!(TokenSource::cookie("a b").is_err());
        assert!(TokenSource::header("x-api-token").is_ok());
        assert!(TokenSource::header("Authorization").is_err());
        assert!(TokenSource::header("cookie").is_err());
        assert!(TokenSource::header("bad header").is_err());
        assert!(TokenSource::query("access_token").is_ok());
        assert!(TokenSource::query("a&b").is_err());
        assert!(TokenSource::query(&"a".repeat(65)).is_err());
    }

    #[test]
    fn cookies_are_parsed_strictly_and_bounded() {
        let h = cookies(&["theme=dark; scopekey_token=v4.public.abc; x=1"]);
        assert_eq!(
            cookie_token(&h, "scopekey_token"),
            Ok(Some("v4.public.abc"))
        );
        assert_eq!(cookie_token(&h, "Scopekey_token"), Ok(None));
        let h = cookies(&["scopekey_token=\"abc\"", "other=ä"]);
        assert_eq!(cookie_token(&h, "scopekey_token"), Ok(Some("abc")));
        let h = cookies(&["scopekey_token=; a"]);
        assert_eq!(cookie_token(&h, "scopekey_token"), Ok(None));
        let h = cookies(&["scopekey_token=abc", "scopekey_token=abc"]);
        assert_eq!(cookie_token(&h, "scopekey_token"), Ok(Some("abc")));
        let h = cookies(&["scopekey_token=abc; scopekey_token=abd"]);
        assert_eq!(cookie_token(&h, "scopekey_token"), Err(TWO_TOKENS));
        let h = cookies(&["scopekey_token=a b"]);
        assert!(matches!(
            cookie_token(&h, "scopekey_token"),
            Err(Rejection::InvalidRequest(_))
        ));
        let many: Vec<String> = (0..=MAX_COOKIES).map(|i| format!("c{i}=1")).collect();
        let h = cookies(&[&many.join("; ")]);
        assert!(matches!(
            cookie_token(&h, "scopekey_token"),
            Err(Rejection::InvalidRequest(_))
        ));
        let big = format!("big={}", "x".repeat(MAX_COOKIE_BYTES));
        let h = cookies(&[&big]);
        assert!(matches!(
            cookie_token(&h, "scopekey_token"),
            Err(Rejection::InvalidRequest(_))
        ));
        // Hostile bytes never panic.
        for raw in [
            &b";;;="[..],
            b"=",
            b"\"",
            b"scopekey_token=\"",
            b"\xff\xfe=\x80",
        ] {
            let mut h = HeaderMap::new();
            h.insert(COOKIE, HeaderValue::from_bytes(raw).unwrap());
            let _ = cookie_token(&h, "scopekey_token");
        }
    }

    #[test]
    fn the_query_parameter_is_removed_and_decoded() {
        let sources = [TokenSource::query("access_token").unwrap()];
        let mut uri: Uri = "/ws?a=1&access_token=abc%2Edef&b=2".parse().unwrap();
        assert_eq!(
            take_query_token(&mut uri, &sources),
            Ok(Some("abc.def".to_owned()))
        );
        assert_eq!(uri, "/ws?a=1&b=2");
        let mut uri: Uri = "/ws?access_token=abc&access_token=abc".parse().unwrap();
        assert_eq!(
            take_query_token(&mut uri, &sources),
            Ok(Some("abc".to_owned()))
        );
        assert_eq!(uri, "/ws");
        let mut uri: Uri = "/ws?access_token=abc&access_token=abd".parse().unwrap();
        assert_eq!(take_query_token(&mut uri, &sources), Err(TWO_TOKENS));
        let mut uri: Uri = "/ws?access_tokens=abc".parse().unwrap();
        assert_eq!(take_query_token(&mut uri, &sources), Ok(None));
        assert_eq!(uri, "/ws?access_tokens=abc");
        for bad in [
            "/ws?access_token",
            "/ws?access_token=a+b",
            "/ws?access_token=%zz",
            "/ws?access_token=%e4",
        ] {
            let mut uri: Uri = bad.parse().unwrap();
            assert!(
                matches!(
                    take_query_token(&mut uri, &sources),
                    Err(Rejection::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn sources_agree_or_the_request_is_refused() {
        let sources = [
            TokenSource::bearer(),
            TokenSource::cookie("t").unwrap(),
            TokenSource::header("x-token").unwrap(),
        ];
        let mut h = HeaderMap::new();
        assert_eq!(
            find_token(&sources, &h, None),
            Err(Rejection::MissingCredentials)
        );
        h.insert(COOKIE, HeaderValue::from_static("t=abc"));
        assert_eq!(find_token(&sources, &h, None), Ok("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        h.insert("x-token", HeaderValue::from_static(" abc "));
        assert_eq!(find_token(&sources, &h, None), Ok("abc"));
        h.insert("x-token", HeaderValue::from_static("abd"));
        assert_eq!(find_token(&sources, &h, None), Err(TWO_TOKENS));
        h.remove("x-token");
        assert_eq!(find_token(&sources, &h, Some("abd")), Ok("abc"));
        let with_query = [TokenSource::bearer(), TokenSource::query("q").unwrap()];
        assert_eq!(find_token(&with_query, &h, Some("abd")), Err(TWO_TOKENS));
    }

    /// Hostile input never panics: random bytes (biased to the separators) as cookies, custom
    /// headers and query strings, through every source at once.
    #[test]
    fn random_input_never_panics() {
        let sources = [
            TokenSource::bearer(),
            TokenSource::cookie("t").unwrap(),
            TokenSource::header("x-token").unwrap(),
            TokenSource::query("t").unwrap(),
        ];
        let alphabet = b"t=;\"% +&?aA0.-_~/\t\xff\x80,";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let len = usize::try_from(next() % 40).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()])
                .collect();
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                headers.insert(COOKIE, v.clone());
                headers.insert("x-token", v.clone());
                headers.insert(AUTHORIZATION, v);
            }
            let query: String = bytes
                .iter()
                .filter(|b| b.is_ascii_graphic() && !b"#\"".contains(b))
                .map(|&b| char::from(b))
                .collect();
            if let Ok(mut uri) = format!("/p?{query}").parse::<Uri>() {
                let token = take_query_token(&mut uri, &sources);
                if token.is_ok() {
                    // No parameter named `t` is left behind.
                    let names = uri.query().unwrap_or("").split('&');
                    assert!(
                        names
                            .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
                            .all(|n| n != "t")
                    );
                }
                let token = token.ok().flatten();
                let _ = find_token(&sources, &headers, token.as_deref());
            }
        }
    }
}
