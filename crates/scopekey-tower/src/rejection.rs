//! RFC 6750 section 3 responses: the status, the `WWW-Authenticate` challenge and a fixed JSON
//! body for every way a request can be refused.

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
    /// The decision could not be made safely (stale revocation state, audit sink down): 503,
    /// fail closed.
    Unavailable(VerifyErrorKind),
}

impl Rejection {
    /// The rejection for a verification error.
    pub fn from_verify_error(e: &VerifyError) -> Self {
        match e.kind() {
            VerifyErrorKind::RevocationStale | VerifyErrorKind::AuditUnavailable => {
                Self::Unavailable(e.kind())
            }
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
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code, if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingCredentials | Self::Unavailable(_) => None,
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
                _ => "the token is malformed",
            },
            Self::InsufficientScope(_) => "the token does not grant the required scope",
            Self::Unavailable(_) => "authorization is temporarily unavailable",
        }
    }

    /// The `WWW-Authenticate` value, if the answer carries one.
    pub fn challenge(&self, realm: &Realm) -> Option<HeaderValue> {
        let value = match self {
            Self::Unavailable(_) => return None,
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

    /// The JSON body: `{"error":"…","error_description":"…"}` (and `"scope"` for 403).
    pub fn body(&self) -> String {
        let error = self.error_code().unwrap_or(match self {
            Self::Unavailable(_) => "temporarily_unavailable",
            _ => "unauthorized",
        });
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

    /// The whole response, with a body type any framework can build from a string.
    pub fn into_response<B: From<String>>(self, realm: &Realm) -> Response<B> {
        let mut response = Response::new(B::from(self.body()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
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
    // RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
    // One table lookup per byte: this runs on every request.
    let body = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let b64token = body > 0 && token[..body].iter().all(|&b| B64TOKEN[usize::from(b)]);
    if !b64token {
        return Err(Rejection::InvalidRequest(
            "the Authorization header must be Bearer followed by one token",
        ));
    }
    // Every byte was checked to be ASCII above.
    std::str::from_utf8(token).map_err(|_| Rejection::InvalidRequest("token is not ASCII"))
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
        assert_eq!(
            r.body(),
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
