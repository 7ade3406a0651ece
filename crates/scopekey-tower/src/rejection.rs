//! RFC 6750 section 3 responses: the status, the `WWW-Authenticate` challenge and a fixed
//! RFC 9457 problem-details body for every way a request can be refused.

use crate::render::RejectionRenderer;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use scopekey::{Denied, DenyReason, Scope, VerifyError, VerifyErrorKind};
use std::fmt;
use std::sync::Arc;

/// The protection space named in `WWW-Authenticate: Bearer realm="…"`.
///
/// A quoted-string without `"` or `\`: 1 to 128 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Realm(Arc<str>);

impl Realm {
    /// A realm.
    ///
    /// # Errors
    /// [`InvalidRealm`] if `realm` is empty, longer than 128 bytes, or holds anything but
    /// printable ASCII other than `"` and `\`.
    pub fn new(realm: &str) -> Result<Self, InvalidRealm> {
        let ok = !realm.is_empty()
            && realm.len() <= 128
            && realm
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if ok {
            Ok(Self(realm.into()))
        } else {
            Err(InvalidRealm)
        }
    }

    /// The realm `test`, for unit tests.
    #[doc(hidden)]
    pub fn test() -> Self {
        Self("test".into())
    }

    /// The realm as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Realm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A realm that cannot be written in a `WWW-Authenticate` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidRealm;

impl fmt::Display for InvalidRealm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a realm is 1 to 128 printable ASCII characters without `\"` or `\\`")
    }
}

impl std::error::Error for InvalidRealm {}

/// Why a request was refused, and how to answer it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No bearer credentials (no `Authorization` header, or another scheme): 401 with a bare
    /// challenge and no error code (RFC 6750 section 3.1).
    MissingCredentials,
    /// A malformed `Authorization` header, or more than one: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// The token was refused: 401 `invalid_token`, with a description that names the class of
    /// problem and nothing of the token.
    InvalidToken(VerifyErrorKind),
    /// The token does not grant the scope: 403 `insufficient_scope` with `scope="…"`.
    InsufficientScope(Scope),
    /// The decision could not be made safely (stale revocation state, audit sink down, a
    /// use-limited token whose use could not be counted): 503,
    /// fail closed.
    Unavailable(VerifyErrorKind),
    /// An id taken from the request (a path segment) cannot name a resource: 400 without a
    /// challenge and without an RFC 6750 code (the token is not at fault). Answered at the
    /// point of action, e.g. by `scopekey-axum`'s `Forbidden`.
    InvalidResource,
}

impl Rejection {
    /// The rejection for a verification error.
    pub fn from_verify_error(e: &VerifyError) -> Self {
        match e.kind() {
            VerifyErrorKind::RevocationStale
            | VerifyErrorKind::KeysStale
            | VerifyErrorKind::AuditUnavailable
            | VerifyErrorKind::UsageUnavailable => Self::Unavailable(e.kind()),
            kind => Self::InvalidToken(kind),
        }
    }

