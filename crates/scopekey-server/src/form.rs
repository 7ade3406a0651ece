//! Reading a request strictly: the body must be `application/x-www-form-urlencoded`, at most
//! [`MAX_BODY_LEN`](crate::MAX_BODY_LEN) bytes, with well-formed percent escapes, UTF-8
//! values, no parameter twice (RFC 6749 §3.2) and at most 32 parameters; and the client's
//! authentication (RFC 6749 §2.3.1: HTTP Basic or `client_id`/`client_secret` in the body,
//! never both).

use crate::MAX_BODY_LEN;
use crate::oauth_error::{OAuthError, OAuthErrorCode};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The most parameters a form may carry.
const MAX_PARAMS: usize = 32;

/// A parsed form. Values that may be secrets (`client_secret`, tokens) are cleared from
/// memory when it is dropped.
pub(crate) struct Form {
    params: BTreeMap<String, Zeroizing<String>>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        f.debug_set().entries(self.params.keys()).finish()
    }
}

impl Form {
    /// Reads and parses the body of a form POST.
    pub(crate) async fn read(headers: &HeaderMap, body: Body) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        if let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > MAX_BODY_LEN as u64
        {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(body, MAX_BODY_LEN)
            .await
            .map_err(|_| too_large())?;
        let bytes = Zeroizing::new(bytes.to_vec());
        Self::parse(&bytes)
    }

    /// Parses `application/x-www-form-urlencoded` text strictly.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = BTreeMap::new();
        if body.is_empty() {
            return Ok(Self { params });
        }
        for pair in body.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            if params.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request(format!(
                    "more than {MAX_PARAMS} parameters"
                )));
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name)?;
            let value = Zeroizing::new(decode(value)?);
            if name.is_empty() {
                return Err(OAuthError::invalid_request("a parameter without a name"));
            }
            if params.contains_key(name.as_str()) {
                let shown: String = name.chars().take(40).collect();
                return Err(OAuthError::invalid_request(format!(
                    "parameter {shown} is given more than once"
                )));
            }
            params.insert(name, value);
        }
        Ok(Self { params })
    }

    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether the parameter is present at all, even empty.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("the {name} parameter is missing")))
    }
}

fn too_large() -> OAuthError {
    OAuthError::invalid_request(format!("the body is larger than {MAX_BODY_LEN} bytes"))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// One name or value: `+` is a space, `%XX` a byte; anything else outside printable ASCII,
/// a broken escape, invalid UTF-8 or a control character is refused.
fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let malformed = || OAuthError::invalid_request("the form is not well-formed urlencoded UTF-8");
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or_else(malformed)?;
                let digit = |b: u8| (b as char).to_digit(16).ok_or_else(malformed);
                // Exactly two hex digits: `from_str_radix` would also take a sign (`%+f`).
                let (hi, lo) = (digit(hex[0])?, digit(hex[1])?);
                out.push(u8::try_from(hi * 16 + lo).map_err(|_| malformed())?);
                i += 2;
            }
            b if b.is_ascii_graphic() => out.push(b),
            _ => return Err(malformed()),
        }
        i += 1;
    }
    let text = String::from_utf8(out).map_err(|_| malformed())?;
    if text.chars().any(char::is_control) {
        return Err(OAuthError::invalid_request(
            "a parameter holds a control character",
        ));
    }
    Ok(text)
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
    /// `private_key_jwt` (RFC 7523).
    PrivateKeyJwt,
}

/// The assertion type of `private_key_jwt` (RFC 7523 §2.2).
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest client assertion read.
pub(crate) const MAX_ASSERTION_LEN: usize = 4096;

/// What the client presented: a secret (Basic or in the body) or a signed assertion.
pub(crate) enum Proof {
    /// A client secret.
    Secret(Zeroizing<String>),
    /// A JWT client assertion.
    Assertion(String),
}

/// A client's presented credentials.
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) proof: Proof,
    pub(crate) method: AuthMethod,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("proof", &"***")
            .field("method", &self.method)
            .finish()
    }
}

fn invalid_client(description: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, description).challenging(true)
}