    /// The rejection for a denied action.
    pub fn from_denied(d: &Denied) -> Self {
        match d.reason() {
            DenyReason::MissingScope => Self::InsufficientScope(d.required_scope().clone()),
            _ => Self::Unavailable(VerifyErrorKind::AuditUnavailable),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) | Self::InvalidResource => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingCredentials | Self::Unavailable(_) | Self::InvalidResource => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
        }
    }

    /// A fixed, human-readable description. It never contains token bytes, and only uses the
    /// characters RFC 6750 allows in `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            Self::MissingCredentials => "bearer token required",
            Self::InvalidRequest(why) => why,
            Self::InvalidToken(kind) => match kind {
                VerifyErrorKind::Expired => "the token has expired",
                VerifyErrorKind::NotYetValid => "the token is not valid yet",
                VerifyErrorKind::Revoked => "the token has been revoked",
                VerifyErrorKind::LifetimeTooLong => "the token lifetime is too long",
                VerifyErrorKind::WrongIssuer
                | VerifyErrorKind::WrongAudience
                | VerifyErrorKind::WrongEnvironment => "the token is not meant for this service",
                VerifyErrorKind::UnknownKey | VerifyErrorKind::BadSignature => {
                    "the token signature is not valid here"
                }
                VerifyErrorKind::NetworkNotAllowed => "the token may not be used from this network",
                VerifyErrorKind::UsesExhausted => "the token has no uses left",
                _ => "the token is malformed",
            },
            Self::InsufficientScope(_) => "the token does not grant the required scope",
            Self::Unavailable(_) => "authorization is temporarily unavailable",
            Self::InvalidResource => "a resource id in the request is not a valid segment",
        }
    }

    /// The `WWW-Authenticate` value, if the answer carries one.
    pub fn challenge(&self, realm: &Realm) -> Option<HeaderValue> {
        let value = match self {
            Self::Unavailable(_) | Self::InvalidResource => return None,
            Self::MissingCredentials => format!("Bearer realm=\"{realm}\""),
            Self::InsufficientScope(scope) => format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{}\", scope=\"{scope}\"",
                self.description()
            ),
            other => format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                other.error_code().unwrap_or("invalid_request"),
                other.description()
            ),
        };
        // Realm, scope and descriptions are restricted to visible ASCII, so this cannot fail.
        HeaderValue::from_str(&value).ok()
    }

    /// The `error` member of the bodies: the RFC 6750 code when there is one, else
    /// `unauthorized` (no credentials), `temporarily_unavailable` (503) or `invalid_resource`.
    pub fn error(&self) -> &'static str {
        self.error_code().unwrap_or(match self {
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::InvalidResource => "invalid_resource",
            _ => "unauthorized",
        })
    }

    /// The default body, an RFC 9457 problem details object (`application/problem+json`):
    ///
    /// ```json
    /// {"type":"about:blank","title":"Unauthorized","status":401,"detail":"the token has expired","error":"invalid_token"}
    /// ```
    ///
    /// `type` is `about:blank`, so `title` is the status's reason phrase; `detail` is
    /// [`description`](Self::description); the extension member `error` is
    /// [`error`](Self::error) (the RFC 6750 code), and `scope` the needed scope on 403.
    /// Fixed for each case: it never contains token bytes.
    pub fn body(&self) -> String {
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let (code, detail, error) = (status.as_u16(), self.description(), self.error());
        // Every member is a fixed string, or a scope (visible ASCII without `"` or `\`).
        let head = format!(
            "{{\"type\":\"about:blank\",\"title\":\"{title}\",\"status\":{code},\"detail\":\"{detail}\",\"error\":\"{error}\""
        );
        match self {
            Self::InsufficientScope(scope) => format!("{head},\"scope\":\"{scope}\"}}"),
            _ => head + "}",
        }
    }

    /// The OAuth-style JSON body, `{"error":"…","error_description":"…"}` (and `"scope"` on
    /// 403): the default body before problem details, for a
    /// [`RenderRejection`](crate::RenderRejection) that keeps it.
    pub fn json_body(&self) -> String {
        let error = self.error();
        match self {
            Self::InsufficientScope(scope) => format!(
                "{{\"error\":\"{error}\",\"error_description\":\"{}\",\"scope\":\"{scope}\"}}",
                self.description()
            ),
            _ => format!(
                "{{\"error\":\"{error}\",\"error_description\":\"{}\"}}",
                self.description()
            ),
        }
    }

    /// The whole response, with a body type any framework can build from a string: the
    /// status, the RFC 6750 `WWW-Authenticate` challenge, `Cache-Control: no-store`, and the
    /// problem details [`body`](Self::body).
    pub fn into_response<B: From<String>>(self, realm: &Realm) -> Response<B> {
        self.into_response_with(realm, None)
    }

    /// As [`into_response`](Self::into_response), with the body and its `Content-Type` from
    /// `renderer` when there is one. Status, challenge and `Cache-Control` are always the
    /// layer's.
    pub fn into_response_with<B: From<String>>(
        self,
        realm: &Realm,
        renderer: Option<&RejectionRenderer>,
    ) -> Response<B> {
        let (content_type, body) = match renderer {
            Some(r) => r.render(&self).into_parts(),
            None => (
                HeaderValue::from_static("application/problem+json"),
                self.body(),
            ),
        };
        let mut response = Response::new(B::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, content_type);
        if let Some(challenge) = self.challenge(realm) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        response
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.status())
    }
}

impl std::error::Error for Rejection {}

/// Reads the bearer token from `Authorization` headers (RFC 6750 section 2.1).
///
/// # Errors
/// [`Rejection::MissingCredentials`] when there is no `Authorization` header or it uses another
/// scheme; [`Rejection::InvalidRequest`] for more than one header or a value that is not
/// `Bearer <b64token>`.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Rejection> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Rejection::MissingCredentials);
    };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let bytes = value.as_bytes();
    let (scheme, rest) = match bytes.iter().position(|&b| b == b' ') {
        Some(i) => (&bytes[..i], &bytes[i..]),
        None => (bytes, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(Rejection::MissingCredentials);
    }
    let token = trim_leading_spaces(rest);
    if !is_b64token(token) {
        return Err(Rejection::InvalidRequest(
            "the Authorization header must be Bearer followed by one token",
        ));
    }
    // Every byte was checked to be ASCII above.
    std::str::from_utf8(token).map_err(|_| Rejection::InvalidRequest("token is not ASCII"))
}

/// Whether `token` is an RFC 6750 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &[u8]) -> bool {
    // One table lookup per byte: this runs on every request.
    let body = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    body > 0 && token[..body].iter().all(|&b| B64TOKEN[usize::from(b)])
}

/// The characters of an RFC 6750 `b64token` before its `=` padding.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || c == b'-'
            || c == b'.'
            || c == b'_'
            || c == b'~'
            || c == b'+'
            || c == b'/';
        b += 1;
    }
    table
};

fn trim_leading_spaces(mut b: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use http::header::AUTHORIZATION;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_bearer_tokens_strictly() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def"])).unwrap(),
            "abc.def"
        );
        assert_eq!(bearer_token(&headers(&["bearer  abc"])).unwrap(), "abc");
        assert_eq!(bearer_token(&headers(&["BEARER a=="])).unwrap(), "a==");
        assert_eq!(
            bearer_token(&headers(&[])),
            Err(Rejection::MissingCredentials)
        );
        assert_eq!(
            bearer_token(&headers(&["Basic dXNlcjpwYXNz"])),
            Err(Rejection::MissingCredentials)
        );
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a=b",
            "Bearer ===",
            "Bearer =a",
            "Bearer a\"",
            "Bearer a,b",
            "Bearer a\tb",
            "Bearer ä",
        ] {
            let h = match HeaderValue::from_bytes(bad.as_bytes()) {
                Ok(v) => {
                    let mut h = HeaderMap::new();
                    h.insert(AUTHORIZATION, v);
                    h
                }
                Err(_) => continue,
            };
            assert!(
                matches!(bearer_token(&h), Err(Rejection::InvalidRequest(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(Rejection::InvalidRequest(_))
        ));
    }

    #[test]
    fn responses_follow_rfc6750() {
        let realm = Realm::new("api").unwrap();
        let r: Response<String> = Rejection::MissingCredentials.into_response(&realm);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()[WWW_AUTHENTICATE], "Bearer realm=\"api\"");
        let r: Response<String> =
            Rejection::InvalidToken(VerifyErrorKind::Expired).into_response(&realm);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"the token has expired\""
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            r.body(),
            "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,\"detail\":\"the token has expired\",\"error\":\"invalid_token\"}"
        );
        assert_eq!(
            Rejection::InvalidToken(VerifyErrorKind::Expired).json_body(),
            "{\"error\":\"invalid_token\",\"error_description\":\"the token has expired\"}"
        );
        let scope: Scope = "projects/42:read".parse().unwrap();
        let r: Response<String> = Rejection::InsufficientScope(scope).into_response(&realm);
        assert_eq!(r.status(), 403);
        assert!(
            r.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .ends_with("scope=\"projects/42:read\"")
        );
        let r: Response<String> =
            Rejection::Unavailable(VerifyErrorKind::RevocationStale).into_response(&realm);
        assert_eq!(r.status(), 503);
        assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
        assert!(Realm::new("a\"b").is_err());
        assert!(Realm::new("").is_err());
    }
}