/// The client's credentials from the `Authorization: Basic` header, the form's secret, or
/// the form's client assertion; refuses none, more than one, and a Basic header that does
/// not decode.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    let in_form = (form.get("client_id"), form.get("client_secret"));
    let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (authorization.next(), authorization.next()) {
        (None, _) => None,
        (Some(v), None) => Some(basic(v.as_bytes())?),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "more than one Authorization header",
            ));
        }
    };
    // An empty client_secret is still a second method next to another one.
    let secret_given = form.has("client_secret");
    let assertion = match (
        form.get("client_assertion_type"),
        form.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(JWT_BEARER), Some(a)) => Some(a),
        (Some(JWT_BEARER), None) => {
            return Err(OAuthError::invalid_request("client_assertion is missing"));
        }
        (Some(_), _) => {
            return Err(invalid_client(&format!(
                "the client_assertion_type is not supported (only {JWT_BEARER})"
            )));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type is missing",
            ));
        }
    };
    if let Some(assertion) = assertion {
        if basic.is_some() || secret_given {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (a client assertion and a secret): use one",
            ));
        }
        if assertion.len() > MAX_ASSERTION_LEN {
            return Err(invalid_client("the client assertion is too long"));
        }
        let client_id = match (in_form.0, assertion_subject(assertion)) {
            (Some(id), Some(sub)) if id == sub => sub,
            (Some(_), Some(_)) => {
                return Err(invalid_client(
                    "the client_id is not the assertion's subject",
                ));
            }
            (None, Some(sub)) => sub,
            (_, None) => return Err(invalid_client("the client assertion names no subject")),
        };
        return Ok(ClientCredentials {
            client_id,
            proof: Proof::Assertion(assertion.to_owned()),
            method: AuthMethod::PrivateKeyJwt,
        });
    }
    match (basic, in_form) {
        (Some(_), _) if secret_given => Err(OAuthError::invalid_request(
            "the client authenticated twice (HTTP Basic and client_secret in the body): use one",
        )
        .challenging(true)),
        (Some(c), (Some(id), None)) if id != c.client_id => Err(OAuthError::invalid_request(
            "the client_id in the body is not the one in the Authorization header",
        )),
        (Some(c), _) => Ok(c),
        (None, (Some(id), Some(secret))) => Ok(ClientCredentials {
            client_id: id.to_owned(),
            proof: Proof::Secret(Zeroizing::new(secret.to_owned())),
            method: AuthMethod::Post,
        }),
        (None, (Some(_), None)) => Err(invalid_client(
            "client authentication is required: this server has no public clients",
        )),
        (None, _) => Err(invalid_client(
            "client authentication is required (HTTP Basic, client_secret or a client assertion)",
        )),
    }
}

/// The `sub` of a client assertion, read before its signature is checked, only to find the
/// key to check it with; the checked claims must say the same.
fn assertion_subject(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    (!sub.is_empty() && sub.len() <= 256).then(|| sub.to_owned())
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic(value: &[u8]) -> Result<ClientCredentials, OAuthError> {
    let refused = |why: &str| {
        OAuthError::new(
            OAuthErrorCode::InvalidClient,
            format!("the Authorization header {why}"),
        )
        .challenging(true)
    };
    if value.len() > 2048 {
        return Err(refused("is too long"));
    }
    let text = std::str::from_utf8(value).map_err(|_| refused("is not ASCII"))?;
    let (scheme, rest) = text
        .split_once(' ')
        .ok_or_else(|| refused("is not Basic credentials"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refused("is not Basic credentials"));
    }
    let decoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| refused("is not valid base64"))?,
    );
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| refused("has no ':' between client id and secret"))?;
    let undo = |part: &[u8]| decode(part).map_err(|_| refused("is not urlencoded UTF-8"));
    let client_id = undo(&decoded[..colon])?;
    let secret = Zeroizing::new(undo(&decoded[colon + 1..])?);
    if client_id.is_empty() || secret.is_empty() {
        return Err(refused("has an empty client id or secret"));
    }
    Ok(ClientCredentials {
        client_id,
        proof: Proof::Secret(secret),
        method: AuthMethod::Basic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_parsed_strictly() {
        let f = Form::parse(b"grant_type=client_credentials&scope=a%3Aread+b%3Aread&x=").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("a:read b:read"));
        assert_eq!(f.get("x"), None);
        assert!(format!("{f:?}").contains("scope") && !format!("{f:?}").contains("read"));
        for bad in [
            &b"a=1&a=2"[..],
            b"a=%zz",
            b"a=%4",
            b"a=%ff",
            b"a=%00",
            b"a=%+f",
            b"a=%-1",
            b"=1",
            b"a=\xc3\xa9",
            b"a=b c",
        ] {
            let e = Form::parse(bad).unwrap_err();
            assert_eq!(e.code, OAuthErrorCode::InvalidRequest, "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("p{i}=1")).collect();
        assert!(Form::parse(many.join("&").as_bytes()).is_err());
    }

    #[test]
    fn basic_credentials_are_urlencoded_halves() {
        let header = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let c = basic(header("my%20client:s%3Acret+x").as_bytes()).unwrap();
        assert_eq!(c.client_id, "my client");
        assert!(matches!(&c.proof, Proof::Secret(s) if s.as_str() == "s:cret x"));
        assert!(!format!("{c:?}").contains("s:cret"));
        for bad in [
            header("nocolon"),
            header(":secret"),
            header("id:"),
            "Bearer abc".into(),
            "Basic !!!".into(),
        ] {
            assert_eq!(
                basic(bad.as_bytes()).unwrap_err().code,
                OAuthErrorCode::InvalidClient,
                "{bad}"
            );
        }
    }
}
